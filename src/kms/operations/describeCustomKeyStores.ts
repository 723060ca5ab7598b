import type {
  DescribeCustomKeyStoresRequest,
  DescribeCustomKeyStoresResponse,
} from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { kmsError } from "../errors.js";
import { defineOperation } from "./operation.js";
import { customKeyStores } from "./shared/customKeyStore.js";
import { decodeMarker, pageEnd } from "./shared/pagination.js";

export const describeCustomKeyStores = defineOperation<
  DescribeCustomKeyStoresRequest,
  DescribeCustomKeyStoresResponse
>(async (ctx, input) => {
  await authorizeAction(ctx);
  if (input.CustomKeyStoreId !== undefined && input.CustomKeyStoreName !== undefined)
    throw kmsError(
      "ValidationException",
      "Specify either CustomKeyStoreId or CustomKeyStoreName, not both.",
    );
  const all = customKeyStores(ctx).describe({
    ...(input.CustomKeyStoreId !== undefined && { id: input.CustomKeyStoreId }),
    ...(input.CustomKeyStoreName !== undefined && { name: input.CustomKeyStoreName }),
  });
  const after = decodeMarker(input.Marker);
  const from = after === undefined ? all : all.filter((e) => e.CustomKeyStoreId! > after);
  const page = from.slice(0, input.Limit ?? 100);
  return {
    CustomKeyStores: page,
    ...pageEnd(page.length < from.length ? page.at(-1)!.CustomKeyStoreId : undefined),
  };
});
