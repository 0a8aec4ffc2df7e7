/**
 * `image build`: bakes a runner image from a base image with the recipe images/runner-image.sh, proves it, and only
 * then moves the `image` alias to it. The builder and the test instance are deleted whatever happens, and an
 * unproven image is never left behind under any alias.
 */
import recipe from "../images/runner-image.sh" with { type: "text" };
import type { LxdClient } from "./lxd.ts";
import type { LxdImages } from "./lxd_images.ts";
import type { Logger } from "./log.ts";
import type { RunnerApp } from "./runner_app.ts";
import {
  type AliasState,
  builderName,
  candidateAlias,
  planSwap,
  previousAlias,
  proofScript,
  testInstanceName,
} from "./image_plan.ts";

/**
 * Where the recipe and its inputs go inside the builder. Not /tmp: systemd-tmpfiles empties /tmp while the builder
 * boots, which raced with the push (measured: the tarball vanished).
 */
const BUILD_DIR = "/root/github-runner-image";
/** Creating from a big base image, pushing the runner tarball, stopping: each can outlast 30 s on a busy host. */
const SLOW_STEP_MS = 180_000;

export interface ImageDeps {
  lxd: Pick<LxdClient, "createInstance" | "deleteInstance" | "exec" | "pushFile" | "mkdir" | "stopInstance">;
  images: Pick<LxdImages, "publish" | "importFile" | "aliasTarget" | "setAlias" | "deleteAlias" | "deleteImage">;
  log: Logger;
}

