/**
 * Requests and operations against LXD's REST API, each inside one client call's deadline.
 *
 * LXD REST API ("Return values", "Operations"): a sync request answers 200 with `metadata`; an async one answers
 * 202 with an operation, followed here with `GET /1.0/operations/<id>/wait?timeout=N` until it is final.
 * Measured on 5.0.2: when N runs out LXD answers 200 with the operation still "Running"; a finished operation
 * disappears a few seconds later (404 "Operation not found").
 */
import { type UnixBody, UnixHttpError, unixRequest, type UnixResponse } from "./unix_http.ts";
import { decodeAnswer, decodeOperation, isFinal, LxdError, type LxdOperation, requireSuccess } from "./lxd_wire.ts";

/** One client call: its label for errors, its deadline (performance.now() based) and the caller's signal. */
export interface Call {
  operation: string;
  signal?: AbortSignal;
  timeoutMs: number;
  deadline: number;
  /** The LXD operation being waited for, if any: a timeout then means "still running", not "no answer". */
  waitingFor?: string;
}

export interface Request {
  method: string;
  /** Path and query; the client's project is appended. */
  path: string;
  /** Sent as JSON. Never copied into an error message (it may hold secrets). */
  json?: unknown;
  body?: UnixBody;
  headers?: Record<string, string>;
}

/** Starts a call's clock. */
export function startCall(operation: string, timeoutMs: number, signal?: AbortSignal): Call {
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
    throw new RangeError(`Cannot ${operation}: timeoutMs must be positive, got ${timeoutMs}`);
  }
  return { operation, signal, timeoutMs, deadline: performance.now() + timeoutMs };
}

/** What is left of a call's time, as options for a nested call. */
export function remaining(call: Call): { signal?: AbortSignal; timeoutMs: number } {
  return { signal: call.signal, timeoutMs: Math.max(1, call.deadline - performance.now()) };
}

export const GONE = Symbol("gone");

/** For `.catch(gone)`: maps LXD's 404 to GONE and rethrows everything else. */
export function gone(e: unknown): typeof GONE {
  if (e instanceof LxdError && e.status === 404) return GONE;
  throw e;
}

export class LxdConnection {
  readonly #socketPath: string;
  readonly #project?: string;

  constructor(socketPath: string, project?: string) {
    this.#socketPath = socketPath;
    this.#project = project;
  }

  /** One HTTP exchange within the call's deadline; no answer at all becomes LxdError status 0. */
  async request(call: Call, req: Request): Promise<UnixResponse> {
    const left = call.deadline - performance.now();
    if (left <= 0) throw timedOut(call);
    const headers = { ...req.headers };
    let body = req.body;
    if (req.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(req.json);
    }
    const path = this.#project
      ? `${req.path}${req.path.includes("?") ? "&" : "?"}project=${encodeURIComponent(this.#project)}`
      : req.path;
    try {
      return await unixRequest(this.#socketPath, {
        method: req.method,
        path,
        headers,
        body,
        signal: call.signal,
        timeoutMs: left,
      });
    } catch (e) {
      if (!(e instanceof UnixHttpError)) throw e;
      if (e.kind === "timeout") throw timedOut(call, e);
      const detail = e.kind === "aborted" ? "the request was aborted" : e.message;
      throw new LxdError(call.operation, 0, detail, { cause: e });
    }
  }

  /** A raw (non-JSON) answer such as file content; an LXD error envelope still becomes LxdError. */
  async raw(call: Call, req: Request): Promise<UnixResponse> {
    const res = await this.request(call, req);
    if (res.status >= 400) decodeAnswer(call.operation, res);
    return res;
  }

  /** A sync request; returns its metadata. */
  async sync(call: Call, req: Request): Promise<unknown> {
    const answer = decodeAnswer(call.operation, await this.request(call, req));
    if (answer.type !== "sync") throw new LxdError(call.operation, 0, "LXD answered asynchronously to a sync request");
    return answer.metadata;
  }

  /**
   * Sends a request that starts an operation and waits until it is final. Throws LxdError carrying the
   * operation's `err` unless it succeeded; with `mustSucceed` false the caller inspects the failed operation.
   */
  async operation(call: Call, req: Request, mustSucceed = true): Promise<LxdOperation> {
    const answer = decodeAnswer(call.operation, await this.request(call, req));
    if (answer.type === "sync") return { id: "", status: "Success", statusCode: 200, err: "", metadata: {} };
    let op = answer.operation;
    call = { ...call, waitingFor: op.id };
    while (!isFinal(op)) {
      // Bound the server-side wait too, and ask again until our own deadline. At least 1 s per round, so this
      // never spins; in the last second the HTTP timeout ends the wait.
      const waitS = Math.max(1, Math.min(60, Math.floor((call.deadline - performance.now()) / 1000)));
      const path = `/1.0/operations/${encodeURIComponent(op.id)}/wait?timeout=${waitS}`;
      const next = decodeAnswer(call.operation, await this.request(call, { method: "GET", path }));
      op = decodeOperation(call.operation, next.type === "sync" ? next.metadata : next.operation);
    }
    return mustSucceed ? requireSuccess(call.operation, op) : op;
  }
}

function timedOut(call: Call, cause?: unknown): LxdError {
  const detail = call.waitingFor
    // An operation we stopped waiting for may still complete inside LXD: the next reconcile pass re-observes.
    ? `LXD operation ${call.waitingFor} did not finish within ${call.timeoutMs} ms (it may still complete)`
    : `LXD did not answer within ${call.timeoutMs} ms`;
  return new LxdError(call.operation, 0, detail, { cause });
}
