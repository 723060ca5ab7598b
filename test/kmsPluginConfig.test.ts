import { describe, expect, it } from "vitest";
import { ConfigError, KMS_PLUGIN_USAGE, loadConfig } from "../src/config/config.js";

const base = ["kms-plugin", "--listen", "unix:///run/kms/plugin.sock", "--key-id", "alias/etcd"];
const env = { AWS_ENDPOINT_URL_KMS: "http://127.0.0.1:8080" };

describe("keyhaven kms-plugin flags", () => {
  it("reads flags, takes the endpoint and region from the AWS_* environment, and defaults the rest", () => {
    expect(loadConfig(base, { ...env, AWS_REGION: "eu-west-1" })).toEqual({
      command: "kms-plugin",
      socketPath: "/run/kms/plugin.sock",
      keyId: "alias/etcd",
      kmsEndpoint: "http://127.0.0.1:8080",
      region: "eu-west-1",
      clusterName: "kubernetes",
      healthCheckIntervalSeconds: 30,
      logLevel: "info",
    });
    expect(
      loadConfig([...base, "--cluster-name", "prod-eu", "--health-check-interval", "5"], env),
    ).toMatchObject({ clusterName: "prod-eu", healthCheckIntervalSeconds: 5 });
  });

  it.each([
    [["kms-plugin", "--key-id", "k"], /--listen: an absolute Unix socket URL is required/],
    [["kms-plugin", "--listen", "unix://relative.sock", "--key-id", "k"], /--listen/],
    [["kms-plugin", "--listen", "127.0.0.1:9000", "--key-id", "k"], /--listen/],
    [["kms-plugin", "--listen", "unix:///s.sock"], /--key-id: .* is required/],
    [[...base, "--cluster-name", "a b"], /--cluster-name/],
    [[...base, "--health-check-interval", "0"], /--health-check-interval/],
    [[...base, "--lisen", "x"], /Unknown option '--lisen'/],
  ])("refuses %j", (argv, message) => {
    expect(() => loadConfig(argv, env)).toThrow(ConfigError);
    expect(() => loadConfig(argv, env)).toThrow(message);
  });

  it("needs a key service endpoint", () => {
    expect(() => loadConfig(base, {})).toThrow(/--kms-endpoint: the key service URL is required/);
  });

  it("prints its own usage", () => {
    expect(loadConfig(["kms-plugin", "--help"], {})).toEqual({
      command: "help",
      text: KMS_PLUGIN_USAGE,
    });
  });
});
