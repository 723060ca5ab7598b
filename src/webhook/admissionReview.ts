/**
 * AdmissionReview v1 for pod CREATE: decode and validate the request, run the pure
 * mutation, answer with a JSON patch built by fast-json-patch's `compare(before, after)`.
 *
 * Every answer is a valid `admission.k8s.io/v1` AdmissionReview carrying the request's
 * uid — including bad requests and unexpected failures (those are refused with a
 * message; failurePolicy decides nothing for them, exactly as for an explicit refusal).
 */
import fastJsonPatch from "fast-json-patch";
import { z } from "zod";
import type { Logger } from "../observability/logger.js";
import {
  ANNOTATIONS,
  NAMESPACE_LABEL,
  isOptedIn,
  mutatePod,
  type InjectionSettings,
  type JsonObject,
} from "./podMutation.js";

const { compare } = fastJsonPatch;

const API_VERSION = "admission.k8s.io/v1";

const jsonObject = z.record(z.string(), z.unknown());

const requestSchema = z.object({
  apiVersion: z.literal(API_VERSION, { error: `apiVersion must be ${API_VERSION}` }),
  kind: z.literal("AdmissionReview", { error: "kind must be AdmissionReview" }),
  request: z.object({
    uid: z.string().min(1),
    kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
    operation: z.string(),
    namespace: z.string().optional(),
    dryRun: z.boolean().optional(),
    object: jsonObject.nullish(),
  }),
});

export interface AdmissionResponse {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: "AdmissionReview";
  readonly response: {
    readonly uid: string;
    readonly allowed: boolean;
    readonly status?: { readonly code: number; readonly message: string };
    readonly patchType?: "JSONPatch";
    readonly patch?: string;
    readonly warnings?: readonly string[];
  };
}

export interface AdmissionOptions {
  readonly settings: InjectionSettings;
  /** The webhook's own namespace: never mutated (no self-injection deadlock). */
  readonly ownNamespace: string;
  /** Namespaces never mutated besides the own one. */
  readonly excludedNamespaces?: readonly string[];
  /**
   * Labels of a namespace, to re-check the opt-in label the namespaceSelector already
   * enforces; `undefined` when unknown (lookup failed): the selector is then trusted.
   */
  readonly namespaceLabels?: (namespace: string) => Promise<Record<string, string> | undefined>;
  readonly logger?: Logger;
}

function answer(
  uid: string,
  response: Omit<AdmissionResponse["response"], "uid">,
): AdmissionResponse {
  return { apiVersion: API_VERSION, kind: "AdmissionReview", response: { uid, ...response } };
}

/** A refusal with a status code and a message the user sees in `kubectl` output. */
export function refusal(uid: string, code: number, message: string): AdmissionResponse {
  return answer(uid, { allowed: false, status: { code, message } });
}

/** Best effort: the uid of a request we cannot otherwise read, so the answer still matches. */
function uidOf(body: unknown): string {
  if (typeof body !== "object" || body === null) return "";
  const request = (body as { request?: unknown }).request;
  if (typeof request !== "object" || request === null) return "";
  const uid = (request as { uid?: unknown }).uid;
  return typeof uid === "string" ? uid : "";
}

/** Handles one AdmissionReview body; never throws. */
export async function reviewAdmission(
  body: Buffer | string,
  options: AdmissionOptions,
): Promise<AdmissionResponse> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    return refusal(
      "",
      400,
      "keyhaven: the request body is not JSON; expected an admission.k8s.io/v1 AdmissionReview",
    );
  }
  const uid = uidOf(parsed);
  try {
    return await review(parsed, uid, options);
  } catch (err) {
    options.logger?.error(
      { uid, err: err instanceof Error ? { name: err.name, message: err.message } : String(err) },
      "admission review failed",
    );
    return refusal(
      uid,
      500,
      "keyhaven: internal error while injecting the pod; see the keyhaven controller logs",
    );
  }
}

async function review(
  body: unknown,
  uid: string,
  options: AdmissionOptions,
): Promise<AdmissionResponse> {
  const decoded = requestSchema.safeParse(body);
  if (!decoded.success) {
    const issue = decoded.error.issues[0]!;
    return refusal(
      uid,
      400,
      `keyhaven: not a valid AdmissionReview v1: ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
  }
  const request = decoded.data.request;
  if (request.kind.kind !== "Pod" || request.kind.group !== "" || request.operation !== "CREATE")
    return answer(uid, { allowed: true });
  const pod = request.object;
  if (!pod) return refusal(uid, 400, "keyhaven: a pod CREATE review without request.object");
  if (!isOptedIn(pod as JsonObject)) return answer(uid, { allowed: true });

  const metadata = (pod["metadata"] ?? {}) as { namespace?: unknown };
  const namespace =
    request.namespace ?? (typeof metadata.namespace === "string" ? metadata.namespace : undefined);
  if (!namespace) return refusal(uid, 400, "keyhaven: the review names no namespace for the pod");
  const excluded = [options.ownNamespace, "kube-system", ...(options.excludedNamespaces ?? [])];
  if (excluded.includes(namespace))
    return answer(uid, {
      allowed: true,
      warnings: [
        `keyhaven: pods in namespace ${namespace} are never injected; ${ANNOTATIONS.inject} ignored`,
      ],
    });
  const labels = options.namespaceLabels ? await options.namespaceLabels(namespace) : undefined;
  if (labels !== undefined && labels[NAMESPACE_LABEL] !== "enabled")
    return answer(uid, {
      allowed: true,
      warnings: [
        `keyhaven: namespace ${namespace} lacks the label ${NAMESPACE_LABEL}=enabled; the pod is admitted without injection`,
      ],
    });

  const result = mutatePod(pod as JsonObject, namespace, options.settings);
  switch (result.kind) {
    case "skip":
      return answer(uid, { allowed: true });
    case "refuse":
      options.logger?.info({ uid, namespace, reason: result.message }, "pod refused");
      return refusal(uid, 403, result.message);
    case "inject": {
      const patch = compare(pod, result.pod);
      return answer(uid, {
        allowed: true,
        ...(patch.length > 0 && {
          patchType: "JSONPatch",
          patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
        }),
        ...(result.warnings.length > 0 && { warnings: result.warnings }),
      });
    }
  }
}
