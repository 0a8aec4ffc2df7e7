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
