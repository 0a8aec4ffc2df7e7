/**
 * Spawning one runner: an ephemeral LXD instance that registers with a single-use JIT config, takes one job and
 * powers off. Any failure cleans up what was made (instance, registration) before it is reported.
 *
 * The runner registers BEFORE its instance is made, and the instance carries the runner id from birth
 * (KEY_RUNNER_ID): an instance whose registration is gone has therefore finished, never "not registered yet"
 * (lib/classify.ts has the table of every window). The hot path is a handful of round trips: JIT, create, start,
 * one push (the JIT config) and one exec that does the rest (lib/instance_scripts.ts START).
 */
import type { GithubClient } from "./github.ts";
import type { LxdClient } from "./lxd.ts";
import type { InstanceType } from "./types.ts";
import type { RunnerApp } from "./runner_app.ts";
import { KEY_PREFIX, KEY_RUNNER_ID, KEY_SCOPE } from "./names.ts";
import { JIT_DROP, NEEDS_RUNNER_APP, PUSHED_TARBALL, START } from "./instance_scripts.ts";

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
  /** What is known of the image; resolved lazily and once per pass, and shared by the pass's spawns. */
  image: () => Promise<ImageFacts>;
}

/** What a pass knows of the image its spawns use. */
export interface ImageFacts {
  /** The image's `release` property ("noble", "bookworm"): a runner label. */
  release?: string;
  /**
   * Set by the first spawn that found no runner application in the image: the pass's later spawns push it before
   * their one exec, instead of learning it again with an exec that fails.
   */
  lacksRunnerApp?: boolean;
}

/** The steps of a spawn, in order; a SpawnError names the one that failed (metrics label them). */
export const SPAWN_STEPS = ["register", "create", "push", "start"] as const;
export type SpawnStep = typeof SPAWN_STEPS[number];

const STEP_TEXT: Record<SpawnStep, string> = {
  register: "register with GitHub",
  create: "create instance",
  push: "push runner application",
  start: "start runner",
};

export class SpawnError extends Error {
  override name = "SpawnError";
  constructor(
    readonly runner: string,
    readonly step: SpawnStep,
    override readonly cause: unknown,
    readonly cleanupFailures: string[],
  ) {
    const tail = cleanupFailures.length
      ? `; cleanup failed too, the next pass retries it: ${cleanupFailures.join("; ")}`
      : "";
    super(`Cannot spawn runner "${runner}" (${STEP_TEXT[step]}): ${(cause as Error)?.message ?? cause}${tail}`);
  }
}

/** Milliseconds each step took: the pass report carries them, scripts/bench_scale.ts tabulates them. */
export type StepTimes = Partial<Record<SpawnStep, number>>;

/** Registers, creates and starts one runner. Returns the GitHub runner id. */
export async function spawnRunner(
  deps: SpawnDeps,
  spec: SpawnSpec,
  opts: { signal?: AbortSignal; clock?: () => number } = {},
): Promise<{ runnerId: number; pushedTarball: boolean; steps: StepTimes }> {
  const { signal } = opts;
  const clock = opts.clock ?? (() => performance.now());
  const steps: StepTimes = {};
  let step: SpawnStep = "register";
  let mark = clock();
  const next = (s: SpawnStep) => {
    const t = clock();
    steps[step] = (steps[step] ?? 0) + t - mark;
    [step, mark] = [s, t];
  };
  let [asked, created] = [false, false];
  let runnerId: number | undefined;
  try {
    const [runnerGroupId, image] = await Promise.all([deps.runnerGroupId(), deps.image()]);
    asked = true;
    const jit = await deps.github.generateJitConfig(
      { name: spec.name, labels: runnerLabels(spec, image.release), runnerGroupId },
      signal,
    );
    runnerId = jit.runnerId;

    next("create");
    await deps.lxd.createInstance({
      name: spec.name,
      type: spec.type,
      image: spec.image,
      ephemeral: true,
      start: true,
      config: { ...instanceConfig(spec), [KEY_RUNNER_ID]: String(runnerId) },
      devices: instanceDevices(spec),
    }, { signal, timeoutMs: SLOW_STEP_MS });
    created = true;

    const pushApp = async () => {
      next("push");
      const app = await deps.runnerApp();
      await deps.lxd.pushFile(spec.name, PUSHED_TARBALL, { fromFile: app.path }, {
        mode: 0o600,
        signal,
        timeoutMs: SLOW_STEP_MS,
      });
    };
    let pushedTarball = !!image.lacksRunnerApp;
    if (pushedTarball) await pushApp();
    next("start");
    await deps.lxd.pushFile(spec.name, JIT_DROP, jit.encodedJitConfig, { mode: 0o400, signal });
    const start = () =>
      deps.lxd.exec(spec.name, ["sh", "-c", START], { signal, timeoutMs: SLOW_STEP_MS, output: "on-failure" });
    let started = await start();
    if (started.exitCode === NEEDS_RUNNER_APP && !pushedTarball) {
      image.lacksRunnerApp = pushedTarball = true;
      await pushApp();
      next("start");
      started = await start();
    }
    if (started.exitCode !== 0) throw new Error(`exit ${started.exitCode}: ${started.stderr.trim()}`);
    next("start");
    return { runnerId, pushedTarball, steps };
  } catch (e) {
    // Clean up with a fresh deadline: the pass's signal may be what failed us.
    const cleanup = AbortSignal.timeout(60_000);
    const failures: string[] = [];
    if (asked && runnerId === undefined) {
      // GitHub has been seen to register a JIT runner and still answer 5xx; the retry then meets 409. The name is
      // ours alone (fresh random hex), so whatever registration carries it was made by this spawn.
      runnerId = await deps.github.findRunner(spec.name, cleanup).then((r) => r?.id, () => undefined);
    }
    // The instance first: deregistered while its runner still ran, it would read "finished" for a moment.
    if (created) {
      await deps.lxd.deleteInstance(spec.name, { signal: cleanup }).catch((err) =>
        failures.push(`delete instance: ${err.message}`)
      );
    }
    if (runnerId !== undefined) {
      await deps.github.deleteRunner(runnerId, cleanup).catch((err) => failures.push(`deregister: ${err.message}`));
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
