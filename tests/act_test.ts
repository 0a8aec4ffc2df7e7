/** act(): every outcome is reported, one failure does not stop the others, progress counts every action. */
import assert from "node:assert/strict";
import { act, type ActDeps } from "../lib/act.ts";
import type { Action } from "../lib/plan.ts";
import { LxdError } from "../lib/lxd.ts";
import { KEY_FINISHED_AT } from "../lib/names.ts";
import { defaultConcurrency } from "../lib/reconcile.ts";

Deno.test("act: removals report per runner (busy kept, failure isolated) and progress counts them all", async () => {
  const deleted: string[] = [];
  const deps = {
    github: {
      deleteRunner: (id: number) => Promise.resolve(id === 2 ? "busy" as const : "deleted" as const),
      findRunner: () => Promise.resolve(undefined),
      generateJitConfig: () => Promise.reject(new Error("unused")),
    },
    lxd: {
      deleteInstance: (name: string) =>
        name === "p-00000003" ? Promise.reject(new Error("LXD said no")) : (deleted.push(name), Promise.resolve()),
    },
    clock: () => 0,
  } as unknown as ActDeps;
  const remove = (n: number): Action => ({
    kind: "remove",
    name: `p-0000000${n}`,
    cause: "surplus",
    reason: "test",
    runnerId: n,
    instance: true,
  });
  const progress: string[] = [];
  const results = await act(deps, [remove(1), remove(2), remove(3), remove(4)], {
    concurrency: 2,
    onProgress: (done, total) => progress.push(`${done}/${total}`),
  });
  assert.deepEqual(results.map((r) => r.outcome), ["done", "kept-busy", "failed", "done"]);
  assert.match(results[2].error ?? "", /LXD said no/);
  assert.deepEqual(deleted.sort(), ["p-00000001", "p-00000004"], "the busy runner's instance was not deleted");
  assert.deepEqual(progress, ["1/4", "2/4", "3/4", "4/4"]);
});

Deno.test("act: a finished runner GitHub still lists is kept; its mark is written; one gone or powering off counts as marked", async () => {
  const keys: Record<string, Record<string, string>> = {};
  const deps = {
    github: {
      deleteRunner: () => Promise.reject(new Error("must not deregister")),
      findRunner: (name: string) =>
        Promise.resolve(name === "p-0000000a" ? { id: 1, name, status: "online", busy: false, labels: [] } : undefined),
      generateJitConfig: () => Promise.reject(new Error("unused")),
    },
    lxd: {
      deleteInstance: () => Promise.reject(new Error("must not delete")),
      setUserKeys: (name: string, k: Record<string, string>) => {
        if (name === "p-0000000c") return Promise.reject(new LxdError("set user keys", 404, "Instance not found"));
        if (name === "p-0000000d") {
          // LXD 5.0.2's words while the instance powers off (seen in CI).
          const busy = 'Failed to create instance update operation: Instance is busy running a "stop" operation';
          return Promise.reject(new LxdError("set user keys", 500, busy));
        }
        if (name === "p-0000000e") return Promise.reject(new LxdError("set user keys", 500, "disk full"));
        keys[name] = k;
        return Promise.resolve();
      },
    },
    clock: () => 0,
  } as unknown as ActDeps;
  const results = await act(deps, [
    { kind: "remove", name: "p-0000000a", cause: "finished", reason: "r", instance: true },
    { kind: "mark-finished", name: "p-0000000b", at: 1234, reason: "r" },
    { kind: "mark-finished", name: "p-0000000c", at: 1234, reason: "r" },
    { kind: "mark-finished", name: "p-0000000d", at: 1234, reason: "r" },
    { kind: "mark-finished", name: "p-0000000e", at: 1234, reason: "r" },
  ], { concurrency: 2 });
  assert.deepEqual(results.map((r) => r.outcome), ["kept", "done", "done", "done", "failed"]);
  assert.deepEqual(keys, { "p-0000000b": { [KEY_FINISHED_AT]: "1234" } });
});

Deno.test("defaultConcurrency: 4 per core, at least 4, at most 32", () => {
  assert.deepEqual([1, 2, 4, 8, 64].map((cores) => defaultConcurrency(cores)), [4, 8, 16, 32, 32]);
});
