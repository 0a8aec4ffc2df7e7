/**
 * Whole lifecycles on the real LXD with the fake GitHub and the fake runner application: spawn to target, steady
 * state, a job taken and replaced, surplus scale-down, busy protection. Each step asserts the resulting state of
 * GitHub (the fake) and LXD, not call counts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { type Bed, idleRunners, logLines, openBed, summary } from "./harness.ts";

const WAIT = { timeoutMs: 60_000 };

Deno.test("lifecycle: fill, steady state, job replaced, scale down, busy kept", async (t) => {
  const bed = await openBed({ containers: 2 });
  try {
    await t.step("an empty host gets two idle runners", async () => {
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["create container: done", "create container: done"]);
      assert.equal(report.ok, true);
      await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners" });
      const instances = await bed.instances();
      assert.deepEqual([...instances.values()], ["Running", "Running"]);
      assert.deepEqual([...instances.keys()].sort(), idleRunners(bed).sort(), "runner name = instance name");
    });

    await t.step("the runners carry the JIT labels", () => {
      for (const r of bed.fake.runners().filter((r) => r.name.startsWith(bed.prefix))) {
        assert.deepEqual(r.labels.slice(0, 4), ["self-hosted", "linux", "x64", "container"]);
      }
    });

    await t.step("steady state: nothing to do, at most one counted GitHub request", async () => {
      await bed.pass(); // refreshes the list's ETag after the spawns changed it
      const before = bed.fake.counted;
      const report = await bed.pass();
      assert.deepEqual(summary(report), []);
      assert.equal(report.before.idle, 2);
      assert.ok(bed.fake.counted - before <= 1, `steady-state pass cost ${bed.fake.counted - before} counted requests`);
      const lastList = bed.fake.requests.filter((r) => r.method === "GET" && r.path.includes("/actions/runners")).at(
        -1,
      );
      assert.equal(lastList?.status, 304, "the runner list is a conditional request");
    });

    await t.step("the JIT config is in no host process argument and no log", () => {
      const jitStart = btoa('{".runner"').slice(0, 12);
      const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
      assert.ok(!ps.includes(jitStart), "a process argument holds a JIT config");
      assert.ok(ps.includes("run.sh") || ps.includes("sleep"), "the runner processes are visible to ps");
      assert.ok(!logLines.some((l) => l.includes(jitStart) || l.includes(bed.fake.token)), "a log line holds a secret");
    });

    let busy = "";
    await t.step("a runner takes a job: it is replaced, never touched, then gone with its instance", async () => {
      [busy] = idleRunners(bed);
      bed.fake.assignJob(busy, { seconds: 4 });
      await bed.fake.waitFor((f) => f.runners().some((r) => r.name === busy && r.busy), { ...WAIT, what: "busy" });
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["create container: done"]);
      assert.equal(report.before.busy, 1);
      assert.equal((await bed.instances()).get(busy), "Running", "the busy runner's instance is untouched");
      await bed.fake.waitFor(async () => !(await bed.instances()).has(busy), {
        ...WAIT,
        what: "the finished runner's instance to go",
      });
      assert.ok(!bed.fake.runners().some((r) => r.name === busy), "GitHub removed the ephemeral runner after its job");
      await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners again" });
      assert.deepEqual(summary(await bed.pass()), []);
    });

    await t.step("surplus idle runners go oldest first: deregistered, then deleted", async () => {
      const ages = new Map(
        (await bed.lxd.listInstances()).filter((i) => i.name.startsWith(bed.prefix)).map((i) => [i.name, i.createdAt]),
      );
      const oldest = [...ages.entries()].sort((a, b) => a[1] - b[1])[0][0];
      bed.reconfigure({ containers: 1 });
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["remove surplus: done"]);
      assert.equal(report.results[0].action.kind === "remove" && report.results[0].action.name, oldest);
      assert.ok(!bed.fake.runners().some((r) => r.name === oldest), "deregistered");
      assert.ok(!(await bed.instances()).has(oldest), "instance deleted");
    });

    await t.step("a runner that took a job after the list (GitHub answers 422) is kept", async () => {
      const [last] = idleRunners(bed);
      bed.reconfigure({ containers: 0 });
      bed.fake.injectFailure({
        method: "DELETE",
        pathIncludes: "/actions/runners/",
        status: 422,
        body: {
          message: `Bad request - Runner "${last}" is still running a job"`,
          documentation_url: "https://docs.github.com/rest",
        },
      });
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["remove surplus: kept-busy"]);
      assert.equal((await bed.instances()).get(last), "Running");
      assert.ok(bed.fake.runners().some((r) => r.name === last));
    });

    await t.step("target 0 empties the host; GitHub and LXD agree", async () => {
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["remove surplus: done"]);
      assert.equal((await bed.instances()).size, 0);
      assert.equal(bed.fake.runners().filter((r) => r.name.startsWith(bed.prefix)).length, 0);
    });

    await t.step(
      "every exchange matched GitHub's OpenAPI description; the token never went to the download host",
      () => {
        assert.deepEqual(bed.fake.violations, []);
        assert.ok(bed.fake.downloadRequests.length >= 1, "the runner application was downloaded");
        assert.equal(bed.fake.downloadSawAuthorization, false);
      },
    );
  } finally {
    await bed.close();
  }
});

export type { Bed };

Deno.test("lifecycle: the service's proxy reaches the runner's processes, per instance", async () => {
  const env = { HTTPS_PROXY: "http://proxy.invalid:3128", no_proxy: "localhost" };
  const bed = await openBed({ containers: 1 }, { env });
  try {
    const report = await bed.pass();
    assert.deepEqual(summary(report), ["create container: done"]);
    const [name] = (await bed.instances()).keys();
    const seen = await bed.lxd.exec(name, ["sh", "-c", 'echo "$HTTPS_PROXY $no_proxy"']);
    assert.equal(seen.stdout.trim(), "http://proxy.invalid:3128 localhost");
  } finally {
    await bed.close();
  }
});
