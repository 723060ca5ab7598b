/** Opaque pagination markers: the position after the last item returned, base64url-encoded. */
import { kmsError } from "../../errors.js";

export const encodeMarker = (position: string): string =>
  Buffer.from(position, "utf8").toString("base64url");

export function decodeMarker(marker: string | undefined): string | undefined {
  if (marker === undefined) return undefined;
  if (!/^[A-Za-z0-9_-]+$/.test(marker)) {
    throw kmsError(
      "InvalidMarkerException",
      "The marker that specifies where pagination should next begin is not valid.",
    );
  }
  return Buffer.from(marker, "base64url").toString("utf8");
}

/** The Truncated/NextMarker pair of a paginated response. */
export const pageEnd = (next: string | undefined): { Truncated: boolean; NextMarker?: string } =>
  next === undefined ? { Truncated: false } : { Truncated: true, NextMarker: encodeMarker(next) };
