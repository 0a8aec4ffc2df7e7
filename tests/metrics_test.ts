/**
 * Metrics: what is observed shows up in /metrics text that an independent Prometheus text-format parser reads
 * back (prom2javascript; parse-prometheus-text-format was tried and merges histogram series that differ in
 * labels, dropping their _sum and _count), with the values that happened.
 */
import assert from "node:assert/strict";
import { getMetricsFromIterator, type PromHistogramData, type PromLabels } from "prom2javascript";
import { lxdOperation, Metrics } from "../lib/metrics.ts";
import type { PassReport } from "../lib/reconcile.ts";
import type { ActionResult } from "../lib/act.ts";
import { countBuckets } from "../lib/classify.ts";

/** Parses the exposition text; `value`/`histogram` return the series with exactly these labels, if any. */
async function scrape(m: Metrics) {
  const families = await getMetricsFromIterator((await m.render()).split("\n")[Symbol.iterator]());
  const find = <T extends { labels: PromLabels }>(name: string, labels: PromLabels = {}) =>
    (families[name]?.data as unknown as T[] | undefined)?.find((s) =>
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    );
  return {
    names: Object.keys(families),
    value: (name: string, labels?: PromLabels) => find<{ labels: PromLabels; value: number }>(name, labels)?.value,
    histogram: (name: string, labels?: PromLabels) => find<PromHistogramData>(name, labels),
  };
}

const create = (type: "container" | "virtual-machine") => ({ kind: "create" as const, type, reason: "below target" });
const remove = (cause: "surplus" | "stopped" | "boot-timeout", name = "acme-00000001") => ({
  kind: "remove" as const,
  name,
  cause,
  reason: "test",
  instance: true,
});

function report(results: ActionResult[], over: Partial<PassReport> = {}): PassReport {
  return {
    startedAt: "2026-11-28T12:00:00.000Z",
    durationMs: 1500,
    prefix: "acme",
    target: { containers: 3, virtualMachines: 1, maxRunners: 10 },
    before: countBuckets([]),
    runners: [
      { name: "acme-00000001", bucket: "idle", type: "container", busy: false, ageMs: 1 },
      { name: "acme-00000002", bucket: "idle", type: "container", busy: false, ageMs: 1 },
      { name: "acme-00000003", bucket: "busy", type: "virtual-machine", busy: true, ageMs: 1 },
      { name: "acme-00000004", bucket: "orphan-registration", busy: false, ageMs: 0 },
    ],
    results,
    problems: [],
    ok: results.every((r) => r.outcome !== "failed"),
    ...over,
  };
}

Deno.test("metrics: a pass's actions, gauges and duration read back through a Prometheus parser", async () => {
  const m = new Metrics({ version: "1.2.3" });
  m.observePass(report([
    { action: create("container"), outcome: "done", name: "acme-0000000a", durationMs: 9000 },
    { action: create("container"), outcome: "done", name: "acme-0000000b", durationMs: 9000 },
    { action: remove("surplus"), outcome: "done", durationMs: 100 },
    { action: remove("surplus", "acme-00000002"), outcome: "kept-busy", durationMs: 100 },
    { action: remove("stopped", "acme-00000005"), outcome: "failed", error: "LXD down", durationMs: 100 },
    {
      action: create("virtual-machine"),
      outcome: "failed",
      error: 'Cannot spawn runner "acme-0000000c" (push runner application): timeout',
      failedStep: "push",
      durationMs: 100,
    },
  ]));
  const s = await scrape(m);
  assert.equal(s.value("github_runner_build_info", { version: "1.2.3" }), 1);
  assert.equal(s.value("github_runner_created_total", { type: "container" }), 2);
  assert.equal(s.value("github_runner_created_total", { type: "virtual-machine" }), 0);
  assert.equal(s.value("github_runner_removed_total", { cause: "surplus" }), 1);
  assert.equal(s.value("github_runner_removed_total", { cause: "stopped" }), 0);
  assert.equal(s.value("github_runner_remove_failures_total", { cause: "stopped" }), 1);
  assert.equal(s.value("github_runner_kept_busy_total"), 1);
  assert.equal(s.value("github_runner_spawn_failures_total", { type: "virtual-machine", step: "push" }), 1);
  assert.equal(s.value("github_runner_spawn_failures_total", { type: "container", step: "push" }), 0);
  assert.equal(s.value("github_runner_passes_total", { result: "failed" }), 1);
  assert.equal(s.value("github_runner_passes_total", { result: "ok" }), 0);
  assert.equal(s.value("github_runner_runners", { state: "idle", type: "container" }), 2);
  assert.equal(s.value("github_runner_runners", { state: "busy", type: "virtual-machine" }), 1);
  assert.equal(s.value("github_runner_runners", { state: "orphan-registration", type: "unknown" }), 1);
  assert.equal(s.value("github_runner_runners", { state: "booting", type: "container" }), 0);
  assert.equal(s.value("github_runner_target_runners", { type: "container" }), 3);
  assert.equal(s.value("github_runner_target_runners", { type: "virtual-machine" }), 1);
  assert.equal(s.value("github_runner_max_runners"), 10);
  const duration = s.histogram("github_runner_pass_duration_seconds")!;
  assert.equal(duration.count, 1);
  assert.equal(duration.buckets["1"], 0);
  assert.equal(duration.buckets["2.5"], 1);
  assert.equal(s.value("github_runner_last_successful_pass_timestamp_seconds"), 0, "the pass had failures");
});

