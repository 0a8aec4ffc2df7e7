/**
 * `run`: the service. One single-flight pass loop (lib/daemon.ts) fed by the check-interval timer, a free
 * conditional watch of the runner list every watch-interval, and verified workflow_job webhooks; an HTTP
 * listener for /metrics, /healthz, /readyz and /webhook; the state file after every pass. SIGTERM/SIGINT: the
 * pass in flight finishes, the listener closes, exit 0. SIGHUP: the config is read again (a bad one is refused
 * and the old one kept).
 */
import { type Config, parseListen } from "../config.ts";
import { lockPath, makeDeps } from "../deps.ts";
import { withLock } from "../lock.ts";
import { desiredOf, observe, type PassDeps, type PassReport, runPass } from "../reconcile.ts";
import { plan } from "../plan.ts";
import { Daemon } from "../daemon.ts";
import { Metrics } from "../metrics.ts";
import { type Listener, makeHandler, serve } from "../http.ts";
import { jobWaitSeconds } from "../webhook.ts";
import { SpawnLatency } from "../spawn_latency.ts";
import { isOwnedName } from "../names.ts";
import { type StateSummary, StateTracker, writeState } from "../state_file.ts";
import { countBuckets } from "../classify.ts";
import { logger } from "../log.ts";
import { VERSION } from "../version.ts";
import type { Io } from "./io.ts";

/** GitHub's busy flag lags a job's start by up to a minute; a webhook's word is trusted for twice that. */
const BUSY_HINT_MS = 2 * 60_000;

export interface RunOptions {
  /** Reads the configuration again from its sources (SIGHUP). */
  reload: () => Config;
}

export async function runCommand(initial: Config, io: Io, opts: RunOptions): Promise<number> {
  const log = logger("run");
  const metrics = new Metrics({ version: VERSION });
  const latency = new SpawnLatency();
  /** Runners webhooks said took a job, until when to believe it over GitHub's lagging busy flag. */
  const busyHints = new Map<string, number>();
  const currentHints = () => {
    const now = Date.now();
    for (const [name, until] of busyHints) if (until < now) busyHints.delete(name);
    return [...busyHints.keys()];
  };
  let config = initial;
  const build = (c: Config): PassDeps =>
    makeDeps(c, {
      onGithubResponse: (r) => metrics.observeGithubResponse(r),
      onLxdError: (e) => metrics.observeLxdError(e.operation),
    });
  let deps = build(config);
  const state = new StateTracker();
  const saveState = async (summary: StateSummary | undefined) => {
    if (!summary) return;
    await writeState(config.stateDir, summary).catch((e) =>
      log.warning("Cannot write the state file in {dir}: {error}", { dir: config.stateDir, error: e.message })
    );
  };

  const daemon = new Daemon({
    pass: (reason) => {
      log.debug("Pass starting: {reason}", { reason });
      return withLock(lockPath(config), () => runPass(deps, config, { busyHints: currentHints() }));
    },
    watch: async () => {
      const observed = { ...await observe(deps, AbortSignal.timeout(60_000)), busyHints: currentHints() };
      const p = plan(observed, desiredOf(config), deps.clock());
      for (const o of latency.update(p.views)) metrics.observeSpawnOnline(o.seconds, o.type);
      // The gauges and the state file show this observation, not only the last pass's (issue: a long
      // check-interval left "booting=2, idle=0" on a dashboard for half an hour after the runners came online).
      metrics.observeRunners(p.views);
      await saveState(state.observed(countBuckets(p.views), deps.clock()));
      return p.actions.length > 0;
    },
    onPass: async (report, reason) => {
      metrics.observePass(report);
      for (const o of latency.update(report.runners)) metrics.observeSpawnOnline(o.seconds, o.type);
      for (const r of report.results) {
        if (r.action.kind === "create" && r.outcome === "done" && r.name) latency.created(r.name);
      }
      logPass(report, reason);
      await saveState(state.passed(report, deps.clock()));
    },
    onError: (what, error) =>
      log.error("The {what} failed: {error}", { what, error: (error as Error)?.message ?? String(error) }),
    clock: () => deps.clock(),
    // While runners boot, look every second: conditional reads cost nothing, and spawn_online_seconds is then
    // measured to the second instead of to the next trigger.
    watchDelayMs: (interval) => latency.tracking ? Math.min(interval, 1_000) : interval,
    sleep,
  }, timing(config));

  let listener: Listener | undefined;
  const address = parseListen(config.listen);
  if (address) {
    listener = await serve(
      makeHandler({
        metrics,
        health: () => daemon.health(Date.now()),
        webhookSecret: config.webhookSecret,
        onWorkflowJob: (e) => {
          // Job wait counts only for jobs our runners took: an organisation's webhook reports every job.
          const wait = jobWaitSeconds(e);
          if (wait !== undefined && e.runnerName && isOwnedName(config.namePrefix, e.runnerName)) {
            metrics.observeJobWait(wait);
          }
          if (e.action === "in_progress" && e.runnerName && isOwnedName(config.namePrefix, e.runnerName)) {
            busyHints.set(e.runnerName, Date.now() + BUSY_HINT_MS);
          }
          daemon.trigger(`webhook workflow_job ${e.action}`);
        },
      }),
      address,
    );
    log.info("Listening on {url} (/metrics, /healthz, /readyz{webhook})", {
      url: listener.url,
      webhook: config.webhookSecret ? ", /webhook" : "",
    });
  }

  const stop = () => daemon.stop();
  io.stop.addEventListener("abort", stop, { once: true });
  const offHangup = io.onHangup?.(() => {
    try {
      const next = opts.reload();
      if (next.namePrefix !== config.namePrefix) {
        // The old prefix's runners would be abandoned: nothing would ever clean them up.
        throw new Error(
          `name-prefix cannot change while running ("${config.namePrefix}" -> "${next.namePrefix}"); restart instead`,
        );
      }
      if (next.listen !== config.listen || next.webhookSecret !== config.webhookSecret) {
        log.warning("listen and webhook-secret changes take effect at the next restart");
      }
      const nextDeps = build(next); // may throw (e.g. no LXD socket): then nothing changed
      config = next;
      deps = nextDeps;
      daemon.setTiming(timing(config));
      daemon.trigger("config reloaded");
      log.info("Configuration reloaded");
    } catch (e) {
      log.error("Configuration NOT reloaded, the previous one stays: {error}", { error: (e as Error).message });
    }
  });
  log.info("Reconciling every {interval} s, watching every {watch} s, prefix {prefix}", {
    interval: config.checkIntervalMs / 1000,
    watch: config.watchIntervalMs / 1000,
    prefix: config.namePrefix,
  });
  if (io.stop.aborted) daemon.stop();
  await daemon.run();
  offHangup?.();
  await listener?.close();
  log.info("Stopped");
  return 0;

  function logPass(report: PassReport, reason: string): void {
    const b = report.before;
    log.info(
      "Pass ({reason}) done in {durationMs} ms: {idle} idle, {busy} busy, {booting} booting, {actions} actions, ok={ok}",
      {
        reason,
        durationMs: report.durationMs,
        idle: b.idle,
        busy: b.busy,
        booting: b.booting,
        actions: report.results.length,
        ok: report.ok,
      },
    );
  }
}

function timing(c: Config) {
  return { checkIntervalMs: c.checkIntervalMs, watchIntervalMs: c.watchIntervalMs };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
