import type {
  DisconnectCustomKeyStoreRequest,
  DisconnectCustomKeyStoreResponse,
} from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { customKeyStores } from "./shared/customKeyStore.js";

export const disconnectCustomKeyStore = defineOperation<
  WithRequired<DisconnectCustomKeyStoreRequest, "CustomKeyStoreId">,
  DisconnectCustomKeyStoreResponse
>(async (ctx, input) => {
  await authorizeAction(ctx);
  await customKeyStores(ctx).disconnect(input.CustomKeyStoreId);
  return {};
});
