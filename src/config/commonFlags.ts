/** Flags that several commands take with the same meaning, defined once. */
import { kmsEndpoint, logLevel, region } from "./schemas.js";
import { flag } from "./table.js";

export const LOG_LEVEL_FLAG = flag({
  arg: "LEVEL",
  env: ["KEYHAVEN_LOG_LEVEL"],
  default: "info",
  schema: logLevel,
  help: "fatal|error|warn|info|debug|trace|silent",
});

/** `--region` of a command that calls the key service. */
export const REGION_FLAG = flag({
  arg: "NAME",
  env: ["AWS_REGION", "AWS_DEFAULT_REGION"],
  default: "us-east-1",
  schema: region,
  help: "region of the key service",
});

/** `--kms-endpoint` and `--region` of a command that calls the key service. */
export function keyServiceClientFlags(exampleEndpoint: string) {
  return {
    "kms-endpoint": flag({
      arg: "URL",
      env: ["AWS_ENDPOINT_URL_KMS"],
      schema: kmsEndpoint(exampleEndpoint),
      help: "key service URL (required)",
    }),
    region: REGION_FLAG,
  };
}
