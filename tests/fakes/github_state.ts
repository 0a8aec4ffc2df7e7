/**
 * The fake GitHub's state: self-hosted runners, runner groups and queued jobs. No I/O; time comes from `now`.
 *
 * Simplification: the fake models ONE runner pool. Every /orgs/{org}/... and /repos/{owner}/{repo}/... path reads
 * and writes it, so tests need not agree with the fake on an org or repo name (the request log keeps the paths,
 * for tests that care which scope the client used).
 */

/** A runner as tests see it (labels as names; GitHub's label objects are built by `toApiRunner`). */
export interface FakeRunner {
  id: number;
  name: string;
  os: string;
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  labels: string[];
  runnerGroupId: number;
  /** Set once the runner application has connected (GitHub: "only set if the runner has connected"). */
  version?: string;
  /** True once the JIT config was used to connect (a JIT config is single-use). */
  connected: boolean;
}

export interface FakeJob {
  id: number;
  seconds: number;
  /** A runner must carry every one of these labels (case-insensitive) to take the job. */
  labels: string[];
  /** Only this runner may take the job (assignJob with a name). */
  target?: string;
  /** The runner that took it. */
  runner?: string;
  state: "queued" | "assigned" | "running" | "done" | "failed";
  /** Milliseconds since the epoch: queued, started on a runner, done (or failed). */
  queuedAt: number;
  startedAt?: number;
  endedAt?: number;
}

/** One runner as GitHub knew it at an instant: what a churn test judges the manager's decisions against. */
export interface RunnerMoment {
  name: string;
  status: "online" | "offline";
  busy: boolean;
  /** Its runner application has connected (an offline runner that never connected is still booting). */
  connected: boolean;
  /** It was handed a job (assigned or running). */
  hasJob: boolean;
}

/** Every full runner listing the fake answered (200 or 304), and every deregistration it carried out. */
export interface FakeHistory {
  listings: { at: number; runners: RunnerMoment[] }[];
  deregistrations: { at: number; runner: RunnerMoment }[];
}

export interface RunnerRecord extends Omit<FakeRunner, "status"> {
  /** Set for runners added by a test: their status is what the test said, not derived from broker contact. */
  pinnedStatus?: "online" | "offline";
  /** The per-runner broker secret carried in the JIT config (runners created by generate-jitconfig). */
  secret?: string;
  lastSeenMs?: number;
  job?: FakeJob;
}

export interface RunnerGroup {
  id: number;
  name: string;
}

/** Labels GitHub marks "read-only" (applied by the runner itself); everything else is "custom". */
const READ_ONLY_LABELS: Record<string, number> = {
  "self-hosted": 5,
  x64: 7,
  arm: 8,
  arm64: 9,
  linux: 11,
  macos: 20,
  windows: 22,
};

export class FakeState {
  readonly #now: () => number;
  readonly #offlineAfterMs: number;
  readonly #runners = new Map<number, RunnerRecord>();
  readonly #labelIds = new Map<string, number>();
  readonly #jobs: FakeJob[] = [];
  readonly groups: RunnerGroup[] = [{ id: 1, name: "Default" }];
  readonly history: FakeHistory = { listings: [], deregistrations: [] };
  #nextRunnerId = 1001;
  #nextJobId = 1;
  /** Called after every change that a waiting broker poll may care about (a job queued, a runner removed). */
  onChange: () => void = () => {};

  constructor(opts: { now: () => number; offlineAfterMs: number }) {
    this.#now = opts.now;
    this.#offlineAfterMs = opts.offlineAfterMs;
  }

  /** Online while the runner application keeps talking to the broker (GitHub marks silent runners offline). */
  status(r: RunnerRecord): "online" | "offline" {
    if (r.pinnedStatus) return r.pinnedStatus;
    if (!r.connected || r.lastSeenMs === undefined) return "offline";
    return this.#now() - r.lastSeenMs <= this.#offlineAfterMs ? "online" : "offline";
  }

