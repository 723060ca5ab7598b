/**
 * KmsSecret → a Secret of the same name that it owns (docs/gitops-secrets.md). Each
 * entry is opened through the key service with the encryption context of its place
 * (src/sealing/sealedValue.ts): an online value with Decrypt, an offline envelope with
 * an asymmetric Decrypt of its data key and AES-GCM here. A value that does not open
 * is a condition naming the entry (never a value), re-checked slowly: a key policy may
 * change. Deleting the KmsSecret deletes the Secret (deletionPolicy Delete) or leaves
 * it without its owner reference (Retain); a finalizer makes both work without a
 * garbage collector.
 */
import { DecryptCommand } from "@aws-sdk/client-kms";
import type { ConditionInput } from "../../api/v1alpha1/conditions.js";
import { keyRefOf } from "../../api/v1alpha1/defaults.js";
import { FINALIZER, type KmsSecret, type KmsSecretStatus } from "../../api/v1alpha1/types.js";
import { KubeApiError, type SecretClient, type SecretObject } from "../../kube/cluster.js";
import {
  openEnvelope,
  parseEnvelope,
  sealingContext,
  SealedValueError,
  type Scope,
} from "../../sealing/sealedValue.js";
import { canonicalJson } from "../canonicalJson.js";
import {
  addFinalizer,
  conditionedStatus,
  readObject,
  reconcileObject,
  recordEvent,
  removeFinalizer,
  splitKey,
  writeStatus,
  type Failure,
  type ReconcileContext,
} from "../context.js";
import { keyRefWatch } from "../keyRef.js";
import { kmsErrorName } from "../kms.js";
import { TerminalError, type Result } from "../runtime/controller.js";
import { decideSecret, desiredSecret, entryFailure, isOwner, ownedBy } from "./decide.js";

