/**
 * One reconciliation pass: observe -> classify -> plan -> act -> report. Partial progress is fine: the next
 * pass observes again. The rules are in lib/plan.ts; this file only wires I/O to them.
 */
import type { Config } from "./config.ts";
import type { Desired, HostCapacity, InstanceType, Observed } from "./types.ts";
import { sizeBytes } from "./units.ts";
import { type Action, plan, planFlush } from "./plan.ts";
import { type Bucket, countBuckets, type RunnerView } from "./classify.ts";
import { act, type ActionResult } from "./act.ts";
import type { SpawnDeps } from "./spawn.ts";
import type { GithubClient } from "./github.ts";
import type { LxdClient } from "./lxd.ts";
import { runnerName, scopeOf } from "./names.ts";
import { cachedRunnerApp, ensureRunnerApp, type RunnerApp, runnerArch } from "./runner_app.ts";
import type { Logger } from "./log.ts";
import { availableParallelism } from "node:os";

/**
 * How long a finished runner's instance (job done, registration gone) may take to power itself off before it is
 * deleted: a container takes 1-3 s, a VM tens of seconds; one still running after this is stuck.
 */
export const FINISHED_GRACE_MS = 90_000;

/**
 * Spawns and removals in flight at once: 4 per core, 4 to 32. LXD's creates, starts and deletes are CPU-bound forks
 * and mounts; on 2 cores, 20 busybox containers took 9.5-10 s at 4, 8 or 12 at a time, 10.5-11.7 s all at once and
 * 12.7-14.9 s one by one, and deletes were fastest at 8-12 at a time (scripts/bench_scale.ts has the whole picture).
 */
export function defaultConcurrency(cores = availableParallelism()): number {
  return Math.min(32, Math.max(4, 4 * cores));
}

export interface PassDeps {
  github: GithubClient;
  lxd: LxdClient;
  /** Milliseconds since the epoch; the only clock a pass reads. */
  clock: () => number;
  randomBytes: (n: number) => Uint8Array;
  log: Logger;
  /** What the host has free (admission); optional: tests and callers without it skip admission. */
  capacity?: (signal?: AbortSignal) => Promise<HostCapacity>;
  /** The fingerprint `image` names now (rotation); optional like capacity. */
  currentImage?: (signal?: AbortSignal) => Promise<string | undefined>;
  /**
   * Creates or corrects the runners' fenced network (lib/runner_network.ts) before anything is spawned; undefined
   * when network-policy is off. Returns what it changed, for the log, and the default profile's other NICs, which
   * spawns mask.
   */
  network?: (
    signal: AbortSignal,
    opts: { createMissing: boolean },
  ) => Promise<{ changes: string[]; maskNics: string[] }>;
}

export interface PassOptions {
  /** Remove idle (and with busy: busy) runners before reconciling. */
  flush?: { busy: boolean };
  /** Overall deadline of the pass. Default 15 minutes. */
  deadlineMs?: number;
  signal?: AbortSignal;
  /** Spawns and removals in flight at once. Default: config's `concurrency`, else defaultConcurrency(). */
  concurrency?: number;
  /** Runner names webhooks reported busy (see Observed.busyHints). */
  busyHints?: readonly string[];
  /** After each action: for a progress line on a terminal. */
  onProgress?: (done: number, total: number) => void;
}

export interface PassReport {
  startedAt: string;
  durationMs: number;
  prefix: string;
  target: { containers: number; virtualMachines: number; maxRunners: number };
  /** Bucket counts as observed at the start of the pass. */
  before: Record<Bucket, number>;
  runners: RunnerSummary[];
  results: ActionResult[];
  /** Why the pass could not plan at all (observation failed). */
  error?: string;
  /** Why the target could not be met (see Plan.problems). */
  problems: string[];
  ok: boolean;
}

export interface RunnerSummary {
  name: string;
  bucket: Bucket;
  type?: InstanceType;
  githubStatus?: string;
  busy: boolean;
  lxdStatus?: string;
  ageMs: number;
}

