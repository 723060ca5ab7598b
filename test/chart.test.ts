/**
 * charts/keyhaven with the real Helm 3 and Helm 4 (test/support/tools.ts), for every
 * option set documented in values.yaml: `helm lint --strict` and `helm template` with
 * both, the same output from both, every object validated against the Kubernetes
 * schemas, the invariants the chart promises checked on each render, and the output
 * snapshotted (test/chart/__snapshots__/, generated secrets masked). The real API
 * server takes the chart in test/cluster-chart.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../src/config/config.js";
import {
  loadCredentialsFile,
  principalsWithoutPolicies,
} from "../src/kms/identity/credentialsFile.js";
import {
  CHART,
  ROOT,
  helmPath,
  lintArgs,
  mergedValues,
  parseManifests,
  podSpec,
  render,
  renderBoth,
  renderNotes,
  templateArgs,
  validateObject,
  withoutGenerated,
  type HelmMajor,
  type K8sObject,
  type RenderOptions,
} from "./chart/support.js";
import { runTool } from "./support/tools.js";

type Obj = Record<string, unknown>;
interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Obj;
  resources?: Obj;
  command?: string[];
  startupProbe?: { exec: { command: string[] } };
  /** httpGet on the key service and the controller; exec on the HSM sidecar. */
  readinessProbe?: {
    httpGet: { path: string; port: string; scheme: string };
    exec?: { command: string[] };
  };
  livenessProbe?: { httpGet: { path: string; port: string; scheme: string } };
  volumeMounts?: { name: string; mountPath: string }[];
  restartPolicy?: string;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    secret?: { secretName: string; items?: { key: string }[] };
    persistentVolumeClaim?: { claimName: string };
    emptyDir?: Obj;
  }[];
  securityContext?: Obj;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
}

const NS = "keyhaven";
const JWKS = JSON.stringify({
  keys: [
    {
      use: "sig",
      kty: "EC",
      kid: "test",
      crv: "P-256",
      alg: "ES256",
      x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
      y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    },
  ],
});

/** The option sets documented at the top of values.yaml. */
const CASES: Record<string, Obj> = {
  default: {},
  "root-key-existing-secret": {
    rootKey: { existingSecret: "my-root-key", existingSecretKey: "key" },
  },
  "key-service-tls": { keyService: { tls: { enabled: true, secretName: "keyhaven-kms-tls" } } },
  "web-identity": {
    keyService: {
      webIdentity: {
        issuer: "https://kubernetes.default.svc.cluster.local",
        jwks: JWKS,
        maxSessionSeconds: 7200,
        serviceAccountLabels: "cluster",
      },
    },
  },
  "cert-manager": { webhook: { certManager: { enabled: true } } },
  "cert-manager-cluster-issuer": {
    webhook: {
      certManager: {
        enabled: true,
        issuerRef: { name: "corp-ca", kind: "ClusterIssuer", group: "cert-manager.io" },
      },
    },
  },
  "service-monitor": { serviceMonitor: { enabled: true, labels: { release: "prometheus" } } },
  "kubernetes-store": { store: { type: "kubernetes" } },
  "multi-region": {
    multiRegion: {
      peers: [
        { region: "eu-west-1", url: "https://kms.b.example:8443" },
        { region: "ap-southeast-2", url: "https://kms.c.example:8443" },
      ],
      peerCredential: "AKIAKEYHAVENPEERING",
      extraRegions: ["us-west-2"],
    },
  },
  "key-service-only": { controller: { enabled: false }, webhook: { enabled: false } },
  "controller-without-webhook": { webhook: { enabled: false }, controller: { replicas: 1 } },
  "minimal-trial": {
    networkPolicy: { enabled: false },
    persistence: { enabled: false },
    keyService: { podDisruptionBudget: { enabled: false } },
    controller: { replicas: 1, podDisruptionBudget: { enabled: false } },
  },
  "existing-claim-and-audit-file": {
    persistence: { existingClaim: "keyhaven-store" },
    keyService: { auditLogFile: "audit.log" },
  },
  "webhook-ignore-extra-exclusions": {
    webhook: {
      failurePolicy: "Ignore",
      timeoutSeconds: 10,
      excludeNamespaces: ["monitoring", "keyhaven"],
    },
    networkPolicy: {
      webhookFrom: [{ ipBlock: { cidr: "10.0.0.0/8" } }],
      keyServiceFrom: [{ namespaceSelector: { matchLabels: { team: "payments" } } }],
    },
  },
  "customised-placement-and-image": {
    image: { repository: "registry.example/keyhaven", digest: `sha256:${"a".repeat(64)}` },
    imagePullSecrets: [{ name: "regcred" }],
    commonLabels: { team: "security" },
    account: "123456789012",
    region: "eu-west-1",
    logLevel: "debug",
    keyService: {
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: "topology.kubernetes.io/zone",
          whenUnsatisfiable: "DoNotSchedule",
          labelSelector: { matchLabels: { "app.kubernetes.io/component": "key-service" } },
        },
      ],
      nodeSelector: { "kubernetes.io/os": "linux" },
      tolerations: [
        { key: "dedicated", operator: "Equal", value: "security", effect: "NoSchedule" },
      ],
      priorityClassName: "system-cluster-critical",
      extraEnv: [{ name: "TZ", value: "UTC" }],
      service: { annotations: { "example.com/internal": "true" } },
    },
    controller: { extraArgs: [], podAnnotations: { "example.com/scrape": "false" } },
  },
  // The root key in an HSM through the p11-kit server sidecar: the documented example
  // values files as they are (test/chart-hsm.test.ts runs the SoftHSM2 one's processes).
  "pkcs11-softhsm": exampleValues("values-softhsm.yaml"),
  "pkcs11-luna": exampleValues("values-luna.yaml"),
};

