/**
 * charts/keyhaven on the real API server (test/support/kubeUp.ts), with one Helm major
 * per test file so the two run in parallel: `helm install` (objects created and
 * validated by the API server and its admission, CRDs Established), the chart's RBAC
 * exercised with TokenRequest tokens of its own ServiceAccounts (the real `keyhaven
 * controller` reconciles a KmsKey to Ready with its token; what the processes must not
 * do is refused), `helm upgrade` with changed values, and `helm uninstall` keeping what
 * docs/install.md says it keeps.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { kmsKey } from "../kube/fixtures.js";
import {
  createNamespace,
  serviceAccountToken,
  startControlPlane,
  type ControlPlane,
} from "../support/kubeUp.js";
import { MAIN_JS, startInProcess, tempDir, type InProcessServer } from "../support/server.js";
import { kubectl, runTool, type ToolResult } from "../support/tools.js";
import { CHART, parseManifests, type K8sObject } from "./support.js";

const CRDS = ["kmskeys", "kmsaliases", "kmsgrants"].map((p) => `${p}.keyhaven.dev`);

function ok(result: ToolResult, what: string): string {
  expect(result.code, `${what}\n${result.stdout}\n${result.stderr}`).toBe(0);
  return result.stdout;
}

export function chartOnRealCluster(helmName: string, helm: () => string, release: string): void {
  const ns = `${release}-system`;
  const fullname = `${release}-keyhaven`;
  const controllerSa = `${fullname}-controller`;
  let plane: ControlPlane;
  let values: string;

  const run = (args: string[]) => runTool(helm(), args, { kubeconfig: plane.kubeconfig });
  const get = async (path: string) => plane.request("GET", path);
  const data = async (secret: string) =>
    (
      (await get(`/api/v1/namespaces/${ns}/secrets/${secret}`)).body as {
        data: Record<string, string>;
      }
    ).data;

  describe(`the chart with ${helmName} on the real API server`, () => {
    beforeAll(async () => {
      plane = await startControlPlane();
      // As docs/install.md says: the issuer's JWKS by kubectl.
      const jwks = ok(
        await runTool(kubectl(), ["get", "--raw", "/openid/v1/jwks"], {
          kubeconfig: plane.kubeconfig,
        }),
        "kubectl get --raw /openid/v1/jwks",
      );
      values = join(tempDir("keyhaven-chart-values-"), "values.yaml");
      writeFileSync(
        values,
        stringify({
          keyService: {
            webIdentity: {
              issuer: plane.issuer,
              jwks,
              serviceAccountLabels: "cluster",
            },
          },
        }),
      );
    }, 180_000); // kube-up takes ~6 s on an idle machine, minutes on a saturated one
    afterAll(async () => {
      await plane?.stop();
    });

    it("installs: the API server stores every object, the CRDs are Established, NOTES render", async () => {
      const out = ok(
        await run([
          "install",
          release,
          CHART,
          "--namespace",
          ns,
          "--create-namespace",
          "-f",
          values,
        ]),
        "helm install",
      );
      expect(out).toMatch(/STATUS: deployed/);
      expect(out).toMatch(/NOTES:/);
      expect(out).not.toMatch(/<no value>|%!/);

      ok(
        await runTool(
          kubectl(),
          ["wait", "--for=condition=Established", "--timeout=30s", ...CRDS.map((c) => `crd/${c}`)],
          { kubeconfig: plane.kubeconfig },
        ),
        "kubectl wait Established",
      );

      const manifest = ok(
        await run(["get", "manifest", release, "--namespace", ns]),
        "get manifest",
      );
      const objects = parseManifests(manifest);
      expect(objects.length).toBeGreaterThan(15);
      const file = join(tempDir("keyhaven-chart-manifest-"), "manifest.yaml");
      writeFileSync(file, manifest);
      const stored = JSON.parse(
        ok(
          await runTool(kubectl(), ["get", "-f", file, "-o", "json"], {
            kubeconfig: plane.kubeconfig,
          }),
          "kubectl get -f",
        ),
      ) as { items: K8sObject[] };
      const id = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      expect(stored.items.map(id).sort()).toEqual(objects.map(id).sort());
      // Stored by the API server: defaults filled in by it, not by the chart.
      const deployment = stored.items.find(
        (o) => o.kind === "Deployment" && o.metadata.name === fullname,
      )!;
      expect(
        (deployment["spec"] as { template: { spec: { dnsPolicy?: string } } }).template.spec
          .dnsPolicy,
      ).toBe("ClusterFirst");
    });

    it("the controller's ServiceAccount runs the real controller to a Ready KmsKey, and may do exactly what the controller needs", async () => {
      const token = await serviceAccountToken(plane, ns, controllerSa);
      const as = (method: string, path: string, body?: unknown, type?: string) =>
        plane.requestAs(token, method, path, body, type).then((r) => r.status);
      const apps = await createNamespace(plane, `${release}-apps`);

      let service: InProcessServer | undefined;
      const child = await (async () => {
        service = await startInProcess();
        return spawn(
          process.execPath,
          [
            MAIN_JS,
            "controller",
            "--kubeconfig",
            plane.kubeconfigFor(token),
            "--namespace",
            ns,
            "--metrics-listen",
            "127.0.0.1:0",
            "--disable-webhook",
            // The Lease is proven below by request; running leader election against the
            // real API server is the operator suite's (test/cluster-operator*.test.ts).
            "--leader-elect",
            "false",
          ],
          {
            env: {
              PATH: process.env["PATH"],
              AWS_ENDPOINT_URL_KMS: service.url,
              AWS_REGION: service.region,
              AWS_ACCESS_KEY_ID: service.credentials.accessKeyId,
              AWS_SECRET_ACCESS_KEY: service.credentials.secretAccessKey,
            },
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
      })();
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      try {
        expect(
          (
            await plane.request(
              "POST",
              `/apis/keyhaven.dev/v1alpha1/namespaces/${apps}/kmskeys`,
              kmsKey("payments"),
            )
          ).status,
        ).toBe(201);
        const waited = await runTool(
          kubectl(),
          ["wait", "--for=condition=Ready", "--timeout=30s", "-n", apps, "kmskey/payments"],
          { kubeconfig: plane.kubeconfig },
        );
        expect(waited.code, `${waited.stderr}\ncontroller output:\n${output}`).toBe(0);
        const key = (await get(`/apis/keyhaven.dev/v1alpha1/namespaces/${apps}/kmskeys/payments`))
          .body as {
          metadata: { finalizers?: string[] };
          status: { keyId?: string; arn?: string };
        };
        expect(key.status.keyId).toMatch(/^[0-9a-f-]{36}$/);
        expect(key.metadata.finalizers?.length).toBeGreaterThan(0);
        // A spec change reaches the key service: the controller watches with its token.
        expect(
          (
            await plane.request(
              "PATCH",
              `/apis/keyhaven.dev/v1alpha1/namespaces/${apps}/kmskeys/payments`,
              { spec: { enabled: false } },
              "application/merge-patch+json",
            )
          ).status,
        ).toBe(200);
        const disabled = await runTool(
          kubectl(),
          [
            "wait",
            "--for=jsonpath={.status.keyState}=Disabled",
            "--timeout=30s",
            "-n",
            apps,
            "kmskey/payments",
          ],
          { kubeconfig: plane.kubeconfig },
        );
        expect(disabled.code, `${disabled.stderr}\ncontroller output:\n${output}`).toBe(0);
        expect(output).not.toMatch(/forbidden/i);
      } finally {
        child.kill("SIGTERM");
        await new Promise((resolve) => child.once("exit", resolve));
        await service?.stop();
      }

      const lease = {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name: "keyhaven-controller" },
        spec: {
          holderIdentity: "a",
          leaseDurationSeconds: 15,
          renewTime: "2026-01-01T00:00:00.000000Z",
        },
      };
      const leases = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`;
      // Allowed: list and watch the custom resources everywhere, leader election in its
      // namespace, Events, its webhook Secret and configuration.
      for (const resource of ["kmskeys", "kmsaliases", "kmsgrants"]) {
        expect(await as("GET", `/apis/keyhaven.dev/v1alpha1/${resource}`)).toBe(200);
        expect(
          await as("GET", `/apis/keyhaven.dev/v1alpha1/${resource}?watch=true&timeoutSeconds=1`),
        ).toBe(200);
      }
      expect(await as("POST", leases, lease)).toBe(201);
      expect(await as("GET", `${leases}/keyhaven-controller`)).toBe(200);
      const current = (await get(`${leases}/keyhaven-controller`)).body as K8sObject;
      expect(
        await as("PUT", `${leases}/keyhaven-controller`, {
          ...current,
          spec: { ...lease.spec, holderIdentity: "b" },
        }),
      ).toBe(200);
      expect(
        await as("POST", `/api/v1/namespaces/${apps}/events`, {
          metadata: { name: "payments.1" },
          involvedObject: { kind: "KmsKey", namespace: apps, name: "payments" },
          reason: "Test",
          message: "m",
          type: "Normal",
        }),
      ).toBe(201);
      const tls = `${fullname}-webhook-tls`;
      const secret = { metadata: { name: tls }, type: "Opaque", data: { a: "YQ==" } };
      expect(await as("POST", `/api/v1/namespaces/${ns}/secrets`, secret)).toBe(201);
      expect(await as("GET", `/api/v1/namespaces/${ns}/secrets/${tls}`)).toBe(200);
      const stored = (await get(`/api/v1/namespaces/${ns}/secrets/${tls}`)).body as K8sObject;
      expect(await as("PUT", `/api/v1/namespaces/${ns}/secrets/${tls}`, stored)).toBe(200);
      const hook = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${fullname}`;
      expect(await as("GET", hook)).toBe(200);
      expect(
        await as(
          "PATCH",
          hook,
          { metadata: { labels: { patched: "yes" } } },
          "application/merge-patch+json",
        ),
      ).toBe(200);
      expect(await as("GET", `/api/v1/namespaces/${apps}`)).toBe(200);
      expect(
        await as(
          "PATCH",
          `/apis/keyhaven.dev/v1alpha1/namespaces/${apps}/kmskeys/payments/status`,
          { status: { keyState: "Enabled" } },
          "application/merge-patch+json",
        ),
      ).toBe(200);

      // Refused: Secrets beyond its own (the root key!), other namespaces' Leases, other
      // webhook configurations, creating or deleting custom resources.
      expect(await as("GET", `/api/v1/namespaces/${ns}/secrets/${fullname}-root-key`)).toBe(403);
      expect(await as("GET", `/api/v1/namespaces/${ns}/secrets`)).toBe(403);
      expect(await as("GET", `/api/v1/namespaces/${apps}/secrets`)).toBe(403);
      expect(
        await as("POST", `/apis/coordination.k8s.io/v1/namespaces/${apps}/leases`, lease),
      ).toBe(403);
      expect(await as("GET", `${leases}/another-lease`)).toBe(403);
      expect(
        await as(
          "PATCH",
          "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/someone-else",
          { metadata: { labels: { a: "b" } } },
          "application/merge-patch+json",
        ),
      ).toBe(403);
      expect(
        await as("POST", `/apis/keyhaven.dev/v1alpha1/namespaces/${apps}/kmskeys`, kmsKey("new")),
      ).toBe(403);
      expect(
        await as("DELETE", `/apis/keyhaven.dev/v1alpha1/namespaces/${apps}/kmskeys/payments`),
      ).toBe(403);
      expect(await as("GET", `/api/v1/namespaces/${apps}/pods`)).toBe(403);
    }, 120_000);

    it("the key service's ServiceAccount may read ServiceAccounts (--web-identity-labels cluster) and nothing else", async () => {
      const token = await serviceAccountToken(plane, ns, fullname);
      const as = (path: string) => plane.requestAs(token, "GET", path).then((r) => r.status);
      expect(await as("/api/v1/namespaces/default/serviceaccounts/default")).toBe(200);
      expect(await as(`/api/v1/namespaces/${ns}/serviceaccounts/${controllerSa}`)).toBe(200);
      expect(await as("/api/v1/namespaces/default/serviceaccounts")).toBe(403);
      expect(await as(`/api/v1/namespaces/${ns}/secrets/${fullname}-root-key`)).toBe(403);
      expect(await as(`/apis/keyhaven.dev/v1alpha1/kmskeys`)).toBe(403);
      expect(await as(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`)).toBe(403);
    });

    it("upgrades with changed values: the change is stored, the generated root key and credentials are kept", async () => {
      const rootKey = await data(`${fullname}-root-key`);
      const credentials = await data(`${fullname}-credentials`);
      expect(Buffer.from(rootKey["root.key"]!, "base64")).toHaveLength(32);
      ok(
        await run([
          "upgrade",
          release,
          CHART,
          "--namespace",
          ns,
          "-f",
          values,
          "--set",
          "logLevel=debug",
          "--set",
          "controller.replicas=1",
        ]),
        "helm upgrade",
      );
      const controller = (await get(`/apis/apps/v1/namespaces/${ns}/deployments/${controllerSa}`))
        .body as {
        metadata: { generation: number };
        spec: { replicas: number; template: { spec: { containers: { args: string[] }[] } } };
      };
      expect(controller.spec.replicas).toBe(1);
      expect(controller.spec.template.spec.containers[0]!.args).toContain("--log-level=debug");
      expect(controller.metadata.generation).toBeGreaterThan(1);
      expect(await data(`${fullname}-root-key`)).toEqual(rootKey);
      expect(await data(`${fullname}-credentials`)).toEqual(credentials);
      expect(ok(await run(["history", release, "--namespace", ns]), "history")).toMatch(
        /^2\s.*deployed/m,
      );
    });

    it("uninstalls, keeping the root key Secret, the store's claim and the CRDs", async () => {
      const rootKey = await data(`${fullname}-root-key`);
      ok(await run(["uninstall", release, "--namespace", ns]), "helm uninstall");
      expect(await data(`${fullname}-root-key`)).toEqual(rootKey);
      expect(
        (await get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${fullname}-data`)).status,
      ).toBe(200);
      for (const crd of CRDS)
        expect(
          (await get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`)).status,
        ).toBe(200);
      expect((await get(`/apis/apps/v1/namespaces/${ns}/deployments/${fullname}`)).status).toBe(
        404,
      );
      expect((await get(`/api/v1/namespaces/${ns}/secrets/${fullname}-credentials`)).status).toBe(
        404,
      );
      expect(
        (await get(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${controllerSa}`)).status,
      ).toBe(404);
      expect(
        (
          await get(
            `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${fullname}`,
          )
        ).status,
      ).toBe(404);
    });
  });
}
