/**
 * Prometheus metrics over prom-client, on a Registry of our own: no default process metrics and nothing on the
 * library's global registry, so two instances (tests, or a daemon restarted in-process) never collide. Data in,
 * text out: every method takes what happened and updates counters; only render() produces the exposition text.
 * Names follow Prometheus' naming guide: a `github_runner_` prefix, base units in the name (`_seconds`), counters
 * ending in `_total`; every label takes values from a small fixed set.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PassReport } from "./reconcile.ts";
import { BUCKETS, type RunnerView } from "./classify.ts";
import { REMOVE_CAUSES } from "./plan.ts";
import { SPAWN_STEPS } from "./spawn.ts";
import type { ResponseInfo } from "./github.ts";
import type { InstanceType } from "./types.ts";

export type WebhookResult = "accepted" | "ignored" | "rejected";

/** "unknown": a registration without an instance, whose type only the instance knew. */
const RUNNER_TYPES = ["container", "virtual-machine", "unknown"] as const;
const INSTANCE_TYPES: readonly InstanceType[] = ["container", "virtual-machine"];
const PASS_RESULTS = ["ok", "failed", "error"] as const;
const WEBHOOK_RESULTS: readonly WebhookResult[] = ["accepted", "ignored", "rejected"];
/** Passes take about a second when nothing changes and up to the 15-minute deadline when spawning VMs. */
const PASS_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

/** Failed spawns are labelled by step (lib/spawn.ts SPAWN_STEPS); "other" when the failure had no step. */
const STEP_LABELS = [...SPAWN_STEPS, "other"];

export class Metrics {
  readonly #registry = new Registry();
  readonly #runners: Gauge<"state" | "type">;
  readonly #target: Gauge<"type">;
  readonly #maxRunners: Gauge;
  readonly #passes: Counter<"result">;
  readonly #passDuration: Histogram;
  readonly #lastSuccess: Gauge;
  readonly #created: Counter<"type">;
  readonly #removed: Counter<"cause">;
  readonly #removeFailures: Counter<"cause">;
  readonly #keptBusy: Counter;
  readonly #spawnFailures: Counter<"type" | "step">;
  readonly #spawnOnline: Histogram<"type">;
  readonly #jobWait: Histogram;
  readonly #githubRequests: Counter<"method" | "route" | "status">;
  readonly #notModified: Counter<"route">;
  readonly #rateRemaining: Gauge;
  readonly #rateReset: Gauge;
  readonly #lxdErrors: Counter<"operation">;
  readonly #webhooks: Counter<"result">;

