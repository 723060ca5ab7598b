/**
 * Request decoding and response encoding driven by botocore's KMS service model
 * (vendored by scripts/vendor-kms-model.mjs). Every constraint the model states
 * (required members, lengths, ranges, enums, patterns) is checked here, with the
 * messages AWS's own validation layer uses, so operation handlers start from input
 * that already has the model's shape: blobs as Buffers, timestamps as Dates.
 */
import modelJson from "./kms-model.json" with { type: "json" };
import { kmsError, validationError } from "../errors.js";
import { checkEncryptionContextSize } from "../limits.js";

interface MemberRef {
  shape: string;
}
interface ShapeDef {
  type:
    | "structure"
    | "list"
    | "map"
    | "string"
    | "blob"
    | "integer"
    | "long"
    | "boolean"
    | "timestamp"
    | "double";
  members?: Record<string, MemberRef>;
  required?: string[];
  member?: MemberRef;
  key?: MemberRef;
  value?: MemberRef;
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  sensitive?: boolean;
}
interface OperationDef {
  input?: MemberRef;
  output?: MemberRef;
}
interface ServiceModel {
  operations: Record<string, OperationDef>;
  shapes: Record<string, ShapeDef>;
}

const model = modelJson as unknown as ServiceModel;

/**
 * Where Keyhaven accepts more than AWS: an XKS proxy's endpoint may name a port
 * (https://host:8443), since a proxy in a cluster rarely has 443 to itself.
 */
const patternOverrides: Readonly<Record<string, string>> = {
  XksProxyUriEndpointType: "^https://[a-zA-Z0-9.-]+(:[0-9]{1,5})?$",
};

/** An operation of the model by a caller-supplied name (own properties only: never `constructor`). */
const operationDef = (name: string): OperationDef | undefined =>
  Object.hasOwn(model.operations, name) ? model.operations[name] : undefined;

export const modelledOperations: ReadonlySet<string> = new Set(Object.keys(model.operations));

type Problems = string[];
type Decoder = (value: unknown, path: string, problems: Problems) => unknown;
type Encoder = (value: unknown) => unknown;

const decoders = new Map<string, Decoder>();
const encoders = new Map<string, Encoder>();

