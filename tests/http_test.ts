/** The HTTP handler, called directly (no socket), plus one round trip through serve() on 127.0.0.1. */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { connect } from "node:net";
import { getMetricsFromIterator } from "prom2javascript";
import { type Health, makeHandler, serve, type WorkflowJobEvent } from "../lib/http.ts";
import { parseListen } from "../lib/config.ts";
import { Metrics } from "../lib/metrics.ts";
import { ConfigError } from "../lib/errors.ts";

const SECRET = "webhook-secret";
const sign = (body: string, secret = SECRET) => "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
const job = (action: string) =>
  JSON.stringify({
    action,
    workflow_job: { id: 7, labels: ["self-hosted"], created_at: "2026-01-01T00:00:00Z", runner_name: null },
  });

function setup(over: { secret?: string | null; health?: Health; maxBodyBytes?: number; throws?: boolean } = {}) {
  const metrics = new Metrics();
  const jobs: WorkflowJobEvent[] = [];
  const handler = makeHandler({
    metrics,
    health: () => over.health ?? { alive: true, ready: true, detail: { lastPass: "2026-01-01T00:00:00Z" } },
    webhookSecret: over.secret === null ? undefined : over.secret ?? SECRET,
    maxBodyBytes: over.maxBodyBytes,
    onWorkflowJob: (e) => {
      if (over.throws) throw new Error("loop gone");
      jobs.push(e);
    },
  });
  return { metrics, jobs, handler };
}

const get = (path: string, method = "GET") => new Request(`http://x${path}`, { method });
function post(body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) {
  return new Request("http://x/webhook", { method: "POST", body, headers, duplex: "half" } as RequestInit);
}
const delivery = (event: string, body: string, signature = sign(body)) =>
  post(body, { "x-github-event": event, "x-hub-signature-256": signature, "content-type": "application/json" });

async function sample(text: string, name: string, labels: Record<string, string> = {}) {
  const families = await getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
  const data = families[name]?.data as { labels: Record<string, string>; value: number }[] | undefined;
  return data?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

Deno.test("http: /metrics serves the Prometheus text format with what was observed", async () => {
  const { metrics, handler } = setup();
  metrics.observeGithubResponse({ method: "GET", route: "/orgs/acme/actions/runners", status: 304 });
  const res = await handler(get("/metrics"));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.equal(await sample(text, "github_runner_github_not_modified_total"), 1);
});

Deno.test("http: /healthz and /readyz answer 200 or 503 with JSON detail", async () => {
  let res = await setup().handler(get("/healthz"));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { alive: true, ready: true, lastPass: "2026-01-01T00:00:00Z" });
  const { handler } = setup({ health: { alive: true, ready: false, detail: { reason: "no pass yet" } } });
  res = await handler(get("/healthz"));
  assert.equal(res.status, 200);
  await res.body?.cancel();
  res = await handler(get("/readyz"));
  assert.equal(res.status, 503);
  assert.equal((await res.json()).reason, "no pass yet");
  res = await setup({ health: { alive: false, ready: false, detail: {} } }).handler(get("/healthz"));
  assert.equal(res.status, 503);
  await res.body?.cancel();
});

Deno.test("http: unknown paths 404, wrong methods 405 with Allow", async () => {
  const { handler } = setup();
  const cases: [Request, number, string | null][] = [
    [get("/"), 404, null],
    [get("/metrics/x"), 404, null],
    [get("/metrics", "POST"), 405, "GET"],
    [get("/webhook"), 405, "POST"],
  ];
  for (const [req, status, allow] of cases) {
    const res = await handler(req);
    await res.body?.cancel();
    assert.equal(res.status, status, `${req.method} ${req.url}`);
    assert.equal(res.headers.get("allow"), allow);
  }
});

Deno.test("http: a verified workflow_job is accepted and handed on; ping 200; others acknowledged", async () => {
  const { metrics, jobs, handler } = setup();
  const responses = [
    await handler(delivery("workflow_job", job("queued"))),
    await handler(delivery("workflow_job", job("in_progress"))),
    await handler(delivery("workflow_job", job("waiting"))),
    await handler(delivery("ping", JSON.stringify({ zen: "Keep it logically awesome." }))),
    await handler(delivery("push", JSON.stringify({ ref: "refs/heads/main" }))),
  ];
  assert.deepEqual(responses.map((r) => r.status), [202, 202, 202, 200, 202]);
  await Promise.all(responses.map((r) => r.body?.cancel()));
  assert.deepEqual(jobs.map((j) => [j.action, j.jobId, j.labels]), [
    ["queued", 7, ["self-hosted"]],
    ["in_progress", 7, ["self-hosted"]],
  ]);
  const text = await metrics.render();
  assert.equal(await sample(text, "github_runner_webhooks_total", { result: "accepted" }), 2);
  assert.equal(await sample(text, "github_runner_webhooks_total", { result: "ignored" }), 3);
});

