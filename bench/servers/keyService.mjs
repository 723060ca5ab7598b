/**
 * The subject: the real key service from dist/ (run `npm run build` first; or the
 * dist/ folder named by the `dist` option, to compare two builds), on a fresh data
 * folder, with a known credential, and its audit log written to a file; `args` and `env`
 * add `serve` flags and their environment (bench/hsm.mjs: the root key in an HSM).
 */
import { runChild } from "../lib/child.mjs";
import { benchCredential, startBenchKeyService } from "../lib/keyService.mjs";

runChild(async ({ dataDir, credential, region, account, dist, args, env }) => {
  const { running, stop } = await startBenchKeyService({
    dataDir,
    credentials: [benchCredential(credential, account)],
    region,
    account,
    dist,
    args,
    env,
  });
  return { url: running.url, stop };
});
