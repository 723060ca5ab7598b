import type {
  CreateCustomKeyStoreRequest,
  CreateCustomKeyStoreResponse,
} from "@aws-sdk/client-kms";
import { authorizeAction } from "../access/useKey.js";
import { defineOperation, type WithRequired } from "./operation.js";
import { customKeyStores } from "./shared/customKeyStore.js";

export const createCustomKeyStore = defineOperation<
  WithRequired<CreateCustomKeyStoreRequest, "CustomKeyStoreName">,
  CreateCustomKeyStoreResponse
>(async (ctx, input) => {
  await authorizeAction(ctx);
  const record = await customKeyStores(ctx).create(input);
  return { CustomKeyStoreId: record.id };
});
