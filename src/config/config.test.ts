import { describe, expect, it } from "vitest";
import { closest, ConfigError, loadConfig, USAGE, type ServeConfig } from "./config.js";

const serve = (args: string[], env: Record<string, string> = {}) =>
  loadConfig(["serve", ...args], env) as ServeConfig;

function configError(args: string[], env: Record<string, string> = {}): string {
  try {
    loadConfig(args, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("loadConfig accepted it");
}

describe("loadConfig: keyhaven serve", () => {
  it("has the documented local defaults", () => {
    const c = serve([]);
    expect(c).toMatchObject({
      command: "serve",
      listen: { host: "127.0.0.1", port: 8080 },
      dataDir: "./.keyhaven",
      account: "000000000000",
      region: "us-east-1",
      logLevel: "info",
    });
    expect(c).not.toHaveProperty("credentialsFile");
    expect(c).not.toHaveProperty("tls");
    expect(c).not.toHaveProperty("auditLog");
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("takes --xks-proxy-uri-path as a prefix, with or without /kms/xks/v1, and refuses other paths", () => {
    expect(serve([])).not.toHaveProperty("xksProxyPrefix");
    expect(serve(["--xks-proxy-uri-path", "/keystores/a_1-b"]).xksProxyPrefix).toBe(
      "/keystores/a_1-b",
    );
    expect(serve(["--xks-proxy-uri-path", "/t/kms/xks/v1"]).xksProxyPrefix).toBe("/t");
    expect(serve([], { KEYHAVEN_XKS_PROXY_URI_PATH: "/env" }).xksProxyPrefix).toBe("/env");
    for (const bad of ["tenant", "/", "/a b", "/a/", "/a.b", `/${"x".repeat(117)}`])
      expect(configError(["serve", "--xks-proxy-uri-path", bad])).toMatch(
        /^--xks-proxy-uri-path: expected \/PREFIX/,
      );
  });

  it("reads several Regions and repeatable --peer REGION=URL (docs/multi-region.md)", () => {
    const c = serve([
      "--region",
      "us-east-1,eu-west-1",
      "--peer",
      "ap-south-1=https://kh.ap.example:8443/",
      "--peer",
      "us-west-2=http://127.0.0.2:8080",
      "--peer-credential",
      "AKIAPEER",
    ]);
    expect(c.region).toBe("us-east-1");
    expect(c.regions).toEqual(["us-east-1", "eu-west-1"]);
    expect([...c.peers]).toEqual([
      ["ap-south-1", "https://kh.ap.example:8443"],
      ["us-west-2", "http://127.0.0.2:8080"],
    ]);
    expect(c.peerCredential).toBe("AKIAPEER");
    expect([
      ...serve([], {
        KEYHAVEN_PEERS: "eu-west-1=http://localhost:1,us-west-2=https://b:2",
      }).peers.keys(),
    ]).toEqual(["eu-west-1", "us-west-2"]);
    expect(serve([]).peers.size).toBe(0);
    expect(configError(["serve", "--peer", "eu-west-1"])).toMatch(
      /^--peer: 'eu-west-1' is not REGION=URL/,
    );
    expect(configError(["serve", "--region", "us-east-1,us-east-1"])).toBe(
      "--region: a Region is listed twice",
    );
    expect(
      configError(["serve", "--region", "us-east-1,eu-west-1", "--peer", "eu-west-1=http://x:1"]),
    ).toBe("--peer eu-west-1: this process serves eu-west-1 itself (--region)");
  });

  it("refuses a plain-HTTP peer off loopback, saying how to fix it", () => {
    for (const url of ["http://10.0.0.2:8080", "http://kms.b.example", "http://127.evil.example"])
      expect(configError(["serve", "--peer", `eu-west-1=${url}`])).toBe(
        `--peer eu-west-1=${url}: a peer over plain HTTP could be impersonated on the network; serve that instance over HTTPS (--tls-cert, --tls-key) and give its https:// URL (http:// only on loopback: 127.0.0.1, [::1], localhost)`,
      );
    for (const url of ["http://127.0.0.1:1", "http://[::1]:2", "http://localhost:3"])
      expect(serve(["--peer", `eu-west-1=${url}`]).peers.get("eu-west-1")).toBe(url);
  });

  it("falls back to KEYHAVEN_* variables, and flags win over them", () => {
    const env = {
      KEYHAVEN_LISTEN: "0.0.0.0:9000",
      KEYHAVEN_DATA: "/var/lib/keyhaven",
      KEYHAVEN_CREDENTIALS: "/etc/keyhaven/credentials.yaml",
      KEYHAVEN_ACCOUNT: "123456789012",
      KEYHAVEN_REGION: "eu-west-1",
      KEYHAVEN_TLS_CERT: "/tls/tls.crt",
      KEYHAVEN_TLS_KEY: "/tls/tls.key",
      KEYHAVEN_LOG_LEVEL: "warn",
      KEYHAVEN_AUDIT_LOG: "/var/log/audit.log",
    };
    expect(serve([], env)).toMatchObject({
      listen: { host: "0.0.0.0", port: 9000 },
      dataDir: "/var/lib/keyhaven",
      credentialsFile: "/etc/keyhaven/credentials.yaml",
      account: "123456789012",
      region: "eu-west-1",
      tls: { certFile: "/tls/tls.crt", keyFile: "/tls/tls.key" },
      logLevel: "warn",
      auditLog: "/var/log/audit.log",
    });
    const flagged = serve(["--listen", "127.0.0.1:1", "--region", "ap-southeast-2"], env);
    expect(flagged.listen).toEqual({ host: "127.0.0.1", port: 1 });
    expect(flagged.region).toBe("ap-southeast-2");
    expect(flagged.dataDir).toBe("/var/lib/keyhaven");
  });

  it("chooses the store: sqlite by default, kubernetes only with a namespace", () => {
    expect(serve([]).store).toEqual({ type: "sqlite" });
    expect(serve(["--store", "kubernetes", "--store-namespace", "keys"]).store).toEqual({
      type: "kubernetes",
      namespace: "keys",
    });
    expect(
      serve([], { KEYHAVEN_STORE: "kubernetes", KEYHAVEN_STORE_NAMESPACE: "k" }).store,
    ).toEqual({ type: "kubernetes", namespace: "k" });
    expect(configError(["serve", "--store", "kubernetes"])).toContain("--store-namespace");
    expect(configError(["serve", "--store-namespace", "keys"])).toContain("--store kubernetes");
    expect(configError(["serve", "--store", "etcd"])).toContain("--store");
  });

  it("reads every listen form: IPv4, [IPv6], empty host (all interfaces), port 0", () => {
    expect(serve(["--listen", "[::1]:8443"]).listen).toEqual({ host: "::1", port: 8443 });
    expect(serve(["--listen", ":8080"]).listen).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(serve(["--listen", "localhost:0"]).listen).toEqual({ host: "localhost", port: 0 });
    expect(serve(["--listen=10.0.0.1:65535"]).listen).toEqual({ host: "10.0.0.1", port: 65535 });
  });

  it("names the flag and the fix in every error", () => {
    expect(configError(["serve", "--listen", "8080"])).toBe(
      "--listen: expected HOST:PORT, e.g. 127.0.0.1:8080, got '8080'",
    );
    expect(configError(["serve", "--listen", "h:65536"])).toContain("--listen: expected HOST:PORT");
    expect(configError(["serve", "--account", "42"])).toBe("--account: an account id is 12 digits");
    expect(configError(["serve", "--region", "mars"])).toBe(
      "--region: a region looks like us-east-1",
    );
    expect(configError(["serve", "--log-level", "loud"])).toMatch(/^--log-level: /);
    expect(configError(["serve", "--tls-key", "k.pem"])).toBe(
      "--tls-cert and --tls-key go together",
    );
    expect(configError(["serve", "--data", ""])).toMatch(/^--data: /);
    expect(configError(["serve"], { KEYHAVEN_ACCOUNT: "abc" })).toBe(
      "--account: an account id is 12 digits",
    );
  });

  it("refuses unknown flags, stray arguments and unknown commands, pointing at the help", () => {
    expect(configError(["serve", "--colour", "blue"])).toBe(
      "Unknown option '--colour' for keyhaven serve (keyhaven serve --help lists the flags)",
    );
    expect(configError(["serve", "extra"])).toBe(
      "Unexpected argument 'extra' (keyhaven serve --help lists the flags)",
    );
    expect(configError(["serve", "--listen"])).toBe(
      "Option '--listen <value>' argument missing (keyhaven serve --help lists the flags)",
    );
    expect(configError(["frobnicate"])).toBe(`unknown command 'frobnicate'\n\n${USAGE}`);
  });

  it("names the closest flag or command", () => {
    expect(configError(["serve", "--listn", "x"])).toBe(
      "Unknown option '--listn' for keyhaven serve; did you mean --listen? (keyhaven serve --help lists the flags)",
    );
    expect(configError(["serve", "--tls-crt=a.pem"])).toContain("did you mean --tls-cert?");
    expect(configError(["serve", "--web-identity-jwk", "f"])).toContain(
      "did you mean --web-identity-jwks?",
    );
    expect(configError(["controller", "--kms-endpont", "http://k"])).toContain(
      "for keyhaven controller; did you mean --kms-endpoint?",
    );
    expect(configError(["controller", "--webhook-lisen", ":1"])).toContain(
      "did you mean --webhook-listen?",
    );
    expect(configError(["agent", "--dirr", "/x"])).toContain("did you mean --dir?");
    expect(configError(["serv"])).toMatch(/^unknown command 'serv'; did you mean 'serve'\?/);
    expect(closest("x", ["listen", "data"])).toBeUndefined();
    expect(closest("refresh", ["refresh-interval", "timeout"])).toBe("refresh-interval");
  });

  it("answers help and version", () => {
    for (const args of [[], ["help"], ["--help"], ["-h"]])
      expect(loadConfig(args, {})).toEqual({ command: "help", text: USAGE });
    expect(loadConfig(["version"], {})).toEqual({ command: "version" });
    expect(loadConfig(["--version"], {})).toEqual({ command: "version" });
  });
});
