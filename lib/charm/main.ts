/**
 * `github-runner charm <dispatch-path> <binary>`: the charm's entry point, exec'd by charm/dispatch for every
 * hook and action. Juju's environment and hook tools are its whole input; it never reads a config file or flags.
 *
 * Outcomes: a bad option is Blocked naming the key (exit 0: only the operator can fix it); any other failure
 * of a hook is logged, shown as Blocked and exits 1, so Juju marks the hook failed and retries it; an action's
 * failure is action-fail with the reason.
 */
import { ConfigError } from "../errors.ts";
import { setupLogging } from "../log.ts";
import type { Io } from "../commands/io.ts";
import { charmContext, CharmContextError } from "./context.ts";
import { commandRunner } from "./exec.ts";
import { HookTools, type JujuLogLevel, toolRunner } from "./hook_tools.ts";
import { makeUnit } from "./unit.ts";

const LEVELS: Record<string, JujuLogLevel> = { info: "INFO", warning: "WARNING", error: "ERROR", fatal: "ERROR" };

export async function charmMain(argv: string[], io: Io): Promise<number> {
  // snap-installed LXD puts lxc and lxd in /snap/bin, which a hook's PATH may lack.
  const env = { ...io.env, PATH: `${io.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}:/snap/bin` };
  const run = commandRunner(env);
  const tools = new HookTools(toolRunner(run));
  let ctx;
  try {
    // GITHUB_RUNNER_CHARM_ROOT stands in for "/" in tests, which have no root-owned /etc to write.
    ctx = charmContext(argv, io.env, io.env.GITHUB_RUNNER_CHARM_ROOT || "/");
  } catch (e) {
    if (!(e instanceof CharmContextError)) throw e;
    io.err(`github-runner charm: ${e.message}\n`);
    await tools.statusSet("blocked", e.message).catch(() => {}); // outside a hook there is no status to set
    return 1;
  }
  const unit = makeUnit({ ...ctx, env }, tools, run, io.stop);

  // Every log record goes to stderr (Juju keeps a hook's output in the unit log) and, from info up, to juju-log,
  // in order. Records never carry a secret (lib/log.ts).
  let forwarding = Promise.resolve();
  setupLogging({
    level: "info",
    json: true,
    write: (line) => {
      io.err(line);
      const record = parse(line);
      const level = record && LEVELS[record.level];
      if (level) forwarding = forwarding.then(() => tools.log(level, record.message).catch(() => {}));
    },
  });
  const { event } = ctx;
  try {
    if (event.kind === "action") return await runAction(unit, event.name);
    return await runHook(unit, event.name);
  } finally {
    await forwarding;
  }
}

async function runHook(unit: ReturnType<typeof makeUnit>, name: string): Promise<number> {
  const { HOOKS } = await import("./hooks.ts");
  const hook = HOOKS[name];
  if (!hook) return 0; // relation, leader and storage hooks: nothing to do for this charm
  try {
    await hook(unit);
    return 0;
  } catch (e) {
    const message = (e as Error)?.message ?? String(e);
    if (e instanceof ConfigError) {
      await unit.tools.statusSet("blocked", message);
      return 0;
    }
    await unit.tools.log("ERROR", `Hook ${name} failed: ${message}`).catch(() => {});
    await unit.tools.statusSet("blocked", `Hook ${name} failed: ${message}`).catch(() => {});
    return 1;
  }
}

async function runAction(unit: ReturnType<typeof makeUnit>, name: string): Promise<number> {
  const { ACTIONS } = await import("./actions.ts");
  const action = ACTIONS[name];
  try {
    if (!action) throw new Error(`Unknown action "${name}"`);
    await action(unit);
  } catch (e) {
    await unit.tools.actionFail((e as Error)?.message ?? String(e));
  }
  return 0;
}

function parse(line: string): { level: string; message: string } | undefined {
  try {
    const r = JSON.parse(line);
    return typeof r.level === "string" && typeof r.message === "string" ? r : undefined;
  } catch {
    return undefined;
  }
}
