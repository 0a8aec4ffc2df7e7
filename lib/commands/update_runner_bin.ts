/** `update-runner-bin`: refresh the cached runner application, or import one from a file (air-gapped hosts). */
import type { Config } from "../config.ts";
import { GithubClient } from "../github.ts";
import { ensureRunnerApp, importRunnerApp, runnerArch } from "../runner_app.ts";
import type { Io } from "./io.ts";

export async function updateRunnerBinCommand(config: Config, io: Io, opts: { from?: string }): Promise<number> {
  if (opts.from) {
    const app = await importRunnerApp(opts.from, config.cacheDir);
    io.out(`Imported ${app.filename} (sha256 ${app.sha256}) into ${config.cacheDir}\n`);
    return 0;
  }
  const github = new GithubClient({ token: config.token, apiUrl: config.githubApiUrl, scope: config.scope });
  const signal = AbortSignal.any([io.stop, AbortSignal.timeout(30 * 60_000)]);
  let lastShown = 0;
  const app = await ensureRunnerApp(await github.runnerDownloads(signal), {
    cacheDir: config.cacheDir,
    arch: runnerArch(process.arch),
    signal,
    onProgress: (bytes, total) => {
      if (!io.isTty || bytes - lastShown < 4 << 20) return;
      lastShown = bytes;
      io.err(
        `\rDownloading runner application: ${(bytes / 1048576).toFixed(0)}${
          total ? ` / ${(total / 1048576).toFixed(0)}` : ""
        } MiB`,
      );
    },
  });
  if (lastShown) io.err("\n");
  io.out(`Runner application ${app.filename} (sha256 ${app.sha256}) is cached in ${config.cacheDir}\n`);
  return 0;
}
