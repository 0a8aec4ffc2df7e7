/**
 * Preparing the unit's host for runners (the `install` hook): LXD installed and initialised, the runner image
 * present, and the model's proxy reaching the runners. The rest of the tool only ever uses LXD; this is the one
 * place that installs or configures it. Commands and sockets are injected, so tests need neither snap nor root.
 */
import { LxdConnection, startCall } from "../lxd_operations.ts";
import { detectLxdSocket, LxdClient } from "../lxd.ts";
import { CommandError, type CommandRunner } from "./exec.ts";
import { type Proxy, proxyVariables } from "./context.ts";

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

/**
 * Makes sure `image` exists; when it does not, builds it from the Ubuntu image of the host's release: a user
 * "runner" and the runner application's dependencies, published under the alias `image`.
 */
export async function ensureImage(
  socket: string,
  image: string,
  opts: { deps: HostDeps; release: string; proxy: Proxy },
): Promise<"present" | "built"> {
  if (await new LxdClient({ socketPath: socket }).imageExists(image)) return "present";
  const { run, progress } = opts.deps;
  const builder = `${image.replace(/[^a-z0-9-]/g, "-").slice(0, 40)}-build`;
  await progress(`Building the runner image "${image}" from ubuntu:${opts.release}`);
  // A builder left by an interrupted install is in the way; it holds nothing worth keeping.
  await run("lxc", ["delete", "--force", builder]).catch(() => {});
  try {
    await run("lxc", ["launch", `ubuntu:${opts.release}`, builder], { timeoutMs: 20 * 60_000 });
    const env = Object.entries(proxyVariables(opts.proxy)).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    await run("lxc", ["exec", builder, ...env, "--", "sh", "-c", IMAGE_SETUP], { timeoutMs: 30 * 60_000 });
    await run("lxc", ["stop", builder], { timeoutMs: 5 * 60_000 });
    await run("lxc", ["publish", builder, "--alias", image], { timeoutMs: 30 * 60_000 });
  } catch (e) {
    const why = e instanceof CommandError ? e.message : String(e);
    throw new HostSetupError(`Cannot build the runner image "${image}": ${why}`);
  } finally {
    await run("lxc", ["delete", "--force", builder]).catch(() => {});
  }
  return "built";
}

/** Inside the image builder: what the runner application needs, and the unprivileged user that runs it. */
export const IMAGE_SETUP = `set -eu
cloud-init status --wait >/dev/null 2>&1 || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates curl git jq tar unzip libicu-dev
id runner >/dev/null 2>&1 || useradd --create-home --shell /bin/bash runner
apt-get clean
`;

/** A read of LXD's REST API through the project's one LXD connection (bounded; errors are LxdError). */
function lxdGet(socket: string, path: string): Promise<unknown> {
  return new LxdConnection(socket).sync(startCall(`read ${path}`, 30_000), { method: "GET", path });
}