/** How often a KmsSecret that cannot be opened (policy, key state) is tried again. */
const WAIT_MS = 60_000;
/** What the API server accepts as a key of a Secret's data. */
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export class KmsSecretReconciler {
  /** Besides its own objects: the KmsKey each refers to. */
  static readonly watches = [keyRefWatch];

  constructor(readonly ctx: ReconcileContext) {}

  readonly reconcile = (key: string): Promise<Result> =>
    reconcileObject(this.ctx, "KmsSecret", key, {
      sync: (obj) => this.#sync(obj),
      finalize: (obj) => this.#finalize(obj),
      failedStatus: (obj, failure, now) => failedStatus(obj, failure, now),
    });

  get #secrets(): SecretClient {
    const secrets = this.ctx.secrets;
    if (!secrets)
      throw new TerminalError("SecretsUnavailable", "This controller has no access to Secrets.");
    return secrets;
  }

  async #sync(initial: KmsSecret): Promise<Result> {
    const ctx = this.ctx;
    const secrets = this.#secrets;
    const obj = await addFinalizer(ctx, "KmsSecret", initial);
    const keyId = await this.#keyId(obj);
    if (!keyId)
      return this.#fail(obj, {
        reason: "KeyNotReady",
        message: `KmsKey ${obj.spec.keyRef?.name} does not exist or has no key yet.`,
      });
    const opened = await this.#open(obj, keyId);
    if ("reason" in opened) return this.#fail(obj, opened);
    const { data, keyArn } = opened;
    try {
      const { namespace, name } = obj.metadata;
      const current = await secrets.getSecret(namespace, name);
      if (current && !ownedBy(current, obj))
        return await this.#fail(obj, {
          reason: "SecretConflict",
          message: `A Secret ${name} that this KmsSecret does not own exists; delete it or rename the KmsSecret.`,
        });
      const desired = desiredSecret(obj, data);
      const action = decideSecret(current, desired);
      if (action === "recreate")
        await secrets.deleteSecret(namespace, name, current!.metadata.uid!);
      if (action === "create" || action === "recreate") await secrets.createSecret(desired);
      if (action === "update")
        await secrets.replaceSecret({
          ...desired,
          metadata: { ...desired.metadata, resourceVersion: current!.metadata.resourceVersion! },
        });
      if (action !== "none")
        await recordEvent(ctx, obj, {
          type: "Normal",
          reason: action === "create" ? "SecretCreated" : "SecretUpdated",
          message: `Secret ${name} ${action === "create" ? "created" : "updated"} with ${data.size} entries.`,
        });
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 403)) throw err;
      return await this.#fail(obj, {
        reason: "SecretForbidden",
        message: `The controller may not manage Secrets in namespace ${obj.metadata.namespace} (RBAC): add it to the chart's controller.kmsSecretNamespaces.`,
      });
    } finally {
      for (const v of data.values()) v.fill(0);
    }
    await this.#setStatus(obj, { keyArn, entries: [...data.keys()] }, [
      { type: "Decrypted", status: "True", reason: "Decrypted", message: "Every entry opened." },
      {
        type: "Ready",
        status: "True",
        reason: "SecretSynced",
        message: `Secret ${obj.metadata.name} is in sync.`,
      },
    ]);
    return { requeueAfter: ctx.driftCheckMs };
  }

  /** The key to decrypt with: a KmsKey's ARN from the cache, or spec.keyId as written. */
  async #keyId(obj: KmsSecret): Promise<string | undefined> {
    const ref = keyRefOf(obj);
    if (!ref) return obj.spec.keyId;
    const [namespace, name] = splitKey(ref);
    const key = await this.ctx.reader.read("KmsKey", namespace, name);
    return key?.metadata.deletionTimestamp ? undefined : key?.status?.arn;
  }

  /** Every entry's plaintext, or the Failure of the first entry (in name order) that does not open. */
  async #open(
    obj: KmsSecret,
    keyId: string,
  ): Promise<{ data: Map<string, Buffer>; keyArn: string } | Failure> {
    const scope: Scope = obj.spec.scope ?? "strict";
    const data = new Map<string, Buffer>();
    let keyArn = keyId;
    const entries = Object.keys(obj.spec.encryptedData ?? {}).sort();
    for (const entry of entries) {
      if (!SECRET_KEY.test(entry))
        return {
          reason: "InvalidEntry",
          message: `Entry ${JSON.stringify(entry.slice(0, 253))} is not a Secret key (letters, digits, '-', '_', '.'; at most 253).`,
        };
      const text = obj.spec.encryptedData[entry]!;
      const context = sealingContext(scope, {
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
        entry,
      });
      try {
        if (!BASE64.test(text)) throw new SealedValueError("not base64");
        const blob = Buffer.from(text, "base64");
        const envelope = parseEnvelope(blob);
        if (envelope) {
          const out = await this.ctx.kms.send(
            new DecryptCommand({
              KeyId: keyId,
              CiphertextBlob: envelope.wrappedKey,
              EncryptionAlgorithm: "RSAES_OAEP_SHA_256",
            }),
          );
          const dataKey = out.Plaintext!;
          try {
            data.set(entry, openEnvelope(envelope, dataKey, context));
          } finally {
            dataKey.fill(0);
          }
          keyArn = out.KeyId ?? keyArn;
        } else {
          const out = await this.ctx.kms.send(
            new DecryptCommand({ KeyId: keyId, CiphertextBlob: blob, EncryptionContext: context }),
          );
          data.set(entry, Buffer.from(out.Plaintext!));
          out.Plaintext!.fill(0);
          keyArn = out.KeyId ?? keyArn;
        }
      } catch (err) {
        const name = err instanceof SealedValueError ? err.name : kmsErrorName(err);
        const failure = entryFailure(entry, keyId, scope, {
          ...(name !== undefined && { name }),
          message: err instanceof Error ? err.message : String(err),
        });
        for (const v of data.values()) v.fill(0);
        if (failure) return failure;
        throw err;
      }
    }
    return { data, keyArn };
  }

  /** Records a failure (Ready and Decrypted False; a Warning Event when it is news) and waits. */
  async #fail(obj: KmsSecret, failure: Failure): Promise<Result> {
    const before = canonicalJson(obj.status ?? {});
    const written = await this.#setStatus(obj, {}, failureConditions(failure));
    if (canonicalJson(written.status ?? {}) !== before)
      await recordEvent(this.ctx, obj, { type: "Warning", ...failure });
    return { requeueAfter: WAIT_MS };
  }

  async #finalize(obj: KmsSecret): Promise<Result> {
    if (!(obj.metadata.finalizers ?? []).includes(FINALIZER)) return {};
    const secrets = this.#secrets;
    const { namespace, name } = obj.metadata;
    const current = await secrets.getSecret(namespace, name);
    if (current && ownedBy(current, obj)) {
      if ((obj.spec.deletionPolicy ?? "Delete") === "Delete")
        await secrets.deleteSecret(namespace, name, current.metadata.uid!);
      else await this.#release(secrets, current, obj);
    }
    await removeFinalizer(this.ctx, "KmsSecret", obj);
    return {};
  }

  /** Retain: the Secret stays, without the owner reference a garbage collector would follow. */
  async #release(secrets: SecretClient, current: SecretObject, obj: KmsSecret): Promise<void> {
    const ownerReferences = (current.metadata.ownerReferences ?? []).filter(
      (r) => !isOwner(r, obj),
    );
    // A 409 (changed meanwhile) goes back to the queue, and the retry reads it again.
    await secrets.replaceSecret({ ...current, metadata: { ...current.metadata, ownerReferences } });
    await recordEvent(this.ctx, obj, {
      type: "Normal",
      reason: "SecretRetained",
      message: `Secret ${obj.metadata.name} kept (deletionPolicy Retain).`,
    });
  }

  async #setStatus(
    obj: KmsSecret,
    fields: Partial<KmsSecretStatus>,
    conditions: ConditionInput[],
  ): Promise<KmsSecret> {
    const fresh =
      (await readObject(this.ctx, "KmsSecret", `${obj.metadata.namespace}/${obj.metadata.name}`)) ??
      obj;
    return writeStatus(
      this.ctx,
      "KmsSecret",
      fresh,
      conditionedStatus(fresh, fields, conditions, this.ctx.timers.now()),
    );
  }
}

const failureConditions = (failure: Failure): ConditionInput[] => [
  { type: "Decrypted", status: "False", ...failure },
  { type: "Ready", status: "False", ...failure },
];

function failedStatus(obj: KmsSecret, failure: Failure, now: Date): KmsSecretStatus {
  return conditionedStatus(obj, {}, failureConditions(failure), now);
}
