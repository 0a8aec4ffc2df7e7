/** `reconcile` and `flush`: one pass (flush: remove idle, or all, runners first), then exit. */
import type { Config } from "../config.ts";
import { lockPath, makeDeps } from "../deps.ts";
import { withLock } from "../lock.ts";
import { loadEtags, saveEtags } from "../etag_cache.ts";
import { runPass } from "../reconcile.ts";
import { formatPassReport } from "../report_format.ts";
import type { Io } from "./io.ts";

export async function reconcileCommand(
  config: Config,
  io: Io,
  opts: { json: boolean; flush?: { busy: boolean } },
): Promise<number> {
  const deps = makeDeps(config);
  const report = await withLock(lockPath(config), async () => {
    await loadEtags(deps.github, config.cacheDir);
    // A progress line on a terminal only: logs and --json stay quiet.
    const onProgress = io.isTty && !opts.json
      ? (done: number, total: number) => io.err(`\r${done}/${total} actions done${done === total ? "\n" : ""}`)
      : undefined;
    const report = await runPass(deps, config, { flush: opts.flush, signal: io.stop, onProgress });
    await saveEtags(deps.github, config.cacheDir);
    return report;
  });
  io.out(opts.json ? JSON.stringify(report) + "\n" : formatPassReport(report) + "\n");
  return report.ok ? 0 : 1;
}
