/** The command line: which command, which flags. Pure parsing; main.ts dispatches. */
import { parseArgs } from "node:util";
import { CONFIG_KEYS, type RawConfig } from "./config.ts";
import { UsageError } from "./errors.ts";

export const COMMANDS: Record<string, { summary: string; usage: string }> = {
  reconcile: { summary: "one reconciliation pass, then exit", usage: "reconcile [--json]" },
  run: { summary: "reconcile every check-interval until SIGTERM/SIGINT", usage: "run" },
  check: { summary: "report runners as GitHub and LXD see them; changes nothing", usage: "check [--json]" },
  flush: { summary: "remove idle runners (--busy: busy ones too), then reconcile", usage: "flush [--busy] [--json]" },
  "update-runner-bin": {
    summary: "refresh the cached runner application (--from FILE imports a tarball)",
    usage: "update-runner-bin [--from FILE]",
  },
  image: {
    summary: "build the runner image (image build), or import one (--from-file)",
    usage: "image build [--base-image ALIAS] [--image-script FILE] [--from-file TARBALL]",
  },
  version: { summary: "print the version", usage: "version" },
  help: { summary: "usage of the tool or of one command", usage: "help [command]" },
};

export interface Invocation {
  command: string;
  /** For `help`: the command asked about; for `image`: its subcommand (`build`). */
  topic?: string;
  help: boolean;
  configFile?: string;
  json: boolean;
  busy: boolean;
  from?: string;
  /** `image build --from-file`: a prebuilt LXD image tarball. */
  fromFile?: string;
  logLevel?: string;
  /** Config keys given as flags. */
  flags: RawConfig;
}

/** Keys that must not travel on a command line: any user can read another process's arguments. */
const SECRET_FLAGS = new Set(["token", "webhook-secret"]);

/** Flags that only some commands take: given to another command, they are a mistake, not a no-op. */
const COMMAND_FLAGS: Record<string, string[]> = {
  json: ["check", "reconcile", "flush"],
  busy: ["flush"],
  from: ["update-runner-bin"],
  "from-file": ["image"],
};

/** Commands that take a subcommand, and the subcommands they know. */
const SUBCOMMANDS: Record<string, string[]> = { image: ["build"] };

export function parseCommandLine(argv: string[]): Invocation {
  const keyOptions = Object.fromEntries(
    Object.keys(CONFIG_KEYS).filter((k) => !SECRET_FLAGS.has(k)).map((k) => [k, { type: "string" as const }]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ...keyOptions,
        config: { type: "string", short: "c" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        busy: { type: "boolean" },
        from: { type: "string" },
        "from-file": { type: "string" },
        "log-level": { type: "string" },
        token: { type: "string" },
        "webhook-secret": { type: "string" },
      },
    });
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message.replace(/\. To specify a positional argument.*$/s, "")}. See "github-runner help"`,
    );
  }
  const { values, positionals } = parsed;
  for (const key of SECRET_FLAGS) {
    if ((values as Record<string, unknown>)[key] !== undefined) {
      const instead = key === "token" ? "token-file or GITHUB_TOKEN" : `${key}-file`;
      throw new UsageError(
        `Refusing --${key}: command-line arguments are visible to every user of the host; use ${instead}`,
      );
    }
  }
  const [command = "help", topic, ...extra] = positionals;
  if (!(command in COMMANDS)) throw new UsageError(`Unknown command "${command}". See "github-runner help"`);
  for (const [flag, commands] of Object.entries(COMMAND_FLAGS)) {
    if ((values as Record<string, unknown>)[flag] !== undefined && !commands.includes(command)) {
      throw new UsageError(`--${flag} does not apply to "${command}" (only to ${commands.join(", ")})`);
    }
  }
  const subcommands = SUBCOMMANDS[command];
  if (subcommands && !(values.help && topic === undefined) && !subcommands.includes(topic ?? "")) {
    throw new UsageError(
      topic === undefined
        ? `"${command}" needs a subcommand: ${subcommands.join(", ")}`
        : `Unknown subcommand "${topic}" for "${command}" (known: ${subcommands.join(", ")})`,
    );
  }
  if (extra.length > 0 || (topic !== undefined && command !== "help" && !subcommands)) {
    throw new UsageError(`Unexpected argument "${command === "help" ? extra[0] : topic}" for "${command}"`);
  }
  const flags: RawConfig = {};
  for (const key of Object.keys(keyOptions)) {
    const v = (values as Record<string, unknown>)[key];
    if (v !== undefined) flags[key] = v;
  }
  return {
    command,
    topic,
    help: !!values.help,
    configFile: values.config as string | undefined,
    json: !!values.json,
    busy: !!values.busy,
    from: values.from as string | undefined,
    fromFile: values["from-file"] as string | undefined,
    logLevel: values["log-level"] as string | undefined,
    flags,
  };
}

export function usage(command?: string): string {
  if (command && COMMANDS[command]) {
    return `Usage: github-runner ${COMMANDS[command].usage} [-c FILE] [--KEY VALUE ...]\n\n${
      COMMANDS[command].summary
    }.\n\n${OPTIONS}`;
  }
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(20)} ${c.summary}`);
  return `github-runner keeps idle, ephemeral, self-hosted GitHub Actions runners in LXD instances.

Usage: github-runner <command> [options]

Commands:
${lines.join("\n")}

${OPTIONS}`;
}

const OPTIONS = `Options:
  -c, --config FILE    TOML config file (default /etc/github-runner/config.toml when it exists)
  --json               machine-readable output on stdout (check, reconcile, flush)
  --log-level LEVEL    trace, debug, info (default), warning, error
  -h, --help           this help
  --KEY VALUE          any config key, overriding the file: ${
  Object.keys(CONFIG_KEYS).filter((k) => !SECRET_FLAGS.has(k)).join(", ")
}

The token comes from token or token-file in the config file, or from GITHUB_TOKEN; never from a flag
(nor does the webhook secret).
Exit codes: 0 success; 1 the pass ran but an action failed; 2 bad usage or bad config.`;
