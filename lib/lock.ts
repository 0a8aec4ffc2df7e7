/**
 * Two passes never overlap, also across processes (a `reconcile` run by hand while the `run` service works):
 * an exclusive lock file naming its owner by pid AND process start time, so a lock left by a killed process is
 * recognised as stale even after the kernel reuses its pid.
 */
import { open, readFile, rename, rm } from "node:fs/promises";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

export class LockedError extends Error {
  override name = "LockedError";
}

export async function withLock<T>(path: string, f: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const me = await acquire(path);
  try {
    return await f();
  } finally {
    // Release only our own lock: never one another process took over meanwhile.
    if ((await readFile(path, "utf8").catch(() => "")).trim() === me) await rm(path, { force: true });
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

async function acquire(path: string, retried = false): Promise<string> {
  const me = processIdentity(process.pid) ?? `${process.pid} 0`;
  try {
    const fh = await open(path, "wx", 0o644);
    await fh.write(`${me}\n`);
    await fh.close();
    return me;
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
    const holder = (await readFile(path, "utf8").catch(() => "")).trim();
    const pid = Number(holder.split(" ")[0]);
    const stale = !(pid > 0) || isStale(pid, holder);
    if (stale && !retried && await takeOver(path, holder)) return acquire(path, true);
    throw new LockedError(`Another pass is running (lock "${path}" held by pid ${pid || "unknown"})`);
  }
}

/**
 * Moves a stale lock aside atomically: of several processes that saw the same stale lock, exactly one rename
 * succeeds, and a lock a quicker process has re-created meanwhile is put back rather than removed.
 */
async function takeOver(path: string, staleHolder: string): Promise<boolean> {
  const aside = `${path}.stale.${process.pid}`;
  try {
    await rename(path, aside);
  } catch {
    return false; // another process moved it first
  }
  const moved = (await readFile(aside, "utf8").catch(() => "")).trim();
  if (moved !== staleHolder) {
    await rename(aside, path).catch(() => {});
    return false;
  }
  await rm(aside, { force: true });
  return true;
}

/**
 * Stale: the pid now belongs to a process with another start time (the kernel reused it), or no process has it.
 * A live owner whose /proc entry we cannot read (hidepid) is NOT stale.
 */
function isStale(pid: number, holder: string): boolean {
  const identity = processIdentity(pid);
  if (identity !== undefined) return identity !== holder;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as { code?: string }).code === "ESRCH";
  }
}
