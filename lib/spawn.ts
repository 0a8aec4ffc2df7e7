/**
 * Spawning one runner: an ephemeral LXD instance that registers with a single-use JIT config, takes one job and
 * powers off. Any failure cleans up what was made (instance, registration) before it is reported.
 */
import type { GithubClient } from "./github.ts";
import type { LxdClient } from "./lxd.ts";
import type { InstanceType } from "./types.ts";
import type { RunnerApp } from "./runner_app.ts";
import { KEY_PREFIX, KEY_SCOPE } from "./names.ts";
import {
  HAS_RUNNER_APP,
  JIT_FILE,
  LAUNCHER,
  LAUNCHER_SCRIPT,
  PREPARE,
  PUSHED_TARBALL,
  START_DETACHED,
} from "./instance_scripts.ts";

/**
 * Creating an instance (a Debian image: 4-6 s alone, up to 36 s in a parallel batch), pushing a 180 MB runner
 * tarball and unpacking it can each outlast the client's default 30 s per call.
 */
const SLOW_STEP_MS = 180_000;

export interface SpawnSpec {
  name: string;
  type: InstanceType;
  prefix: string;
  /** names.ts scopeOf: marks where the runner registered. */
  scope: string;
  image: string;
  labels: string[];
  vm: { cpu: number; memory: string; disk: string };
  /** Container limits; 0 and "" leave LXD's defaults (no limit). */
  container: { cpu: number; memory: string };
  /** Environment variables every process of the instance gets (the proxy). */
  environment: Readonly<Record<string, string>>;
  /**
   * The runners' fenced bridge (lib/runner_network.ts), and the default profile's other NICs, masked so that no
   * runner gets an unfenced second interface. Undefined: the default profile's NICs, unfenced.
   */
  network?: { name: string; maskNics: readonly string[] };
}

export interface SpawnDeps {
  github: Pick<GithubClient, "generateJitConfig" | "deleteRunner" | "findRunner">;
  lxd: Pick<LxdClient, "createInstance" | "deleteInstance" | "exec" | "pushFile">;
  /** Resolved lazily: only a spawn into an image without the runner application needs the tarball. */
  runnerApp: () => Promise<RunnerApp>;
  /** Resolved lazily and once per pass (organisations look the group up by name). */
  runnerGroupId: () => Promise<number>;
}

export class SpawnError extends Error {
  override name = "SpawnError";
  constructor(
    readonly runner: string,
    readonly step: string,
    override readonly cause: unknown,
    readonly cleanupFailures: string[],
  ) {
    const tail = cleanupFailures.length
      ? `; cleanup failed too, the next pass retries it: ${cleanupFailures.join("; ")}`
      : "";
    super(`Cannot spawn runner "${runner}" (${step}): ${(cause as Error)?.message ?? cause}${tail}`);
  }
}