export interface ImageTarget {
  /** The alias spawns use (config `image`). */
  image: string;
  /** Names the builder and test instances: `<prefix>-image-builder`, `<prefix>-image-test`. */
  namePrefix: string;
  /** Whether the proof requires docker and its config. Default true. */
  withDocker?: boolean;
  /** Environment of the builder and test instances (the proxy), as LXD environment.* keys. */
  environment?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

export interface BuildSpec extends ImageTarget {
  baseImage: string;
  /** The verified runner application, baked into the image. */
  runnerApp: RunnerApp;
  /** The operator's script (a host path), run as root after the recipe. */
  imageScript?: string;
  dockerhubMirror?: string;
  /** Image compression; default: the server's images.compression_algorithm. */
  compression?: string;
  /** Limit for the recipe itself (apt, docker). Default 30 min. */
  recipeTimeoutMs?: number;
}

export interface ImageResult {
  fingerprint: string;
  /** What `<image>-previous` points to now, if anything. */
  previous?: string;
}

export class ImageBuildError extends Error {
  override name = "ImageBuildError";
}

/** Prints the image's distribution id and release codename ("ubuntu noble"); nothing when it has no os-release. */
const OS_RELEASE = `(. /etc/os-release && echo "\${ID:-} \${VERSION_CODENAME:-}") 2>/dev/null || true`;

/** Builds, proves and installs a runner image from `spec.baseImage`. */
export async function buildImage(deps: ImageDeps, spec: BuildSpec): Promise<ImageResult> {
  const { lxd, log } = deps;
  const { signal } = spec;
  const builder = builderName(spec.namePrefix);
  let fingerprint: string | undefined;
  try {
    // A builder left by a killed build is ours by name; callers hold the image-build lock.
    await lxd.deleteInstance(builder, { signal, timeoutMs: 60_000 });
    log.info("Creating the image builder {builder} from {base}", { builder, base: spec.baseImage });
    await lxd.createInstance({
      name: builder,
      type: "container",
      image: spec.baseImage,
      config: instanceConfig(spec.environment),
      start: true,
    }, { signal, timeoutMs: SLOW_STEP_MS });
    await lxd.mkdir(builder, BUILD_DIR, { mode: 0o700, signal });
    await lxd.pushFile(builder, `${BUILD_DIR}/runner-image.sh`, recipe, { mode: 0o700, signal });
    const tarball = `${BUILD_DIR}/${spec.runnerApp.filename}`;
    await lxd.pushFile(builder, tarball, { fromFile: spec.runnerApp.path }, {
      mode: 0o600,
      signal,
      timeoutMs: SLOW_STEP_MS,
    });
    const settings = [`RUNNER_TARBALL=${tarball}`, `WITH_DOCKER=${spec.withDocker === false ? 0 : 1}`];
    if (spec.dockerhubMirror) settings.push(`DOCKERHUB_MIRROR=${spec.dockerhubMirror}`);
    if (spec.imageScript) {
      await lxd.pushFile(builder, `${BUILD_DIR}/image-script`, { fromFile: spec.imageScript }, { mode: 0o700, signal });
      settings.push(`USER_SCRIPT=${BUILD_DIR}/image-script`);
    }

    log.info("Running the image recipe in {builder} (apt, docker: minutes)", { builder });
    // Settings travel as `env` arguments (no secrets among them); the proxy comes from the environment.* keys.
    const run = await lxd.exec(builder, ["env", ...settings, "sh", `${BUILD_DIR}/runner-image.sh`], {
      signal,
      timeoutMs: spec.recipeTimeoutMs ?? 30 * 60_000,
    });
    if (run.exitCode !== 0) {
      throw new ImageBuildError(
        `The image recipe failed in "${builder}" with exit code ${run.exitCode}:\n${
          tail(`${run.stdout}\n${run.stderr}`)
        }`,
      );
    }
    log.debug("Image recipe output: {output}", { output: tail(run.stdout, 40) });
    await lxd.exec(builder, ["rm", "-rf", BUILD_DIR], { signal });
    // Explicit properties replace the base image's (measured on 5.0.2), so `os` and `release` are carried over:
    // spawns label runners with the image's release (lib/spawn.ts), read before the instance exists.
    const osRelease = await lxd.exec(builder, ["sh", "-c", OS_RELEASE], { signal });
    const [os, release] = osRelease.stdout.replace(/\s+$/, "").split(" ");
    await lxd.stopInstance(builder, { signal, timeoutS: 60 });

    log.info("Publishing {builder} as an image", { builder });
    fingerprint = await deps.images.publish(builder, {
      signal,
      timeoutMs: 30 * 60_000,
      compression: spec.compression,
      properties: {
        description: `github-runner image from ${spec.baseImage}, runner ${spec.runnerApp.filename}`,
        ...(os ? { os } : {}),
        ...(release ? { release } : {}),
        "github-runner.base-image": spec.baseImage,
        "github-runner.runner-sha256": spec.runnerApp.sha256,
      },
    });
    return await proveAndInstall(deps, spec, fingerprint);
  } catch (e) {
    if (fingerprint !== undefined) await dropImage(deps, spec, fingerprint);
    throw e;
  } finally {
    await removeInstance(lxd, builder).catch((e) =>
      log.warning("Cannot delete the image builder {builder}: {error}", { builder, error: e.message })
    );
  }
}

/** Imports a prebuilt image tarball (air-gapped hosts), proves it and installs it like a built one. */
export async function importImage(deps: ImageDeps, spec: ImageTarget & { file: string }): Promise<ImageResult> {
  deps.log.info("Importing the image {file}", { file: spec.file });
  const fingerprint = await deps.images.importFile(spec.file, { signal: spec.signal, timeoutMs: 30 * 60_000 });
  try {
    return await proveAndInstall(deps, spec, fingerprint);
  } catch (e) {
    await dropImage(deps, spec, fingerprint);
    throw e;
  }
}

/** Launches a test instance from the candidate, checks it, then moves the aliases (image_swap.ts). */
async function proveAndInstall(deps: ImageDeps, target: ImageTarget, fingerprint: string): Promise<ImageResult> {
  const { lxd, images, log } = deps;
  const { signal } = target;
  const candidate = candidateAlias(target.image);
  // Under a temporary alias while it is proven: visible in `lxc image list`, used by no spawn.
  await images.setAlias(candidate, fingerprint, { signal, description: "github-runner: being proven" });
  const tester = testInstanceName(target.namePrefix);
  try {
    await lxd.deleteInstance(tester, { signal, timeoutMs: 60_000 });
    log.info("Proving image {fingerprint} in {tester}", { fingerprint: fingerprint.slice(0, 12), tester });
    await lxd.createInstance({
      name: tester,
      type: "container",
      image: candidate,
      ephemeral: true,
      config: instanceConfig(target.environment),
      start: true,
    }, { signal, timeoutMs: SLOW_STEP_MS });
    const proof = await lxd.exec(tester, ["sh", "-c", proofScript(target.withDocker !== false)], { signal });
    if (proof.exitCode !== 0) {
      throw new ImageBuildError(
        `The new image failed its proof in "${tester}": ${(proof.stderr || proof.stdout).trim()}`,
      );
    }
  } finally {
    await removeInstance(lxd, tester).catch((e) =>
      log.warning("Cannot delete the image test instance {tester}: {error}", { tester, error: e.message })
    );
  }

  const state: AliasState = {
    current: await images.aliasTarget(target.image, { signal }),
    previous: await images.aliasTarget(previousAlias(target.image), { signal }),
  };
  for (const step of planSwap(target.image, state, fingerprint)) {
    if (step.kind === "set-alias") {
      await images.setAlias(step.alias, step.fingerprint, { signal, description: "github-runner image" });
      log.info("Image alias {alias} now points to {fingerprint}", {
        alias: step.alias,
        fingerprint: step.fingerprint.slice(0, 12),
      });
    } else {
      // The alias already moved: an image we cannot delete now is only disk space, so report and go on.
      await images.deleteImage(step.fingerprint, { signal, timeoutMs: 120_000 }).then(
        () => log.info("Deleted the image before the previous one, {fingerprint}", { fingerprint: step.fingerprint }),
        (e) =>
          log.warning("Cannot delete the old image {fingerprint}: {error}", {
            fingerprint: step.fingerprint,
            error: e.message,
          }),
      );
    }
  }
  await images.deleteAlias(candidate, { signal });
  const previous = state.current !== undefined && state.current !== fingerprint ? state.current : state.previous;
  return { fingerprint, previous };
}

/** A candidate that failed: deleted (with its temporary alias), unless it is already one of the kept images. */
async function dropImage(deps: ImageDeps, target: ImageTarget, fingerprint: string): Promise<void> {
  const cleanup = { signal: AbortSignal.timeout(120_000) };
  try {
    await deps.images.deleteAlias(candidateAlias(target.image), cleanup);
    const kept = [
      await deps.images.aliasTarget(target.image, cleanup),
      await deps.images.aliasTarget(previousAlias(target.image), cleanup),
    ];
    // An identical rebuild has the fingerprint of the image in use: never delete that one.
    if (!kept.includes(fingerprint)) await deps.images.deleteImage(fingerprint, cleanup);
  } catch (e) {
    deps.log.warning("Cannot delete the unproven image {fingerprint}: {error}", {
      fingerprint,
      error: (e as Error).message,
    });
  }
}

/** Nesting lets docker run inside; the proxy reaches apt and docker through environment.* keys. */
function instanceConfig(environment: Readonly<Record<string, string>> = {}): Record<string, string> {
  const config: Record<string, string> = { "security.nesting": "true" };
  for (const [name, value] of Object.entries(environment)) config[`environment.${name}`] = value;
  return config;
}

/**
 * Deletes an instance with a fresh deadline (the build's signal may be what failed us), retrying for a while:
 * an ephemeral instance whose start failed is busy with LXD's own stop for a moment, and DELETE is refused
 * meanwhile ("Instance is busy running a "stop" operation", measured on 5.0.2).
 */
async function removeInstance(lxd: ImageDeps["lxd"], name: string): Promise<void> {
  const signal = AbortSignal.timeout(60_000);
  for (let attempt = 1;; attempt++) {
    try {
      return await lxd.deleteInstance(name, { signal });
    } catch (e) {
      if (attempt >= 10 || signal.aborted) throw e;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
