/**
 * The charm's hooks. Each is idempotent and converges the unit from whatever state it is in: Juju may run a
 * hook again after an error, and `upgrade-charm` may be the first hook that finds the binary attached.
 */
import { GithubClient } from "../github.ts";
import { GithubError } from "../errors.ts";
import { cachedRunnerApp, ensureRunnerApp, runnerArch } from "../runner_app.ts";
import { readState } from "../state_file.ts";
import { VERSION } from "../version.ts";
import { detectLxdSocket } from "../lxd.ts";
import type { Config } from "../config.ts";
import { ensureLxd } from "./lxd_host.ts";
import { LxdClient } from "../lxd.ts";
import { buildConfiguredImage } from "../commands/image.ts";
import { readPreviousConfig } from "./options.ts";
import { removeRunners } from "./runners.ts";
import { removeRunnerNetwork } from "../runner_network.ts";
import {
  installService,
  isInstalled,
  markInstalled,
  removeUnitFiles,
  type Unit,
  unitConfigOrBlock,
  writeUnitFiles,
} from "./unit.ts";

export const HOOKS: Record<string, (unit: Unit) => Promise<void>> = {
  install,
  "config-changed": configChanged,
  // A rotated user secret: the token may have changed.
  "secret-changed": configChanged,
  start,
  "update-status": updateStatus,
  "upgrade-charm": upgradeCharm,
  stop: removeAll,
  remove: removeAll,
};

/**
 * LXD present and initialised, the service written; then the configuration (config-changed), which also builds the
 * runner image when it is missing.
 */
async function install(unit: Unit): Promise<void> {
  const { tools } = unit;
  await tools.applicationVersionSet(VERSION);
  const progress = (m: string) => tools.statusSet("maintenance", m);
  await progress("Checking LXD");
  const options = await tools.configGet();
  const socketOption = typeof options["lxd-socket"] === "string" && options["lxd-socket"]
    ? options["lxd-socket"]
    : undefined;
  const deps = { run: unit.run, detectSocket: () => detectLxdSocket(), progress };
  await ensureLxd(socketOption, deps);
  await installService(unit);
  await markInstalled(unit);
  await configure(unit);
}

async function configChanged(unit: Unit): Promise<void> {
  if (!(await isInstalled(unit))) return await install(unit);
  await configure(unit);
}

/**
 * Validates the options (Blocked with the key and the reason when one is bad: the service keeps its last good
 * config), clears the runners of an old path or token, writes the config, caches the runner application and
 * restarts the service.
 */
async function configure(unit: Unit): Promise<void> {
  const { tools, ctx } = unit;
  const resolved = await unitConfigOrBlock(unit);
  if (!resolved) return;
  const { config } = resolved;
  const old = await readPreviousConfig(ctx.paths.configFile, ctx.prefix);
  if (old) await leaveOldRegistration(unit, old, config);
  await writeUnitFiles(unit, resolved);
  await installService(unit);
  if (!(await cacheRunnerApp(unit, config))) return;
  if (!(await ensureRunnerImage(unit, config))) return;
  await tools.statusSet("maintenance", "Restarting the service");
  await unit.service.restart();
  await tools.statusSet("active", "Service started: the first pass is under way");
}

/**
 * A new path (or GitHub server) or token: the idle runners registered under the old one go first, with the old
 * token while it still works. Busy ones finish their job: their instances carry the old scope, so the service
 * leaves them draining and deletes them only once they powered off.
 */
async function leaveOldRegistration(unit: Unit, old: Config, config: Config): Promise<void> {
  const pathChanged = old.path !== config.path || old.githubApiUrl !== config.githubApiUrl;
  const tokenChanged = old.token !== config.token;
  if (!pathChanged && !tokenChanged) return;
  const what = pathChanged ? `path "${old.path}"` : "token";
  await unit.tools.statusSet("maintenance", `Removing the runners of the old ${what}`);
  await unit.service.stop();
  const r = await removeRunners(old, { busy: false, signal: unit.signal });
  const how = r.lxdOnly ? " (GitHub refused the old credentials: instances deleted on LXD's word)" : "";
  const failed = r.failed.length ? `; ${r.failed.length} failed: ${r.failed[0]}` : "";
  await unit.tools.log(
    r.failed.length ? "WARNING" : "INFO",
    `Old ${what}: removed ${r.removed} runners, kept ${r.kept} busy${how}${failed}`,
  );
}

/** Downloads the runner application once, so the first spawns need not. False after setting Blocked. */
async function cacheRunnerApp(unit: Unit, config: Config): Promise<boolean> {
  const arch = runnerArch(process.arch);
  if (await cachedRunnerApp(config.cacheDir, arch)) return true;
  await unit.tools.statusSet("maintenance", "Downloading the runner application");
  try {
    const github = new GithubClient({ token: config.token, apiUrl: config.githubApiUrl, scope: config.scope });
    const signal = AbortSignal.any([unit.signal, AbortSignal.timeout(30 * 60_000)]);
    await ensureRunnerApp(await github.runnerDownloads(signal), { cacheDir: config.cacheDir, arch, signal });
    return true;
  } catch (e) {
    const message = (e as Error).message;
    // Bad credentials need the operator; anything else the service retries on its own at every spawn.
    if (e instanceof GithubError && (e.kind === "bad-credentials" || e.kind === "forbidden")) {
      await unit.tools.statusSet("blocked", message);
      await unit.tools.log("ERROR", message);
      return false;
    }
    await unit.tools.log("WARNING", `The runner application is not cached yet (the service will retry): ${message}`);
    return true;
  }
}

