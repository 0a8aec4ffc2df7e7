/**
 * Churn on the real LXD with the fake GitHub: jobs arrive at random (single jobs, and bursts up to the target that
 * run equally long and so finish together), and the pool is kept by one of three drivers:
 * - "passes": a reconcile pass right after every change (a job started or finished): the window in which a
 *   finished runner's instance is still powering off;
 * - "webhooks": the `run` service, woken only by workflow_job webhooks sent as GitHub sends them;
 * - "watch": the `run` service with its watch alone.
 * Seeded and replayable: the same seed gives the same arrivals. Used by tests/integration/churn_test.ts (short runs,
 * judged continuously) and scripts/bench_churn.ts (longer runs, figures).
 */
import type { Bed } from "./harness.ts";
import type { FakeHistory, FakeJob, RunnerMoment } from "../fakes/github.ts";
import { SECRET, signedDelivery, workflowJob } from "./service_bed.ts";
import type { PassReport } from "../../lib/reconcile.ts";

export type Driver = "passes" | "webhooks" | "watch";

export interface ChurnShape {
  seed: number;
  /** Idle runners wanted. */
  target: number;
  /** How long jobs keep arriving. */
  arrivalsMs: number;
  /** Mean time between arrivals (exponential gaps). */
  meanGapMs: number;
  /** Share of arrivals that are bursts of 2..target jobs of equal length. */
  burstShare: number;
  /** Job length in whole seconds, uniform in [min, max]. */
  jobSeconds: [number, number];
}

export interface Arrival {
  atMs: number;
  jobs: number;
  seconds: number;
}

/** mulberry32: a small, well-known seeded PRNG; the same seed gives the same stream on every runtime. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The arrivals of a churn run. Pure: a function of the shape alone. */
export function arrivals(shape: ChurnShape): Arrival[] {
  const rnd = random(shape.seed);
  const out: Arrival[] = [];
  const [lo, hi] = shape.jobSeconds;
  for (let at = 0;;) {
    at += -Math.log(1 - rnd()) * shape.meanGapMs;
    if (at >= shape.arrivalsMs) return out;
    const burst = shape.target > 1 && rnd() < shape.burstShare;
    const jobs = burst ? 2 + Math.floor(rnd() * (shape.target - 1)) : 1;
    out.push({ atMs: Math.round(at), jobs, seconds: lo + Math.floor(rnd() * (hi - lo + 1)) });
  }
}

/** What a run saw; judged by `judge`, summarised by the benchmark. */
export interface ChurnRun {
  startedAt: number;
  endedAt: number;
  jobs: FakeJob[];
  /** Jobs that, when queued, had an idle runner waiting for them (GitHub's view at that instant). */
  foundIdle: number;
  /** Milliseconds during which fewer than `target` runners were idle. */
  belowTargetMs: number;
  /** Runner-milliseconds of instances that were neither busy nor needed for the target. */
  wastedMs: number;
  /** GitHub requests counted against the rate limit during the run. */
  counted: number;
  /** "passes" only: each pass, with GitHub's view just before and just after it. */
  passes: { report: PassReport; before: RunnerMoment[]; after: RunnerMoment[]; startedJobs: number }[];
}

const ours = (bed: Bed) => (r: { name: string }) => r.name.startsWith(`${bed.prefix}-`);

/** Idle as the target means it: online, not busy, no job handed to it. */
const idle = (r: RunnerMoment) => r.status === "online" && !r.busy && !r.hasJob;
/** Registered but its runner application never connected: a runner still booting. */
const booting = (r: RunnerMoment) => r.status === "offline" && !r.connected;

