/**
 * What bench/ uses of the key service, from one place (docs/architecture.md, "Benchmarks"):
 * benchmarks import dist/src/bench/*.js and nothing else of dist/, so a moved file breaks
 * `npm run typecheck` on a line here (fix the path) instead of a benchmark at run time.
 * test/bench.test.ts checks every name a bench module takes from here. The entries are
 * split by part so that a benchmark's child loads only the part it measures.
 */
export { startKeyService } from "../cmd/serve.js";
// The serve flags, parsed as `keyhaven serve` parses them, so a bench's config never drifts.
export { loadConfig } from "../config/config.js";
export { rotateKeyMaterial } from "../kms/lifecycle/actions.js";
// In-process parts of the Encrypt path (bench/parts.mjs, bench/policyParts.mjs).
export { KeyService } from "../kms/keyService.js";
export { policyAuthorizer } from "../kms/access/policyAuthorizer.js";
export { operations } from "../kms/operations/index.js";
export { decodeInput, encodeOutput } from "../kms/protocol/model.js";
export { verifySigV4 } from "../kms/protocol/sigv4.js";
export { compilePolicy } from "../kms/authz/policy.js";
export { principalFromArn } from "../kms/authz/principal.js";
export { ADMINISTRATOR_POLICY } from "../kms/authz/keyPolicy.js";
export { sealCiphertext } from "../kms/crypto/ciphertext.js";
export { pooledRandom } from "../kms/crypto/random.js";
export { SqliteKeyStore } from "../kms/store/sqliteKeyStore.js";
export { LocalRootKey } from "../kms/rootkey/localRootKey.js";
export { createLogger, bufferedDestination, lineFormatter } from "../observability/logger.js";
export { auditRecordText } from "../kms/audit/auditRecord.js";
export { SyncDestination } from "../observability/syncDestination.js";
// A store of many keys written directly (bench/startup.mjs).
export { generateKeyMaterial } from "../kms/crypto/keyMaterial.js";
export { defaultKeyPolicy } from "../kms/authz/keyPolicy.js";
