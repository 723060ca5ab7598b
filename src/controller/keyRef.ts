/**
 * The key a KmsAlias or KmsGrant is about, named one of two ways: a reference to a
 * KmsKey in its namespace (read from the cache: no KMS call), or a key id, ARN or
 * alias that the key service resolves. An object waiting on a KmsKey is woken by it
 * (keyRefWatch), not by polling.
 */
import { DescribeKeyCommand } from "@aws-sdk/client-kms";
import { keyRefOf } from "../api/v1alpha1/defaults.js";
import type { KmsAlias, KmsGrant } from "../api/v1alpha1/types.js";
import { splitKey, type ReconcileContext } from "./context.js";
import { isKmsError } from "./kms.js";
import { TerminalError } from "./runtime/controller.js";
import type { Watch } from "./runtime/watches.js";

export interface ResolvedKey {
  readonly keyId: string;
  readonly arn: string;
}

/**
 * The referenced key, or undefined while a referenced KmsKey does not exist, has no
 * key yet or is being deleted (wait for it). A key id the key service does not know is
 * a TerminalError with `notFoundReason`: only a spec change can fix it.
 */
export async function resolveKeyRef(
  ctx: ReconcileContext,
  obj: KmsAlias | KmsGrant,
  notFoundReason: string,
): Promise<ResolvedKey | undefined> {
  const ref = keyRefOf(obj);
  if (ref) {
    const [namespace, name] = splitKey(ref);
    const key = await ctx.reader.read("KmsKey", namespace, name);
    const status = key?.metadata.deletionTimestamp ? undefined : key?.status;
    return status?.keyId && status.arn ? { keyId: status.keyId, arn: status.arn } : undefined;
  }
  const id =
    obj.kind === "KmsAlias" ? (obj as KmsAlias).spec.targetKeyId! : (obj as KmsGrant).spec.keyId!;
  try {
    const out = await ctx.kms.send(new DescribeKeyCommand({ KeyId: id }));
    return { keyId: out.KeyMetadata!.KeyId!, arn: out.KeyMetadata!.Arn! };
  } catch (err) {
    if (isKmsError(err, "NotFoundException"))
      throw new TerminalError(notFoundReason, `Key ${id} does not exist.`);
    throw err;
  }
}

/**
 * What wakes a KmsAlias, KmsGrant or KmsSecret: the KmsKey it refers to appearing, going, getting
 * its key (status.arn) or being deleted — what resolveKeyRef reads.
 */
export const keyRefWatch: Watch<"KmsAlias" | "KmsGrant" | "KmsSecret", "KmsKey"> = {
  source: "KmsKey",
  indexBy: keyRefOf,
  changed: (key, old) =>
    key.status?.arn !== old.status?.arn ||
    key.metadata.deletionTimestamp !== old.metadata.deletionTimestamp,
};