Deno.test("metrics: gauges follow the latest pass; a pass that could not observe keeps the last counts", async () => {
  const m = new Metrics();
  m.observePass(report([]));
  m.observePass(report([], { runners: [{ name: "a", bucket: "booting", type: "container", busy: false, ageMs: 1 }] }));
  let s = await scrape(m);
  assert.equal(s.value("github_runner_runners", { state: "idle", type: "container" }), 0);
  assert.equal(s.value("github_runner_runners", { state: "booting", type: "container" }), 1);
  assert.equal(s.value("github_runner_passes_total", { result: "ok" }), 2);
  assert.equal(
    s.value("github_runner_last_successful_pass_timestamp_seconds"),
    Date.parse("2026-11-28T12:00:01.5Z") / 1000,
  );

  m.observePass(report([], { runners: [], error: "GitHub GET /orgs/acme/actions/runners failed with 502", ok: false }));
  s = await scrape(m);
  assert.equal(s.value("github_runner_passes_total", { result: "error" }), 1);
  assert.equal(s.value("github_runner_runners", { state: "booting", type: "container" }), 1);
});

Deno.test("metrics: GitHub responses, 304s, rate limit, LXD errors, spawn and job-wait histograms, webhooks", async () => {
  const m = new Metrics();
  const route = "/orgs/acme/actions/runners";
  m.observeGithubResponse({
    method: "GET",
    route,
    status: 200,
    rateLimitRemaining: 4990,
    rateLimitReset: 1_800_000_000,
  });
  m.observeGithubResponse({
    method: "GET",
    route,
    status: 304,
    rateLimitRemaining: 4990,
    rateLimitReset: 1_800_000_000,
  });
  m.observeGithubResponse({ method: "GET", route, status: 304 });
  m.observeGithubResponse({ method: "DELETE", route: "/orgs/acme/actions/runners/{runner_id}", status: 422 });
  m.observeGithubResponse({ method: "POST", route: "/orgs/acme/actions/runners/42/x", status: 0 });
  m.observeLxdError('create instance "acme-1f2e3d4c" from image "ubuntu:24.04"');
  m.observeLxdError('create instance "acme-99999999" from image "debian/12"');
  m.observeSpawnOnline(12, "container");
  m.observeSpawnOnline(75, "virtual-machine");
  m.observeJobWait(3);
  m.observeJobWait(40);
  m.observeJobWait(-1); // clock skew between GitHub's timestamps: dropped, not a negative observation
  m.observeWebhook("accepted");
  m.observeWebhook("rejected");
  m.observeWebhook("rejected");

  const s = await scrape(m);
  assert.equal(s.value("github_runner_github_requests_total", { method: "GET", route, status: "200" }), 1);
  assert.equal(s.value("github_runner_github_requests_total", { method: "GET", route, status: "304" }), 2);
  assert.equal(
    s.value("github_runner_github_requests_total", {
      method: "DELETE",
      route: "/orgs/acme/actions/runners/{runner_id}",
      status: "422",
    }),
    1,
  );
  assert.equal(
    s.value("github_runner_github_requests_total", {
      method: "POST",
      route: "/orgs/acme/actions/runners/{id}/x",
      status: "0",
    }),
    1,
  );
  assert.equal(s.value("github_runner_github_not_modified_total", { route }), 2);
  assert.equal(s.value("github_runner_github_rate_limit_remaining"), 4990);
  assert.equal(s.value("github_runner_github_rate_limit_reset_timestamp_seconds"), 1_800_000_000);
  assert.equal(s.value("github_runner_lxd_errors_total", { operation: "create instance from image" }), 2);
  assert.equal(s.histogram("github_runner_spawn_online_seconds", { type: "container" })!.buckets["15"], 1);
  assert.equal(s.histogram("github_runner_spawn_online_seconds", { type: "virtual-machine" })!.buckets["60"], 0);
  assert.equal(s.histogram("github_runner_spawn_online_seconds", { type: "virtual-machine" })!.buckets["90"], 1);
  const wait = s.histogram("github_runner_job_wait_seconds")!;
  assert.equal(wait.count, 2);
  assert.deepEqual([wait.buckets["5"], wait.buckets["30"], wait.buckets["60"]], [1, 1, 2]);
  assert.equal(wait.sum, 43);
  assert.equal(s.value("github_runner_webhooks_total", { result: "accepted" }), 1);
  assert.equal(s.value("github_runner_webhooks_total", { result: "ignored" }), 0);
  assert.equal(s.value("github_runner_webhooks_total", { result: "rejected" }), 2);
});

Deno.test("metrics: every name is prefixed, no default process metrics, instances do not share a registry", async () => {
  const a = new Metrics();
  const b = new Metrics(); // a global registry would throw "already registered" here
  a.observeWebhook("accepted");
  const names = (await scrape(a)).names;
  assert.ok(names.length >= 18);
  for (const n of names) assert.match(n, /^github_runner_[a-z_]+$/);
  assert.equal((await scrape(b)).value("github_runner_webhooks_total", { result: "accepted" }), 0);
  assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
});

Deno.test("metrics: LXD operations map to a small fixed label set", () => {
  assert.equal(lxdOperation('write file "/opt/x" in instance "acme-1"'), "write file in instance");
  assert.equal(lxdOperation("list instances"), "list instances");
  assert.equal(lxdOperation('""'), "unknown");
});

Deno.test("metrics: the test parser is strict (it rejects what Prometheus would)", async () => {
  const parse = (text: string) => getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
  await assert.rejects(parse("github_runner_x{state=idle} 1"));
  await assert.rejects(parse('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\nh_sum 1'));
});
