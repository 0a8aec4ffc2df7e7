/**
 * github-runner: keeps idle, ephemeral, self-hosted GitHub Actions runners in LXD instances.
 * argv -> command; errors -> exit codes (0 ok, 1 a pass ran but an action failed, 2 bad usage or config).
 */
import { parseCommandLine, usage } from "./lib/cli.ts";
import { loadConfig } from "./lib/config_load.ts";
import { ConfigError, UsageError } from "./lib/errors.ts";
import { LOG_LEVELS, setupLogging } from "./lib/log.ts";
import { VERSION } from "./lib/version.ts";
import type { Io } from "./lib/commands/io.ts";
import type { LogLevel } from "@logtape/logtape";

export async function main(argv: string[], io: Io): Promise<number> {
  try {
    // Hidden: the Juju charm's hooks and actions (charm/dispatch). Juju's environment is their input, not flags.
    if (argv[0] === "charm") return await (await import("./lib/charm/main.ts")).charmMain(argv.slice(1), io);
    const inv = parseCommandLine(argv);
    if (inv.command === "help" || inv.help) {
      io.out(usage(inv.command === "help" ? inv.topic : inv.command) + "\n");
      return 0;
    }
    if (inv.command === "version") {
      io.out(`github-runner ${VERSION}\n`);
      return 0;
    }
    const level = (inv.logLevel ?? "info") as LogLevel;
    if (!LOG_LEVELS.includes(level)) {
      throw new UsageError(`Invalid --log-level "${inv.logLevel}": use one of ${LOG_LEVELS.join(", ")}`);
    }
    setupLogging({ level, json: !io.isTty, write: io.err });
    const config = loadConfig({ file: inv.configFile, flags: inv.flags, env: io.env });
    // Commands load on demand: `version`, `help` and bad input never pay for octokit and the LXD client.
    switch (inv.command) {
      case "reconcile":
        return await (await import("./lib/commands/reconcile.ts")).reconcileCommand(config, io, { json: inv.json });
      case "flush": {
        const { reconcileCommand } = await import("./lib/commands/reconcile.ts");
        return await reconcileCommand(config, io, { json: inv.json, flush: { busy: inv.busy } });
      }
      case "check":
        return await (await import("./lib/commands/check.ts")).checkCommand(config, io, { json: inv.json });
      case "run":
        return await (await import("./lib/commands/run.ts")).runCommand(config, io, {
          reload: () => loadConfig({ file: inv.configFile, flags: inv.flags, env: io.env }),
        });
      case "update-runner-bin": {
        const { updateRunnerBinCommand } = await import("./lib/commands/update_runner_bin.ts");
        return await updateRunnerBinCommand(config, io, { from: inv.from });
      }
      case "image":
        return await (await import("./lib/commands/image.ts")).imageBuildCommand(config, io, {
          fromFile: inv.fromFile,
        });
    }
    throw new UsageError(`Unknown command "${inv.command}"`);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      io.err(`github-runner: ${e.message}\n`);
      return 2;
    }
    io.err(`github-runner: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}

if (import.meta.main) {
  const stop = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => stop.abort());
  const onHangup = (listener: () => void) => {
    process.on("SIGHUP", listener);
    return () => void process.off("SIGHUP", listener);
  };
  const code = await main(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    isTty: !!process.stderr.isTTY,
    env: process.env,
    stop: stop.signal,
    onHangup,
  });
  process.exit(code);
}
