/**
 * Executing a plan: removals first (they free capacity), then creations, each group with bounded concurrency.
 * One action failing never stops the others; every outcome is reported. The rules live in lib/plan.ts.
 */
import type { Action } from "./plan.ts";
import type { GithubClient } from "./github.ts";
import { type LxdClient, LxdError } from "./lxd.ts";
import { KEY_FINISHED_AT } from "./names.ts";
import { type SpawnDeps, SpawnError, spawnRunner, type SpawnSpec, type SpawnStep, type StepTimes } from "./spawn.ts";

export type Outcome =
  /** Done as planned. */
  | "done"
  /** Removal cancelled: GitHub refused to deregister because the runner took a job. */
  | "kept-busy"
  /** Removal of a runner the list did not show cancelled: asked by name, GitHub still has its registration. */
  | "kept"
  | "failed";

export interface ActionResult {
  action: Action;
  outcome: Outcome;
  /** The runner a create made. */
  name?: string;
  error?: string;
  /** A failed create: the spawn step that failed. */
  failedStep?: SpawnStep;
  /** A create: milliseconds per spawn step. */
  steps?: StepTimes;
  durationMs: number;
}

export interface ActDeps extends SpawnDeps {
  github: Pick<GithubClient, "generateJitConfig" | "deleteRunner" | "findRunner">;
  lxd: Pick<LxdClient, "createInstance" | "deleteInstance" | "exec" | "pushFile" | "setUserKeys">;
  /** The spawn spec for a create, with a fresh name. */
  specFor: (action: Extract<Action, { kind: "create" }>) => SpawnSpec;
  clock: () => number;
}

export async function act(
  deps: ActDeps,
  actions: Action[],
  opts: { concurrency: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
): Promise<ActionResult[]> {
  const removals = actions.filter((a) => a.kind !== "create");
  const creates = actions.filter((a) => a.kind === "create");
  let done = 0;
  const run = async (a: Action) => {
    const result = await timed(deps.clock, () => {
      if (a.kind === "remove") return removeOne(deps, a, opts.signal);
      if (a.kind === "create") return createOne(deps, a, opts.signal);
      return markFinished(deps, a, opts.signal);
    }, a);
    opts.onProgress?.(++done, actions.length);
    return result;
  };
  return [...await mapBounded(removals, opts.concurrency, run), ...await mapBounded(creates, opts.concurrency, run)];
}

async function removeOne(
  deps: ActDeps,
  a: Extract<Action, { kind: "remove" }>,
  signal?: AbortSignal,
): Promise<Omit<ActionResult, "durationMs" | "action">> {
  if (a.busy) {
    // flush --busy: the operator asked to kill the job. The instance goes first; GitHub refuses to deregister a
    // busy runner until it reads offline, so a refusal here is expected and the next pass cleans up.
    if (a.instance) await deps.lxd.deleteInstance(a.name, { signal });
    if (a.runnerId !== undefined) await deps.github.deleteRunner(a.runnerId, signal);
    return { outcome: "done" };
  }
  // The list said nothing of a registration for this instance. Lists can miss a runner (pages shift while they
  // are read), so ask GitHub by name before deleting: an instance is never deleted under a busy runner.
  let runnerId = a.runnerId;
  if (runnerId === undefined && a.instance) {
    const found = await deps.github.findRunner(a.name, signal);
    if (found?.busy) return { outcome: "kept-busy" };
    // Removed BECAUSE the registration is gone: if GitHub has it after all, the list missed it; it lives on.
    if (found && (a.cause === "finished" || a.cause === "unregistered")) return { outcome: "kept" };
    runnerId = found?.id;
  }
  if (runnerId !== undefined) {
    // Deregister FIRST: GitHub's busy flag lags a job's start by up to a minute; its 422 is the only safe answer.
    const result = await deps.github.deleteRunner(runnerId, signal);
    if (result === "busy") return { outcome: "kept-busy" };
  }
  if (a.instance) await deps.lxd.deleteInstance(a.name, { signal });
  return { outcome: "done" };
}

async function markFinished(
  deps: ActDeps,
  a: Extract<Action, { kind: "mark-finished" }>,
  signal?: AbortSignal,
): Promise<Omit<ActionResult, "durationMs" | "action">> {
  // Gone meanwhile (404), or in the middle of powering off (LXD refuses to change an instance that is "busy running a
  // stop operation", seen in CI), is what a finished runner should do: as good as marked. The next pass looks again.
  await deps.lxd.setUserKeys(a.name, { [KEY_FINISHED_AT]: String(a.at) }, { signal }).catch((e) => {
    const poweringOff = e instanceof LxdError &&
      (e.status === 404 || /busy running a "stop" operation/.test(e.message));
    if (!poweringOff) throw e;
  });
  return { outcome: "done" };
}

async function createOne(
  deps: ActDeps,
  a: Extract<Action, { kind: "create" }>,
  signal?: AbortSignal,
): Promise<Omit<ActionResult, "durationMs" | "action">> {
  const spec = deps.specFor(a);
  const { steps } = await spawnRunner(deps, spec, { signal });
  return { outcome: "done", name: spec.name, steps };
}

async function timed(
  clock: () => number,
  f: () => Promise<Omit<ActionResult, "durationMs" | "action">>,
  action: Action,
): Promise<ActionResult> {
  const start = clock();
  try {
    return { action, ...await f(), durationMs: clock() - start };
  } catch (e) {
    const failedStep = e instanceof SpawnError ? e.step : undefined;
    return {
      action,
      outcome: "failed",
      error: (e as Error).message ?? String(e),
      failedStep,
      durationMs: clock() - start,
    };
  }
}

/** Promise.all with at most `limit` in flight; keeps input order. */
export async function mapBounded<T, R>(items: T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
