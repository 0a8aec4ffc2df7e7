/**
 * The `run` service on the real LXD and the fake GitHub: a runner that takes a job is replaced within seconds by
 * the watch alone and by a webhook alone; forged webhooks change nothing; a burst of webhooks costs a handful of
 * passes; /metrics (parsed with a real Prometheus text parser) matches what happened.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { idleRunners } from "./harness.ts";
import { LONG, scrape, SECRET, signedDelivery, startService, waitUntil, workflowJob as job } from "./service_bed.ts";

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

Deno.test("service: the runner gauges and the state file follow the watch between passes", async () => {
  // max-runners = target: a runner that goes busy cannot be replaced, so nothing gives the watch a reason to start a
  // pass. Whatever the gauges show after the first pass, only the watch can have told them.
  const svc = await startService({
    containers: 2,
    "max-runners": 2,
    "check-interval": LONG,
    "watch-interval": "1s",
  });
  const { bed } = svc;
  try {
    const gauge = async (state: string) => (await scrape(svc.url)).sum("github_runner_runners", { state });
    const passes = async () => (await scrape(svc.url)).sum("github_runner_passes_total");
    const counts = async () =>
      JSON.parse(await readFile(join(bed.config.stateDir, "state.json"), "utf8")).counts as Record<string, number>;
    await bed.fake.waitFor(() => idleRunners(bed).length === 2, { timeoutMs: 60_000, what: "2 idle" });
    const afterSpawn = await passes();
    // The pass that spawned them saw none: the watch brings the gauges and the state file to the truth.
    await waitUntil(async () => (await gauge("idle")) === 2 && (await counts()).idle === 2, "idle=2 from the watch");

    const [taken] = idleRunners(bed);
    bed.fake.assignJob(taken, { seconds: 120 });
    await bed.fake.waitFor((f) => f.runners().some((r) => r.name === taken && r.busy), {
      timeoutMs: 30_000,
      what: "busy",
    });
    await waitUntil(
      async () => (await gauge("busy")) === 1 && (await gauge("idle")) === 1 && (await counts()).busy === 1,
      "busy=1, idle=1 from the watch",
    );
    assert.equal(await passes(), afterSpawn, "no pass ran: the gauges moved with the watch alone");
    assert.equal(await gauge("booting"), 0);
  } finally {
    assert.equal(await svc.stop(), 0);
  }
});
