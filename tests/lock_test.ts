import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LockedError, processIdentity, withLock } from "../lib/lock.ts";

Deno.test("lock: a second holder is refused while the first holds it; released after", async () => {
  const path = join(await mkdtemp(join(tmpdir(), "lock-")), "reconcile.lock");
  await withLock(path, async () => {
    assert.equal((await readFile(path, "utf8")).trim(), processIdentity(process.pid));
    await assert.rejects(withLock(path, () => Promise.resolve()), LockedError);
  });
  assert.equal(existsSync(path), false);
  assert.equal(await withLock(path, () => Promise.resolve(7)), 7);
});

Deno.test("lock: a lock of a dead process, or of a reused pid, is taken over", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lock-"));
  const dead = join(dir, "dead.lock");
  await writeFile(dead, "999999999 12345\n");
  assert.equal(await withLock(dead, () => Promise.resolve("ok")), "ok");
  // Our own pid with another start time: the pid was reused by a different process.
  const reused = join(dir, "reused.lock");
  await writeFile(reused, `${process.pid} 1\n`);
  assert.equal(await withLock(reused, () => Promise.resolve("ok")), "ok");
});

Deno.test("lock: of many takers of one stale lock, exactly one wins", async () => {
  const path = join(await mkdtemp(join(tmpdir(), "lock-")), "reconcile.lock");
  await writeFile(path, "999999999 12345\n");
  let inside = 0, most = 0;
  const results = await Promise.allSettled(Array.from({ length: 8 }, () =>
    withLock(path, async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 20));
      inside--;
    })));
  assert.equal(most, 1, "two holders at once");
  assert.ok(results.some((r) => r.status === "fulfilled"));
  for (const r of results) if (r.status === "rejected") assert.ok(r.reason instanceof LockedError);
});
