/**
 * Turns a KeyId parameter into a stored key. AWS accepts four forms: key id, key
 * ARN, alias name and alias ARN; management operations take only the first two.
 */
import { kmsError } from "../errors.js";
import type { KeyService } from "../keyService.js";
import type { KeyRecord } from "./keyRecord.js";

/** A key id: a UUID, or `mrk-` and 32 hex digits for a multi-Region key. */
const UUID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const ARN = /^arn:([^:]+):kms:([^:]*):([^:]*):(key\/.+|alias\/.+)$/;

export const isKeyId = (value: string): boolean => UUID.test(value);

export interface ResolveOptions {
  /** Whether alias names and alias ARNs are accepted (crypto operations and DescribeKey). */
  readonly aliases: boolean;
}

export type ParsedKeyIdentifier = { readonly keyId: string } | { readonly aliasName: string };

/** Parses an identifier without touching the store; throws NotFoundException for malformed or foreign ones. */
export function parseKeyIdentifier(
  service: KeyService,
  id: string,
  options: ResolveOptions,
): ParsedKeyIdentifier {
  let resource = id;
  const arn = ARN.exec(id);
  if (arn) {
    const [, partition, region, account, rest] = arn as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (partition !== service.partition || region !== service.region)
      throw kmsError("NotFoundException", `Invalid arn ${region}`);
    if (account !== service.account)
      throw kmsError("NotFoundException", `Key '${id}' does not exist`);
    resource = rest;
    if (resource.startsWith("key/")) resource = resource.slice(4);
  } else if (id.startsWith("arn:")) {
    throw kmsError("NotFoundException", `Invalid keyId '${id}'`);
  }
  if (resource.startsWith("alias/")) {
    if (!options.aliases) {
      throw kmsError(
        "NotFoundException",
        `Invalid keyId '${id}'. This operation takes a key id or key ARN, not an alias.`,
      );
    }
    return { aliasName: resource };
  }
  if (!UUID.test(resource)) throw kmsError("NotFoundException", `Invalid keyId '${id}'`);
  return { keyId: resource };
}

/** The key id in a key id or key ARN (the forms management operations take). */
export function keyIdOf(service: KeyService, id: string): string {
  const parsed = parseKeyIdentifier(service, id, { aliases: false });
  if (!("keyId" in parsed)) throw kmsError("NotFoundException", `Invalid keyId '${id}'`);
  return parsed.keyId;
}

/** Finds the key an identifier names, or throws NotFoundException in AWS's words. */
export async function resolveKey(
  service: KeyService,
  id: string,
  options: ResolveOptions,
): Promise<KeyRecord> {
  const parsed = parseKeyIdentifier(service, id, options);
  let keyId: string;
  if ("aliasName" in parsed) {
    const alias = await service.store.getAlias(parsed.aliasName);
    if (!alias)
      throw kmsError(
        "NotFoundException",
        `Alias ${service.aliasArn(parsed.aliasName)} is not found.`,
      );
    keyId = alias.targetKeyId;
  } else {
    keyId = parsed.keyId;
  }
  const key = await service.store.getKey(keyId);
  if (!key) throw kmsError("NotFoundException", `Key '${service.keyArn(keyId)}' does not exist`);
  return key;
}
