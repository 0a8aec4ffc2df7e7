/**
 * The shapes that cross module boundaries. Everything here is plain data: no I/O, no classes.
 *
 * The reconciler's flow is observe -> classify -> plan -> act -> report (lib/reconcile.ts).
 */

/** LXD's instance types, spelled as LXD spells them. */
export type InstanceType = "container" | "virtual-machine";

/** A self-hosted runner as GitHub reports it (GET .../actions/runners), reduced to what the planner needs. */
export interface GithubRunner {
  id: number;
  name: string;
  status: "online" | "offline";
  busy: boolean;
  labels: string[];
}

/** An LXD instance as LXD reports it (GET /1.0/instances?recursion=1), reduced to what the planner needs. */
export interface Instance {
  name: string;
  type: InstanceType;
  /** LXD's status string: "Running", "Stopped", "Error", "Frozen", "Starting", ... */
  status: string;
  /** Creation time, milliseconds since the epoch. */
  createdAt: number;
  /** The instance's `user.*` config keys (ownership marks); other keys are dropped. */
  userKeys: Record<string, string>;
  /** The image fingerprint it was created from (LXD's volatile.base_image). */
  baseImage?: string;
}

/** What one pass saw. Both lists are complete (all pages) or the pass does not plan at all. */
export interface Observed {
  runners: GithubRunner[];
  instances: Instance[];
  /**
   * Runners a verified `workflow_job` webhook said took a job, which GitHub's list may not show as busy yet (its
   * busy flag lags by up to a minute). They count as busy: never removed, not idle, so they are replaced at once.
   */
  busyHints?: readonly string[];
  /** What the host has free; undefined when LXD could not say (then nothing is refused for capacity). */
  capacity?: HostCapacity;
  /** The fingerprint `image` names now; undefined when unknown (then nothing is rotated for it). */
  currentImage?: string;
}

/** Free host resources in bytes; a field is undefined when unknown. */
export interface HostCapacity {
  memoryFree?: number;
  diskFree?: number;
}

/** What the operator asked for; derived from Config by the reconciler. */
export interface Desired {
  prefix: string;
  containers: number;
  virtualMachines: number;
  /** 0 = no cap. Caps idle + busy + booting runners of this prefix. */
  maxRunners: number;
  /** An instance whose runner is not online this long after creation has failed. */
  bootTimeoutMs: number;
  /** A finished runner's instance (job done, registration gone) still running this long is deleted. */
  finishedGraceMs: number;
  /** 0 = no limit. Idle runners older than this are replaced (stale disks, old patches); busy ones finish first. */
  maxRunnerAgeMs: number;
  /** Where runners register now (names.ts scopeOf); instances marked with another scope are draining. */
  scope: string;
  /** What one new instance of each type takes from the host, in bytes (0: unknown, not checked). */
  needs?: Record<InstanceType, { memory: number; disk: number }>;
}
