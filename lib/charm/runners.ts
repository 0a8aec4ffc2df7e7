/**
 * What hooks and actions do to this unit's runners, through the same pass as the CLI (lib/reconcile.ts) and the
 * same lock as the service, so a hook never races the service's pass. Every listing is filtered by the unit's
 * prefix: a unit never touches another unit's runners.
 */
import type { Config } from "../config.ts";
import { lockPath, makeDeps } from "../deps.ts";
import { withLock } from "../lock.ts";
import { desiredOf, observe, type PassReport, runPass } from "../reconcile.ts";
import { classify } from "../classify.ts";
import { isOwnedInstance } from "../names.ts";
import { detectLxdSocket, LxdClient } from "../lxd.ts";
import type { InstanceType } from "../types.ts";
import { withTargets } from "./options.ts";

/** check-runners' results, with the historical names: online/offline as GitHub says; unknown = not registered. */
export interface RunnerCounts {
  online: number;
  offline: number;
  unknown: number;
  busy: number;
  /** Names of online runners, comma-separated (as the historical charm printed them). */
  runners: string;
}

export async function countRunners(config: Config, signal: AbortSignal): Promise<RunnerCounts> {
  const deps = makeDeps(config);
  const observed = await observe(deps, signal);
  const views = classify(observed, desiredOf(config), deps.clock());
  const online = views.filter((v) => v.runner?.status === "online");
  return {
    online: online.length,
    offline: views.filter((v) => v.runner?.status === "offline").length,
    unknown: views.filter((v) => !v.runner).length,
    busy: views.filter((v) => v.runner?.busy).length,
    runners: online.map((v) => v.name).join(", "),
  };
}

/** One pass under the unit's lock (the service's pass waits for no one: a held lock fails clearly). */
export async function lockedPass(
  config: Config,
  opts: { flush?: { busy: boolean }; signal?: AbortSignal } = {},
): Promise<PassReport> {
  const deps = makeDeps(config);
  return await withLock(lockPath(config), () => runPass(deps, config, opts));
}

/** Runners created minus runners removed by a pass, per instance type (reconcile-runners' `delta`). */
export function deltaOf(report: PassReport): Record<"containers" | "virtual-machines", number> {
  const typeOf = new Map(report.runners.map((r) => [r.name, r.type]));
  const delta = { containers: 0, "virtual-machines": 0 };
  const add = (type: InstanceType | undefined, n: number) => {
    if (type === "container") delta.containers += n;
    else if (type === "virtual-machine") delta["virtual-machines"] += n;
  };
  for (const r of report.results) {
    if (r.outcome !== "done") continue;
    if (r.action.kind === "create") add(r.action.type, 1);
    else add(typeOf.get(r.action.name), -1);
  }
  return delta;
}

export interface RemovalOutcome {
  removed: number;
  kept: number;
  failed: string[];
  /** True when GitHub could not be asked, and instances were deleted on LXD's word alone. */
  lxdOnly: boolean;
}

/**
 * Removes this unit's runners under `config` (its path and token): idle and booting ones, and busy ones too when
 * `busy`. Deregistration comes first, as in every pass. When GitHub cannot be asked at all (the old token was
 * revoked, the old path is gone) and `busy` allows it, the instances are deleted anyway: their registrations
 * go offline and GitHub drops ephemeral runners by itself.
 */
export async function removeRunners(
  config: Config,
  opts: { busy: boolean; signal?: AbortSignal },
): Promise<RemovalOutcome> {
  const report = await lockedPass(withTargets(config, 0, 0), { flush: { busy: opts.busy }, signal: opts.signal });
  const failed = report.results.filter((r) => r.outcome === "failed").map((r) => r.error ?? "unknown");
  const outcome: RemovalOutcome = {
    removed: report.results.filter((r) => r.action.kind === "remove" && r.outcome === "done").length,
    kept: report.results.filter((r) => r.outcome === "kept-busy").length,
    failed,
    lxdOnly: false,
  };
  if (!report.error) return outcome;
  if (!opts.busy) {
    // Without GitHub, idle cannot be told from busy: delete nothing rather than a running job.
    outcome.failed.push(report.error);
    return outcome;
  }
  const lxd = new LxdClient({ socketPath: config.lxdSocket ?? detectLxdSocket() ?? "" });
  const ours = (await lxd.listInstances({ signal: opts.signal })).filter((i) => isOwnedInstance(config.namePrefix, i));
  for (const i of ours) {
    try {
      await lxd.deleteInstance(i.name, { signal: opts.signal, timeoutMs: 120_000 });
      outcome.removed++;
    } catch (e) {
      outcome.failed.push((e as Error).message);
    }
  }
  outcome.lxdOnly = true;
  return outcome;
}
