/**
 * Two passes never overlap, also across processes (a `reconcile` run by hand while the `run` service works):
 * an exclusive lock file holding the owner's pid. A lock whose process is gone is stale and is taken over.
 */
import { open, readFile, rm } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export class LockedError extends Error {
  override name = "LockedError";
}

export async function withLock<T>(path: string, f: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  await acquire(path);
  try {
    return await f();
  } finally {
    await rm(path, { force: true });
  }
}

async function acquire(path: string, retried = false): Promise<void> {
  try {
    const fh = await open(path, "wx", 0o644);
    await fh.write(`${process.pid}\n`);
    await fh.close();
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
    const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (!retried && !(pid > 0 && alive(pid))) {
      await rm(path, { force: true });
      return acquire(path, true);
    }
    throw new LockedError(`Another pass is running (lock "${path}" held by pid ${pid || "unknown"})`);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}