function exampleValues(file: string): Obj {
  return parse(readFileSync(join(ROOT, "examples/hsm", file), "utf8")) as Obj;
}

/** Each documented line of values.yaml's header names the value path its case sets. */
function documentedOptionPaths(): string[] {
  const header = readFileSync(join(CHART, "values.yaml"), "utf8").split("\n# -- ")[0]!;
  const section = header.split("Documented option sets")[1] ?? "";
  return [...section.matchAll(/^#\s+([a-zA-Z]+\.[a-zA-Z.]+)/gm)].map((m) => m[1]!);
}

function hasPath(values: Obj, path: string): boolean {
  let cur: unknown = values;
  for (const part of path.split(".")) {
    if (!cur || typeof cur !== "object" || !(part in (cur as Obj))) return false;
    cur = (cur as Obj)[part];
  }
  return true;
}

const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8")) as object;
const validateValues = new Ajv({ strict: true, allErrors: true }).compile(schema);

function options(values: Obj, extra: Partial<RenderOptions> = {}): RenderOptions {
  return { values, ...extra };
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found)
    throw new Error(
      `${kind}/${name} not rendered; have ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ")}`,
    );
  return found;
}

/** The rendered documents, generated values masked, in a stable order. */
function documents(text: string): string[] {
  return withoutGenerated(text)
    .split(/^---\n/m)
    .sort();
}

function containersOf(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

function envOf(c: Container): Record<string, string> {
  return Object.fromEntries(
    (c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
}

function matches(
  selector: Record<string, string>,
  labels: Record<string, string> | undefined,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

const CLUSTER_SCOPED = new Set([
  "ClusterRole",
  "ClusterRoleBinding",
  "MutatingWebhookConfiguration",
  "CustomResourceDefinition",
  "Namespace",
]);

/** The promises the chart makes, checked on every render. */
function checkInvariants(objects: K8sObject[], values: Obj): void {
  const problems = objects.flatMap((o) => validateObject(o));
  expect(problems).toEqual([]);

  const names = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`);
  expect(new Set(names).size, "no two objects share kind, namespace and name").toBe(names.length);

  const secrets = new Set(objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name));
  const userSecrets = new Set(
    [
      (values["rootKey"] as Obj | undefined)?.["existingSecret"],
      ((values["keyService"] as Obj | undefined)?.["tls"] as Obj | undefined)?.["secretName"],
      (
        ((values["rootKey"] as Obj | undefined)?.["pkcs11"] as Obj | undefined)?.["pinSecret"] as
          Obj | undefined
      )?.["name"],
      "keyhaven-webhook-tls", // written by cert-manager
      // The HSM client's own Secrets (vendor configuration, certificates).
      ...(
        (((values["rootKey"] as Obj | undefined)?.["pkcs11"] as Obj | undefined)?.["volumes"] ??
          []) as { secret?: { secretName: string } }[]
      ).map((v) => v.secret?.secretName),
    ].filter((s): s is string => typeof s === "string"),
  );

  for (const o of objects) {
    const labels = o.metadata.labels ?? {};
    for (const l of [
      "app.kubernetes.io/name",
      "app.kubernetes.io/instance",
      "app.kubernetes.io/version",
      "app.kubernetes.io/managed-by",
      "helm.sh/chart",
    ])
      expect(labels[l], `${o.kind}/${o.metadata.name} label ${l}`).toBeTruthy();
    if (CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace).toBeUndefined();
    else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name} namespace`).toBe(NS);
  }

  for (const d of objects.filter((o) => o.kind === "Deployment")) {
    const spec = podSpec(d) as unknown as PodSpec;
    const id = `Deployment/${d.metadata.name}`;
    const selector = (d["spec"] as { selector: { matchLabels: Record<string, string> } }).selector
      .matchLabels;
    const podLabels = (d["spec"] as { template: { metadata: { labels: Record<string, string> } } })
      .template.metadata.labels;
    expect(matches(selector, podLabels), `${id} selector matches its pods`).toBe(true);
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(Number(spec.securityContext?.["runAsUser"])).toBeGreaterThan(0);
    expect(
      objects.some(
        (o) => o.kind === "ServiceAccount" && o.metadata.name === spec.serviceAccountName,
      ),
      `${id} ServiceAccount`,
    ).toBe(true);
    const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
    for (const c of containersOf(spec)) {
      expect(c.securityContext, `${id}/${c.name} securityContext`).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(c.resources?.["requests"], `${id}/${c.name} resource requests`).toBeTruthy();
      expect(
        (c.resources?.["limits"] as Obj | undefined)?.["memory"],
        `${id}/${c.name} memory limit`,
      ).toBeTruthy();
      for (const m of c.volumeMounts ?? [])
        expect(volumes.has(m.name), `${id}/${c.name} mounts ${m.name}`).toBe(true);
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref)
          expect(
            secrets.has(ref.name) || userSecrets.has(ref.name),
            `${id} env ${e.name} Secret ${ref.name}`,
          ).toBe(true);
      }
    }
    for (const c of spec.containers) {
      const ports = new Set((c.ports ?? []).map((p) => p.name));
      expect(
        ports.has(c.readinessProbe!.httpGet.port),
        `${id}/${c.name} readiness probe port`,
      ).toBe(true);
      expect(ports.has(c.livenessProbe!.httpGet.port), `${id}/${c.name} liveness probe port`).toBe(
        true,
      );
    }
    for (const v of spec.volumes ?? []) {
      if (v.secret)
        expect(
          secrets.has(v.secret.secretName) || userSecrets.has(v.secret.secretName),
          `${id} volume Secret ${v.secret.secretName}`,
        ).toBe(true);
      if (v.persistentVolumeClaim) {
        const claim = v.persistentVolumeClaim.claimName;
        const existing = (values["persistence"] as Obj | undefined)?.["existingClaim"];
        expect(
          claim === existing ||
            objects.some((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === claim),
        ).toBe(true);
      }
    }
  }

  // Services, PodDisruptionBudgets and NetworkPolicies select pods the chart runs.
  const pods = objects
    .filter((o) => o.kind === "Deployment")
    .map((d) => ({
      labels: (d["spec"] as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels,
      ports: new Set(
        containersOf(podSpec(d) as unknown as PodSpec).flatMap((c) =>
          (c.ports ?? []).map((p) => p.name),
        ),
      ),
    }));
  for (const s of objects.filter((o) => o.kind === "Service")) {
    const spec = s["spec"] as { selector: Record<string, string>; ports: { targetPort: string }[] };
    const target = pods.find((p) => matches(spec.selector, p.labels));
    expect(target, `Service/${s.metadata.name} selects pods`).toBeTruthy();
    for (const port of spec.ports)
      expect(
        target!.ports.has(port.targetPort),
        `Service/${s.metadata.name} port ${port.targetPort}`,
      ).toBe(true);
  }
  // A PodDisruptionBudget never blocks node drains outright.
  for (const pdb of objects.filter((o) => o.kind === "PodDisruptionBudget")) {
    const spec = pdb["spec"] as {
      minAvailable?: number;
      maxUnavailable?: number;
      selector: { matchLabels: Record<string, string> };
    };
    const owner = objects.find(
      (o) =>
        o.kind === "Deployment" &&
        matches(
          spec.selector.matchLabels,
          (o["spec"] as { template: { metadata: { labels: Record<string, string> } } }).template
            .metadata.labels,
        ),
    )!;
    const replicas = (owner["spec"] as { replicas: number }).replicas;
    if (spec.minAvailable !== undefined)
      expect(spec.minAvailable, `PodDisruptionBudget/${pdb.metadata.name}`).toBeLessThan(replicas);
    if (spec.maxUnavailable !== undefined) expect(spec.maxUnavailable).toBeGreaterThan(0);
  }
  for (const p of objects.filter(
    (o) => o.kind === "PodDisruptionBudget" || o.kind === "NetworkPolicy",
  )) {
    const spec = p["spec"] as {
      selector?: { matchLabels: Record<string, string> };
      podSelector?: { matchLabels: Record<string, string> };
    };
    const selector = (spec.selector ?? spec.podSelector)!.matchLabels;
    expect(
      pods.some((pod) => matches(selector, pod.labels)),
      `${p.kind}/${p.metadata.name} selects pods`,
    ).toBe(true);
  }

  // RBAC: no wildcards; Secrets only through a namespaced Role.
  for (const r of objects.filter((o) => o.kind === "Role" || o.kind === "ClusterRole")) {
    for (const rule of r["rules"] as {
      resources: string[];
      verbs: string[];
      apiGroups: string[];
    }[]) {
      expect([...rule.resources, ...rule.verbs, ...rule.apiGroups]).not.toContain("*");
      if (r.kind === "ClusterRole") expect(rule.resources).not.toContain("secrets");
    }
  }

  for (const w of objects.filter((o) => o.kind === "MutatingWebhookConfiguration")) {
    for (const hook of w["webhooks"] as Obj[]) {
      expect(hook["sideEffects"]).toBe("None");
      expect(hook["timeoutSeconds"] as number).toBeLessThanOrEqual(10);
      expect(hook["reinvocationPolicy"]).toBe("IfNeeded");
      const exprs = (
        hook["namespaceSelector"] as {
          matchExpressions: { key: string; operator: string; values: string[] }[];
        }
      ).matchExpressions;
      expect(exprs).toContainEqual({
        key: "keyhaven.dev/injection",
        operator: "In",
        values: ["enabled"],
      });
      const notIn = exprs.find(
        (e) => e.key === "kubernetes.io/metadata.name" && e.operator === "NotIn",
      );
      expect(notIn?.values).toEqual(expect.arrayContaining([NS, "kube-system"]));
      const service = (
        hook["clientConfig"] as { service: { name: string; namespace: string; port: number } }
      ).service;
      const svc = find(objects, "Service", service.name);
      expect((svc["spec"] as { ports: { port: number }[] }).ports.map((p) => p.port)).toContain(
        service.port,
      );
    }
  }
}

describe("chart rendering", () => {
  /** Every case rendered once, by both Helms at a time (the tests below read these). */
  const rendered = new Map<string, Record<HelmMajor, string>>();
  const objectsOf = (name: string) => parseManifests(rendered.get(name)!.helm3);
  beforeAll(async () => {
    for (const [name, values] of Object.entries(CASES))
      rendered.set(name, await renderBoth(options(values)));
  }, 300_000);

  it("documents only option sets that have a test case", () => {
    const paths = documentedOptionPaths();
    expect(paths.length).toBeGreaterThanOrEqual(8);
    for (const path of paths)
      expect(
        Object.values(CASES).some((values) => hasPath(values, path)),
        `a case sets ${path}`,
      ).toBe(true);
  });

  describe.each(Object.entries(CASES))("%s", (name, values) => {
    it("passes helm lint --strict with Helm 3 and 4, renders the same valid objects with both that keep the chart's promises, and matches the snapshot", async () => {
      const opts = options(values);
      expect(validateValues(mergedValues(opts)), JSON.stringify(validateValues.errors)).toBe(true);
      const lints = await Promise.all(
        (["helm3", "helm4"] as const).map((major) => runTool(helmPath(major), lintArgs(opts))),
      );
      for (const lint of lints) expect(lint.code, lint.stdout + lint.stderr).toBe(0);
      const text = rendered.get(name)!;
      // The same documents; only the order of kinds Helm 3 does not know differs.
      expect(documents(text.helm4)).toEqual(documents(text.helm3));
      checkInvariants(parseManifests(text.helm3), values);
      checkInvariants(parseManifests(text.helm4), values);
      expect(renderNotes(opts)).not.toMatch(/<no value>|%!/);
      await expect(withoutGenerated(text.helm3)).toMatchFileSnapshot(
        `chart/__snapshots__/${name}.yaml`,
      );
    });
  });

  it("the key service's command line is one the real `keyhaven serve` accepts, in every case", () => {
    let checked = 0;
    for (const [name, values] of Object.entries(CASES)) {
      const d = find(objectsOf(name), "Deployment", "keyhaven");
      const c = (podSpec(d) as unknown as PodSpec).containers.find(
        (x) => x.name === "key-service",
      )!;
      const config = loadConfig(c.args!, envOf(c));
      expect(config.command, name).toBe("serve");
      if (config.command !== "serve") continue;
      checked++;
      expect(config.listen.port).toBe(8080);
      expect(config.dataDir).toBe("/var/lib/keyhaven/store");
      expect(config.credentialsFile).toBe("/etc/keyhaven/credentials/credentials.yaml");
      expect(config.region).toBe((values["region"] as string | undefined) ?? "us-east-1");
      expect(config.account).toBe((values["account"] as string | undefined) ?? "000000000000");
      expect(config.tls !== undefined).toBe(name === "key-service-tls");
      expect(config.auditLog !== undefined).toBe(name === "existing-claim-and-audit-file");
      expect(config.store).toEqual(
        name === "kubernetes-store" ? { type: "kubernetes", namespace: NS } : { type: "sqlite" },
      );
      if (name === "web-identity")
        expect(config.webIdentity).toEqual({
          jwksFile: "/etc/keyhaven/web-identity/jwks.json",
          issuer: "https://kubernetes.default.svc.cluster.local",
          audience: "keyhaven",
          maxSessionSeconds: 7200,
          serviceAccountLabels: "cluster",
        });
      else expect(config.webIdentity, name).toBeUndefined();
      const pkcs11 = (values["rootKey"] as Obj | undefined)?.["pkcs11"] as Obj | undefined;
      expect(config.rootKey, name).toEqual(
        name.startsWith("pkcs11")
          ? {
              type: "pkcs11",
              modulePath: "/usr/lib/keyhaven/pkcs11/p11-kit-client.so",
              tokenLabel: pkcs11!["tokenLabel"],
              keyLabel: "keyhaven-root",
            }
          : { type: "local" },
      );
      // Multi-Region flags only when set.
      expect([config.regions, [...config.peers], config.peerCredential], name).toEqual(
        name === "multi-region"
          ? [
              ["us-east-1", "us-west-2"],
              [
                ["eu-west-1", "https://kms.b.example:8443"],
                ["ap-southeast-2", "https://kms.c.example:8443"],
              ],
              "AKIAKEYHAVENPEERING",
            ]
          : [[config.region], [], undefined],
      );
    }
    expect(checked).toBe(Object.keys(CASES).length);
  });

  describe.each(["pkcs11-softhsm", "pkcs11-luna"])("rootKey.type=pkcs11 (%s)", (name) => {
    const SOCKET = "/var/run/keyhaven-hsm/p11-kit.sock";
    const pod = () =>
      podSpec(find(objectsOf(name), "Deployment", "keyhaven")) as unknown as Required<
        Pick<PodSpec, "initContainers" | "volumes">
      > &
        PodSpec;
    const values = () => CASES[name]!["rootKey"] as { pkcs11: Obj & { sidecar: Obj } };

    it("runs the key service and a p11-kit server sidecar over the vendor's module, sharing the socket's emptyDir", () => {
      const spec = pod();
      expect(spec.containers.map((c) => c.name)).toEqual(["key-service"]);
      const sidecar = spec.initContainers.find((c) => c.name === "hsm")!;
      // A native sidecar: started first, restarted when it dies, stopped last; after any
      // init containers the values add (SoftHSM2's token initialisation).
      expect(sidecar.restartPolicy).toBe("Always");
      expect(spec.initContainers.at(-1)!.name).toBe("hsm");
      expect(spec.initContainers.some((c) => c.name === "root-key")).toBe(false);
      expect(sidecar.image).toBe(
        `${(values().pkcs11.sidecar["image"] as Obj)["repository"] as string}:${(values().pkcs11.sidecar["image"] as Obj)["tag"] as string}`,
      );
      expect(sidecar.command).toEqual([
        "/usr/bin/p11-kit",
        "server",
        "--foreground",
        `--name=${SOCKET}`,
        `--provider=${values().pkcs11.sidecar["modulePath"] as string}`,
        `pkcs11:token=${values().pkcs11["tokenLabel"] as string}`,
      ]);
      expect(spec.volumes.find((v) => v.name === "hsm-socket")!.emptyDir).toEqual({
        medium: "Memory",
        sizeLimit: "1Mi",
      });
      const keyService = spec.containers[0]!;
      for (const c of [sidecar, keyService])
        expect(c.volumeMounts, c.name).toContainEqual({
          name: "hsm-socket",
          mountPath: "/var/run/keyhaven-hsm",
        });
      expect(keyService.args).toEqual(
        expect.arrayContaining([
          "--root-key=pkcs11",
          "--pkcs11-module=/usr/lib/keyhaven/pkcs11/p11-kit-client.so",
          `--pkcs11-token-label=${values().pkcs11["tokenLabel"] as string}`,
        ]),
      );
      expect(envOf(keyService)["P11_KIT_SERVER_ADDRESS"]).toBe(`unix:path=${SOCKET}`);
      // The vendor's own mounts reach the sidecar, never the key service.
      for (const m of (values().pkcs11.sidecar["volumeMounts"] ?? []) as { name: string }[]) {
        expect(sidecar.volumeMounts!.map((v) => v.name)).toContain(m.name);
        expect(keyService.volumeMounts!.map((v) => v.name)).not.toContain(m.name);
      }
      // No local root key Secret with an HSM.
      expect(objectsOf(name).some((o) => o.metadata.name === "keyhaven-root-key")).toBe(false);
    });

    it("gives the key service the PIN from the Secret, in its environment only: never in any argument, never to the sidecar", () => {
      const spec = pod();
      const keyService = spec.containers[0]!;
      const pin = keyService.env!.find((e) => e.name === "KEYHAVEN_PKCS11_PIN")!;
      expect(pin.value).toBeUndefined();
      expect(pin.valueFrom).toEqual({
        secretKeyRef: values().pkcs11["pinSecret"],
      });
      for (const c of containersOf(spec)) {
        const words = [...(c.args ?? []), ...(c.command ?? [])];
        expect(
          words.filter((w) => /pkcs11-pin|--pin=|--so-pin=/.test(w)),
          c.name,
        ).toEqual([]);
        for (const e of c.env ?? [])
          if (/PIN/.test(e.name))
            expect(e.valueFrom?.secretKeyRef, `${c.name} ${e.name}`).toBeTruthy();
      }
      const sidecar = spec.initContainers.find((c) => c.name === "hsm")!;
      expect((sidecar.env ?? []).some((e) => e.valueFrom?.secretKeyRef)).toBe(false);
    });

    it("holds the key service back until the socket is there, and the pod is Ready only while the socket and the token answer", () => {
      const spec = pod();
      const sidecar = spec.initContainers.find((c) => c.name === "hsm")!;
      const socketCheck = ["/usr/bin/test", "-S", SOCKET];
      expect(sidecar.startupProbe!.exec.command).toEqual(socketCheck);
      expect(sidecar.readinessProbe!.exec!.command).toEqual(socketCheck);
      // /readyz fails with the reason while the root key's token does not answer (docs/hsm.md).
      expect(spec.containers[0]!.readinessProbe!.httpGet.path).toBe("/readyz");
    });
  });

  it("mounts the issuer's JWKS for STS and refuses a document that is not a JWKS", () => {
    const objects = render(options(CASES["web-identity"]!));
    const cm = find(objects, "ConfigMap", "keyhaven-web-identity");
    expect(JSON.parse((cm["data"] as Record<string, string>)["jwks.json"]!)).toEqual(
      JSON.parse(JWKS),
    );
    expect(() =>
      render({
        values: { keyService: { webIdentity: { issuer: "https://k", jwks: '{"nope": 1}' } } },
      }),
    ).toThrow(/must be a JWKS document/);
  });

  it("lets the key service read ServiceAccounts (get only) only when sessions carry their labels", () => {
    const objects = render(options(CASES["web-identity"]!));
    expect(find(objects, "ClusterRole", "keyhaven-service-account-labels")["rules"]).toEqual([
      { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get"] },
    ]);
    expect(
      (podSpec(find(objects, "Deployment", "keyhaven")) as unknown as PodSpec)
        .automountServiceAccountToken,
    ).toBe(true);
    const without = render(options({}));
    expect(without.some((o) => o.metadata.name === "keyhaven-service-account-labels")).toBe(false);
  });

  it("the controller's command line is one the real `keyhaven controller` accepts, in every case", () => {
    let checked = 0;
    for (const [name, values] of Object.entries(CASES)) {
      const d = objectsOf(name).find(
        (o) => o.kind === "Deployment" && o.metadata.name === "keyhaven-controller",
      );
      if (!d) continue;
      const c = (podSpec(d) as unknown as PodSpec).containers[0]!;
      const config = loadConfig(c.args!, envOf(c));
      expect(config.command, name).toBe("controller");
      if (config.command !== "controller") continue;
      checked++;
      const tls = name === "key-service-tls";
      expect(config.namespace).toBe(NS);
      expect(config.kmsEndpoint).toBe(`${tls ? "https" : "http"}://keyhaven.keyhaven.svc:8080`);
      expect(config.metricsListen.port).toBe(9090);
      expect(config.leaderElection).toBe(true);
      const webhook = (values["webhook"] as Obj | undefined) ?? {};
      if (webhook["enabled"] === false) {
        expect(config.webhook, name).toBeUndefined();
        continue;
      }
      expect(config.webhook, name).toBeDefined();
      expect(config.webhook!.configName).toBe("keyhaven");
      expect(config.webhook!.serviceName).toBe("keyhaven-webhook");
      expect(config.webhook!.secretName).toBe("keyhaven-webhook-tls");
      expect(config.webhook!.listen.port).toBe(9443);
      expect(config.webhook!.certDir !== undefined, name).toBe(name.startsWith("cert-manager"));
      const image = find(objectsOf(name), "Deployment", "keyhaven");
      expect(config.webhook!.settings.agentImage).toBe(
        (podSpec(image) as unknown as PodSpec).containers[0]!.image,
      );
      expect(config.webhook!.settings.roleArn).toBe(
        `arn:aws:iam::${(values["account"] as string | undefined) ?? "000000000000"}:role/{namespace}/{serviceAccount}`,
      );
    }
    expect(checked).toBeGreaterThanOrEqual(Object.keys(CASES).length - 1);
  });

  it("generates the credentials file in the format the key service loads, with the controller's key in it", () => {
    const objects = render({ values: {} });
    const secret = find(objects, "Secret", "keyhaven-credentials");
    const data = secret["data"] as Record<string, string>;
    const file = join(mkdtempSync(join(tmpdir(), "keyhaven-chart-")), "credentials.yaml");
    writeFileSync(file, Buffer.from(data["credentials.yaml"]!, "base64"));
    const credentials = loadCredentialsFile(file);
    const controllerId = Buffer.from(data["controller-access-key-id"]!, "base64").toString();
    expect(credentials.get(controllerId)?.principal).toBe(
      "arn:aws:iam::000000000000:user/keyhaven-controller",
    );
    expect(credentials.get(controllerId)?.secretAccessKey).toBe(
      Buffer.from(data["controller-secret-access-key"]!, "base64").toString(),
    );
    const adminId = Buffer.from(data["admin-access-key-id"]!, "base64").toString();
    expect(credentials.get(adminId)?.principal).toBe("arn:aws:iam::000000000000:user/admin");
    // A credential without policies is allowed nothing: both spell out the administrator's.
    expect(principalsWithoutPolicies(credentials)).toEqual([]);
  });

  // That an upgrade reads both back (lookup) is proven on the real API server:
  // test/cluster-chart.test.ts.
  it("generates a fresh 32-byte root key on each install, kept on uninstall", () => {
    const first = find(render({ values: {} }), "Secret", "keyhaven-root-key");
    const second = find(render({ values: {} }), "Secret", "keyhaven-root-key");
    const key = (s: K8sObject) => (s["data"] as Record<string, string>)["root.key"]!;
    expect(Buffer.from(key(first), "base64")).toHaveLength(32);
    expect(key(first)).not.toBe(key(second));
    expect(first.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
  });

  it("uses an existing root key Secret instead of making one", () => {
    const objects = render(options(CASES["root-key-existing-secret"]!));
    expect(objects.some((o) => o.kind === "Secret" && o.metadata.name.includes("root-key"))).toBe(
      false,
    );
    const spec = podSpec(find(objects, "Deployment", "keyhaven")) as unknown as PodSpec;
    const volume = spec.volumes!.find((v) => v.name === "root-key")!;
    expect(volume.secret).toMatchObject({
      secretName: "my-root-key",
      items: [{ key: "key", path: "root.key" }],
    });
  });

  it("keeps the store on a ReadWriteOnce volume with one writer", () => {
    const sqlite = render(options({}));
    const ks = find(sqlite, "Deployment", "keyhaven")["spec"] as Obj;
    expect(ks["replicas"]).toBe(1);
    expect(ks["strategy"]).toEqual({ type: "Recreate" });
    expect(
      find(sqlite, "PersistentVolumeClaim", "keyhaven-data").metadata.annotations?.[
        "helm.sh/resource-policy"
      ],
    ).toBe("keep");
    expect(sqlite.some((o) => o.kind === "Role" && o.metadata.name === "keyhaven")).toBe(false);
    expect(
      (podSpec(find(sqlite, "Deployment", "keyhaven")) as unknown as PodSpec)
        .automountServiceAccountToken,
    ).toBe(false);
  });

  it("runs three key service replicas on the kubernetes store: rolling, spread, a PodDisruptionBudget, a Role for Secrets and the timer Lease only", () => {
    const objects = render(options(CASES["kubernetes-store"]!));
    const d = find(objects, "Deployment", "keyhaven");
    const spec = d["spec"] as Obj;
    expect(spec["replicas"]).toBe(3);
    expect(spec["strategy"]).toMatchObject({ type: "RollingUpdate" });
    const pod = podSpec(d) as unknown as PodSpec & { topologySpreadConstraints?: Obj[] };
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.topologySpreadConstraints?.[0]).toMatchObject({
      topologyKey: "kubernetes.io/hostname",
    });
    expect(
      (find(objects, "PodDisruptionBudget", "keyhaven")["spec"] as Obj)["maxUnavailable"],
    ).toBe(1);
    expect(objects.some((o) => o.kind === "PersistentVolumeClaim")).toBe(false);
    expect(find(objects, "Role", "keyhaven")["rules"]).toEqual([
      {
        apiGroups: [""],
        resources: ["secrets"],
        verbs: ["get", "list", "watch", "create", "update", "delete"],
      },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        resourceNames: ["keyhaven-store-timers"],
        verbs: ["get", "update"],
      },
    ]);
    expect(find(objects, "RoleBinding", "keyhaven").metadata.namespace).toBe(NS);
    expect(objects.some((o) => o.kind === "ClusterRole" && o.metadata.name === "keyhaven")).toBe(
      false,
    );
    // One replica on the kubernetes store is allowed (a small cluster); sqlite stays at one.
    const one = render(options({ store: { type: "kubernetes" }, keyService: { replicas: 1 } }));
    expect((find(one, "Deployment", "keyhaven")["spec"] as Obj)["replicas"]).toBe(1);
  });

  it("gives the controller Secrets only in controller.kmsSecretNamespaces, by a Role in each", () => {
    expect(
      render(options({})).filter((o) => o.metadata.name === "keyhaven-controller-kmssecrets"),
    ).toEqual([]);
    const objects = render(options({ controller: { kmsSecretNamespaces: ["team-a", "team-b"] } }));
    const roles = objects.filter(
      (o) => o.kind === "Role" && o.metadata.name === "keyhaven-controller-kmssecrets",
    );
    expect(roles.map((r) => r.metadata.namespace)).toEqual(["team-a", "team-b"]);
    expect(roles[0]!["rules"]).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["get", "create", "update", "delete"] },
    ]);
    const bindings = objects.filter(
      (o) => o.kind === "RoleBinding" && o.metadata.name === "keyhaven-controller-kmssecrets",
    );
    expect(bindings.map((b) => b.metadata.namespace)).toEqual(["team-a", "team-b"]);
  });

  it("gives the controller exactly the permissions it needs", () => {
    const objects = render(options({}));
    expect(find(objects, "ClusterRole", "keyhaven-controller")["rules"]).toEqual([
      {
        apiGroups: ["keyhaven.dev"],
        resources: ["kmskeys", "kmsaliases", "kmsgrants", "kmssecrets"],
        verbs: ["get", "list", "watch", "patch"],
      },
      {
        apiGroups: ["keyhaven.dev"],
        resources: ["kmskeys/status", "kmsaliases/status", "kmsgrants/status", "kmssecrets/status"],
        verbs: ["patch"],
      },
      { apiGroups: [""], resources: ["events"], verbs: ["create"] },
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get"] },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["mutatingwebhookconfigurations"],
        resourceNames: ["keyhaven"],
        verbs: ["get", "patch"],
      },
    ]);
    expect(find(objects, "Role", "keyhaven-controller")["rules"]).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      {
        apiGroups: ["coordination.k8s.io"],
        resources: ["leases"],
        resourceNames: ["keyhaven-controller"],
        verbs: ["get", "update"],
      },
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["keyhaven-webhook-tls"],
        verbs: ["get", "update"],
      },
    ]);
    // With cert-manager the controller neither writes Secrets nor patches the webhook.
    const cm = render(options(CASES["cert-manager"]!));
    expect(JSON.stringify(find(cm, "Role", "keyhaven-controller")["rules"])).not.toContain(
      "secrets",
    );
    expect(JSON.stringify(find(cm, "ClusterRole", "keyhaven-controller")["rules"])).not.toContain(
      "mutatingwebhookconfigurations",
    );
  });

  it("runs two leader-elected controller replicas behind a PodDisruptionBudget, with the webhook scoped to opted-in pods", () => {
    const objects = render(options({}));
    expect((find(objects, "Deployment", "keyhaven-controller")["spec"] as Obj)["replicas"]).toBe(2);
    expect(
      (find(objects, "PodDisruptionBudget", "keyhaven-controller")["spec"] as Obj)["minAvailable"],
    ).toBe(1);
    const hook = (
      find(objects, "MutatingWebhookConfiguration", "keyhaven")["webhooks"] as Obj[]
    )[0]!;
    expect(hook["failurePolicy"]).toBe("Fail");
    expect(hook["matchConditions"]).toHaveLength(1);
    // Helm refuses clusters older than Chart.yaml's kubeVersion (1.29: CEL rules, native sidecars).
    expect(() => render(options({}, { kubeVersion: "v1.28.9" }))).toThrow(
      /requires kubeVersion: >=1.29.0-0/,
    );
    expect(() => render(options({}, { kubeVersion: "v1.29.0" }))).not.toThrow();
  });

  it("lets only the controller and opted-in namespaces reach the key service", () => {
    const policy = find(render(options({})), "NetworkPolicy", "keyhaven");
    const ingress = (policy["spec"] as { ingress: { from: Obj[]; ports: Obj[] }[] }).ingress;
    expect(ingress).toHaveLength(1);
    expect(ingress[0]!.ports).toEqual([{ port: "kms", protocol: "TCP" }]);
    expect(ingress[0]!.from).toEqual([
      {
        podSelector: {
          matchLabels: {
            "app.kubernetes.io/name": "keyhaven",
            "app.kubernetes.io/instance": "keyhaven",
            "app.kubernetes.io/component": "controller",
          },
        },
      },
      { namespaceSelector: { matchLabels: { "keyhaven.dev/injection": "enabled" } } },
    ]);
  });

  it("names objects after the release, as charts users trust do", () => {
    const objects = render({ values: {}, name: "kms", namespace: NS });
    expect(objects.map((o) => o.metadata.name)).toContain("kms-keyhaven");
    expect(render({ values: { fullnameOverride: "vault" } }).map((o) => o.metadata.name)).toContain(
      "vault-controller",
    );
  });

  it.each([
    [{ keyService: { replicas: 2 } }, /keyService.replicas/, /needs store.type=kubernetes/],
    [
      { store: { type: "kubernetes" }, multiRegion: { extraRegions: ["eu-west-1"] } },
      /multiRegion.extraRegions/,
      /multiRegion.extraRegions needs store.type=sqlite/,
    ],
    [{ controller: { enabled: false } }, /controller.enabled/, /webhook.enabled needs controller/],
    [
      { keyService: { tls: { enabled: true } } },
      /tls.secretName/,
      /tls.enabled needs keyService.tls.secretName/,
    ],
  ] as [Obj, RegExp, RegExp][])(
    "refuses %j with Helm 3 and 4: by the schema, and by the templates when the schema is skipped",
    async (values, schemaMessage, templateMessage) => {
      for (const major of ["helm3", "helm4"] as const) {
        const checked = await runTool(helmPath(major), templateArgs(options(values)));
        expect(checked.code, major).not.toBe(0);
        expect(checked.stderr, major).toMatch(/values don't meet the specifications of the schema/);
        expect(checked.stderr.replaceAll("/", "."), major).toMatch(schemaMessage);
        const skipped = await runTool(
          helmPath(major),
          templateArgs(options(values, { skipSchemaValidation: true })),
        );
        expect(skipped.code, major).not.toBe(0);
        expect(skipped.stderr, major).toMatch(templateMessage);
      }
    },
  );
});

