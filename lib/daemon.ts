/**
 * The `run` service's loop. Three triggers feed ONE single-flight pass: the check-interval timer (the safety
 * net), the watch (a conditional runner-list poll every watch-interval that costs nothing while GitHub answers
 * 304) and webhooks. Passes never overlap; triggers that arrive during a pass coalesce into one follow-up pass.
 */
import type { PassReport } from "./reconcile.ts";

export interface DaemonDeps {
  /** One full pass. */
  pass: (reason: string) => Promise<PassReport>;
  /** A cheap look: true when a pass has something to do. */
  watch: () => Promise<boolean>;
  /** Called after every pass (metrics, state file, logs). */
  onPass?: (report: PassReport, reason: string) => void | Promise<void>;
  onError?: (what: string, error: unknown) => void;
  clock: () => number;
  /** Overrides watch-interval for the next watch (e.g. shorter while runners are booting). */
  watchDelayMs?: (watchIntervalMs: number) => number;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface DaemonTiming {
  checkIntervalMs: number;
  watchIntervalMs: number;
}

/** Single flight with coalescing: at most one pass runs; any number of triggers during it yield one more. */
export class SingleFlight {
  #running: Promise<void> | undefined;
  #pending: string | undefined;
  #passes = 0;

  constructor(private readonly run: (reason: string) => Promise<void>) {}

  /** Starts a pass now, or marks one as due after the current one. Returns when the trigger's pass is done. */
  trigger(reason: string): Promise<void> {
    if (this.#running) {
      this.#pending ??= reason;
      return this.#running;
    }
    this.#running = this.#drain(reason);
    return this.#running;
  }

  get busy(): boolean {
    return this.#running !== undefined;
  }

  get passes(): number {
    return this.#passes;
  }

  /** Resolves when no pass is running or due. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(reason: string | undefined): Promise<void> {
    try {
      while (reason !== undefined) {
        this.#passes++;
        await this.run(reason);
        reason = this.#pending;
        this.#pending = undefined;
      }
    } finally {
      this.#running = undefined;
    }
  }
}

export class Daemon {
  readonly #deps: DaemonDeps;
  #timing: DaemonTiming;
  readonly #flight: SingleFlight;
  readonly #stop = new AbortController();
  #lastPassEnd: number | undefined;
  #lastReport: PassReport | undefined;
  /** Passes in a row that failed: the watch backs off exponentially, so a persistent failure is not retried
   * every few seconds (the timer and webhooks still run passes). */
  #failures = 0;
  #started: number;

  constructor(deps: DaemonDeps, timing: DaemonTiming) {
    this.#deps = deps;
    this.#timing = timing;
    this.#started = deps.clock();
    this.#flight = new SingleFlight(async (reason) => {
      if (this.#stop.signal.aborted) return; // a follow-up queued before stop() is not started after it
      try {
        const report = await deps.pass(reason);
        this.#lastReport = report;
        this.#failures = report.ok ? 0 : this.#failures + 1;
        await deps.onPass?.(report, reason);
      } catch (e) {
        this.#failures++;
        deps.onError?.("pass", e);
      } finally {
        this.#lastPassEnd = deps.clock();
      }
    });
  }

  /** Runs until stop(): a first pass at once, then the timer and the watch. */
  async run(): Promise<void> {
    const signal = this.#stop.signal;
    const timer = (async () => {
      while (!signal.aborted) {
        await this.#flight.trigger("interval");
        await this.#deps.sleep(this.#timing.checkIntervalMs, signal);
      }
    })();
    const watcher = (async () => {
      while (!signal.aborted) {
        const interval = this.#timing.watchIntervalMs;
        await this.#deps.sleep(this.#deps.watchDelayMs?.(interval) ?? interval, signal);
        if (signal.aborted || this.#flight.busy || this.#deps.clock() < this.backoffUntil()) continue;
        try {
          if (await this.#deps.watch()) void this.#flight.trigger("watch");
        } catch (e) {
          this.#deps.onError?.("watch", e);
        }
      }
    })();
    await Promise.all([timer, watcher]);
    await this.#flight.idle(); // the pass in flight finishes (it has its own deadline)
  }

  /** Until when the watch may not start a pass: watch-interval doubled per failed pass, at most check-interval. */
  backoffUntil(): number {
    if (this.#failures === 0 || this.#lastPassEnd === undefined) return 0;
    const delay = Math.min(
      this.#timing.checkIntervalMs,
      this.#timing.watchIntervalMs * 2 ** Math.min(this.#failures, 20),
    );
    return this.#lastPassEnd + delay;
  }

  /** A webhook (or anything else) asks for a pass soon. Coalesces with passes running or due. */
  trigger(reason: string): void {
    if (!this.#stop.signal.aborted) void this.#flight.trigger(reason);
  }

  stop(): void {
    this.#stop.abort();
  }

  setTiming(timing: DaemonTiming): void {
    this.#timing = timing;
  }

  /** Liveness: the last pass ended within a few check intervals (or the first one is still under way). */
  health(now: number): { alive: boolean; ready: boolean; detail: Record<string, unknown> } {
    const since = this.#lastPassEnd ?? this.#started;
    // A pass may legitimately take up to its 15-minute deadline; beyond 3 intervals plus that, the loop is stuck.
    const alive = !this.#stop.signal.aborted && now - since <= 3 * this.#timing.checkIntervalMs + 15 * 60_000;
    const ready = this.#lastReport !== undefined && !this.#lastReport.error;
    return {
      alive,
      ready,
      detail: {
        passes: this.#flight.passes,
        lastPassEnd: this.#lastPassEnd !== undefined ? new Date(this.#lastPassEnd).toISOString() : null,
        lastPassOk: this.#lastReport?.ok ?? null,
        lastError: this.#lastReport?.error ?? null,
      },
    };
  }
}
