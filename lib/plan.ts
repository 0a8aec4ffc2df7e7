/**
 * The planner: given what GitHub and LXD report, what to create and what to remove. Pure, and the ONE place
 * that owns every rule of a pass (targets, the cap, cleanup, busy protection). lib/act.ts only executes.
 */
import type { Desired, HostCapacity, InstanceType, Observed } from "./types.ts";
import { formatBytes } from "./units.ts";
import { type Bucket, classify, type RunnerView } from "./classify.ts";
import { KEY_FINISHED_AT } from "./names.ts";

/** Why a runner is removed: every value, in one list (metrics start each label value at 0). */
export const REMOVE_CAUSES = [
  "surplus",
  "over-cap",
  "max-age",
  "outdated",
  "boot-timeout",
  "stopped",
  "orphan-registration",
  "finished",
  "unregistered",
  "flush",
] as const;
export type RemoveCause = typeof REMOVE_CAUSES[number];

export type Action =
  | { kind: "create"; type: InstanceType; reason: string }
  | {
    kind: "remove";
    name: string;
    cause: RemoveCause;
    reason: string;
    /** Deregister this GitHub runner first; a 422 (it took a job) cancels the removal. */
    runnerId?: number;
    /** Delete this instance once deregistration succeeded (or there was nothing to deregister). */
    instance: boolean;
    /** flush --busy only: the runner is busy; delete the instance first, deregistration may lag. */
    busy?: true;
  }
  /** A finished instance seen for the first time: write when, so its grace survives restarts (no database). */
  | { kind: "mark-finished"; name: string; at: number; reason: string };

type CreateAction = Extract<Action, { kind: "create" }>;

export interface Plan {
  views: RunnerView[];
  actions: Action[];
  /** Why the target cannot be met this pass (e.g. the host lacks memory): reported, and the pass is not ok. */
  problems: string[];
}

const TYPES: readonly InstanceType[] = ["container", "virtual-machine"];

/** Removal rules that do not depend on the target: broken or leftover runners. Never busy ones. */
const CLEANUP: Partial<Record<Bucket, (v: RunnerView) => string>> = {
  "boot-timeout": (v) => `instance running ${seconds(v.ageMs)}s without an online runner (boot-timeout exceeded)`,
  stopped: (v) => `instance is ${v.instance!.status.toLowerCase()}`,
  "orphan-registration": () => "offline registration without an instance",
  unregistered: () => "instance running without a registration, made by a version that registered after creating",
};

export function plan(observed: Observed, desired: Desired, now: number): Plan {
  const views = classify(observed, desired, now);
  const actions: Action[] = [];
  const removed = new Set<string>();
  const remove = (v: RunnerView, cause: RemoveCause, reason: string) => {
    removed.add(v.name);
    actions.push({ kind: "remove", name: v.name, cause, reason, runnerId: v.runner?.id, instance: !!v.instance });
  };
  // A finished runner powers itself off within seconds (a container) or tens of seconds (a VM); one that has not
  // after the grace is stuck, and deleted. The grace starts when a pass first saw the registration gone.
  const finish = (v: RunnerView) => {
    const since = Number(v.instance!.userKeys[KEY_FINISHED_AT]);
    if (!Number.isFinite(since) || since <= 0) {
      actions.push({ kind: "mark-finished", name: v.name, at: now, reason: "registration gone, instance running" });
    } else if (now - since >= desired.finishedGraceMs) {
      remove(v, "finished", `registration gone ${seconds(now - since)}s ago and the instance is still running`);
    }
  };

  for (const v of views) {
    const rule = CLEANUP[v.bucket];
    if (rule) remove(v, v.bucket as RemoveCause, rule(v));
    if (v.bucket === "finished") finish(v);
  }

  // Rotation by age: one aged idle runner per type and pass, so warm runners never all vanish at once. It still
  // counts toward the cap until it is gone (a 422 keeps it), and its replacement comes from the target rule.
  // The same for runners of an image that `image` no longer names (a rebuilt image): replaced while idle.
  const aged = new Set<string>();
  const current = observed.currentImage;
  for (const type of TYPES) {
    const idle = views.filter((v) => v.type === type && v.bucket === "idle")
      .sort((a, b) => b.ageMs - a.ageMs || a.name.localeCompare(b.name));
    const outdated = current ? idle.find((v) => v.instance?.baseImage && v.instance.baseImage !== current) : undefined;
    const old = desired.maxRunnerAgeMs > 0 ? idle.find((v) => v.ageMs > desired.maxRunnerAgeMs) : undefined;
    if (outdated) {
      aged.add(outdated.name);
      const from = outdated.instance!.baseImage!.slice(0, 12);
      remove(outdated, "outdated", `made from image ${from}, and "image" now names ${current!.slice(0, 12)}`);
    } else if (old) {
      aged.add(old.name);
      remove(old, "max-age", `instance is ${seconds(old.ageMs)}s old, older than max-runner-age`);
    }
  }

  // Oldest first: an old idle runner is the likeliest to be stale, and the order is deterministic.
  const idleOldestFirst = (type?: InstanceType) =>
    views.filter((v) => v.bucket === "idle" && (!type || v.type === type) && !removed.has(v.name))
      .sort((a, b) => b.ageMs - a.ageMs || a.name.localeCompare(b.name));

  const bootingYoungestFirst = (type: InstanceType) =>
    views.filter((v) => v.bucket === "booting" && v.type === type && !removed.has(v.name))
      .sort((a, b) => a.ageMs - b.ageMs || a.name.localeCompare(b.name));

  const need = new Map<InstanceType, number>();
  for (const type of TYPES) {
    const target = type === "container" ? desired.containers : desired.virtualMachines;
    const ready = views.filter((v) =>
      v.type === type && (v.bucket === "idle" || v.bucket === "booting") && !removed.has(v.name)
    ).length;
    // Idle runners go first, oldest first; then booting ones, youngest first (they have cost the least). A
    // booting runner cannot be running a job; should it take one meanwhile, deregistration meets GitHub's 422.
    const surplus = [...idleOldestFirst(type), ...bootingYoungestFirst(type)].slice(0, Math.max(0, ready - target));
    for (const v of surplus) remove(v, "surplus", `idle+booting ${ready} > target ${target}`);
    need.set(type, Math.max(0, target - ready));
  }

  // The cap counts every runner holding host resources: idle, busy and booting.
  const live =
    views.filter((v) =>
      ["idle", "busy", "booting", "draining"].includes(v.bucket) && (!removed.has(v.name) || aged.has(v.name))
    )
      .length;
  let room = desired.maxRunners > 0 ? desired.maxRunners - live : Infinity;
  if (room < 0) {
    for (const v of idleOldestFirst().slice(0, -room)) {
      remove(v, "over-cap", `${live} runners > max-runners ${desired.maxRunners}`);
    }
    room = 0;
  }

  // Alternate types so a cap shares the room instead of starving virtual machines.
  const wanted: CreateAction[] = [];
  const pending = new Map(need);
  while (room > 0 && [...pending.values()].some((n) => n > 0)) {
    for (const type of TYPES) {
      const n = pending.get(type)!;
      if (n === 0 || room === 0) continue;
      const target = type === "container" ? desired.containers : desired.virtualMachines;
      wanted.push({ kind: "create", type, reason: `idle+booting ${target - n} < target ${target}` });
      pending.set(type, n - 1);
      room--;
    }
  }
  const problems = admit(wanted, desired, observed.capacity, actions);
  return { views, actions, problems };
}

