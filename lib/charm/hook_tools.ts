/**
 * Typed wrappers over Juju's hook tools (config-get, status-set, action-*, juju-log, resource-get, secret-get,
 * application-version-set), each run with execFile and a time limit. Arguments follow Juju's documented usage
 * (documentation.ubuntu.com/juju, reference/hook-command). No secret is ever an argument: secrets only come OUT
 * of a tool (config-get, secret-get), on stdout; what goes in (status messages, action results, log lines) is
 * produced by code that never holds a token in a message.
 */
import type { CommandError, CommandRunner } from "./exec.ts";

export type WorkloadStatus = "maintenance" | "blocked" | "waiting" | "active";
export type JujuLogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR";

/** A hook tool that exited non-zero, could not be started, or ran out of time. */
export class HookToolError extends Error {
  override name = "HookToolError";
  constructor(readonly tool: string, readonly exitCode: number | string, readonly stderr: string) {
    super(`Hook tool ${tool} failed (${exitCode}): ${stderr.trim().split("\n").at(-1) || "no message"}`);
  }
}

/** What a hook tool run looks like to the wrappers: injectable, so pure logic is testable without processes. */
export type ToolRunner = (tool: string, args: string[]) => Promise<string>;

/** action-set keys: "lowercase alphanumeric and hyphens, start and end alphanumeric", dot-separated. */
const RESULT_KEY = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const RESERVED_KEYS = new Set(["stdout", "stdout-encoding", "stderr", "stderr-encoding"]);

/** Hook tools through a command runner: a failure becomes a HookToolError naming the tool. */
export function toolRunner(run: CommandRunner, timeoutMs = 60_000): ToolRunner {
  return async (tool, args) => {
    try {
      return await run(tool, args, { timeoutMs });
    } catch (e) {
      const c = e as CommandError;
      throw new HookToolError(tool, c.exitCode ?? "error", c.stderr ?? c.message);
    }
  };
}

export class HookTools {
  constructor(readonly run: ToolRunner) {}

  /** All options that are set or have a default (what `config-get` prints without --all). */
  async configGet(): Promise<Record<string, unknown>> {
    const out = await this.run("config-get", ["--format=json"]);
    const parsed = JSON.parse(out || "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  }

  async statusSet(status: WorkloadStatus, message = ""): Promise<void> {
    await this.run("status-set", [status, oneLine(message)]);
  }

  /** The action's parameters, with the defaults of actions.yaml already filled in by Juju. */
  async actionGet(): Promise<Record<string, unknown>> {
    const parsed = JSON.parse((await this.run("action-get", ["--format=json"])) || "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  }

  /** Sets flat results; nested objects become dotted key paths, as action-set requires. Values become strings. */
  async actionSet(results: Record<string, unknown>): Promise<void> {
    const pairs = flatten(results).map(([key, value]) => {
      if (!RESULT_KEY.test(key) || RESERVED_KEYS.has(key)) throw new TypeError(`Invalid action result key "${key}"`);
      return `${key}=${value}`;
    });
    if (pairs.length) await this.run("action-set", pairs);
  }

  async actionFail(message: string): Promise<void> {
    await this.run("action-fail", [oneLine(message)]);
  }

  async actionLog(message: string): Promise<void> {
    await this.run("action-log", [oneLine(message)]);
  }

  async log(level: JujuLogLevel, message: string): Promise<void> {
    await this.run("juju-log", ["-l", level, oneLine(message)]);
  }

  /** The local path of a file resource; throws HookToolError when none is attached. */
  async resourceGet(name: string): Promise<string> {
    return (await this.run("resource-get", [name])).trim();
  }

  /** A secret's content (key -> value). --refresh: follow new revisions, so a rotated token is picked up. */
  async secretGet(id: string): Promise<Record<string, string>> {
    const parsed = JSON.parse((await this.run("secret-get", [id, "--format=json", "--refresh"])) || "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  }

  async applicationVersionSet(version: string): Promise<void> {
    await this.run("application-version-set", [version]);
  }
}

/** Hook tools parse their arguments as flags: a message starting with "-" would be read as one. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, "; ").replace(/^-+/, "").slice(0, 1000);
}

function flatten(obj: Record<string, unknown>, prefix = ""): [string, string][] {
  return Object.entries(obj).flatMap(([k, v]): [string, string][] => {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) return flatten(v as Record<string, unknown>, key);
    return [[key, Array.isArray(v) ? v.join(", ") : String(v)]];
  });
}
