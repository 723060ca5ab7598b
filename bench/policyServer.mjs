/**
 * The key service for bench/policy.mjs: from dist/, two credentials — `bench` (the
 * administrator policy: kms:* through the default key policy's delegation) and
 * `app` (no caller policies: only grants let it in) — and the audit log in a file.
 */
import { runChild } from "./lib/child.mjs";
import { ADMINISTRATOR_POLICY, startBenchKeyService } from "./lib/keyService.mjs";

runChild(async ({ dataDir, credentials, region, account }) => {
  const { running, stop } = await startBenchKeyService({
    dataDir,
    credentials: [
      {
        ...credentials.bench,
        principal: `arn:aws:iam::${account}:user/bench`,
        tags: { team: "payments", tenant: "t1" },
        policies: [ADMINISTRATOR_POLICY],
      },
      { ...credentials.app, principal: `arn:aws:iam::${account}:user/app`, policies: [] },
    ],
    region,
    account,
  });
  return { url: running.url, stop };
});