function shapeOf(name: string): ShapeDef {
  const shape = model.shapes[name];
  if (!shape) throw new Error(`KMS model has no shape ${name}`);
  return shape;
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

function describe(value: unknown, shape: ShapeDef): string {
  if (shape.sensitive || (typeof value !== "string" && typeof value !== "number")) return "Value";
  return `Value '${value}'`;
}

function checkLength(
  length: number,
  value: unknown,
  shape: ShapeDef,
  path: string,
  problems: Problems,
): void {
  if (shape.min !== undefined && length < shape.min) {
    problems.push(
      `${describe(value, shape)} at '${path}' failed to satisfy constraint: Member must have length greater than or equal to ${shape.min}`,
    );
  }
  if (shape.max !== undefined && length > shape.max) {
    problems.push(
      `${describe(value, shape)} at '${path}' failed to satisfy constraint: Member must have length less than or equal to ${shape.max}`,
    );
  }
}

function serializationError(path: string, expected: string): never {
  throw kmsError("SerializationException", `Expected ${expected} at '${path}'.`);
}

const LONE_SURROGATE = /\p{Cs}/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function compileDecoder(name: string): Decoder {
  const cached = decoders.get(name);
  if (cached) return cached;
  // Placeholder first, so that a recursive shape refers to itself lazily.
  const slot: { decode?: Decoder } = {};
  decoders.set(name, (v, p, pr) => slot.decode!(v, p, pr));
  const shape = shapeOf(name);
  const decode = buildDecoder(
    Object.hasOwn(patternOverrides, name)
      ? Object.assign({}, shape, { pattern: patternOverrides[name]! })
      : shape,
  );
  // The model states no size for an encryption context; Keyhaven bounds it (limits.ts).
  slot.decode =
    name === "EncryptionContextType"
      ? (v, p, pr) => {
          const context = decode(v, p, pr) as Record<string, string>;
          checkEncryptionContextSize(context, p);
          return context;
        }
      : decode;
  decoders.set(name, slot.decode);
  return slot.decode;
}

function buildDecoder(shape: ShapeDef): Decoder {
  switch (shape.type) {
    case "structure": {
      const members = Object.entries(shape.members ?? {}).map(([member, ref]) => ({
        member,
        wire: lowerFirst(member),
        decode: compileDecoder(ref.shape),
        required: shape.required?.includes(member) ?? false,
      }));
      return (value, path, problems) => {
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          serializationError(path || "request", "an object");
        }
        const input = value as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const m of members) {
          const memberPath = path ? `${path}.${m.wire}` : m.wire;
          const v = input[m.member];
          if (v === undefined || v === null) {
            if (m.required)
              problems.push(
                `Value null at '${memberPath}' failed to satisfy constraint: Member must not be null`,
              );
            continue;
          }
          out[m.member] = m.decode(v, memberPath, problems);
        }
        return out;
      };
    }
    case "list": {
      const decodeMember = compileDecoder(shape.member!.shape);
      return (value, path, problems) => {
        if (!Array.isArray(value)) serializationError(path, "a list");
        checkLength(value.length, value, shape, path, problems);
        return value.map((v, i) => decodeMember(v, `${path}.${i + 1}.member`, problems));
      };
    }
    case "map": {
      const decodeKey = compileDecoder(shape.key!.shape);
      const decodeValue = compileDecoder(shape.value!.shape);
      return (value, path, problems) => {
        if (typeof value !== "object" || value === null || Array.isArray(value))
          serializationError(path, "a map");
        const out: Record<string, unknown> = {};
        const entries = Object.entries(value as Record<string, unknown>);
        checkLength(entries.length, value, shape, path, problems);
        for (const [k, v] of entries) {
          const key = decodeKey(k, `${path}.${k}.key`, problems) as string;
          if (v === null || v === undefined) serializationError(`${path}.${k}`, "a value");
          // defineProperty, not assignment: `out["__proto__"] = "x"` would be silently dropped,
          // making {"__proto__":"x"} the same encryption context as {}.
          Object.defineProperty(out, key, {
            value: decodeValue(v, `${path}.${k}.value`, problems),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      };
    }
    case "string": {
      const pattern =
        shape.pattern !== undefined
          ? new RegExp(
              shape.pattern.startsWith("^") ? shape.pattern : `^(?:${shape.pattern})$`,
              "u",
            )
          : undefined;
      const allowed = shape.enum ? new Set(shape.enum) : undefined;
      return (value, path, problems) => {
        if (typeof value !== "string") serializationError(path, "a string");
        // A lone surrogate ("\ud800" in JSON) has no UTF-8 form: it would encode as U+FFFD,
        // so two different encryption contexts could authenticate alike.
        if (LONE_SURROGATE.test(value)) serializationError(path, "well-formed Unicode text");
        if (allowed && !allowed.has(value)) {
          problems.push(
            `${describe(value, shape)} at '${path}' failed to satisfy constraint: Member must satisfy enum value set: [${shape.enum!.join(", ")}]`,
          );
          return value;
        }
        checkLength(value.length, value, shape, path, problems);
        if (pattern && value.length > 0 && !pattern.test(value)) {
          problems.push(
            `${describe(value, shape)} at '${path}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${shape.pattern}`,
          );
        }
        return value;
      };
    }
    case "blob":
      return (value, path, problems) => {
        if (typeof value !== "string") serializationError(path, "a base64-encoded blob");
        const bytes = Buffer.from(value, "base64");
        // Canonical base64 re-encodes to itself (cheaper than the pattern on a 4 KiB blob);
        // anything else must still match the pattern.
        if (bytes.toString("base64") !== value && !BASE64.test(value))
          serializationError(path, "a base64-encoded blob");
        checkLength(bytes.length, bytes, shape, path, problems);
        return bytes;
      };
    case "integer":
    case "long":
      return (value, path, problems) => {
        if (typeof value !== "number" || !Number.isInteger(value))
          serializationError(path, "an integer");
        if (shape.min !== undefined && value < shape.min) {
          problems.push(
            `${describe(value, shape)} at '${path}' failed to satisfy constraint: Member must have value greater than or equal to ${shape.min}`,
          );
        }
        if (shape.max !== undefined && value > shape.max) {
          problems.push(
            `${describe(value, shape)} at '${path}' failed to satisfy constraint: Member must have value less than or equal to ${shape.max}`,
          );
        }
        return value;
      };
    case "double":
      return (value, path) =>
        typeof value === "number" ? value : serializationError(path, "a number");
    case "boolean":
      return (value, path) =>
        typeof value === "boolean" ? value : serializationError(path, "a boolean");
    case "timestamp":
      return (value, path) => {
        if (typeof value !== "number" || !Number.isFinite(value))
          serializationError(path, "a timestamp in epoch seconds");
        return new Date(value * 1000);
      };
  }
}

function compileEncoder(name: string): Encoder {
  const cached = encoders.get(name);
  if (cached) return cached;
  const slot: { encode?: Encoder } = {};
  encoders.set(name, (v) => slot.encode!(v));
  slot.encode = buildEncoder(shapeOf(name));
  encoders.set(name, slot.encode);
  return slot.encode;
}

const identity: Encoder = (v) => v;

function buildEncoder(shape: ShapeDef): Encoder {
  switch (shape.type) {
    case "structure": {
      const members = Object.entries(shape.members ?? {}).map(
        ([member, ref]) => [member, compileEncoder(ref.shape)] as const,
      );
      return (value) => {
        const input = value as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const [member, encode] of members) {
          const v = input[member];
          if (v !== undefined && v !== null) out[member] = encode(v);
        }
        return out;
      };
    }
    case "list": {
      const encodeMember = compileEncoder(shape.member!.shape);
      return encodeMember === identity
        ? identity
        : (value) => (value as unknown[]).map(encodeMember);
    }
    case "map": {
      const encodeValue = compileEncoder(shape.value!.shape);
      return encodeValue === identity
        ? identity
        : (value) =>
            Object.fromEntries(
              Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, encodeValue(v)]),
            );
    }
    case "blob":
      return (value) => {
        // A view, not Buffer.from(bytes), which would copy every blob once more.
        const bytes = value as Uint8Array;
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
      };
    case "timestamp":
      return (value) => (value as Date).getTime() / 1000;
    default:
      return identity;
  }
}

/** Decodes and validates an operation's JSON input; throws SerializationException or ValidationException. */
/** The prefix of Keyhaven's own operations (between instances), e.g. KeyhavenSyncReplica. */
export const KEYHAVEN_OPERATION = "Keyhaven";

export function decodeInput(operation: string, body: unknown): Record<string, unknown> {
  // Keyhaven's own peering calls are not in AWS's model; their handlers validate the body.
  if (operation.startsWith(KEYHAVEN_OPERATION))
    return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const ref = operationDef(operation)?.input;
  if (!ref) return {};
  const problems: Problems = [];
  const decoded = compileDecoder(ref.shape)(body, "", problems) as Record<string, unknown>;
  if (problems.length > 0) throw validationError(problems);
  return decoded;
}

/** Encodes an operation's output for the wire: blobs to base64, timestamps to epoch seconds. */
export function encodeOutput(operation: string, output: unknown): unknown {
  if (operation.startsWith(KEYHAVEN_OPERATION)) return output;
  const ref = operationDef(operation)?.output;
  if (!ref) return {};
  return compileEncoder(ref.shape)(output);
}
