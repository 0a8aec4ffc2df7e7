/** act(): every outcome is reported, one failure does not stop the others, progress counts every action. */
import assert from "node:assert/strict";
import { act, type ActDeps } from "../lib/act.ts";
import type { Action } from "../lib/plan.ts";

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
