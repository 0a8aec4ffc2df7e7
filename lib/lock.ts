/**
 * Two passes never overlap, also across processes (a `reconcile` run by hand while the `run` service works):
 * an exclusive lock file naming its owner by pid AND process start time, so a lock left by a killed process is
 * recognised as stale even after the kernel reuses its pid.
 */
import { open, readFile, rm } from "node:fs/promises";
import { mkdirSync, readFileSync } from "node:fs";
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

/** "<pid> <start time in clock ticks since boot>": unique for a process's lifetime. */
export function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may hold spaces and parentheses: count fields after its closing one. starttime is field 22.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return `${pid} ${fields[19]}`;
  } catch {
    return undefined;
  }
}

async function acquire(path: string, retried = false): Promise<void> {
  const me = processIdentity(process.pid) ?? `${process.pid} 0`;
  try {
    const fh = await open(path, "wx", 0o644);
    await fh.write(`${me}\n`);
    await fh.close();
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
    const holder = (await readFile(path, "utf8").catch(() => "")).trim();
    const pid = Number(holder.split(" ")[0]);
    const stale = !(pid > 0) || processIdentity(pid) !== holder;
    if (stale && !retried) {
      await rm(path, { force: true });
      return acquire(path, true);
    }
    throw new LockedError(`Another pass is running (lock "${path}" held by pid ${pid || "unknown"})`);
  }
}
