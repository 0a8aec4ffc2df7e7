/** `run`: a pass every check-interval until SIGTERM/SIGINT; the pass in flight finishes, then exit 0. */
import type { Config } from "../config.ts";
import { lockPath, makeDeps } from "../deps.ts";
import { LockedError, withLock } from "../lock.ts";
import { runPass } from "../reconcile.ts";
import { logger } from "../log.ts";
import type { Io } from "./io.ts";

export async function runCommand(config: Config, io: Io): Promise<number> {
  const deps = makeDeps(config);
  const log = logger("run");
  log.info("Reconciling every {interval} s for prefix {prefix}", {
    interval: config.checkIntervalMs / 1000,
    prefix: config.namePrefix,
  });
  while (!io.stop.aborted) {
    try {
      // The pass is NOT given io.stop: a stop request lets the pass in flight finish (it has its own deadline).
      const report = await withLock(lockPath(config), () => runPass(deps, config));
      const b = report.before;
      log.info(
        "Pass done in {durationMs} ms: {idle} idle, {busy} busy, {booting} booting, {actions} actions, ok={ok}",
        {
          durationMs: report.durationMs,
          idle: b.idle,
          busy: b.busy,
          booting: b.booting,
          actions: report.results.length,
          ok: report.ok,
        },
      );
    } catch (e) {
      if (!(e instanceof LockedError)) throw e;
      log.warning("Skipped a pass: {error}", { error: e.message });
    }
    await sleep(config.checkIntervalMs, io.stop);
  }
  log.info("Stopped");
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
