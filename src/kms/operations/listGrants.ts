import type { ListGrantsRequest, ListGrantsResponse } from "@aws-sdk/client-kms";
import { useKey } from "../access/useKey.js";
import { checkGrantId, grantListEntry } from "./shared/grantRules.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { decodeMarker, pageEnd } from "./shared/pagination.js";

export const listGrants = defineOperation<
  WithRequired<ListGrantsRequest, "KeyId">,
  ListGrantsResponse
>(async (ctx, input) => {
  const key = await useKey(ctx, input.KeyId, { aliases: false });
  if (input.GrantId !== undefined) {
    checkGrantId(input.GrantId);
    const grant = await ctx.service.store.getGrant(input.GrantId);
    const match =
      grant?.keyId === key.keyId &&
      (input.GranteePrincipal === undefined || grant.granteePrincipal === input.GranteePrincipal);
    return { Grants: match ? [grantListEntry(ctx, grant)] : [], Truncated: false };
  }
  const page = await ctx.service.store.listGrants(
    key.keyId,
    input.Limit ?? 50,
    decodeMarker(input.Marker),
    input.GranteePrincipal,
  );
  return { Grants: page.items.map((g) => grantListEntry(ctx, g)), ...pageEnd(page.next) };
});
