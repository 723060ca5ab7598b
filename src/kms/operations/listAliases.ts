import type { ListAliasesRequest, ListAliasesResponse } from "@aws-sdk/client-kms";
import { authorizeAction, useKey } from "../access/useKey.js";
import { defineOperation } from "./operation.js";
import { decodeMarker, pageEnd } from "./shared/pagination.js";

export const listAliases = defineOperation<ListAliasesRequest, ListAliasesResponse>(
  async (ctx, input) => {
    let targetKeyId: string | undefined;
    if (input.KeyId !== undefined) {
      targetKeyId = (await useKey(ctx, input.KeyId, { aliases: false })).keyId;
    } else {
      await authorizeAction(ctx);
    }
    const page = await ctx.service.store.listAliases(
      input.Limit ?? 50,
      decodeMarker(input.Marker),
      targetKeyId,
    );
    return {
      Aliases: page.items.map((a) => ({
        AliasName: a.name,
        AliasArn: ctx.service.aliasArn(a.name),
        TargetKeyId: a.targetKeyId,
        CreationDate: new Date(a.createdAt),
        LastUpdatedDate: new Date(a.updatedAt),
      })),
      ...pageEnd(page.next),
    };
  },
);
