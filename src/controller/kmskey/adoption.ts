/**
 * Finds the key a KmsKey created earlier, by the keyhaven.dev/uid tag, so a
 * restart between CreateKey and the status write adopts that key instead of
 * creating another. The index is built once (ListKeys + ListResourceTags), only
 * when an object without status.keyId is seen, and kept current as keys are made.
 */
import { ListKeysCommand, ListResourceTagsCommand, type KMSClient } from "@aws-sdk/client-kms";
import { UID_TAG } from "../../api/v1alpha1/types.js";
import { isKmsError } from "../kms.js";

export class KeyAdoptionIndex {
  readonly #kms: KMSClient;
  #byUid: Map<string, string> | undefined;
  #loading: Promise<Map<string, string>> | undefined;

  constructor(kms: KMSClient) {
    this.#kms = kms;
  }

  async find(uid: string): Promise<string | undefined> {
    return (await this.#index()).get(uid);
  }

  remember(uid: string, keyId: string): void {
    this.#byUid?.set(uid, keyId);
  }

  /** After an outcome-unknown CreateKey: the next lookup rescans. */
  invalidate(): void {
    this.#byUid = undefined;
  }

  #index(): Promise<Map<string, string>> {
    if (this.#byUid) return Promise.resolve(this.#byUid);
    this.#loading ??= this.#scan().then(
      (m) => {
        this.#byUid = m;
        this.#loading = undefined;
        return m;
      },
      (err: unknown) => {
        this.#loading = undefined;
        throw err;
      },
    );
    return this.#loading;
  }

  async #scan(): Promise<Map<string, string>> {
    const byUid = new Map<string, string>();
    let marker: string | undefined;
    do {
      const page = await this.#kms.send(
        new ListKeysCommand({ Limit: 1000, ...(marker && { Marker: marker }) }),
      );
      for (const k of page.Keys ?? []) {
        if (!k.KeyId) continue;
        try {
          const tags = await this.#kms.send(new ListResourceTagsCommand({ KeyId: k.KeyId }));
          const uid = tags.Tags?.find((t) => t.TagKey === UID_TAG)?.TagValue;
          if (uid) byUid.set(uid, k.KeyId);
        } catch (err) {
          // A key deleted meanwhile, or one this principal may not read, cannot be ours to adopt.
          if (!isKmsError(err, "NotFoundException", "AccessDeniedException")) throw err;
        }
      }
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return byUid;
  }
}
