import type {
  ConnectCustomKeyStoreRequest,
  ConnectCustomKeyStoreResponse,
} from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { customKeyStores } from "./shared/customKeyStore.js";

export const connectCustomKeyStore = defineOperation<
  WithRequired<ConnectCustomKeyStoreRequest, "CustomKeyStoreId">,
  ConnectCustomKeyStoreResponse
>(async (ctx, input) => {
  await authorizeAction(ctx);
  await customKeyStores(ctx).connect(input.CustomKeyStoreId);
  return {};
});
