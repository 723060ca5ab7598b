import type {
  UpdateCustomKeyStoreRequest,
  UpdateCustomKeyStoreResponse,
} from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { customKeyStores } from "./shared/customKeyStore.js";

export const updateCustomKeyStore = defineOperation<
  WithRequired<UpdateCustomKeyStoreRequest, "CustomKeyStoreId">,
  UpdateCustomKeyStoreResponse
>(async (ctx, input) => {
  await authorizeAction(ctx);
  await customKeyStores(ctx).update(input);
  return {};
});
