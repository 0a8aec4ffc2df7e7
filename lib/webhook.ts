/**
 * GitHub webhook deliveries: signature check and the few payload fields the daemon needs. Pure: no I/O, no clock.
 * Contracts: GitHub docs "Validating webhook deliveries" (X-Hub-Signature-256 = "sha256=" + HMAC-SHA256 hex
 * digest of the raw body, compared in constant time) and "Webhook events and payloads" (X-GitHub-Event names
 * the event; `workflow_job` actions are queued, waiting, in_progress and completed).
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";

/** What a delivery means to the daemon. Webhooks only wake the loop early: a pass still decides everything. */
export type WebhookEvent =
  | {
    kind: "workflow_job";
    action: string;
    jobId: number;
    /** The job's `runs-on` labels. */
    labels: string[];
    /** The runner that took the job; null while queued (GitHub docs, workflow_job properties). */
    runnerName?: string | null;
    /** When the job was created (ISO 8601). */
    createdAt?: string;
    /** When a runner started it; only meaningful on `in_progress` and `completed`. */
    startedAt?: string | null;
  }
  | { kind: "ping" }
  | { kind: "ignored"; event: string };

/** The workflow_job actions the daemon acts on; others (e.g. `waiting` on an environment rule) are acknowledged. */
export const WORKFLOW_JOB_ACTIONS: ReadonlySet<string> = new Set(["queued", "in_progress", "completed"]);

/** A signed delivery whose headers or body are not what GitHub documents. Answered with 400. */
export class WebhookPayloadError extends Error {
  override name = "WebhookPayloadError";
}

const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * True when `header` is GitHub's X-Hub-Signature-256 for `body` under `secret`. False for anything else:
 * a missing header, the legacy `sha1=` form, wrong length, non-hex, or an empty secret (an HMAC under an empty
 * key proves nothing). The digests are compared with timingSafeEqual, never `==` (GitHub's docs insist).
 */
export function verifySignature(secret: string, body: Uint8Array, header: string | null): boolean {
  if (!secret || !header) return false;
  const m = SIGNATURE.exec(header.trim());
  if (!m) return false;
  const given = Buffer.from(m[1], "hex");
  const expected = createHmac("sha256", secret).update(body).digest();
  // Both are 32 bytes here (the pattern fixes 64 hex digits), which timingSafeEqual requires.
  return timingSafeEqual(given, expected);
}

/**
 * Reads a delivery whose signature has been verified. Only `workflow_job` bodies are parsed; `ping` and every
 * other event are recognised by the X-GitHub-Event header alone. Throws WebhookPayloadError, never a raw
 * SyntaxError or TypeError, when a workflow_job body lacks what the docs promise.
 */
export function parseWebhook(event: string | null, body: Uint8Array): WebhookEvent {
  if (!event) throw new WebhookPayloadError("The X-GitHub-Event header is missing");
  if (event === "ping") return { kind: "ping" };
  if (event !== "workflow_job") return { kind: "ignored", event };

  const payload = decode(body);
  const job = payload.workflow_job;
  if (typeof payload.action !== "string") throw bad("no action");
  if (!isObject(job)) throw bad("no workflow_job object");
  if (typeof job.id !== "number" || !Number.isSafeInteger(job.id)) throw bad("workflow_job.id is not an integer");
  if (!Array.isArray(job.labels) || !job.labels.every((l) => typeof l === "string")) {
    throw bad("workflow_job.labels is not a list of strings");
  }
  return {
    kind: "workflow_job",
    action: payload.action,
    jobId: job.id,
    labels: job.labels as string[],
    runnerName: optional(job.runner_name, "runner_name"),
    createdAt: optional(job.created_at, "created_at") ?? undefined,
    startedAt: optional(job.started_at, "started_at"),
  };
}

/**
 * How long a job waited for a runner, from an `in_progress` delivery: started_at - created_at, in seconds.
 * Undefined for other actions (a `queued` delivery carries a started_at too, but no runner has it yet) and for
 * missing or inconsistent times.
 */
export function jobWaitSeconds(e: WebhookEvent): number | undefined {
  if (e.kind !== "workflow_job" || e.action !== "in_progress" || !e.createdAt || !e.startedAt) return undefined;
  const wait = (Date.parse(e.startedAt) - Date.parse(e.createdAt)) / 1000;
  return Number.isFinite(wait) && wait >= 0 ? wait : undefined;
}

/**
 * The JSON object of a body. A webhook configured with content type application/x-www-form-urlencoded sends the
 * same JSON as the form field `payload` (GitHub docs, "Creating webhooks"); the signature covers the raw body
 * either way. JSON never starts with "payload=", so the body alone tells the two apart.
 */
function decode(body: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw bad("the body is not UTF-8");
  }
  if (text.startsWith("payload=")) text = new URLSearchParams(text).get("payload") ?? "";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw bad(`the body is not JSON (${(e as Error).message})`);
  }
  if (!isObject(value)) throw bad("the body is not a JSON object");
  return value;
}

function optional(value: unknown, field: string): string | null | undefined {
  if (value === undefined || value === null || typeof value === "string") return value;
  throw bad(`workflow_job.${field} is not a string`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(problem: string): WebhookPayloadError {
  return new WebhookPayloadError(`Cannot read the workflow_job delivery: ${problem}`);
}