Deno.test("http: a forged webhook gets 401 and changes nothing but the rejected counter", async () => {
  const { metrics, jobs, handler } = setup();
  const body = job("queued");
  const before = await metrics.render();
  const forged = [
    delivery("workflow_job", body, sign(body, "guessed")),
    delivery("workflow_job", job("completed"), sign(body)),
    post(body, { "x-github-event": "workflow_job" }),
    delivery("workflow_job", body, "sha1=" + createHmac("sha1", SECRET).update(body).digest("hex")),
    delivery("workflow_job", body, "sha256=not-hex-at-all"),
    delivery("ping", "{}", "sha256=" + "0".repeat(64)),
  ];
  for (const req of forged) {
    const res = await handler(req);
    assert.equal(res.status, 401);
    await res.body?.cancel();
  }
  assert.deepEqual(jobs, []);
  const after = await metrics.render();
  const rejected = /^github_runner_webhooks_total\{result="rejected"\} .*$/m;
  assert.equal(after.replace(rejected, ""), before.replace(rejected, ""));
  assert.equal(await sample(after, "github_runner_webhooks_total", { result: "rejected" }), forged.length);
});

Deno.test("http: without a webhook secret /webhook does not exist", async () => {
  const { jobs, handler } = setup({ secret: null });
  const res = await handler(delivery("workflow_job", job("queued")));
  assert.equal(res.status, 404);
  await res.body?.cancel();
  assert.deepEqual(jobs, []);
});

Deno.test("http: oversized bodies get 413, refused by Content-Length or cut off while reading", async () => {
  const { jobs, handler } = setup({ maxBodyBytes: 1024 });
  let pulled = 0;
  const endless = () =>
    new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(256));
      },
    });
  let res = await handler(post(endless(), { "content-length": "5000000", "x-github-event": "workflow_job" }));
  assert.equal(res.status, 413);
  assert.equal(pulled, 0, "refused on the declared length, before reading");
  await res.body?.cancel();

  res = await handler(post(endless(), { "x-github-event": "workflow_job" }));
  assert.equal(res.status, 413);
  assert.ok(pulled <= 1024 / 256 + 2, `stopped reading at the limit (${pulled} chunks pulled)`);
  await res.body?.cancel();

  const big = JSON.stringify({ action: "queued", pad: "x".repeat(2000) });
  res = await handler(delivery("workflow_job", big));
  assert.equal(res.status, 413, "even when signed");
  await res.body?.cancel();
  assert.deepEqual(jobs, []);
});

Deno.test("http: a signed but malformed workflow_job is 400; a failing callback is 500", async () => {
  let res = await setup().handler(delivery("workflow_job", "{not json"));
  assert.equal(res.status, 400);
  await res.body?.cancel();
  res = await setup({ throws: true }).handler(delivery("workflow_job", job("queued")));
  assert.equal(res.status, 500);
  await res.body?.cancel();
});

Deno.test("http: parseListen", () => {
  assert.equal(parseListen(""), null);
  assert.equal(parseListen("  "), null);
  assert.deepEqual(parseListen("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListen("localhost:80"), { hostname: "localhost", port: 80 });
  assert.deepEqual(parseListen(":9464"), { hostname: "0.0.0.0", port: 9464 });
  assert.deepEqual(parseListen("[::1]:9464"), { hostname: "::1", port: 9464 });
  assert.deepEqual(parseListen("[::]:9464"), { hostname: "::", port: 9464 });
  for (
    const bad of ["9464", "127.0.0.1", "127.0.0.1:", "::1:9464", "host:0", "host:65536", "a b:1", "http://x:1", "[x]:1"]
  ) {
    assert.throws(() => parseListen(bad), ConfigError, bad);
  }
});

Deno.test("http: serve() answers over a real socket and cuts off slow clients", async () => {
  const { jobs, handler } = setup({ maxBodyBytes: 4096 });
  const listener = await serve(handler, { hostname: "127.0.0.1", port: 0, headersTimeoutMs: 200 });
  try {
    assert.match(listener.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    let res = await fetch(`${listener.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /github_runner_passes_total/);

    const body = job("queued");
    const headers = { "x-github-event": "workflow_job", "x-hub-signature-256": sign(body) };
    res = await fetch(`${listener.url}/webhook`, { method: "POST", body, headers });
    assert.equal(res.status, 202);
    await res.body?.cancel();
    assert.equal(jobs.length, 1);

    res = await fetch(`${listener.url}/webhook`, { method: "POST", body: "x".repeat(100_000), headers });
    assert.equal(res.status, 413);
    await res.body?.cancel();

    // Headers never finished: the server answers 408 and closes, rather than hold the socket.
    const url = new URL(listener.url);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(
        Number(url.port),
        url.hostname,
        () => socket.write("GET /metrics HTTP/1.1\r\nHost: x\r\n"),
      );
      let data = "";
      socket.on("data", (d) => data += d);
      socket.on("close", () => (clearTimeout(guard), resolve(data)));
      socket.on("error", reject);
      const guard = setTimeout(() => (socket.destroy(), reject(new Error("the server kept a slow client"))), 10_000);
    });
    assert.match(reply, /^HTTP\/1\.1 408/);
    assert.equal(jobs.length, 1);
  } finally {
    await listener.close();
  }
});
