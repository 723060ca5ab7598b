// Command render is an offline stand-in for `helm template`, used by the chart tests
// because no helm binary is available here. It renders a chart with the engine Helm
// itself uses — Go's text/template with the sprig function library — and the Helm
// built-ins the Keyhaven chart uses: include, tpl, required, lookup, toYaml, fromYaml,
// toJson, fromJson, .Release, .Chart, .Values, .Template and a minimal .Capabilities.
//
// Values are read and merged as Helm does: YAML through sigs.k8s.io/yaml (numbers
// become float64), user files coalesced over the chart's values.yaml in order, a null
// deletes a default. Output matches `helm template`: one "---\n# Source: <path>" block
// per non-empty template, in path order. `-notes` prints the rendered NOTES.txt instead.
// Schema validation of values (values.schema.json) is done by the caller.
//
// Build offline (Debian packages golang-go, golang-github-masterminds-sprig-dev,
// golang-k8s-sigs-yaml-dev): GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/semver" // GOPATH mode: Debian installs semver v3 at this path
	"github.com/Masterminds/sprig"  // and sprig v3 at this one
	"sigs.k8s.io/yaml"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Capabilities mirrors the parts of Helm's chartutil.Capabilities templates use.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
	HelmVersion map[string]string
}

type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

type VersionSet []string

// Has answers as Helm's VersionSet.Has: "group/version" or "group/version/Kind".
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// Metadata holds the Chart.yaml fields under the names Helm exposes in .Chart.
type Metadata struct {
	Name         string                   `json:"name"`
	Home         string                   `json:"home,omitempty"`
	Sources      []string                 `json:"sources,omitempty"`
	Version      string                   `json:"version"`
	Description  string                   `json:"description,omitempty"`
	Keywords     []string                 `json:"keywords,omitempty"`
	Maintainers  []map[string]interface{} `json:"maintainers,omitempty"`
	Icon         string                   `json:"icon,omitempty"`
	APIVersion   string                   `json:"apiVersion"`
	Condition    string                   `json:"condition,omitempty"`
	Tags         string                   `json:"tags,omitempty"`
	AppVersion   string                   `json:"appVersion,omitempty"`
	Deprecated   bool                     `json:"deprecated,omitempty"`
	Annotations  map[string]string        `json:"annotations,omitempty"`
	KubeVersion  string                   `json:"kubeVersion,omitempty"`
	Type         string                   `json:"type,omitempty"`
	Dependencies []interface{}            `json:"dependencies,omitempty"`
}

func main() {
	var valueFiles, apiVersions multiFlag
	chartDir := flag.String("chart", "", "chart folder")
	name := flag.String("name", "keyhaven", "release name")
	namespace := flag.String("namespace", "keyhaven", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.30.0", "Kubernetes version reported in .Capabilities")
	lookupFile := flag.String("lookup", "", "JSON file with a list of objects that lookup returns (empty: none, as helm template)")
	upgrade := flag.Bool("upgrade", false, "render as an upgrade (.Release.IsUpgrade)")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	printValues := flag.Bool("print-values", false, "print the merged values as JSON (what values.schema.json is checked against) instead of the manifests")
	flag.Var(&valueFiles, "f", "values file (repeatable; later files win)")
	flag.Var(&apiVersions, "api-versions", "extra API versions in .Capabilities.APIVersions (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		fail(errors.New("-chart is required"))
	}
	if *printValues {
		values, _, err := loadValues(*chartDir, valueFiles)
		if err != nil {
			fail(err)
		}
		b, err := json.Marshal(values)
		if err != nil {
			fail(err)
		}
		os.Stdout.Write(b)
		return
	}
	out, err := render(*chartDir, *name, *namespace, *kubeVersion, *lookupFile, *upgrade, *notes, valueFiles, apiVersions)
	if err != nil {
		fail(err)
	}
	os.Stdout.WriteString(out)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "Error: %s\n", err)
	os.Exit(1)
}

func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vals := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

// coalesce merges src (lower priority) under dst (higher priority), as Helm's
// CoalesceTables: nested maps merge, a null in dst removes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	if dst == nil {
		dst = map[string]interface{}{}
	}
	for key, sv := range src {
		dv, present := dst[key]
		if !present {
			dst[key] = sv
			continue
		}
		if dv == nil {
			delete(dst, key)
			continue
		}
		dm, dIsMap := dv.(map[string]interface{})
		sm, sIsMap := sv.(map[string]interface{})
		if dIsMap && sIsMap {
			dst[key] = coalesce(dm, sm)
		}
	}
	return dst
}

// mergeMaps merges b over a (b wins), keeping nulls, as Helm merges several -f files.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]interface{}); ok {
			if am, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// loadValues reads Chart.yaml and the values: the chart's values.yaml with the user
// files coalesced over it.
func loadValues(chartDir string, valueFiles []string) (map[string]interface{}, Metadata, error) {
	var meta Metadata
	chartYAML, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, meta, err
	}
	if err := yaml.UnmarshalStrict(chartYAML, &meta); err != nil {
		return nil, meta, fmt.Errorf("Chart.yaml: %w", err)
	}
	if meta.APIVersion != "v2" || meta.Name == "" || meta.Version == "" {
		return nil, meta, errors.New("Chart.yaml: apiVersion v2, name and version are required")
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return nil, meta, err
	}
	user := map[string]interface{}{}
	for _, f := range valueFiles {
		v, err := readYAMLMap(f)
		if err != nil {
			return nil, meta, err
		}
		user = mergeMaps(user, v)
	}
	return coalesce(user, values), meta, nil
}