  constructor(opts: { version?: string } = {}) {
    const registers = [this.#registry];
    const name = (n: string) => `github_runner_${n}`;
    const counter = <L extends string>(n: string, help: string, labelNames: L[] = []) =>
      new Counter<L>({ name: name(n), help, labelNames, registers });
    const gauge = <L extends string>(n: string, help: string, labelNames: L[] = []) =>
      new Gauge<L>({ name: name(n), help, labelNames, registers });
    const histogram = <L extends string>(n: string, help: string, buckets: number[], labelNames: L[] = []) =>
      new Histogram<L>({ name: name(n), help, buckets, labelNames, registers });

    if (opts.version) {
      gauge("build_info", "Always 1; the version is a label.", ["version"]).set({ version: opts.version }, 1);
    }
    this.#runners = gauge(
      "runners",
      "Runners of this prefix by bucket (lib/classify.ts) and instance type, as last observed (pass or watch).",
      ["state", "type"],
    );
    this.#target = gauge("target_runners", "Idle runners wanted, by instance type.", ["type"]);
    this.#maxRunners = gauge("max_runners", "The cap on live runners; 0 = none.");
    this.#passes = counter(
      "passes_total",
      "Reconcile passes: ok, failed (some action failed) or error (could not observe or plan).",
      ["result"],
    );
    this.#passDuration = histogram("pass_duration_seconds", "Duration of reconcile passes.", PASS_SECONDS);
    this.#lastSuccess = gauge(
      "last_successful_pass_timestamp_seconds",
      "When the last pass without any failure ended (Unix time).",
    );
    this.#created = counter("created_total", "Runners spawned, by instance type.", ["type"]);
    this.#removed = counter("removed_total", "Runners removed, by cause (lib/plan.ts RemoveCause).", ["cause"]);
    this.#removeFailures = counter("remove_failures_total", "Removals that failed; the next pass retries.", [
      "cause",
    ]);
    this.#keptBusy = counter(
      "kept_busy_total",
      "Removals cancelled because GitHub refused to deregister a runner that had taken a job (422).",
    );
    this.#spawnFailures = counter("spawn_failures_total", "Failed spawns by instance type and failed step.", [
      "type",
      "step",
    ]);
    this.#spawnOnline = histogram(
      "spawn_online_seconds",
      "From instance creation to the runner reading online at GitHub.",
      [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600],
      ["type"],
    );
    this.#jobWait = histogram(
      "job_wait_seconds",
      "From a job's creation to its start on one of our runners, from workflow_job webhooks.",
      [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    );
    this.#githubRequests = counter(
      "github_requests_total",
      "GitHub API requests by method, templated route and status (0 = no response).",
      ["method", "route", "status"],
    );
    this.#notModified = counter(
      "github_not_modified_total",
      "Conditional GitHub requests answered 304 (free of rate limit).",
      ["route"],
    );
    this.#rateRemaining = gauge(
      "github_rate_limit_remaining",
      "x-ratelimit-remaining of the last GitHub response that had it.",
    );
    this.#rateReset = gauge(
      "github_rate_limit_reset_timestamp_seconds",
      "x-ratelimit-reset (Unix time) of the last GitHub response that had it.",
    );
    this.#lxdErrors = counter("lxd_errors_total", "Failed LXD calls by operation (quoted names stripped).", [
      "operation",
    ]);
    this.#webhooks = counter(
      "webhooks_total",
      "Webhook deliveries: accepted (a workflow_job acted on), ignored, or rejected (signature, size, shape).",
      ["result"],
    );

    // Known label values start at 0, so rate() and absent-series alerts work from the first scrape.
    for (const result of PASS_RESULTS) this.#passes.inc({ result }, 0);
    for (const type of INSTANCE_TYPES) {
      this.#created.inc({ type }, 0);
      for (const step of STEP_LABELS) this.#spawnFailures.inc({ type, step }, 0);
      this.#spawnOnline.zero({ type });
    }
    for (const cause of REMOVE_CAUSES) {
      this.#removed.inc({ cause }, 0);
      this.#removeFailures.inc({ cause }, 0);
    }
    for (const result of WEBHOOK_RESULTS) this.#webhooks.inc({ result }, 0);
  }

  /** Everything a reconcile pass reports: runner gauges, pass outcome and duration, action outcomes. */
  observePass(report: PassReport): void {
    const result = report.error ? "error" : report.ok ? "ok" : "failed";
    this.#passes.inc({ result });
    this.#passDuration.observe(report.durationMs / 1000);
    if (report.ok) this.#lastSuccess.set((Date.parse(report.startedAt) + report.durationMs) / 1000);

    this.#target.set({ type: "container" }, report.target.containers);
    this.#target.set({ type: "virtual-machine" }, report.target.virtualMachines);
    this.#maxRunners.set(report.target.maxRunners);

    // A pass that could not observe reports no runners; keep the last known counts rather than claim zero.
    if (!(report.error && report.runners.length === 0)) this.observeRunners(report.runners);

    for (const r of report.results) {
      const a = r.action;
      if (a.kind === "create") {
        if (r.outcome === "done") this.#created.inc({ type: a.type });
        else if (r.outcome === "failed") this.#spawnFailures.inc({ type: a.type, step: r.failedStep ?? "other" });
      } else if (a.kind === "mark-finished") continue;
      else if (r.outcome === "done") this.#removed.inc({ cause: a.cause });
      else if (r.outcome === "kept-busy") this.#keptBusy.inc();
      else if (r.outcome === "kept") continue;
      else this.#removeFailures.inc({ cause: a.cause });
    }
  }

  /**
   * The runner gauges, from the latest observation: a pass's, or the watch's between passes (so a dashboard sees
   * runners come online and go busy within one watch-interval, not at the next pass).
   */
  observeRunners(runners: readonly Pick<RunnerView, "bucket" | "type">[]): void {
    for (const state of BUCKETS) for (const type of RUNNER_TYPES) this.#runners.set({ state, type }, 0);
    for (const r of runners) {
      const type = r.type === "container" || r.type === "virtual-machine" ? r.type : "unknown";
      this.#runners.inc({ state: r.bucket, type });
    }
  }

  /** One GitHub HTTP exchange (GithubClientOptions.onResponse). */
  observeGithubResponse(info: ResponseInfo): void {
    const route = templateRoute(info.route);
    this.#githubRequests.inc({ method: info.method.toUpperCase(), route, status: String(info.status) });
    if (info.status === 304) this.#notModified.inc({ route });
    if (Number.isFinite(info.rateLimitRemaining)) this.#rateRemaining.set(info.rateLimitRemaining!);
    if (Number.isFinite(info.rateLimitReset)) this.#rateReset.set(info.rateLimitReset!);
  }

  /** A failed LXD call, named by LxdError.operation, e.g. `delete instance "acme-1f2e3d4c"`. */
  observeLxdError(operation: string): void {
    this.#lxdErrors.inc({ operation: lxdOperation(operation) });
  }

  /** Seconds from instance creation until its runner first read online. */
  observeSpawnOnline(seconds: number, type: InstanceType): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#spawnOnline.observe({ type }, seconds);
  }

  /** Seconds a job waited between queued and in_progress (lib/webhook.ts jobWaitSeconds). */
  observeJobWait(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#jobWait.observe(seconds);
  }

  observeWebhook(result: WebhookResult): void {
    this.#webhooks.inc({ result });
  }

  /** The Prometheus text exposition format, version 0.0.4. */
  render(): Promise<string> {
    return this.#registry.metrics();
  }

  get contentType(): string {
    return this.#registry.contentType;
  }
}

/** lib/github.ts already templates runner ids; any other numeric segment is templated here too, defensively. */
function templateRoute(route: string): string {
  return route.replace(/\/\d+(?=\/|$)/g, "/{id}");
}

/**
 * LxdError operations quote instance names and paths (`write file "/x" in instance "acme-1f2e"`); dropping the
 * quoted parts leaves a fixed phrase per call site (`write file in instance`), which keeps cardinality low.
 */
export function lxdOperation(operation: string): string {
  const phrase = operation.replace(/"[^"]*"/g, "").replace(/\s+/g, " ").trim();
  return phrase.slice(0, 64) || "unknown";
}
