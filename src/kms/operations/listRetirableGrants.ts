import type { ListRetirableGrantsRequest, ListGrantsResponse } from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { checkPrincipal, grantListEntry } from "./shared/grantRules.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { decodeMarker, pageEnd } from "./shared/pagination.js";

/** Grants naming a retiring principal, across keys (an account-level action, kms:ListRetirableGrants). */
export const listRetirableGrants = defineOperation<
  WithRequired<ListRetirableGrantsRequest, "RetiringPrincipal">,
  ListGrantsResponse
>(async (ctx, input) => {
  checkPrincipal(input.RetiringPrincipal, "RetiringPrincipal");
  await authorizeAction(ctx);
  const page = await ctx.service.store.listRetirableGrants(
    input.RetiringPrincipal,
    input.Limit ?? 50,
    decodeMarker(input.Marker),
  );
  return { Grants: page.items.map((g) => grantListEntry(ctx, g)), ...pageEnd(page.next) };
});
