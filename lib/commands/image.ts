/**
 * `image build`: build the runner image from `base-image` (lib/image_build.ts), or, with `--from-file`, import a
 * prebuilt one (air-gapped hosts). Either way the image is proven before the `image` alias moves to it.
 */
import { join } from "node:path";
import { statSync } from "node:fs";
import type { Config } from "../config.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { GithubClient } from "../github.ts";
import { buildImage, type ImageDeps, type ImageResult, importImage } from "../image_build.ts";
import { withLock } from "../lock.ts";
import { logger } from "../log.ts";
import { detectLxdSocket, LxdClient } from "../lxd.ts";
import { LxdImages } from "../lxd_images.ts";
import { cachedRunnerApp, ensureRunnerApp, type RunnerApp, runnerArch } from "../runner_app.ts";
import type { Io } from "./io.ts";

export async function imageBuildCommand(config: Config, io: Io, opts: { fromFile?: string }): Promise<number> {
  const socketPath = config.lxdSocket ?? detectLxdSocket();
  if (!socketPath) throw new ConfigError("lxd-socket", "no LXD socket found: is LXD installed and running?");
  if (config.imageScript !== undefined && !isFile(config.imageScript)) {
    throw new ConfigError("image-script", `"${config.imageScript}" is not a readable file`);
  }
  if (opts.fromFile !== undefined && !isFile(opts.fromFile)) {
    throw new UsageError(`Cannot import "${opts.fromFile}" (--from-file): it is not a readable file`);
  }
  const started = performance.now();
  const result = await buildConfiguredImage(config, socketPath, {
    signal: io.stop,
    fromFile: opts.fromFile,
    runnerApp: opts.fromFile ? undefined : () => resolveRunnerApp(config, io.stop),
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  io.out(
    `Image "${config.image}" is now ${result.fingerprint.slice(0, 12)} (${seconds} s)` +
      (result.previous ? `; the previous one is kept as "${config.image}-previous"\n` : "\n"),
  );
  return 0;
}

/**
 * Builds (or with fromFile imports) the image `config.image` names, proven before the alias moves: the one way to
 * make a runner image, for `image build` and the charm alike. One build at a time per cache-dir: a second one would
 * delete the first one's builder as a leftover.
 */
export async function buildConfiguredImage(
  config: Config,
  socketPath: string,
  opts: { signal: AbortSignal; fromFile?: string; runnerApp?: () => Promise<RunnerApp> },
): Promise<ImageResult> {
  const log = logger("image");
  const deps: ImageDeps = { lxd: new LxdClient({ socketPath }), images: new LxdImages({ socketPath }), log };
  const target = {
    image: config.image,
    namePrefix: config.namePrefix,
    environment: config.runnerEnvironment,
    signal: opts.signal,
  };
  return await withLock(join(config.cacheDir, "image-build.lock"), async () => {
    if (opts.fromFile) return await importImage(deps, { ...target, file: opts.fromFile });
    if (!opts.runnerApp) throw new TypeError("Cannot build an image: no runner application to bake in");
    const runnerApp = await opts.runnerApp();
    log.info("Baking the runner application {file} into the image", { file: runnerApp.filename });
    return await buildImage(deps, {
      ...target,
      baseImage: config.baseImage,
      runnerApp,
      imageScript: config.imageScript,
      dockerhubMirror: config.dockerhubMirror,
    });
  });
}

/** GitHub's current runner application (verified into the cache), or the newest cached one when GitHub is away. */
async function resolveRunnerApp(config: Config, stop: AbortSignal): Promise<RunnerApp> {
  const arch = runnerArch(process.arch);
  const signal = AbortSignal.any([stop, AbortSignal.timeout(30 * 60_000)]);
  try {
    const github = new GithubClient({ token: config.token, apiUrl: config.githubApiUrl, scope: config.scope });
    return await ensureRunnerApp(await github.runnerDownloads(signal), { cacheDir: config.cacheDir, arch, signal });
  } catch (e) {
    const cached = await cachedRunnerApp(config.cacheDir, arch);
    if (!cached) throw e;
    logger("image").warning("Using the cached runner application {file}: {error}", {
      file: cached.filename,
      error: (e as Error).message,
    });
    return cached;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
