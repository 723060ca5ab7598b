/** The custom key stores of the service, or UnsupportedOperationException when it runs without them. */
import type { CustomKeyStores } from "../../customkeystore/customKeyStores.js";
import { kmsError } from "../../errors.js";
import type { RequestContext } from "../../request.js";

export function customKeyStores(ctx: RequestContext): CustomKeyStores {
  const stores = ctx.service.customKeyStores;
  if (!stores)
    throw kmsError(
      "UnsupportedOperationException",
      "Custom key stores are not enabled in this key service.",
    );
  return stores;
}