func render(chartDir, name, namespace, kubeVersion, lookupFile string, upgrade, notes bool, valueFiles, apiVersions []string) (string, error) {
	values, meta, err := loadValues(chartDir, valueFiles)
	if err != nil {
		return "", err
	}

	var lookupObjects []map[string]interface{}
	if lookupFile != "" {
		data, err := os.ReadFile(lookupFile)
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(data, &lookupObjects); err != nil {
			return "", fmt.Errorf("%s: %w", lookupFile, err)
		}
	}

	// Helm refuses a chart whose kubeVersion constraint the cluster does not meet.
	if meta.KubeVersion != "" {
		constraint, err := semver.NewConstraint(meta.KubeVersion)
		if err != nil {
			return "", fmt.Errorf("Chart.yaml: kubeVersion %q: %w", meta.KubeVersion, err)
		}
		v, err := semver.NewVersion(kubeVersion)
		if err != nil {
			return "", fmt.Errorf("-kube-version %q: %w", kubeVersion, err)
		}
		if !constraint.Check(v) {
			return "", fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", meta.KubeVersion, kubeVersion)
		}
	}

	major, minor := "1", "30"
	if parts := strings.SplitN(strings.TrimPrefix(kubeVersion, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	caps := &Capabilities{
		KubeVersion: KubeVersion{Version: kubeVersion, Major: major, Minor: minor, GitVersion: kubeVersion},
		APIVersions: append(VersionSet{
			"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
			"admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "coordination.k8s.io/v1",
			"autoscaling/v2", "storage.k8s.io/v1",
		}, apiVersions...),
		HelmVersion: map[string]string{"Version": "v3.16.0"},
	}
	release := map[string]interface{}{
		"Name": name, "Namespace": namespace, "IsUpgrade": upgrade, "IsInstall": !upgrade,
		"Revision": 1, "Service": "Helm",
	}
	if upgrade {
		release["Revision"] = 2
	}

	templatesDir := filepath.Join(chartDir, "templates")
	var paths []string
	err = filepath.Walk(templatesDir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)

	root := template.New("gotpl").Option("missingkey=zero")
	includedNames := map[string]int{}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["mustToYaml"] = func(v interface{}) (string, error) {
		b, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(b), "\n"), err
	}
	funcs["fromYaml"] = fromYAML
	funcs["toJson"] = toJSON
	funcs["mustToJson"] = func(v interface{}) (string, error) { b, err := json.Marshal(v); return string(b), err }
	funcs["fromJson"] = fromJSON
	funcs["required"] = func(warn string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(warn)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, errors.New(warn)
		}
		return val, nil
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		if includedNames[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		includedNames[name]++
		defer func() { includedNames[name]-- }()
		var buf strings.Builder
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", text, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["lookup"] = func(apiVersion, kind, ns, objName string) (map[string]interface{}, error) {
		var items []interface{}
		for _, o := range lookupObjects {
			md, _ := o["metadata"].(map[string]interface{})
			if o["apiVersion"] != apiVersion || o["kind"] != kind {
				continue
			}
			if ns != "" && md["namespace"] != ns {
				continue
			}
			if objName != "" {
				if md["name"] == objName {
					return o, nil
				}
				continue
			}
			items = append(items, o)
		}
		if objName != "" {
			return map[string]interface{}{}, nil
		}
		return map[string]interface{}{"items": items}, nil
	}
	root.Funcs(funcs)

	chartPrefix := meta.Name + "/templates/"
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, _ := filepath.Rel(templatesDir, p)
		tname := chartPrefix + filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if _, err := root.New(tname).Parse(string(data)); err != nil {
			return "", fmt.Errorf("parse error in %s: %w", tname, err)
		}
		names = append(names, tname)
	}

	top := func(tname string) map[string]interface{} {
		return map[string]interface{}{
			"Values":       values,
			"Release":      release,
			"Chart":        meta,
			"Capabilities": caps,
			"Template":     map[string]interface{}{"Name": tname, "BasePath": meta.Name + "/templates"},
			"Files":        map[string]interface{}{},
		}
	}

	var out bytes.Buffer
	for _, tname := range names {
		base := filepath.Base(tname)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		var buf strings.Builder
		if err := root.ExecuteTemplate(&buf, tname, top(tname)); err != nil {
			return "", cleanExecError(err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if notes {
			out.WriteString(text)
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", tname, strings.Trim(text, "\n"))
	}
	return out.String(), nil
}

// cleanExecError shortens text/template's error as Helm does for `required` and `fail`.
func cleanExecError(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, "error calling required: "); i >= 0 {
		return fmt.Errorf("execution error: %s", msg[i+len("error calling required: "):])
	}
	if i := strings.LastIndex(msg, "error calling fail: "); i >= 0 {
		return fmt.Errorf("execution error: %s", msg[i+len("error calling fail: "):])
	}
	return err
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := make(map[string]interface{})
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}
