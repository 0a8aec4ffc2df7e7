/** Host capacity admission against the real LXD: a request the host cannot hold is refused, with the reason. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { openBed, summary } from "./harness.ts";

Deno.test("admission: containers larger than the host's free memory are refused, nothing is created", async () => {
  const bed = await openBed({ containers: 2, "container-memory": "64TiB" });
  try {
    const report = await bed.pass();
    assert.deepEqual(summary(report), []);
    assert.equal(report.ok, false);
    assert.equal(report.problems.length, 1);
    assert.match(
      report.problems[0],
      /^Not creating 2 container runner\(s\): each needs 65536\.0 GiB memory, the host has [\d.]+ GiB memory free$/,
    );
    assert.equal((await bed.instances()).size, 0);
  } finally {
    await bed.close();
  }
});

Deno.test("admission: a request that fits goes ahead with the limits on the instance", async () => {
  const bed = await openBed({ containers: 1, "container-memory": "256MiB", "container-cpu": 1 });
  try {
    const report = await bed.pass();
    assert.deepEqual(summary(report), ["create container: done"]);
    assert.deepEqual(report.problems, []);
    const [name] = (await bed.instances()).keys();
    const get = (key: string) => execFileSync("lxc", ["config", "get", name, key], { encoding: "utf8" }).trim();
    assert.equal(get("limits.memory"), "256MiB");
    assert.equal(get("limits.cpu"), "1");
  } finally {
    await bed.close();
  }
});
