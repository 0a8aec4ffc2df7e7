/**
 * One Juju unit's view of itself: its context, hook tools, host commands and service, and the files it keeps
 * (config 0600 in a 0700 folder, proxy environment 0600, the install marker). Shared by hooks and actions.
 */
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { ConfigError } from "../errors.ts";
import { type CharmContext, proxyVariables } from "./context.ts";
import type { CommandRunner } from "./exec.ts";
import type { HookTools } from "./hook_tools.ts";
import { configFileText, resolveConfig, type ResolvedConfig } from "./options.ts";
import { Service, unitFileText } from "./systemd.ts";

export interface Unit {
  ctx: CharmContext;
  tools: HookTools;
  /** Host commands: systemctl, snap, lxd, lxc. */
  run: CommandRunner;
  service: Service;
  /** Aborted when Juju stops the hook (SIGTERM). */
  signal: AbortSignal;
}

export function makeUnit(ctx: CharmContext, tools: HookTools, run: CommandRunner, signal: AbortSignal): Unit {
  const service = new Service(ctx.paths.service, ctx.paths.unitFile, (args, o) => run("systemctl", args, o));
  return { ctx, tools, run, service, signal };
}

/** The options, validated; throws ConfigError naming the option. */
export async function unitConfig(unit: Unit): Promise<ResolvedConfig> {
  const options = await unit.tools.configGet();
  return await resolveConfig(options, unit.ctx, (id) => unit.tools.secretGet(id));
}

/** unitConfig, or undefined after setting Blocked with the key and the reason. */
export async function unitConfigOrBlock(unit: Unit): Promise<ResolvedConfig | undefined> {
  try {
    return await unitConfig(unit);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    await unit.tools.statusSet("blocked", e.message);
    await unit.tools.log("WARNING", e.message);
    return undefined;
  }
}

export async function writeUnitFiles(unit: Unit, resolved: ResolvedConfig): Promise<void> {
  const { paths } = unit.ctx;
  await mkdir(paths.configDir, { recursive: true, mode: 0o700 });
  await writeFile(`${paths.configFile}.tmp`, configFileText(resolved.file), { mode: 0o600 });
  await rename(`${paths.configFile}.tmp`, paths.configFile); // atomic: the service never reads half a file
  const vars = proxyVariables(unit.ctx.proxy);
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  if (lines.length) await writeFile(paths.envFile, lines.join("\n") + "\n", { mode: 0o600 });
  else await rm(paths.envFile, { force: true });
}

/** Writes the service's unit file (daemon-reload when it changed) and enables it; does not start it. */
export async function installService(unit: Unit): Promise<void> {
  await unit.service.install(
    unitFileText({ unitName: unit.ctx.unitName, binary: unit.ctx.binary, paths: unit.ctx.paths }),
  );
}

export async function isInstalled(unit: Unit): Promise<boolean> {
  return await stat(unit.ctx.paths.installedMarker).then(() => true, () => false);
}

export async function markInstalled(unit: Unit): Promise<void> {
  await mkdir(unit.ctx.paths.stateDir, { recursive: true, mode: 0o755 });
  await writeFile(unit.ctx.paths.installedMarker, new Date().toISOString() + "\n");
}

/** Forgets everything this unit wrote: the token goes with the config folder. */
export async function removeUnitFiles(unit: Unit): Promise<void> {
  const { paths } = unit.ctx;
  for (const dir of [paths.configDir, paths.stateDir, paths.cacheDir]) await rm(dir, { recursive: true, force: true });
}
