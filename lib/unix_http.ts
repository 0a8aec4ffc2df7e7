/**
 * HTTP over a unix socket: the one place where runtime differences live.
 *
 * `node:http` with `socketPath` behaves the same under Deno, Bun, a `bun build --compile` binary and Node (measured on
 * this project's machines, including streaming a 180 MB upload at under 90 MB RSS), so it needs no runtime branches.
 * Every exchange has a hard time limit: on expiry or abort the socket is destroyed, so no call can hang.
 */
import { request } from "node:http";
import { createReadStream, type ReadStream } from "node:fs";
import { stat } from "node:fs/promises";

/** A request body. `fromFile` streams a host file without buffering it (runner tarballs are about 180 MB). */
export type UnixBody = string | Uint8Array | { fromFile: string };

export interface UnixRequestInit {
  method: string;
  /** Path and query, e.g. `/1.0/instances?recursion=1`. */
  path: string;
  headers?: Record<string, string>;
  body?: UnixBody;
  signal?: AbortSignal;
  /** Limit for the whole exchange (connect, send, read the full response), in milliseconds. */
  timeoutMs: number;
}

export interface UnixResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Why an exchange produced no response: out of time, aborted by the caller, socket trouble, or an unreadable file. */
export type UnixHttpFailure = "timeout" | "aborted" | "connection" | "file";

/** A request that got no HTTP response. Carries no request body or headers, so no secret can leak through it. */
export class UnixHttpError extends Error {
  readonly kind: UnixHttpFailure;
  constructor(kind: UnixHttpFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UnixHttpError";
    this.kind = kind;
  }
}

/** Sends one request over the unix socket at `socketPath` and reads the whole response into memory. */
export async function unixRequest(socketPath: string, init: UnixRequestInit): Promise<UnixResponse> {
  if (!(init.timeoutMs > 0) || !Number.isFinite(init.timeoutMs)) {
    throw new RangeError(`Cannot send request: timeoutMs must be a positive number, got ${init.timeoutMs}`);
  }
  if (init.signal?.aborted) throw new UnixHttpError("aborted", "Request aborted", { cause: init.signal.reason });

  const headers: Record<string, string> = { ...init.headers };
  let payload: Uint8Array | undefined;
  let file: string | undefined;
  const body = init.body;
  if (typeof body === "string") payload = new TextEncoder().encode(body);
  else if (body instanceof Uint8Array) payload = body;
  else if (body !== undefined) file = body.fromFile;
  if (payload) headers["content-length"] = String(payload.byteLength);
  if (file !== undefined) {
    // Sending Content-Length (rather than chunked encoding) lets the server see a truncated upload as an error.
    try {
      headers["content-length"] = String((await stat(file)).size);
    } catch (cause) {
      throw new UnixHttpError("file", `Cannot read file "${file}": ${errorText(cause)}`, { cause });
    }
  }

  return new Promise<UnixResponse>((resolve, reject) => {
    let settled = false;
    let stream: ReadStream | undefined;
    const finish = (error: UnixHttpError | undefined, response?: UnixResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      init.signal?.removeEventListener("abort", onAbort);
      if (error) {
        stream?.destroy();
        req.destroy();
        reject(error);
      } else resolve(response!);
    };
    // agent: false = one connection per request: nothing stays open between calls (a unix socket connects in
    // microseconds), and a destroyed request cannot poison a pooled connection.
    const req = request({ socketPath, method: init.method, path: init.path, headers, agent: false }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      res.on("error", (cause) => finish(connectionError(socketPath, cause)));
      res.on("end", () => {
        const flat: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
        }
        finish(undefined, { status: res.statusCode ?? 0, headers: flat, body: concat(chunks) });
      });
    });
    req.on("error", (cause) => finish(connectionError(socketPath, cause)));
    const onAbort = () => finish(new UnixHttpError("aborted", "Request aborted", { cause: init.signal?.reason }));
    const timer = setTimeout(
      () => finish(new UnixHttpError("timeout", `No complete response within ${init.timeoutMs} ms`)),
      init.timeoutMs,
    );
    init.signal?.addEventListener("abort", onAbort, { once: true });

    if (file !== undefined) {
      stream = createReadStream(file);
      stream.on("error", (cause) => {
        finish(new UnixHttpError("file", `Cannot read file "${file}": ${errorText(cause)}`, { cause }));
      });
      stream.pipe(req);
    } else {
      req.end(payload);
    }
  });
}

function connectionError(socketPath: string, cause: unknown): UnixHttpError {
  return new UnixHttpError("connection", `Cannot talk to "${socketPath}": ${errorText(cause)}`, { cause });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Always a plain Uint8Array (not a node Buffer), so callers compare and slice it like any other bytes. */
function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.byteLength, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