export function desiredOf(config: Config): Desired {
  return {
    prefix: config.namePrefix,
    containers: config.containers,
    virtualMachines: config.virtualMachines,
    maxRunners: config.maxRunners,
    bootTimeoutMs: config.bootTimeoutMs,
    finishedGraceMs: FINISHED_GRACE_MS,
    maxRunnerAgeMs: config.maxRunnerAgeMs,
    scope: scopeOf(config),
    needs: {
      container: { memory: sizeBytes(config.containerMemory), disk: 0 },
      "virtual-machine": { memory: sizeBytes(config.vmMemory), disk: sizeBytes(config.vmDisk) },
    },
  };
}

export async function observe(
  deps: Pick<PassDeps, "github" | "lxd" | "capacity" | "currentImage">,
  signal?: AbortSignal,
): Promise<Observed> {
  const [runners, instances, capacity, currentImage] = await Promise.all([
    deps.github.listRunners(signal),
    deps.lxd.listInstances({ signal }),
    // Capacity and the current image are advisory: when LXD cannot say, nothing is refused or rotated for them.
    deps.capacity?.(signal).catch(() => undefined),
    deps.currentImage?.(signal).catch(() => undefined),
  ]);
  return { runners, instances, capacity, currentImage };
}

export async function runPass(deps: PassDeps, config: Config, opts: PassOptions = {}): Promise<PassReport> {
  const start = deps.clock();
  const timeout = AbortSignal.timeout(opts.deadlineMs ?? 15 * 60_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const desired = desiredOf(config);
  const report: PassReport = {
    startedAt: new Date(start).toISOString(),
    durationMs: 0,
    prefix: desired.prefix,
    target: {
      containers: desired.containers,
      virtualMachines: desired.virtualMachines,
      maxRunners: desired.maxRunners,
    },
    before: countBuckets([]),
    runners: [],
    results: [],
    problems: [],
    ok: true,
  };
  const runnerApp = once(() => resolveRunnerApp(deps, config, signal));
  let observed: Observed | undefined;
  // The observation already resolved the alias (rotation): look up the image it named, not the alias again.
  const image = once(() =>
    deps.lxd.image(observed?.currentImage ?? config.image, { signal }).then((i) => ({ release: i?.properties.release }))
  );
  try {
    observed = { ...await observe(deps, signal), busyHints: opts.busyHints };
    if (opts.flush) {
      const flush = planFlush(observed, desired, deps.clock(), opts.flush);
      fillBefore(report, flush.views);
      report.results.push(...await execute(deps, config, flush.actions, { runnerApp, image }, opts, signal));
      observed = { ...await observe(deps, signal), busyHints: opts.busyHints };
    }
    const p = plan(observed, desired, deps.clock());
    if (!opts.flush) fillBefore(report, p.views);
    report.problems = p.problems;
    let actions = p.actions;
    let maskNics: string[] = [];
    if (deps.network) {
      // Every pass, so a changed denylist or host address reaches running runners too. Fail closed: without the
      // fence in place no runner is made (removals still go ahead).
      const createMissing = actions.some((a) => a.kind === "create");
      const problem = await deps.network(signal, { createMissing }).then((r) => {
        for (const change of r.changes) deps.log.info("Runner network: {change}", { change });
        maskNics = r.maskNics;
      }, (e) => `Cannot prepare the runners' network, so no runner is created: ${(e as Error).message ?? e}`);
      if (problem) {
        report.problems.push(problem);
        actions = actions.filter((a) => a.kind !== "create");
      }
    }
    for (const problem of report.problems) deps.log.warning("{problem}", { problem });
    report.results.push(...await execute(deps, config, actions, { runnerApp, image }, { ...opts, maskNics }, signal));
  } catch (e) {
    report.error = (e as Error).message ?? String(e);
    deps.log.error("Pass stopped: {error}", { error: report.error });
  }
  report.ok = !report.error && report.problems.length === 0 && report.results.every((r) => r.outcome !== "failed");
  report.durationMs = deps.clock() - start;
  return report;
}

async function execute(
  deps: PassDeps,
  config: Config,
  actions: Action[],
  lazy: Pick<SpawnDeps, "runnerApp" | "image">,
  opts: PassOptions & { maskNics?: string[] },
  signal: AbortSignal,
): Promise<ActionResult[]> {
  for (const a of actions) {
    if (a.kind === "create") deps.log.info("Creating a {type} runner: {reason}", { type: a.type, reason: a.reason });
    else if (a.kind === "remove") {
      deps.log.info("Removing {name} ({cause}): {reason}", { name: a.name, cause: a.cause, reason: a.reason });
    } else deps.log.info("Marking {name} finished: {reason}", { name: a.name, reason: a.reason });
  }
  const results = await act(
    {
      github: deps.github,
      lxd: deps.lxd,
      ...lazy,
      runnerGroupId: once(() => deps.github.runnerGroupId(config.group, signal)),
      clock: deps.clock,
      specFor: (a) => ({
        name: runnerName(config.namePrefix, deps.randomBytes),
        type: a.type,
        prefix: config.namePrefix,
        scope: scopeOf(config),
        image: config.image,
        labels: [...config.labels],
        vm: { cpu: config.vmCpu, memory: config.vmMemory, disk: config.vmDisk },
        container: { cpu: config.containerCpu, memory: config.containerMemory },
        environment: config.runnerEnvironment,
        network: config.networkPolicy ? { name: config.network, maskNics: opts.maskNics ?? [] } : undefined,
      }),
    },
    actions,
    {
      concurrency: opts.concurrency ?? (config.concurrency || defaultConcurrency()),
      signal,
      onProgress: opts.onProgress,
    },
  );
  for (const r of results) logResult(deps.log, r);
  return results;
}

function logResult(log: Logger, r: ActionResult): void {
  if (r.action.kind === "mark-finished" && r.outcome !== "failed") return;
  const name = r.action.kind === "create" ? r.name : r.action.name;
  const props = { name, kind: r.action.kind, outcome: r.outcome, durationMs: r.durationMs, error: r.error };
  if (r.outcome === "failed") log.error(`Failed to ${r.action.kind} a runner: {error}`, props);
  else if (r.outcome === "kept-busy") log.info("Kept {name}: deregistration refused, the runner is busy", props);
  else if (r.outcome === "kept") log.info("Kept {name}: GitHub still lists its registration", props);
  else if (r.action.kind === "create") {
    log.info("Created {name} ({type}) in {durationMs} ms", { ...props, type: r.action.type });
  } else log.info("Removed {name}", props);
}

/** The runner application for spawns: GitHub's current one, or the newest cached one when GitHub cannot say. */
async function resolveRunnerApp(deps: PassDeps, config: Config, signal: AbortSignal): Promise<RunnerApp> {
  const arch = runnerArch(process.arch);
  try {
    return await ensureRunnerApp(await deps.github.runnerDownloads(signal), {
      cacheDir: config.cacheDir,
      arch,
      signal,
    });
  } catch (e) {
    const cached = await cachedRunnerApp(config.cacheDir, arch);
    if (!cached) throw e;
    deps.log.warning("Using the cached runner application {file}: {error}", {
      file: cached.filename,
      error: (e as Error).message,
    });
    return cached;
  }
}

function fillBefore(report: PassReport, views: RunnerView[]): void {
  report.before = countBuckets(views);
  report.runners = summarizeViews(views);
}

/** Views as reports and `check` show them: plain data, no GitHub or LXD objects. */
export function summarizeViews(views: RunnerView[]): RunnerSummary[] {
  return views.map((v) => ({
    name: v.name,
    bucket: v.bucket,
    type: v.type,
    githubStatus: v.runner?.status,
    busy: !!v.runner?.busy,
    lxdStatus: v.instance?.status,
    ageMs: v.ageMs,
  }));
}

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
}