/**
 * A missing runner image is built like `github-runner image build` does it (lib/image_build.ts: the recipe, the
 * baked runner application, the proof before the alias moves). An existing one is left alone: `image build` on the
 * host, or `juju attach`-ing a new binary, replaces it. False after setting Blocked.
 */
async function ensureRunnerImage(unit: Unit, config: Config): Promise<boolean> {
  const socket = config.lxdSocket ?? detectLxdSocket();
  if (!socket) return true; // the service reports a missing LXD on its own
  const signal = AbortSignal.any([unit.signal, AbortSignal.timeout(60 * 60_000)]);
  if (await new LxdClient({ socketPath: socket }).imageExists(config.image, { signal })) return true;
  const runnerApp = await cachedRunnerApp(config.cacheDir, runnerArch(process.arch));
  const blocked = async (message: string) => {
    await unit.tools.statusSet("blocked", message);
    await unit.tools.log("ERROR", message);
    return false;
  };
  if (!runnerApp) {
    return await blocked(
      `The runner image "${config.image}" is missing and cannot be built before the runner application is downloaded`,
    );
  }
  await unit.tools.statusSet("maintenance", `Building the runner image "${config.image}" from "${config.baseImage}"`);
  try {
    const built = await buildConfiguredImage(config, socket, { signal, runnerApp: () => Promise.resolve(runnerApp) });
    await unit.tools.log("INFO", `Built the runner image "${config.image}": ${built.fingerprint.slice(0, 12)}`);
    return true;
  } catch (e) {
    return await blocked(`Cannot build the runner image "${config.image}": ${(e as Error).message}`);
  }
}

async function start(unit: Unit): Promise<void> {
  if (!(await isInstalled(unit))) return;
  if (!(await readPreviousConfig(unit.ctx.paths.configFile, unit.ctx.prefix))) return await configure(unit);
  await unit.service.start();
  await updateStatus(unit);
}

/** From the service's state file and systemd: no GitHub call. */
async function updateStatus(unit: Unit): Promise<void> {
  const { tools, ctx } = unit;
  if (!(await isInstalled(unit))) return await tools.statusSet("waiting", "Waiting for the install hook to succeed");
  const resolved = await unitConfigOrBlock(unit);
  if (!resolved) return;
  const state = await unit.service.state();
  if (state !== "active") {
    return await tools.statusSet(
      "blocked",
      `Service ${ctx.paths.service} is ${state}: see journalctl -u ${ctx.paths.service}`,
    );
  }
  const summary = await readState(ctx.paths.stateDir);
  if (!summary || summary.prefix !== ctx.prefix) return await tools.statusSet("active", "Waiting for the first pass");
  if (summary.error) return await tools.statusSet("blocked", `Last pass failed: ${summary.error}`);
  const { config } = resolved;
  if (config.containers + config.virtualMachines === 0) {
    return await tools.statusSet("active", "No runners wanted: set containers or virtual-machines");
  }
  const c = summary.counts;
  let message = `${c.idle} idle, ${c.busy} busy`;
  if (c.booting) message += `, ${c.booting} booting`;
  if (summary.actions.failed) message += `; last pass: ${summary.actions.failed} failed: ${summary.failures[0] ?? ""}`;
  await tools.statusSet("active", message);
}

/** A new charm or a new binary: idle runners go (busy ones finish their job), the new binary replaces them. */
async function upgradeCharm(unit: Unit): Promise<void> {
  await unit.tools.applicationVersionSet(VERSION);
  if (!(await isInstalled(unit))) return await install(unit);
  const old = await readPreviousConfig(unit.ctx.paths.configFile, unit.ctx.prefix);
  if (old) {
    await unit.tools.statusSet("maintenance", "Flushing idle runners for the new binary");
    await unit.service.stop();
    const r = await removeRunners(old, { busy: false, signal: unit.signal });
    await unit.tools.log("INFO", `Upgrade: flushed ${r.removed} idle runners, ${r.kept} busy ones finish their job`);
  }
  await installService(unit); // the binary's path may have changed
  await configure(unit);
}

/** stop and remove: this unit's runners (busy ones too: the unit is going away), then the service and its files. */
async function removeAll(unit: Unit): Promise<void> {
  const { tools, ctx } = unit;
  await tools.statusSet("maintenance", "Removing this unit's runners");
  await unit.service.stop().catch(() => {}); // not installed yet, or already gone
  const config = await readPreviousConfig(ctx.paths.configFile, ctx.prefix);
  if (config) {
    const r = await removeRunners(config, { busy: true, signal: unit.signal });
    const failed = r.failed.length ? `; ${r.failed.length} failed: ${r.failed[0]}` : "";
    await tools.log(r.failed.length ? "WARNING" : "INFO", `Removed ${r.removed} runners${failed}`);
    // Also when network-policy is off now: the bridge may be from when it was on. Only a bridge github-runner made
    // is ever removed.
    const socket = config.lxdSocket ?? detectLxdSocket();
    const outcome = socket
      ? await removeRunnerNetwork(socket, config.network).catch((e) => (e as Error).message)
      : "no LXD socket";
    if (outcome === "removed") await tools.log("INFO", `Removed the runners' network "${config.network}"`);
    else if (outcome !== "absent") {
      await tools.log("WARNING", `Left the runners' network "${config.network}": ${outcome}`);
    }
  }
  await unit.service.remove();
  await removeUnitFiles(unit);
}
