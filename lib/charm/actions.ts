/**
 * The charm's actions, with the historical names and results of the original charm: check-runners (online,
 * offline, unknown, busy, runners), reconcile-runners and flush-runners (the same plus delta), and
 * update-runner-bin. A failure is reported with action-fail, with the results known so far still set.
 */
import { GithubClient } from "../github.ts";
import { cachedRunnerApp, ensureRunnerApp, runnerArch } from "../runner_app.ts";
import type { PassReport } from "../reconcile.ts";
import { countRunners, deltaOf, lockedPass } from "./runners.ts";
import { type Unit, unitConfig } from "./unit.ts";

export const ACTIONS: Record<string, (unit: Unit) => Promise<void>> = {
  "check-runners": checkRunners,
  "reconcile-runners": reconcileRunners,
  "flush-runners": flushRunners,
  "update-runner-bin": updateRunnerBin,
};

/** Observing GitHub and LXD is quick; a pass has its own 15-minute deadline. */
const OBSERVE_MS = 120_000;

async function checkRunners(unit: Unit): Promise<void> {
  const { config } = await unitConfig(unit);
  await unit.tools.actionSet({ ...await countRunners(config, observeSignal(unit)) });
}

async function reconcileRunners(unit: Unit): Promise<void> {
  const { config } = await unitConfig(unit);
  await unit.tools.actionLog(`Reconciling the runners of ${config.namePrefix}`);
  const report = await lockedPass(config, { signal: unit.signal });
  await setPassResults(unit, report, {});
}

async function flushRunners(unit: Unit): Promise<void> {
  const { config } = await unitConfig(unit);
  const params = await unit.tools.actionGet();
  const busy = params["flush-busy"] === true;
  await unit.tools.actionLog(`Flushing the ${busy ? "idle and busy" : "idle"} runners of ${config.namePrefix}`);
  const report = await lockedPass(config, { flush: { busy }, signal: unit.signal });
  const flushed =
    report.results.filter((r) => r.action.kind === "remove" && r.action.cause === "flush" && r.outcome === "done")
      .length;
  await setPassResults(unit, report, { flushed });
}

/**
 * Refreshes the cached runner application; when a new version arrived, idle runners are flushed and replaced
 * (busy ones finish their job on the old version).
 */
async function updateRunnerBin(unit: Unit): Promise<void> {
  const { config } = await unitConfig(unit);
  const arch = runnerArch(process.arch);
  const before = await cachedRunnerApp(config.cacheDir, arch);
  const github = new GithubClient({ token: config.token, apiUrl: config.githubApiUrl, scope: config.scope });
  const signal = AbortSignal.any([unit.signal, AbortSignal.timeout(30 * 60_000)]);
  const app = await ensureRunnerApp(await github.runnerDownloads(signal), { cacheDir: config.cacheDir, arch, signal });
  const updated = !before || before.sha256 !== app.sha256;
  const results: Record<string, unknown> = { updated, filename: app.filename, sha256: app.sha256, flushed: 0 };
  if (!updated) return await unit.tools.actionSet(results);
  await unit.tools.actionLog(`New runner application ${app.filename}: replacing the idle runners`);
  const report = await lockedPass(config, { flush: { busy: false }, signal: unit.signal });
  results.flushed = report.results.filter((r) => r.action.kind === "remove" && r.outcome === "done").length;
  await unit.tools.actionSet(results);
  if (!report.ok) await unit.tools.actionFail(passFailure(report));
}

/** The counts after the pass (what check-runners would say now), the delta, and action-fail if the pass failed. */
async function setPassResults(unit: Unit, report: PassReport, extra: Record<string, unknown>): Promise<void> {
  const { config } = await unitConfig(unit);
  const counts = await countRunners(config, observeSignal(unit)).catch(() => undefined);
  await unit.tools.actionSet({ ...counts, ...extra, delta: deltaOf(report) });
  if (!report.ok) await unit.tools.actionFail(passFailure(report));
}

function passFailure(report: PassReport): string {
  if (report.error) return `The pass failed: ${report.error}`;
  const failed = report.results.filter((r) => r.outcome === "failed");
  return `${failed.length} of ${report.results.length} actions failed: ${failed[0]?.error ?? "unknown"}`;
}

function observeSignal(unit: Unit): AbortSignal {
  return AbortSignal.any([unit.signal, AbortSignal.timeout(OBSERVE_MS)]);
}
