/**
 * The daemon's HTTP listener. `makeHandler` is a plain `(Request) => Promise<Response>` (hono style), tested
 * without a socket; `serve` is a thin node:http adapter, because node:http behaves the same under Deno, Bun and
 * the compiled binary while Deno.serve and Bun.serve exist in one runtime each.
 *
 *   GET  /metrics  Prometheus text exposition format (lib/metrics.ts)
 *   GET  /healthz  liveness: 200 or 503, JSON detail
 *   GET  /readyz   readiness: 200 or 503, JSON detail
 *   POST /webhook  GitHub deliveries (lib/webhook.ts); 404 unless a webhook secret is configured
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics.ts";
import {
  parseWebhook,
  verifySignature,
  type WebhookEvent,
  WebhookPayloadError,
  WORKFLOW_JOB_ACTIONS,
} from "./webhook.ts";
import { type Logger, logger } from "./log.ts";

export type Handler = (req: Request) => Promise<Response>;
export type WorkflowJobEvent = Extract<WebhookEvent, { kind: "workflow_job" }>;

export interface Health {
  /** The loop runs and its last pass is recent: false makes /healthz answer 503 (restart me). */
  alive: boolean;
  /** Ready for work (e.g. a first pass has completed): false makes /readyz answer 503. */
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface HandlerDeps {
  metrics: Metrics;
  health: () => Health;
  /** The webhook's secret. Without one /webhook answers 404: unsigned deliveries are never trusted. */
  webhookSecret?: string;
  /**
   * Larger bodies get 413. Default 1 MiB: GitHub caps payloads at 25 MB (docs, "Webhook events and payloads"),
   * but a workflow_job delivery is a few KB, and nothing is verified before the whole body is read.
   */
  maxBodyBytes?: number;
  /** A verified queued, in_progress or completed job. Should only wake the loop: it runs inside the request. */
  onWorkflowJob: (e: WorkflowJobEvent) => void;
  log?: Logger;
}

const MIB = 1024 * 1024;

export function makeHandler(deps: HandlerDeps): Handler {
  const log = deps.log ?? logger("http");
  const maxBody = deps.maxBodyBytes ?? MIB;
  if (!(Number.isSafeInteger(maxBody) && maxBody > 0)) throw new RangeError(`maxBodyBytes must be > 0: ${maxBody}`);

  const routes: Record<string, { method: string; run: (req: Request) => Promise<Response> }> = {
    "/metrics": {
      method: "GET",
      run: async () => new Response(await deps.metrics.render(), { headers: plain(deps.metrics.contentType) }),
    },
    "/healthz": { method: "GET", run: () => Promise.resolve(health(deps.health(), "alive")) },
    "/readyz": { method: "GET", run: () => Promise.resolve(health(deps.health(), "ready")) },
    "/webhook": { method: "POST", run: (req) => webhook(req, deps, deps.webhookSecret!, maxBody, log) },
  };

  return async (req) => {
    const path = new URL(req.url).pathname;
    const route = routes[path];
    if (!route || (path === "/webhook" && !deps.webhookSecret)) return text(404, "Not found");
    if (req.method !== route.method) {
      return text(405, `Method not allowed: use ${route.method}`, { allow: route.method });
    }
    try {
      return await route.run(req);
    } catch (e) {
      log.error("Cannot answer {method} {path}: {error}", { method: req.method, path, error: (e as Error).message });
      return text(500, "Internal error");
    }
  };
}

function health(h: Health, key: "alive" | "ready"): Response {
  const body = JSON.stringify({ ...h.detail, alive: h.alive, ready: h.ready });
  return new Response(body + "\n", { status: h[key] ? 200 : 503, headers: plain("application/json") });
}

