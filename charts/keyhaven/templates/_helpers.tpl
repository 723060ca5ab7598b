{{/* Names, labels and small shared pieces. */}}

{{- define "keyhaven.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or just <release> when it already contains the chart name. */}}
{{- define "keyhaven.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keyhaven.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels (app.kubernetes.io/*) on every object. */}}
{{- define "keyhaven.labels" -}}
helm.sh/chart: {{ include "keyhaven.chart" . }}
app.kubernetes.io/name: {{ include "keyhaven.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keyhaven
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "key-service"). */}}
{{- define "keyhaven.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyhaven.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "keyhaven.componentLabels" -}}
{{ include "keyhaven.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "keyhaven.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "keyhaven.keyServiceName" -}}
{{ include "keyhaven.fullname" . }}
{{- end }}
{{- define "keyhaven.controllerName" -}}
{{ include "keyhaven.fullname" . }}-controller
{{- end }}
{{- define "keyhaven.webhookServiceName" -}}
{{ include "keyhaven.fullname" . }}-webhook
{{- end }}
{{- define "keyhaven.webhookConfigName" -}}
{{ include "keyhaven.fullname" . }}
{{- end }}
{{- define "keyhaven.webhookCertSecretName" -}}
{{ include "keyhaven.fullname" . }}-webhook-tls
{{- end }}
{{/* The controller's leader-election Lease (its built-in default name). */}}
{{- define "keyhaven.leaseName" -}}
keyhaven-controller
{{- end }}

{{- define "keyhaven.rootKeySecretName" -}}
{{ .Values.rootKey.existingSecret | default (printf "%s-root-key" (include "keyhaven.fullname" .)) }}
{{- end }}
{{- define "keyhaven.credentialsSecretName" -}}
{{ .Values.credentials.existingSecret | default (printf "%s-credentials" (include "keyhaven.fullname" .)) }}
{{- end }}
{{- define "keyhaven.pvcName" -}}
{{ .Values.persistence.existingClaim | default (printf "%s-data" (include "keyhaven.fullname" .)) }}
{{- end }}

{{/* The key service's URL inside the cluster. */}}
{{- define "keyhaven.kmsEndpoint" -}}
{{ if .Values.keyService.tls.enabled }}https{{ else }}http{{ end }}://{{ include "keyhaven.keyServiceName" . }}.{{ .Release.Namespace }}.svc:{{ .Values.keyService.service.port }}
{{- end }}

{{/* Spread replicas over nodes unless the user gave constraints. */}}
{{- define "keyhaven.topologySpread" -}}
{{- if .values.topologySpreadConstraints -}}
{{ toYaml .values.topologySpreadConstraints }}
{{- else -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "keyhaven.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}
{{- end }}

{{/* Checks that combinations the schema cannot express are consistent. */}}
{{- define "keyhaven.validate" -}}
{{- if and (eq .Values.store.type "sqlite") (gt (int .Values.keyService.replicas) 1) }}
{{- fail "keyService.replicas > 1 needs store.type=kubernetes: the sqlite store is one file on one volume" }}
{{- end }}
{{- if and .Values.webhook.enabled (not .Values.controller.enabled) }}
{{- fail "webhook.enabled needs controller.enabled: the controller serves the webhook" }}
{{- end }}
{{- if and .Values.keyService.tls.enabled (not .Values.keyService.tls.secretName) }}
{{- fail "keyService.tls.enabled needs keyService.tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if eq .Values.rootKey.type "pkcs11" }}
{{- if not .Values.rootKey.pkcs11.pinSecret.name }}
{{- fail "rootKey.type=pkcs11 needs rootKey.pkcs11.pinSecret.name (a Secret with the token's user PIN)" }}
{{- end }}
{{- if not .Values.rootKey.pkcs11.sidecar.image.repository }}
{{- fail "rootKey.type=pkcs11 needs rootKey.pkcs11.sidecar.image.repository (the p11-kit server sidecar with the HSM's PKCS#11 module)" }}
{{- end }}
{{- if not .Values.rootKey.pkcs11.sidecar.modulePath }}
{{- fail "rootKey.type=pkcs11 needs rootKey.pkcs11.sidecar.modulePath (the HSM's PKCS#11 module inside the sidecar image)" }}
{{- end }}
{{- if not .Values.rootKey.pkcs11.tokenLabel }}
{{- fail "rootKey.type=pkcs11 needs rootKey.pkcs11.tokenLabel (the token the sidecar exports)" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Run by `node -e SCRIPT SECRET_FILE MEMORY_FILE DATA_LINK` in the root-key init container:
copies the 32-byte key from the Secret volume into a memory-backed file (0600, the
service user's own) and makes DATA_LINK (<data>/root.key, where `keyhaven serve` reads
it) a symbolic link to it. A regular root.key already in the data folder is only
replaced when it holds the same key; otherwise it refuses to start, so a store is never
opened with a key it was not written with.
The data folder is a subfolder of the volume, made 0700 here: under fsGroup the volume's
root is group-accessible, which `keyhaven serve` refuses. A store from before this layout
(keyhaven.db and its -wal/-shm at the volume's root) is moved into it once.
*/}}
{{- define "keyhaven.installRootKeyScript" -}}
const fs = require("node:fs");
const path = require("node:path");
const [secretFile, memoryFile, dataLink] = process.argv.slice(1);
const fail = (m) => { console.error("keyhaven root-key: " + m); process.exit(2); };
const key = fs.readFileSync(secretFile);
if (key.length !== 32) fail(`the root key Secret must hold 32 bytes, it holds ${key.length}`);
const dataDir = path.dirname(dataLink);
fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
fs.chmodSync(dataDir, 0o700);
for (const f of ["keyhaven.db", "keyhaven.db-wal", "keyhaven.db-shm"]) {
  const old = path.join(dataDir, "..", f);
  if (fs.existsSync(old) && !fs.existsSync(path.join(dataDir, f))) fs.renameSync(old, path.join(dataDir, f));
}
fs.writeFileSync(memoryFile, key, { mode: 0o600 });
fs.chmodSync(memoryFile, 0o600);
let existing;
try { existing = fs.lstatSync(dataLink); } catch (e) { if (e.code !== "ENOENT") throw e; }
if (existing && !existing.isSymbolicLink() && !fs.readFileSync(dataLink).equals(key))
  fail(`${dataLink} holds a different root key than the Secret; keep that file (it may be the only copy) and put it in the Secret, or move it away`);
if (existing) fs.unlinkSync(dataLink);
fs.symlinkSync(memoryFile, dataLink);
console.log("keyhaven root-key: installed");
{{- end }}

{{/* The p11-kit server sidecar's socket, in the emptyDir both containers mount. */}}
{{- define "keyhaven.hsmSocketDir" -}}/var/run/keyhaven-hsm{{- end }}
{{- define "keyhaven.hsmSocket" -}}{{ include "keyhaven.hsmSocketDir" . }}/p11-kit.sock{{- end }}

{{/* The sidecar's image: repository@digest, or repository:tag. */}}
{{- define "keyhaven.hsmSidecarImage" -}}
{{- $image := .Values.rootKey.pkcs11.sidecar.image }}
{{- if $image.digest }}{{ $image.repository }}@{{ $image.digest }}{{ else }}{{ $image.repository }}:{{ $image.tag | default "latest" }}{{ end }}
{{- end }}
