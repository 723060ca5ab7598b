import type {
  DeleteCustomKeyStoreRequest,
  DeleteCustomKeyStoreResponse,
} from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { customKeyStores } from "./shared/customKeyStore.js";

export const deleteCustomKeyStore = defineOperation<
  WithRequired<DeleteCustomKeyStoreRequest, "CustomKeyStoreId">,
  DeleteCustomKeyStoreResponse
>(async (ctx, input) => {
  await authorizeAction(ctx);
  await customKeyStores(ctx).delete(input.CustomKeyStoreId);
  return {};
});