async function webhook(req: Request, deps: HandlerDeps, secret: string, max: number, log: Logger): Promise<Response> {
  // The delivery GUID helps find a delivery in the webhook's settings; it is the sender's text, so sanitised.
  const delivery = (req.headers.get("x-github-delivery") ?? "").replace(/[^\w-]/g, "").slice(0, 64);
  const reject = (status: number, why: string) => {
    deps.metrics.observeWebhook("rejected");
    log.warning("Rejected webhook delivery {delivery}: {why}", { delivery, why });
    return text(status, why);
  };
  const body = await readCapped(req, max);
  if (!body) return reject(413, `Payload too large: the limit is ${max} bytes`);
  // Nothing from an unverified body is looked at, logged or acted on.
  if (!verifySignature(secret, body, req.headers.get("x-hub-signature-256"))) {
    return reject(401, "Bad or missing X-Hub-Signature-256");
  }
  let event: WebhookEvent;
  try {
    event = parseWebhook(req.headers.get("x-github-event"), body);
  } catch (e) {
    if (e instanceof WebhookPayloadError) return reject(400, e.message);
    throw e;
  }
  if (event.kind === "workflow_job" && WORKFLOW_JOB_ACTIONS.has(event.action)) {
    deps.onWorkflowJob(event);
    deps.metrics.observeWebhook("accepted");
    return text(202, "Accepted");
  }
  deps.metrics.observeWebhook("ignored");
  // GitHub sends `ping` when a webhook is created; 2xx shows it as delivered in the webhook's settings.
  if (event.kind === "ping") return text(200, "pong");
  return text(202, "Ignored");
}

/**
 * The body, or null when it is larger than `max`. Content-Length is checked before reading anything; a body
 * without one (chunked) or lying about it is read only up to the limit, then the stream is cancelled.
 */
export async function readCapped(req: Request, max: number): Promise<Uint8Array | null> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await req.body?.cancel().catch(() => {});
    return null;
  }
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function text(status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(message + "\n", { status, headers: { ...plain("text/plain; charset=utf-8"), ...headers } });
}

function plain(contentType: string): Record<string, string> {
  return { "content-type": contentType, "cache-control": "no-store" };
}

export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** A client must send its headers within this. Default 10 s. */
  headersTimeoutMs?: number;
  /** A client must send its whole request within this. Default 30 s. */
  requestTimeoutMs?: number;
  log?: Logger;
}

export interface Listener {
  /** e.g. http://127.0.0.1:9464 */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `handler` with node:http. The timeouts answer 408 and close the socket, so a slow client cannot hold a
 * connection forever; node only checks them every `connectionsCheckingInterval` (default 30 s), set here to a
 * fraction of the headers timeout. Measured: Node 20, Deno 2.9 and Bun 1.4 all enforce both.
 */
export async function serve(handler: Handler, opts: ServeOptions): Promise<Listener> {
  const log = opts.log ?? logger("http");
  const headersTimeout = opts.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(opts.requestTimeoutMs ?? 30_000, headersTimeout);
  const server = createServer({
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
  }, (req, res) => void respond(handler, req, res, log));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`Cannot listen on ${opts.hostname}:${opts.port}: ${e.message}`)));
    server.listen(opts.port, opts.hostname, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function respond(handler: Handler, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const fail = (status: number, e: unknown) => {
    log.error("Cannot answer {method} {url}: {error}", { method: req.method, url: req.url, error: String(e) });
    if (!res.headersSent) res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    res.end(status === 400 ? "Bad request\n" : "Internal error\n");
  };
  let request: Request;
  try {
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    // Only the path matters to the handler; the Host header is the client's to choose, so it is not used.
    request = new Request(new URL(req.url ?? "/", "http://localhost"), {
      method: req.method,
      headers,
      body: hasBody ? bodyOf(req) : undefined,
      duplex: "half",
    } as RequestInit);
  } catch (e) {
    return fail(400, e);
  }
  try {
    const response = await handler(request);
    const body = new Uint8Array(await response.arrayBuffer());
    // The handler stopped reading (413): close rather than drain the rest of the body.
    if (!req.complete) res.setHeader("connection", "close");
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(body);
  } catch (e) {
    fail(500, e);
  }
}

/** A node request body as a web stream, with backpressure: node reads on only when the handler pulls. */
function bodyOf(req: IncomingMessage): ReadableStream<Uint8Array> {
  let finished = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const finish = (f: () => void) => {
        if (!finished) (finished = true, f());
      };
      req.on("data", (chunk: Uint8Array) => {
        if (finished) return;
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 0) <= 0) req.pause();
      });
      req.on("end", () => finish(() => controller.close()));
      req.on("error", (e) => finish(() => controller.error(e)));
      req.on("close", () => finish(() => controller.error(new Error("The client closed the connection"))));
    },
    pull() {
      req.resume();
    },
    cancel() {
      finished = true;
      req.pause();
    },
  });
}
