/**
 * The runner application cache: GitHub's actions-runner tarball, downloaded once per version, verified against
 * the sha256 the downloads API publishes, and pushed into instances from here. Air-gapped hosts import a tarball.
 *
 * Layout: <cache-dir>/<filename> plus <cache-dir>/<filename>.sha256 (written only after verification).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import type { RunnerDownload } from "./github.ts";

export interface RunnerApp {
  path: string;
  filename: string;
  sha256: string;
}

export class RunnerAppError extends Error {
  override name = "RunnerAppError";
}

/** GitHub's architecture names for the host: the runner tarball and the runner's label. */
export function runnerArch(nodeArch: string): "x64" | "arm64" {
  if (nodeArch === "x64") return "x64";
  if (nodeArch === "arm64") return "arm64";
  throw new RunnerAppError(`GitHub publishes no runner application for architecture "${nodeArch}"`);
}

/**
 * Makes sure the cache holds the runner application GitHub currently offers for linux/<arch>, downloading it
 * when needed. The download goes to download_url WITHOUT our token (it is another host).
 */
export async function ensureRunnerApp(
  downloads: RunnerDownload[],
  opts: {
    cacheDir: string;
    arch: "x64" | "arm64";
    signal?: AbortSignal;
    downloadTimeoutMs?: number;
    onProgress?: (bytes: number, total?: number) => void;
  },
): Promise<RunnerApp> {
  const want = downloads.find((d) => d.os === "linux" && d.architecture === opts.arch);
  if (!want) throw new RunnerAppError(`GitHub lists no runner application for linux/${opts.arch}`);
  const filename = basename(want.filename);
  const path = join(opts.cacheDir, filename);
  const have = await readSidecar(path);
  if (have && (!want.sha256_checksum || have === want.sha256_checksum)) return { path, filename, sha256: have };

  await mkdir(opts.cacheDir, { recursive: true, mode: 0o755 });
  const tmp = `${path}.partial.${process.pid}`; // per process: `update-runner-bin` may run beside a pass
  const timeout = AbortSignal.timeout(opts.downloadTimeoutMs ?? 30 * 60_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const res = await fetch(want.download_url, { signal, redirect: "follow" });
    if (!res.ok || !res.body) {
      throw new RunnerAppError(`Cannot download the runner application "${filename}": HTTP ${res.status}`);
    }
    const total = Number(res.headers.get("content-length")) || undefined;
    const hash = createHash("sha256");
    let bytes = 0;
    const counted = Readable.fromWeb(res.body as any).on("data", (chunk: Uint8Array) => {
      hash.update(chunk);
      bytes += chunk.length;
      opts.onProgress?.(bytes, total);
    });
    await pipeline(counted, createWriteStream(tmp, { mode: 0o644 }), { signal });
    const sha256 = hash.digest("hex");
    if (want.sha256_checksum && sha256 !== want.sha256_checksum) {
      throw new RunnerAppError(
        `The runner application "${filename}" failed verification: sha256 ${sha256}, GitHub lists ${want.sha256_checksum}`,
      );
    }
    await rename(tmp, path);
    await writeFile(`${path}.sha256`, `${sha256}\n`);
    return { path, filename, sha256 };
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof RunnerAppError) throw e;
    throw new RunnerAppError(`Cannot download the runner application "${filename}": ${(e as Error).message}`);
  }
}

/** Imports a runner tarball from a file (air-gapped hosts): copied into the cache with its sha256. */
export async function importRunnerApp(file: string, cacheDir: string): Promise<RunnerApp> {
  const filename = basename(file);
  if (!/^actions-runner-linux-(x64|arm64)-[\w.]+\.tar\.gz$/.test(filename)) {
    throw new RunnerAppError(
      `"${filename}" is not named like a runner application (actions-runner-linux-<arch>-<version>.tar.gz)`,
    );
  }
  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  const path = join(cacheDir, filename);
  const hash = createHash("sha256");
  await pipeline(
    createReadStream(file).on("data", (c) => hash.update(c)),
    createWriteStream(`${path}.partial.${process.pid}`, { mode: 0o644 }),
  );
  const sha256 = hash.digest("hex");
  await rename(`${path}.partial.${process.pid}`, path);
  await writeFile(`${path}.sha256`, `${sha256}\n`);
  return { path, filename, sha256 };
}

/** The newest verified runner application in the cache for `arch`, if any: the fallback when GitHub is away. */
export async function cachedRunnerApp(cacheDir: string, arch: "x64" | "arm64"): Promise<RunnerApp | undefined> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch {
    return undefined;
  }
  let best: (RunnerApp & { mtime: number }) | undefined;
  for (const filename of names.filter((n) => n.startsWith(`actions-runner-linux-${arch}-`) && n.endsWith(".tar.gz"))) {
    const path = join(cacheDir, filename);
    const sha256 = await readSidecar(path);
    if (!sha256) continue;
    const mtime = (await stat(path)).mtimeMs;
    if (!best || mtime > best.mtime) best = { path, filename, sha256, mtime };
  }
  return best && { path: best.path, filename: best.filename, sha256: best.sha256 };
}

async function readSidecar(path: string): Promise<string | undefined> {
  try {
    const [sha, st] = await Promise.all([readFile(`${path}.sha256`, "utf8"), stat(path)]);
    return st.isFile() ? sha.trim() : undefined;
  } catch {
    return undefined;
  }
}
