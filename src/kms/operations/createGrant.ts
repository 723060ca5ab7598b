import { randomBytes } from "node:crypto";
import type { CreateGrantRequest, CreateGrantResponse } from "@aws-sdk/client-kms";
import { encodeGrantToken } from "../authz/grantTokens.js";
import type { GrantConstraints } from "../authz/grants.js";
import { assertUsable } from "../keys/keyState.js";
import type { GrantRecord } from "../store/keyStore.js";
import { useKey } from "../access/useKey.js";
import {
  checkConstraints,
  checkOperations,
  checkPrincipal,
  sameGrant,
} from "./shared/grantRules.js";
import { defineOperation, dryRun, type WithRequired } from "./operation.js";

/**
 * CreateGrant. `Name` makes it idempotent per key: a retry with identical parameters
 * returns the same GrantId (with a fresh token); different parameters make a new grant.
 */
export const createGrant = defineOperation<
  WithRequired<CreateGrantRequest, "KeyId" | "GranteePrincipal" | "Operations">,
  CreateGrantResponse
>(async (ctx, input) => {
  checkPrincipal(input.GranteePrincipal, "GranteePrincipal");
  if (input.RetiringPrincipal !== undefined)
    checkPrincipal(input.RetiringPrincipal, "RetiringPrincipal");
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  assertUsable(key);
  const operations = [...new Set(input.Operations)];
  checkOperations(key, operations);
  const constraints = input.Constraints as GrantConstraints | undefined;
  checkConstraints(key, operations, constraints);
  dryRun(input);

  const wanted = {
    keyId: key.keyId,
    ...(input.Name !== undefined && { name: input.Name }),
    granteePrincipal: input.GranteePrincipal,
    ...(input.RetiringPrincipal !== undefined && { retiringPrincipal: input.RetiringPrincipal }),
    operations,
    ...(constraints && { constraints }),
  };
  const store = ctx.service.store;
  if (input.Name !== undefined) {
    const existing = (await store.grantsOf(key.keyId)).find(
      (g) => g.name === input.Name && sameGrant(g, wanted),
    );
    if (existing)
      return {
        GrantId: existing.grantId,
        GrantToken: encodeGrantToken(existing.grantId, randomBytes(16)),
      };
  }
  const grant: GrantRecord = {
    grantId: randomBytes(32).toString("hex"),
    ...wanted,
    issuingAccount: ctx.service.account,
    createdAt: ctx.service.clock.now().getTime(),
  };
  await store.createGrant(grant);
  return { GrantId: grant.grantId, GrantToken: encodeGrantToken(grant.grantId, randomBytes(16)) };
});
