/**
 * The pod webhook on the real kube-apiserver (kubeUp.ts): registered by URL
 * (`https://127.0.0.1:PORT/mutate-pods`, as clusters whose API server cannot reach
 * Service IPs do) with the chart's selectors and matchConditions, served by the real
 * `keyhaven controller` program with its self-managed certificate, whose leader sets
 * the caBundle. The API server calls the webhook and the STORED pod is checked; the
 * documented failure policy is proven with the webhook down; certificate rotation (the
 * certificate manager's clock and short lifetimes) updates the real caBundle while
 * admission keeps working.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pino from "pino";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKubeConfig } from "../src/kube/kubeConfig.js";
import { webhookResources } from "../src/kube/webhookResources.js";
import { pemCertificates } from "../src/webhook/certificates.js";
import type { JsonObject } from "../src/webhook/podMutation.js";
import { startWebhook } from "../src/webhook/startWebhook.js";
import { eventually } from "./kube/drive.js";
import {
  caBundleOf,
  createPod,
  createServiceAccount,
  deleteWebhook,
  freePort,
  must,
  registerWebhook,
  untilInjecting,
  wasInjected,
  CLUSTER_TIMEOUT_MS,
} from "./support/clusterWebhook.js";
import { createNamespace, startControlPlane, type ControlPlane } from "./support/kubeUp.js";
import { MAIN_JS, REPO_ROOT } from "./support/server.js";
import {
  annotated,
  optedIn,
  pod,
  runAsUser,
  SETTINGS,
  withCommand,
  withEnv,
} from "./support/webhookFixtures.js";
import { ManualClock } from "./support/manualClock.js";

const ENABLED = { "keyhaven.dev/injection": "enabled" };
const KMS_ENDPOINT = "https://keyhaven.keyhaven-system.svc:8443";
const CIPHERTEXT = Buffer.from("not really a ciphertext, but base64").toString("base64");

let plane: ControlPlane;
beforeAll(async () => {
  plane = await startControlPlane();
  // The operator half of the program watches these; installed so it starts cleanly.
  for (const file of readdirSync(join(REPO_ROOT, "crds")))
    await must(
      plane,
      "POST",
      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      parse(readFileSync(join(REPO_ROOT, "crds", file), "utf8")),
    );
}, CLUSTER_TIMEOUT_MS);
afterAll(async () => {
  await plane?.stop();
});

/** Runs `keyhaven controller` with the webhook on 127.0.0.1:port; resolves once it listens. */
async function startController(namespace: string, port: number) {
  const child = spawn(
    process.execPath,
    [
      MAIN_JS,
      "controller",
      "--kubeconfig",
      plane.kubeconfig,
      "--namespace",
      namespace,
      "--metrics-listen",
      "127.0.0.1:0",
      "--webhook-listen",
      `127.0.0.1:${port}`,
      "--kms-endpoint",
      KMS_ENDPOINT,
      "--agent-image",
      "registry.example/keyhaven:test",
      "--identity",
      "ctl-0",
      // One replica: the leader Lease is the operator's concern (test/cluster-operator*).
      "--leader-elect",
      "false",
    ],
    {
      env: {
        PATH: process.env["PATH"],
        AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY: "example-secret",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    createInterface(child.stdout).on("line", (line) => {
      output += `${line}\n`;
      if (line.includes('"webhook listening"')) resolve();
    });
    void exited.then((code) => reject(new Error(`controller exited ${code}: ${output}`)));
  });
  return { child, exited, output: () => output };
}

async function stop(child: ChildProcess, exited: Promise<number | null>) {
  child.kill("SIGTERM");
  return exited;
}

async function stored(namespace: string, created: unknown): Promise<JsonObject> {
  const name = (created as { metadata: { name: string } }).metadata.name;
  return must(plane, "GET", `/api/v1/namespaces/${namespace}/pods/${name}`);
}

const named = <T extends { name: string }>(list: unknown, name: string): T | undefined =>
  (list as T[] | undefined)?.find((x) => x.name === name);

describe(
  "keyhaven controller's webhook on the real API server",
  { timeout: CLUSTER_TIMEOUT_MS },
  () => {
    it("is called for opted-in pods only and the stored pod has the token, env, agent and memory volume; when down, the failure policy holds", async () => {
      const release = await createNamespace(plane, "keyhaven-system", ENABLED);
      const shop = await createNamespace(plane, "shop", ENABLED);
      const plain = await createNamespace(plane, "plain");
      // kube-system and the release namespace are excluded even when labelled.
      await must(
        plane,
        "PATCH",
        "/api/v1/namespaces/kube-system",
        { metadata: { labels: ENABLED } },
        [200],
        "application/merge-patch+json",
      );
      for (const ns of [release, shop, plain, "kube-system"])
        await createServiceAccount(plane, ns, "web");
      const port = await freePort();
      await registerWebhook(plane, {
        name: "keyhaven",
        url: `https://127.0.0.1:${port}/mutate-pods`,
        releaseNamespace: release,
      });
      let controller = await startController(release, port);
      try {
        // The leader sets the caBundle from its own CA (the Secret's ca-bundle.crt).
        const caBundle = await eventually(
          async () => (await caBundleOf(plane, "keyhaven")) || undefined,
          "the leader to set the caBundle",
          30_000,
          200,
        );
        const secret = await must(
          plane,
          "GET",
          `/api/v1/namespaces/${release}/secrets/keyhaven-webhook-tls`,
        );
        const data = secret["data"] as Record<string, string>;
        expect(Buffer.from(data["ca-bundle.crt"]!, "base64").toString()).toBe(caBundle);
        // The serving certificate covers the URL's IP (the API server checks IP SANs).
        const leaf = pemCertificates(Buffer.from(data["tls.crt"]!, "base64").toString())[0]!;
        expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");

        const webPod = pod(
          optedIn,
          annotated({ "keyhaven.dev/data-key": "alias/shop/web" }),
          withEnv("DB_PASSWORD", `keyhaven:${CIPHERTEXT}`),
          withCommand(["/app/server"], ["--port", "8080"]),
          runAsUser(1000),
        );
        await untilInjecting(plane, shop, webPod);
        const created = await createPod(plane, shop, webPod);
        expect(created.status).toBe(201);
        const p = await stored(shop, created.body);
        const meta = p["metadata"] as { annotations: Record<string, string> };
        expect(meta.annotations["keyhaven.dev/status"]).toBe("injected");
        const spec = p["spec"] as {
          volumes: { name: string }[];
          initContainers: { name: string; image: string; env: { name: string }[] }[];
          containers: {
            name: string;
            command: string[];
            env: { name: string; value?: string }[];
            volumeMounts: { name: string; mountPath: string }[];
          }[];
        };
        expect(named(spec.volumes, "keyhaven-token")).toEqual({
          name: "keyhaven-token",
          projected: {
            defaultMode: 420,
            sources: [
              {
                serviceAccountToken: {
                  audience: "keyhaven",
                  expirationSeconds: 3600,
                  path: "token",
                },
              },
            ],
          },
        });
        expect(named(spec.volumes, "keyhaven-secrets")).toEqual({
          name: "keyhaven-secrets",
          emptyDir: { medium: "Memory", sizeLimit: "1Mi" },
        });
        // The API server's own ServiceAccount admission added its token volume beside ours.
        expect(spec.volumes.some((v) => v.name.startsWith("kube-api-access-"))).toBe(true);
        expect(spec.initContainers.map((c) => c.name)).toEqual(["keyhaven-agent"]);
        expect(spec.initContainers[0]!.image).toBe("registry.example/keyhaven:test");
        const app = spec.containers[0]!;
        const env = Object.fromEntries(app.env.map((e) => [e.name, e.value]));
        expect(env).toMatchObject({
          AWS_ROLE_ARN: "arn:aws:iam::000000000000:role/shop/web",
          AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/secrets/keyhaven.dev/serviceaccount/token",
          AWS_ENDPOINT_URL_KMS: KMS_ENDPOINT,
          AWS_ENDPOINT_URL_STS: KMS_ENDPOINT,
          AWS_REGION: "us-east-1",
          DB_PASSWORD: `keyhaven:${CIPHERTEXT}`,
        });
        expect(app.command[0]).toBe("/bin/sh");
        expect(app.command).toContain("/app/server");
        expect(named(app.volumeMounts, "keyhaven-secrets")).toMatchObject({
          mountPath: "/var/run/keyhaven",
        });

        // Untouched: an unlabelled namespace, kube-system and the release namespace, and a
        // pod in a labelled namespace that does not opt in.
        for (const [ns, p2] of [
          [plain, pod(optedIn)],
          ["kube-system", pod(optedIn)],
          [release, pod(optedIn)],
          [shop, pod()],
        ] as const) {
          const res = await createPod(plane, ns, p2);
          expect(res.status, ns).toBe(201);
          const back = await stored(ns, res.body);
          expect(wasInjected(back), ns).toBe(false);
          expect(named((back["spec"] as { volumes: unknown }).volumes, "keyhaven-token"), ns).toBe(
            undefined,
          );
        }

        // The webhook down: docs/injection.md promises failurePolicy Fail for opted-in pods
        // in labelled namespaces (never started without their secrets), nothing else blocked.
        expect(await stop(controller.child, controller.exited)).toBe(0);
        const refused = await createPod(plane, shop, pod(optedIn));
        expect(refused.status).toBe(500);
        expect(JSON.stringify(refused.body)).toContain(
          'failed calling webhook \\"pods.keyhaven.dev\\"',
        );
        const pods = await must(plane, "GET", `/api/v1/namespaces/${shop}/pods`);
        expect((pods["items"] as unknown[]).length).toBe(2); // the injected one and the plain one
        for (const [ns, p2] of [
          [shop, pod()],
          [plain, pod(optedIn)],
        ] as const)
          expect((await createPod(plane, ns, p2)).status, ns).toBe(201);

        // Back up: the same CA (kept in the Secret), admission works again.
        controller = await startController(release, port);
        await untilInjecting(plane, shop, pod(optedIn));
        expect(await caBundleOf(plane, "keyhaven")).toBe(caBundle);
        expect(controller.output()).not.toContain("example-secret");
      } finally {
        await deleteWebhook(plane, "keyhaven");
        controller.child.kill("SIGKILL");
      }
    });

    it("certificate rotation: a new serving certificate keeps the caBundle, a new CA updates it, and admission keeps working", async () => {
      const release = await createNamespace(plane, "rotation-system");
      const ns = await createNamespace(plane, "rotation", ENABLED);
      await createServiceAccount(plane, ns, "web");
      const port = await freePort();
      await registerWebhook(plane, {
        name: "keyhaven-rotation",
        url: `https://127.0.0.1:${port}/mutate-pods`,
        releaseNamespace: release,
      });
      // Time is the manager's clock; lifetimes are minutes so every certificate issued
      // while the clock moves at most ~4 minutes ahead is valid for the API server now.
      const clock = new ManualClock(Date.now());
      const MIN = 60_000;
      const running = await startWebhook(
        {
          listen: { host: "127.0.0.1", port },
          configName: "keyhaven-rotation",
          namespace: release,
          serviceName: "keyhaven-webhook",
          secretName: "keyhaven-webhook-tls",
          settings: SETTINGS,
        },
        {
          resources: webhookResources(loadKubeConfig(plane.kubeconfig)),
          isLeader: () => true,
          logger: pino({ level: "silent" }),
          clock,
          // CA renewal due at +3.3 min, the serving certificate's at +2.3 min (and, renewed
          // then, at +4.2 min).
          certificatePolicy: {
            caValidityMs: 7.5 * MIN,
            servingValidityMs: 6 * MIN,
            renewFraction: 1 / 3,
          },
        },
      );
      try {
        const first = await eventually(
          async () => (await caBundleOf(plane, "keyhaven-rotation")) || undefined,
          "the caBundle",
          15_000,
          200,
        );
        await untilInjecting(plane, ns, pod(optedIn));
        const firstLeaf = running.server.certificate.cert.toString();

        clock.advance(2.5 * MIN);
        expect(await running.certificates!.sync()).toMatchObject({
          issued: true,
          caBundlePatched: false,
          loaded: true,
        });
        expect(running.server.certificate.cert.toString()).not.toBe(firstLeaf);
        expect(await caBundleOf(plane, "keyhaven-rotation")).toBe(first);
        await untilInjecting(plane, ns, pod(optedIn));

        // The CA is due: the new CA enters the real caBundle beside the old one, and the
        // serving certificate of the old CA stays in service.
        clock.advance(1 * MIN);
        const servedBefore = running.server.certificate.cert.toString();
        expect(await running.certificates!.sync()).toMatchObject({
          issued: true,
          caBundlePatched: true,
          loaded: false,
        });
        const rotated = await caBundleOf(plane, "keyhaven-rotation");
        const [newCa, oldCa] = pemCertificates(rotated);
        expect(oldCa?.fingerprint256).toBe(pemCertificates(first)[0]!.fingerprint256);
        expect(running.server.certificate.cert.toString()).toBe(servedBefore);
        // Admission never breaks: the served certificate verifies against either bundle.
        const probe = await createPod(plane, ns, pod(optedIn), true);
        expect(wasInjected(probe.body), JSON.stringify(probe.body)).toBe(true);

        // At its renewal the serving certificate comes from the new CA; the bundle stays.
        clock.advance(1 * MIN);
        expect(await running.certificates!.sync()).toMatchObject({
          issued: true,
          caBundlePatched: false,
          loaded: true,
        });
        const leaf = pemCertificates(running.server.certificate.cert.toString())[0]!;
        expect(leaf.checkIssued(newCa!)).toBe(true);
        expect(await caBundleOf(plane, "keyhaven-rotation")).toBe(rotated);
        // (Days after the bundle changed in a cluster; here, moments: let the API server
        // catch up.)
        await untilInjecting(plane, ns, pod(optedIn));
        const created = await createPod(plane, ns, pod(optedIn));
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        expect(wasInjected(await stored(ns, created.body))).toBe(true);
      } finally {
        await running.stop();
        await deleteWebhook(plane, "keyhaven-rotation");
      }
    });
  },
);