export async function churn(
  bed: Bed,
  shape: ChurnShape,
  opts: { driver: Driver; serviceUrl?: string; boundMs?: number; onTick?: () => void },
): Promise<ChurnRun> {
  const plan = arrivals(shape);
  const mine = ours(bed);
  const moments = () => bed.fake.moments().filter(mine);
  const run: ChurnRun = {
    startedAt: Date.now(),
    endedAt: 0,
    jobs: [],
    foundIdle: 0,
    belowTargetMs: 0,
    wastedMs: 0,
    counted: bed.fake.counted,
    passes: [],
  };
  const queued = new Set<number>();
  const seen = new Map<number, FakeJob["state"]>();
  const lastJobEnd = shape.arrivalsMs + shape.jobSeconds[1] * 1000;
  const bound = run.startedAt + lastJobEnd + (opts.boundMs ?? 120_000);
  let next = 0;
  let lastTick = Date.now();
  let lastLxd = 0;
  let lastPass = Date.now();
  let alive = 0;
  const t0 = run.startedAt;

  for (;;) {
    const now = Date.now();
    // ---- arrivals ------------------------------------------------------------------------------------------------
    while (next < plan.length && plan[next].atMs <= now - t0) {
      const a = plan[next++];
      const pending = bed.fake.jobs().filter((j) => queued.has(j.id) && j.state === "queued").length;
      const free = moments().filter(idle).length - pending;
      run.foundIdle += Math.max(0, Math.min(a.jobs, free));
      for (let i = 0; i < a.jobs; i++) queued.add(bed.fake.assignJob({ seconds: a.seconds }).id);
      if (opts.driver === "webhooks") await deliver(opts.serviceUrl!, "queued", null, 0);
    }

    // ---- the pool as GitHub and LXD see it ---------------------------------------------------------------------
    const dt = now - lastTick;
    lastTick = now;
    const m = moments();
    if (m.filter(idle).length < shape.target) run.belowTargetMs += dt;
    if (now - lastLxd >= 500) {
      lastLxd = now;
      alive = (await bed.instances()).size;
    }
    run.wastedMs += Math.max(0, alive - m.filter((r) => r.busy || r.hasJob).length - shape.target) * dt;

    // ---- changes: a job started or ended -------------------------------------------------------------------------
    const jobs = bed.fake.jobs().filter((j) => queued.has(j.id));
    const changed = jobs.filter((j) => seen.get(j.id) !== j.state && (j.state === "running" || j.state === "done"));
    for (const j of jobs) seen.set(j.id, j.state);
    // "passes" also keeps a safety-net timer, as `run` does: a spawn that failed is retried without waiting for a job.
    const due = opts.driver === "passes" && now - lastPass > 5_000;
    if (changed.length > 0 || due) {
      lastPass = now;
      if (opts.driver === "passes") {
        const before = moments();
        const startedBefore = jobs.filter((j) => j.startedAt !== undefined).length;
        const report = await bed.pass();
        const after = moments();
        const startedJobs = bed.fake.jobs().filter((j) => queued.has(j.id) && j.startedAt !== undefined).length -
          startedBefore;
        run.passes.push({ report, before, after, startedJobs });
      } else if (opts.driver === "webhooks") {
        for (const j of changed) {
          await deliver(opts.serviceUrl!, j.state === "running" ? "in_progress" : "completed", j.runner!, j.id);
        }
      }
    }
    opts.onTick?.();

    const open = jobs.filter((j) => j.state !== "done" && j.state !== "failed").length;
    if ((next >= plan.length && open === 0) || Date.now() > bound) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  run.endedAt = Date.now();
  run.jobs = bed.fake.jobs().filter((j) => queued.has(j.id));
  run.counted = bed.fake.counted - run.counted;
  return run;
}

async function deliver(url: string, action: string, runner: string | null, id: number): Promise<void> {
  const now = new Date().toISOString();
  const res = await signedDelivery(url, workflowJob(action, runner, { id, created_at: now, started_at: now }), SECRET);
  if (res.status !== 202) throw new Error(`The service answered ${res.status} to a ${action} webhook`);
}

/**
 * Everything that must hold during and after a churn run; each finding names what broke. Judged from GitHub's own
 * record (the fake's history), not from what the manager says about itself.
 */
export function judge(bed: Bed, run: ChurnRun, history: FakeHistory, target: number): string[] {
  const found: string[] = [];
  const mine = ours(bed);

  // 1. Never lose work: every job ran to its end on the runner that took it.
  for (const j of run.jobs) {
    if (j.state !== "done") found.push(`job ${j.id} ended "${j.state}" (runner ${j.runner ?? "none"})`);
  }
  const busyDeregistered = history.deregistrations.filter((d) => mine(d.runner) && d.runner.busy);
  for (const d of busyDeregistered) found.push(`busy runner ${d.runner.name} was deregistered`);

  // 2. No healthy idle runner is removed while idle+booting is at or below the target. The pass decided on a
  //    listing made shortly before (30 s covers a pass under load); if NO listing of that window justified the
  //    removal, it was wrong.
  const listings = history.listings.filter((l) => l.at >= run.startedAt && l.at <= run.endedAt);
  const removals = history.deregistrations.filter((d) =>
    mine(d.runner) && idle(d.runner) && d.at >= run.startedAt && d.at <= run.endedAt
  );
  for (const d of removals) {
    const window = listings.filter((l) => l.at <= d.at && l.at >= d.at - 30_000);
    const justified = window.some((l) => {
      const since = removals.filter((x) => x.at >= l.at && x.at <= d.at).length;
      const pool = l.runners.filter(mine).filter((r) => idle(r) || booting(r)).length;
      return pool - since >= target;
    });
    if (!justified) {
      found.push(
        `idle runner ${d.runner.name} removed at +${d.at - run.startedAt} ms although no listing of the 30 s ` +
          `before showed more than ${target} idle or booting runners`,
      );
    }
  }

  // 3. "passes": every pass refills the pool: after it, idle + booting + jobs that started during it >= target.
  for (const [i, p] of run.passes.entries()) {
    const ready = p.after.filter((r) => (r.status === "online" && !r.busy) || booting(r)).length;
    if (ready + p.startedJobs < target) {
      found.push(`pass ${i + 1} left ${ready} ready runners (+${p.startedJobs} started jobs) below target ${target}`);
    }
    const failed = p.report.results.filter((r) => r.outcome === "failed");
    for (const f of failed) found.push(`pass ${i + 1}: ${f.error}`);
  }
  return found;
}