/** Creates, prepares and starts one runner. Returns the GitHub runner id. */
export async function spawnRunner(
  deps: SpawnDeps,
  spec: SpawnSpec,
  opts: { signal?: AbortSignal } = {},
): Promise<{ runnerId: number; pushedTarball: boolean }> {
  const { signal } = opts;
  let step = "create instance";
  let created = false;
  let runnerId: number | undefined;
  try {
    await deps.lxd.createInstance({
      name: spec.name,
      type: spec.type,
      image: spec.image,
      ephemeral: true,
      start: true,
      config: instanceConfig(spec),
      devices: instanceDevices(spec),
    }, { signal, timeoutMs: SLOW_STEP_MS });
    created = true;

    step = "check image";
    const baked = (await deps.lxd.exec(spec.name, ["sh", "-c", HAS_RUNNER_APP], { signal })).exitCode === 0;
    if (!baked) {
      step = "push runner application";
      const app = await deps.runnerApp();
      await deps.lxd.pushFile(spec.name, PUSHED_TARBALL, { fromFile: app.path }, {
        mode: 0o600,
        signal,
        timeoutMs: SLOW_STEP_MS,
      });
    }
    step = "prepare instance";
    const prep = await deps.lxd.exec(spec.name, ["sh", "-c", PREPARE], { signal, timeoutMs: SLOW_STEP_MS });
    if (prep.exitCode !== 0) throw new Error(`exit ${prep.exitCode}: ${prep.stderr.trim()}`);
    const [uidText, gidText, release] = prep.stdout.trim().split("\n").pop()!.split(" ");
    const [uid, gid] = [Number(uidText), Number(gidText)];

    step = "register with GitHub";
    const runnerGroupId = await deps.runnerGroupId();
    const jit = await deps.github.generateJitConfig(
      { name: spec.name, labels: runnerLabels(spec, release), runnerGroupId },
      signal,
    );
    runnerId = jit.runnerId;

    step = "start runner";
    await deps.lxd.pushFile(spec.name, JIT_FILE, jit.encodedJitConfig, { uid, gid, mode: 0o400, signal });
    await deps.lxd.pushFile(spec.name, LAUNCHER, LAUNCHER_SCRIPT, { mode: 0o755, signal });
    const started = await deps.lxd.exec(spec.name, ["sh", "-c", START_DETACHED], { signal });
    if (started.exitCode !== 0) throw new Error(`exit ${started.exitCode}: ${started.stderr.trim()}`);
    return { runnerId, pushedTarball: !baked };
  } catch (e) {
    // Clean up with a fresh deadline: the pass's signal may be what failed us.
    const cleanup = AbortSignal.timeout(60_000);
    const failures: string[] = [];
    if (runnerId === undefined && step === "register with GitHub") {
      // GitHub has been seen to register a JIT runner and still answer 5xx; the retry then meets 409. The name is
      // ours alone (fresh random hex), so whatever registration carries it was made by this spawn.
      runnerId = await deps.github.findRunner(spec.name, cleanup).then((r) => r?.id, () => undefined);
    }
    if (runnerId !== undefined) {
      await deps.github.deleteRunner(runnerId, cleanup).catch((err) => failures.push(`deregister: ${err.message}`));
    }
    if (created) {
      await deps.lxd.deleteInstance(spec.name, { signal: cleanup }).catch((err) =>
        failures.push(`delete instance: ${err.message}`)
      );
    }
    throw new SpawnError(spec.name, step, e, failures);
  }
}

/** Labels sent with the JIT config: with JIT, GitHub adds no default labels, so send them all. */
export function runnerLabels(
  spec: Pick<SpawnSpec, "type" | "labels">,
  release?: string,
  arch = hostArchLabel(),
): string[] {
  const os = release && /^[a-z0-9.-]{1,32}$/.test(release) ? [release] : [];
  return [
    ...new Set(["self-hosted", "linux", arch, spec.type === "container" ? "container" : "vm", ...os, ...spec.labels]),
  ];
}

function hostArchLabel(): string {
  return process.arch === "arm64" ? "arm64" : "x64";
}

function instanceDevices(spec: SpawnSpec): Record<string, Record<string, string>> {
  const devices: Record<string, Record<string, string>> = {};
  if (spec.type === "virtual-machine") devices.root = { type: "disk", path: "/", pool: "default", size: spec.vm.disk };
  // Port isolation: this NIC cannot talk to any other isolated port of the bridge, i.e. to other runners.
  if (spec.network) {
    devices.eth0 = { type: "nic", name: "eth0", network: spec.network.name, "security.port_isolation": "true" };
    for (const nic of spec.network.maskNics) devices[nic] = { type: "none" };
  }
  return devices;
}

function instanceConfig(spec: SpawnSpec): Record<string, string> {
  const config: Record<string, string> = { [KEY_PREFIX]: spec.prefix, [KEY_SCOPE]: spec.scope };
  for (const [name, value] of Object.entries(spec.environment)) config[`environment.${name}`] = value;
  if (spec.type === "virtual-machine") {
    config["limits.cpu"] = String(spec.vm.cpu);
    config["limits.memory"] = spec.vm.memory;
  } else {
    // Jobs use docker inside the runner; in a container that needs nesting (LXD: security.nesting).
    config["security.nesting"] = "true";
    if (spec.container.cpu > 0) config["limits.cpu"] = String(spec.container.cpu);
    if (spec.container.memory) config["limits.memory"] = spec.container.memory;
  }
  return config;
}