  list(): RunnerRecord[] {
    return [...this.#runners.values()];
  }

  get(id: number): RunnerRecord | undefined {
    return this.#runners.get(id);
  }

  byName(name: string): RunnerRecord | undefined {
    return this.list().find((r) => r.name === name);
  }

  snapshot(r: RunnerRecord): FakeRunner {
    const { pinnedStatus: _p, secret: _s, lastSeenMs: _l, job: _j, ...rest } = r;
    return { ...rest, labels: [...r.labels], status: this.status(r) };
  }

  /** Registers a runner; undefined when the name is taken (GitHub answers 409). */
  register(spec: Omit<RunnerRecord, "id">): RunnerRecord | undefined {
    if (this.byName(spec.name)) return undefined;
    const record: RunnerRecord = { ...spec, id: this.#nextRunnerId++ };
    this.#runners.set(record.id, record);
    return record;
  }

  /** The runners as they are now (RunnerMoment). */
  moments(): RunnerMoment[] {
    return this.list().map((r) => this.moment(r));
  }

  moment(r: RunnerRecord): RunnerMoment {
    return { name: r.name, status: this.status(r), busy: r.busy, connected: !!r.connected, hasJob: !!r.job };
  }

  remove(id: number): void {
    const r = this.#runners.get(id);
    if (!r) return;
    // A job handed out but not started goes back to the queue; one that was running fails with its runner.
    if (r.job?.state === "assigned") Object.assign(r.job, { state: "queued", runner: undefined });
    if (r.job?.state === "running") Object.assign(r.job, { state: "failed", endedAt: this.#now() });
    this.#runners.delete(id);
    this.onChange();
  }

  /** GitHub's runner object (components/schemas/runner). */
  toApiRunner(r: RunnerRecord): Record<string, unknown> {
    return {
      id: r.id,
      name: r.name,
      os: r.os,
      status: this.status(r),
      busy: r.busy,
      ephemeral: r.ephemeral,
      ...(r.version === undefined ? {} : { version: r.version }),
      labels: r.labels.map((name) => this.labelObject(name)),
      runner_group_id: r.runnerGroupId,
    };
  }

  labelObject(name: string): { id: number; name: string; type: "read-only" | "custom" } {
    const key = name.toLowerCase();
    const readOnly = READ_ONLY_LABELS[key];
    if (readOnly !== undefined) return { id: readOnly, name, type: "read-only" };
    if (!this.#labelIds.has(key)) this.#labelIds.set(key, 100 + this.#labelIds.size);
    return { id: this.#labelIds.get(key)!, name, type: "custom" };
  }

  queueJob(spec: { seconds: number; labels?: string[]; target?: string }): FakeJob {
    const job: FakeJob = {
      id: this.#nextJobId++,
      seconds: spec.seconds,
      labels: spec.labels ?? [],
      state: "queued",
      queuedAt: this.#now(),
    };
    if (spec.target !== undefined) job.target = spec.target;
    this.#jobs.push(job);
    this.onChange();
    return job;
  }

  jobs(): FakeJob[] {
    return this.#jobs.map((j) => ({ ...j, labels: [...j.labels] }));
  }

  /** Hands a polling runner its next job: one aimed at it, else the oldest queued job its labels satisfy. */
  takeJob(r: RunnerRecord): FakeJob | undefined {
    if (r.job && r.job.state === "assigned") return r.job;
    if (r.busy || r.job) return undefined;
    const has = new Set(r.labels.map((l) => l.toLowerCase()));
    const job = this.#jobs.find((j) => j.state === "queued" && j.target === r.name) ??
      this.#jobs.find((j) =>
        j.state === "queued" && j.target === undefined && j.labels.every((l) => has.has(l.toLowerCase()))
      );
    if (!job) return undefined;
    Object.assign(job, { state: "assigned", runner: r.name });
    r.job = job;
    return job;
  }

  touch(r: RunnerRecord): void {
    r.lastSeenMs = this.#now();
  }

  get now(): number {
    return this.#now();
  }
}
