/**
 * The subject: the real key service from dist/ (run `npm run build` first; or the
 * dist/ folder named by the `dist` option, to compare two builds), on a fresh data
 * folder, with a known credential, and its audit log written to a file.
 */
import { runChild } from "../lib/child.mjs";
import { benchCredential, startBenchKeyService } from "../lib/keyService.mjs";

runChild(async ({ dataDir, credential, region, account, dist }) => {
  const { running, stop } = await startBenchKeyService({
    dataDir,
    credentials: [benchCredential(credential, account)],
    region,
    account,
    dist,
  });
  return { url: running.url, stop };
});
