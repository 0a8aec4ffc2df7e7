/**
 * The `run` service on the real LXD and the fake GitHub: a runner that takes a job is replaced within seconds by
 * the watch alone and by a webhook alone; forged webhooks change nothing; a burst of webhooks costs a handful of
 * passes; /metrics (parsed with a real Prometheus text parser) matches what happened.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:net";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { getMetricsFromIterator } from "prom2javascript";
import { type Bed, idleRunners, openBed } from "./harness.ts";
import { runCommand } from "../../lib/commands/run.ts";
import type { RawConfig } from "../../lib/config.ts";

const SECRET = "a-webhook-secret-for-tests";
const LONG = "10m"; // longer than any wait below: whatever happens in a test, this timer did not cause it

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    }).on("error", reject);
  });
}

interface Service {
  bed: Bed;
  url: string;
  stop(): Promise<number>;
}

async function startService(file: RawConfig, secret?: string): Promise<Service> {
  const port = await freePort();
  const bed = await openBed({ ...file, listen: `127.0.0.1:${port}`, ...(secret ? { "webhook-secret": secret } : {}) });
  bed.reconfigure({ "state-dir": join(bed.cacheDir, "state") });
  const stop = new AbortController();
  const done = runCommand(bed.config, {
    out: () => {},
    err: () => {},
    isTty: false,
    env: {},
    stop: stop.signal,
  }, { reload: () => bed.config });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(async () => (await fetch(`${url}/readyz`).then((r) => r.status).catch(() => 0)) === 200, "ready");
  return {
    bed,
    url,
    stop: async () => {
      stop.abort();
      const code = await done;
      await bed.close();
      return code;
    },
  };
}

async function waitUntil(f: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function scrape(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const families = await getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
  const series = (name: string, labels: Record<string, string>) =>
    ((families[name]?.data ?? []) as unknown as { labels: Record<string, string>; value?: number; count?: number }[])
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  /** A counter's or gauge's value summed over the matching series. */
  const sum = (name: string, labels: Record<string, string> = {}) =>
    series(name, labels).reduce((n, s) => n + Number(s.value), 0);
  /** A histogram's observation count summed over the matching series. */
  const count = (name: string, labels: Record<string, string> = {}) =>
    series(name, labels).reduce((n, s) => n + Number(s.count), 0);
  return { sum, count, names: Object.keys(families) };
}

function signedDelivery(url: string, payload: unknown, secret: string) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
  return fetch(`${url}/webhook`, {
    method: "POST",
    headers: { "x-github-event": "workflow_job", "x-hub-signature-256": signature, "content-type": "application/json" },
    body,
  });
}

const job = (action: string, runnerName: string | null) => ({
  action,
  workflow_job: {
    id: 4242,
    run_id: 1,
    labels: ["self-hosted", "linux"],
    runner_name: runnerName,
    created_at: "2026-11-28T12:00:00Z",
    started_at: "2026-11-28T12:00:03Z",
    status: action,
  },
});

Deno.test("service: the watch alone replaces a runner that took a job", async () => {
  const svc = await startService({ containers: 2, "check-interval": LONG, "watch-interval": "1s" });
  const { bed } = svc;
  try {
    await bed.fake.waitFor(() => idleRunners(bed).length === 2, { timeoutMs: 60_000, what: "2 idle" });
    const [taken] = idleRunners(bed);
    bed.fake.assignJob(taken, { seconds: 30 });
    await bed.fake.waitFor((f) => f.runners().some((r) => r.name === taken && r.busy), {
      timeoutMs: 30_000,
      what: "busy",
    });
    await bed.fake.waitFor(() => idleRunners(bed).filter((n) => n !== taken).length === 2, {
      timeoutMs: 60_000,
      what: "a replacement, long before the 10 min check-interval",
    });
    const m = await scrape(svc.url);
    assert.equal(m.sum("github_runner_created_total", { type: "container" }), 3);
    assert.ok(m.sum("github_runner_github_not_modified_total") > 0, "the watch polls with ETags");
    assert.ok(m.count("github_runner_spawn_online_seconds") >= 2, "spawn-to-online latency is measured");
    const state = JSON.parse(await readFile(join(bed.config.stateDir, "state.json"), "utf8"));
    assert.equal(state.prefix, bed.prefix);
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    assert.equal(await svc.stop(), 0);
  }
});

Deno.test("service: a webhook alone triggers the replacement; forged ones change nothing; a burst coalesces", async () => {
  const svc = await startService({ containers: 1, "check-interval": LONG, "watch-interval": LONG }, SECRET);
  const { bed } = svc;
  try {
    await bed.fake.waitFor(() => idleRunners(bed).length === 1, { timeoutMs: 60_000, what: "1 idle" });
    const passes = async () => (await scrape(svc.url)).sum("github_runner_passes_total");
    const before = await passes();

    // Forged: wrong secret, and a tampered body. 401, and no pass.
    const forged = await signedDelivery(svc.url, job("queued", null), "not-the-secret-at-all");
    assert.equal(forged.status, 401);
    const unsigned = await fetch(`${svc.url}/webhook`, {
      method: "POST",
      headers: { "x-github-event": "workflow_job" },
      body: "{}",
    });
    assert.equal(unsigned.status, 401);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await passes(), before, "a forged webhook triggered a pass");

    const [taken] = idleRunners(bed);
    bed.fake.assignJob(taken, { seconds: 30 });
    await bed.fake.waitFor((f) => f.runners().some((r) => r.name === taken && r.busy), {
      timeoutMs: 30_000,
      what: "busy",
    });
    assert.equal((await signedDelivery(svc.url, job("in_progress", taken), SECRET)).status, 202);
    await bed.fake.waitFor(() => idleRunners(bed).some((n) => n !== taken), {
      timeoutMs: 60_000,
      what: "a replacement",
    });
    assert.ok((await scrape(svc.url)).count("github_runner_job_wait_seconds") === 1);

    // 200 deliveries at once: passes never overlap and coalesce, so a handful of passes run, not 200.
    const burstStart = await passes();
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => signedDelivery(svc.url, job("queued", null), SECRET)),
    );
    assert.ok(answers.every((a) => a.status === 202));
    await new Promise((r) => setTimeout(r, 1500));
    const burstPasses = (await passes()) - burstStart;
    assert.ok(burstPasses >= 1 && burstPasses <= 5, `200 webhooks caused ${burstPasses} passes`);
    assert.equal((await scrape(svc.url)).sum("github_runner_webhooks_total", { result: "rejected" }), 2);
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    assert.equal(await svc.stop(), 0);
  }
});

Deno.test("service: an in_progress webhook is believed before GitHub's lagging busy flag", async () => {
  const svc = await startService({ containers: 1, "check-interval": LONG, "watch-interval": LONG }, SECRET);
  const { bed } = svc;
  try {
    await bed.fake.waitFor(() => idleRunners(bed).length === 1, { timeoutMs: 60_000, what: "1 idle" });
    const [hinted] = idleRunners(bed);
    // GitHub still lists the runner as idle (no job reached it yet), but the webhook says it took one.
    assert.equal((await signedDelivery(svc.url, job("in_progress", hinted), SECRET)).status, 202);
    await bed.fake.waitFor(() => idleRunners(bed).some((n) => n !== hinted), {
      timeoutMs: 60_000,
      what: "a replacement",
    });
    assert.ok((await bed.instances()).has(hinted), "the hinted runner is not removed as surplus");
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    assert.equal(await svc.stop(), 0);
  }
});
