/**
 * Preparing the unit's host for runners (the `install` hook): LXD installed and initialised, and the model's proxy
 * reaching the runners (the runner image is built by config-changed, through lib/commands/image.ts). The rest of the tool only ever uses LXD; this is the one
 * place that installs or configures it. Commands and sockets are injected, so tests need neither snap nor root.
 */
import { LxdConnection, startCall } from "../lxd_operations.ts";
import { detectLxdSocket } from "../lxd.ts";
import type { CommandRunner } from "./exec.ts";

export interface HostDeps {
  run: CommandRunner;
  /** The LXD socket, when there is one (lib/lxd.ts detectLxdSocket). */
  detectSocket: () => string | undefined;
  progress: (message: string) => Promise<void>;
}

export class HostSetupError extends Error {
  override name = "HostSetupError";
}

/** Installs LXD from the snap when there is none, and initialises it when it has no storage. Returns the socket. */
export async function ensureLxd(socketOption: string | undefined, deps: HostDeps): Promise<string> {
  if (socketOption && !detectLxdSocket([socketOption])) {
    throw new HostSetupError(`No LXD socket at "${socketOption}" (the lxd-socket option)`);
  }
  let socket = socketOption ?? deps.detectSocket();
  if (!socket) {
    await deps.progress("Installing LXD (snap install lxd)");
    await deps.run("snap", ["install", "lxd"], { timeoutMs: 15 * 60_000 });
    await deps.run("lxd", ["waitready", "--timeout=600"], { timeoutMs: 11 * 60_000 });
    socket = deps.detectSocket();
    if (!socket) throw new HostSetupError("LXD was installed but its socket did not appear");
  }
  const pools = await lxdGet(socket, "/1.0/storage-pools") as string[];
  if (pools.length === 0) {
    await deps.progress("Initialising LXD (lxd init --auto)");
    await deps.run("lxd", ["init", "--auto"], { timeoutMs: 10 * 60_000 });
  }
  const profile = await lxdGet(socket, "/1.0/profiles/default") as { devices?: Record<string, Record<string, string>> };
  const devices = Object.values(profile.devices ?? {});
  if (!devices.some((d) => d.type === "disk" && d.path === "/")) {
    throw new HostSetupError('LXD\'s "default" profile has no root disk: initialise LXD ("lxd init") and retry');
  }
  if (!devices.some((d) => d.type === "nic")) {
    throw new HostSetupError('LXD\'s "default" profile has no network device: runners could not reach GitHub');
  }
  return socket;
}

/** A read of LXD's REST API through the project's one LXD connection (bounded; errors are LxdError). */
function lxdGet(socket: string, path: string): Promise<unknown> {
  return new LxdConnection(socket).sync(startCall(`read ${path}`, 30_000), { method: "GET", path });
}