describe("values.schema.json", () => {
  it("is a valid draft-07 schema that accepts values.yaml as it is", () => {
    expect((schema as Obj)["$schema"]).toBe("http://json-schema.org/draft-07/schema#");
    expect((schema as Obj)["additionalProperties"]).toBe(false);
    expect(validateValues(parse(readFileSync(join(CHART, "values.yaml"), "utf8")))).toBe(true);
  });

  const WRONG: [string, Obj, RegExp][] = [
    ["an unknown top-level key", { replicaCount: 3 }, /must NOT have additional properties/],
    ["a misspelt nested key", { keyService: { replica: 2 } }, /keyService.*additional/],
    ["a number as a string", { keyService: { replicas: "2" } }, /replicas.*must be integer/],
    [
      "several replicas on sqlite",
      { keyService: { replicas: 3 } },
      /replicas.*must be equal to one of the allowed values/,
    ],
    ["an unknown store", { store: { type: "postgres" } }, /store\/type.*allowed values/],
    ["a webhook timeout over 10 s", { webhook: { timeoutSeconds: 30 } }, /timeoutSeconds.*<= 10/],
    [
      "a failure policy in the wrong case",
      { webhook: { failurePolicy: "fail" } },
      /failurePolicy.*allowed values/,
    ],
    ["a short account id", { account: "1234" }, /account.*pattern/],
    ["a malformed region", { region: "Europe" }, /region.*pattern/],
    ["a malformed digest", { image: { digest: "latest" } }, /digest.*pattern/],
    [
      "a writable root file system",
      { containerSecurityContext: { readOnlyRootFilesystem: false } },
      /readOnlyRootFilesystem.*constant/,
    ],
    ["running as root", { podSecurityContext: { runAsNonRoot: false } }, /runAsNonRoot.*constant/],
    [
      "pkcs11 without a PIN Secret",
      { rootKey: { type: "pkcs11" } },
      /pinSecret\/name.*fewer than 1/,
    ],
    [
      "pkcs11 without the sidecar's module",
      { rootKey: { type: "pkcs11" } },
      /sidecar\/modulePath.*fewer than 1/,
    ],
    [
      "a token label that would break the sidecar's PKCS#11 URI",
      { rootKey: { type: "pkcs11", pkcs11: { tokenLabel: "my token;x" } } },
      /tokenLabel.*pattern/,
    ],
    [
      "TLS without a Secret",
      { keyService: { tls: { enabled: true } } },
      /tls\/secretName.*fewer than 1/,
    ],
    [
      "the webhook without the controller",
      { controller: { enabled: false } },
      /controller\/enabled.*constant/,
    ],
    [
      "a bad memory quantity",
      { keyService: { resources: { limits: { memory: "lots" } } } },
      /memory/,
    ],
    [
      "a token lifetime under Kubernetes' minimum",
      { webhook: { tokenExpirationSeconds: 60 } },
      /tokenExpirationSeconds.*>= 600/,
    ],
    ["an unknown log level", { logLevel: "verbose" }, /logLevel.*allowed values/],
  ];
  it.each(WRONG)("rejects %s, and so do Helm 3 and Helm 4", async (_what, values, message) => {
    expect(validateValues(mergedValues({ values }))).toBe(false);
    const text = (validateValues.errors ?? [])
      .map((e) => `${e.instancePath} ${e.message ?? ""} ${JSON.stringify(e.params)}`)
      .join("\n");
    expect(text).toMatch(message);
    for (const major of ["helm3", "helm4"] as const) {
      const result = await runTool(helmPath(major), templateArgs({ values }));
      expect(result.code, major).not.toBe(0);
      expect(result.stderr, major).toMatch(/values don't meet the specifications of the schema/);
    }
  });
});
