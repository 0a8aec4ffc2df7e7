/**
 * Join what GitHub and LXD report into one view per runner name, each in exactly one named bucket. Pure.
 * Everything not owned by this prefix is dropped here, so nothing downstream can touch it.
 *
 * A runner's life, and what a pass sees in each window of it (lib/spawn.ts registers BEFORE it creates):
 *
 * | window                                        | GitHub             | LXD instance              | bucket              |
 * |-----------------------------------------------|--------------------|---------------------------|---------------------|
 * | JIT answered, instance not created yet        | offline            | none                      | orphan-registration |
 * | created (runner-id key), runner not started   | offline            | running, runner-id        | booting             |
 * | runner started, not connected yet             | offline            | running, runner-id        | booting             |
 * | runner connected                              | online             | running                   | idle                |
 * | job taken                                     | busy (lags <= 60s) | running                   | busy                |
 * | job done: GitHub drops the registration       | none               | running, runner-id        | finished            |
 * | powered off (ephemeral: LXD deletes it)       | none               | stopped, then none        | stopped, then none  |
 * | removal: deregistered, delete not done yet    | none               | running, runner-id        | finished            |
 * | made by an older version, never registered    | none               | running, no runner-id     | unregistered        |
 * | runner crashed or never came up               | offline            | running, older than boot  | boot-timeout        |
 *
 * Only idle and booting runners count toward the target: a finished instance is on its way out, however long its
 * power-off takes, and counting it (as "booting") once made surplus removal delete healthy idle runners.
 */
import type { Desired, GithubRunner, Instance, InstanceType, Observed } from "./types.ts";
import { isOwnedInstance, isOwnedName, KEY_RUNNER_ID, KEY_SCOPE } from "./names.ts";

export type Bucket =
  /** Online, not busy, instance running: counts toward the target. */
  | "idle"
  /** GitHub says busy: never removed by reconcile, whatever else is true. */
  | "busy"
  /** Registered but not online yet, instance running, younger than boot-timeout: counts toward the target. */
  | "booting"
  /**
   * Instance running whose registration existed (runner-id key) and is gone: its job is done (or someone
   * deregistered it). Never counted; it powers itself off, or is deleted after a grace.
   */
  | "finished"
  /** Instance running without a registration and without a runner-id key (an older version's): never counted. */
  | "unregistered"
  /** Instance running, runner not online, older than boot-timeout: failed; remove. */
  | "boot-timeout"
  /** Instance not running (stopped, errored, frozen): remove. */
  | "stopped"
  /** GitHub registration offline and no instance: a leftover; deregister. */
  | "orphan-registration"
  /** Online registration without an instance: GitHub has not noticed yet; left alone until it reads offline. */
  | "vanishing"
  /** Instance of a previous GitHub scope (path changed): left to finish its job; deleted once stopped. */
  | "draining";

export interface RunnerView {
  name: string;
  bucket: Bucket;
  /** Known from the instance; undefined for a registration without an instance. */
  type?: InstanceType;
  runner?: GithubRunner;
  instance?: Instance;
  /** Since instance creation; 0 without an instance. */
  ageMs: number;
}

const LIVE_STATUSES = new Set(["Running", "Starting"]);

export function classify(
  observed: Observed,
  desired: Pick<Desired, "prefix" | "bootTimeoutMs" | "scope">,
  now: number,
): RunnerView[] {
  const { prefix, bootTimeoutMs, scope } = desired;
  const runners = new Map<string, GithubRunner>();
  for (const r of observed.runners) if (isOwnedName(prefix, r.name)) runners.set(r.name, r);
  const instances = new Map<string, Instance>();
  for (const i of observed.instances) if (isOwnedInstance(prefix, i)) instances.set(i.name, i);

  // A hint only ever makes a runner busy, never idle: the safe direction.
  for (const name of observed.busyHints ?? []) {
    const r = runners.get(name);
    if (r && !r.busy) runners.set(name, { ...r, busy: true });
  }
  const names = new Set([...runners.keys(), ...instances.keys()]);
  return [...names].sort().map((name) => {
    const runner = runners.get(name);
    const instance = instances.get(name);
    const ageMs = instance ? Math.max(0, now - instance.createdAt) : 0;
    return {
      name,
      runner,
      instance,
      type: instance?.type,
      ageMs,
      bucket: drains(instance, scope) ? "draining" : bucketOf(runner, instance, ageMs, bootTimeoutMs),
    };
  });
}

/**
 * An instance whose runner registered under another GitHub scope (the path or server changed since): this
 * scope's list cannot show it, so nothing here can tell idle from busy. It is left to finish and power off; only
 * once stopped is it deleted. Instances made before scopes were marked count as this scope's.
 */
function drains(instance: Instance | undefined, scope: string): boolean {
  const marked = instance?.userKeys[KEY_SCOPE];
  return marked !== undefined && marked !== scope && instance!.status !== "Stopped";
}

function bucketOf(
  runner: GithubRunner | undefined,
  instance: Instance | undefined,
  ageMs: number,
  bootTimeoutMs: number,
): Bucket {
  // Busy wins over everything: GitHub's flag is the only evidence of a job, and losing a job is the worst outcome.
  if (runner?.busy) return "busy";
  if (!instance) return runner!.status === "online" ? "vanishing" : "orphan-registration";
  if (!LIVE_STATUSES.has(instance.status)) return "stopped";
  if (runner?.status === "online") return "idle";
  // A registration is made before its instance, so no registration means it is gone, not that it is yet to come.
  if (!runner) return instance.userKeys[KEY_RUNNER_ID] !== undefined ? "finished" : "unregistered";
  return ageMs < bootTimeoutMs ? "booting" : "boot-timeout";
}

/** Counts per bucket, for reports and metrics. */
export function countBuckets(views: RunnerView[]): Record<Bucket, number> {
  const counts: Record<Bucket, number> = {
    idle: 0,
    busy: 0,
    booting: 0,
    finished: 0,
    unregistered: 0,
    "boot-timeout": 0,
    stopped: 0,
    "orphan-registration": 0,
    vanishing: 0,
    draining: 0,
  };
  for (const v of views) counts[v.bucket]++;
  return counts;
}

/** Every bucket, in a stable order (metrics start each label value at 0). */
export const BUCKETS = Object.keys(countBuckets([])) as readonly Bucket[];