/**
 * Host capacity admission: creates go ahead while what they take (Desired.needs) fits in what the host has free;
 * the rest are refused with a reason instead of overcommitting into OOM or a full disk. Unknown needs or
 * capacity are not checked.
 */
function admit(
  wanted: CreateAction[],
  desired: Desired,
  capacity: HostCapacity | undefined,
  actions: Action[],
): string[] {
  let memory = capacity?.memoryFree;
  let disk = capacity?.diskFree;
  const refused = new Map<InstanceType, number>();
  for (const w of wanted) {
    const need = desired.needs?.[w.type] ?? { memory: 0, disk: 0 };
    const short = (need.memory > 0 && memory !== undefined && need.memory > memory) ||
      (need.disk > 0 && disk !== undefined && need.disk > disk);
    if (short) {
      refused.set(w.type, (refused.get(w.type) ?? 0) + 1);
      continue;
    }
    if (memory !== undefined) memory -= need.memory;
    if (disk !== undefined) disk -= need.disk;
    actions.push(w);
  }
  return [...refused].map(([type, n]) => {
    const need = desired.needs![type];
    const free = [
      need.memory ? `${formatBytes(capacity?.memoryFree ?? 0)} memory` : "",
      need.disk ? `${formatBytes(capacity?.diskFree ?? 0)} disk` : "",
    ].filter(Boolean).join(" and ");
    const each = [
      need.memory ? `${formatBytes(need.memory)} memory` : "",
      need.disk ? `${formatBytes(need.disk)} disk` : "",
    ]
      .filter(Boolean).join(" and ");
    return `Not creating ${n} ${type} runner(s): each needs ${each}, the host has ${free} free`;
  });
}

/**
 * `flush`: remove every idle and booting runner (and with `busy`, the busy ones too) so that the following
 * reconcile replaces them. Broken runners are cleaned up as in a normal pass.
 */
export function planFlush(observed: Observed, desired: Desired, now: number, opts: { busy: boolean }): Plan {
  const { views, actions } = plan(observed, { ...desired, containers: 0, virtualMachines: 0, maxRunners: 0 }, now);
  // Cleanup of broken runners as in any pass; the flush itself takes every idle one, aged or not.
  const flushed: Action[] = actions.filter((a) =>
    a.kind === "remove" && a.cause !== "surplus" && a.cause !== "max-age" && a.cause !== "outdated"
  );
  for (const v of views) {
    // --busy (the operator's "everything goes", e.g. removing the unit) also takes runners of an old scope.
    const take = v.bucket === "idle" || v.bucket === "booting" ||
      (opts.busy && (v.bucket === "busy" || v.bucket === "draining"));
    if (!take) continue;
    const action: Action = {
      kind: "remove",
      name: v.name,
      cause: "flush",
      reason: `flush of ${v.bucket} runners`,
      runnerId: v.runner?.id,
      instance: !!v.instance,
    };
    if (v.bucket === "busy" || v.bucket === "draining") action.busy = true;
    flushed.push(action);
  }
  return { views, actions: flushed, problems: [] };
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
