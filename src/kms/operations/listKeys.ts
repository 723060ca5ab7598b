import type { ListKeysRequest, ListKeysResponse } from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation } from "./operation.js";
import { decodeMarker, pageEnd } from "./shared/pagination.js";

export const listKeys = defineOperation<ListKeysRequest, ListKeysResponse>(async (ctx, input) => {
  await authorizeAction(ctx);
  const page = await ctx.service.store.listKeys(input.Limit ?? 100, decodeMarker(input.Marker));
  return {
    Keys: page.items.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })),
    ...pageEnd(page.next),
  };
});
