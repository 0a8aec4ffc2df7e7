/**
 * What GitHub's API does to a pass, on the real LXD with the fake GitHub: rate limits (primary: stop and say when it
 * resets; secondary: wait retry-after and go on), a rejected token and a token without permission (told apart,
 * nothing created), and a runner list longer than one page (every page read, and read for free once unchanged).
 */
import assert from "node:assert/strict";
import { primaryRateLimit, secondaryRateLimit } from "../fakes/github.ts";
import type { PassReport } from "../../lib/reconcile.ts";
import { type Bed, idleRunners, openBed, ownRunners, summary } from "./harness.ts";

const WAIT = { timeoutMs: 60_000 };
const LIST = "/actions/runners";
const NOTHING = { registered: [], instances: [] };

/** The pass, and the runner-list requests (GET .../actions/runners, every page) the fake saw during it. */
async function passWithLists(bed: Bed): Promise<{ report: PassReport; lists: { page: string; status: number }[] }> {
  const from = bed.fake.requests.length;
  const report = await bed.pass();
  const lists = bed.fake.requests.slice(from).filter((r) => r.method === "GET" && r.path.endsWith(LIST))
    .map((r) => ({ page: new URLSearchParams(r.query).get("page") ?? "1", status: r.status }));
  return { report, lists };
}

Deno.test("github: a primary rate limit stops the pass before planning; a secondary one is waited out", async (t) => {
  const bed = await openBed({ containers: 1 });
  try {
    await t.step("primary limit on the runner list: nothing planned, and the error says when it resets", async () => {
      const resetAt = Math.floor(Date.now() / 1000) + 3600;
      bed.fake.injectFailure(primaryRateLimit({ method: "GET", pathIncludes: LIST, resetAt }));
      const report = await bed.pass();
      assert.equal(report.ok, false);
      assert.deepEqual(report.results, []);
      assert.match(report.error ?? "", /rate limit/);
      assert.ok(report.error?.includes(new Date(resetAt * 1000).toISOString()), `no reset time in: ${report.error}`);
      assert.deepEqual(await ownRunners(bed), NOTHING);
    });

    await t.step("the limit lifted: the next pass spawns", async () => {
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["create container: done"]);
      await bed.fake.waitFor(() => idleRunners(bed).length === 1, { ...WAIT, what: "1 idle runner" });
    });

    await t.step(
      "secondary limit on the runner list: the client waits retry-after, then the pass goes on",
      async () => {
        bed.reconfigure({ containers: 2 });
        bed.fake.injectFailure(secondaryRateLimit({ method: "GET", pathIncludes: LIST, retryAfterSeconds: 1 }));
        const { report, lists } = await passWithLists(bed);
        assert.equal(report.error, undefined);
        assert.deepEqual(summary(report), ["create container: done"]);
        assert.equal(lists[0].status, 403, "the limit was met");
        assert.ok([200, 304].includes(lists[1]?.status), `then the list was read again: ${JSON.stringify(lists)}`);
        await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners" });
      },
    );
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});

Deno.test("github: a rejected token and a token without permission are told apart; nothing is created", async (t) => {
  await t.step("a wrong token: 401, the token was rejected", async () => {
    const bed = await openBed({ containers: 1 }, { token: "ghp_notTheTokenTheFakeAccepts00000000000" });
    try {
      const report = await bed.pass();
      assert.equal(report.ok, false);
      assert.deepEqual(report.results, []);
      assert.match(report.error ?? "", /the token was rejected/);
      assert.deepEqual(await ownRunners(bed), NOTHING);
      assert.deepEqual(bed.fake.violations, []);
    } finally {
      await bed.close();
    }
  });

  await t.step("a 403 that is no rate limit (requests left, no retry-after): the token lacks permission", async () => {
    const bed = await openBed({ containers: 1 });
    try {
      bed.fake.injectFailure({
        method: "GET",
        pathIncludes: LIST,
        status: 403,
        body: {
          message: "Resource not accessible by personal access token",
          documentation_url:
            "https://docs.github.com/rest/actions/self-hosted-runners#list-self-hosted-runners-for-an-organization",
          status: "403",
        },
      });
      const report = await bed.pass();
      assert.equal(report.ok, false);
      assert.deepEqual(report.results, []);
      assert.match(report.error ?? "", /the token lacks permission/);
      assert.doesNotMatch(report.error ?? "", /rate limit/);
      assert.deepEqual(await ownRunners(bed), NOTHING);
      assert.deepEqual(bed.fake.violations, []);
    } finally {
      await bed.close();
    }
  });
});

Deno.test("github: 150 other runners fill two pages; ours on page 2 are seen, and an unchanged list is free", async (t) => {
  const bed = await openBed({ containers: 2 });
  try {
    // The fake lists in id order: 150 offline runners of another prefix (pages 1 and 2), then ours.
    for (let i = 0; i < 150; i++) {
      bed.fake.addRunner({ name: `${bed.prefix}x-${i.toString(16).padStart(8, "0")}`, status: "offline", busy: false });
    }
    const orphan = bed.newName();
    bed.fake.addRunner({ name: orphan, status: "offline", busy: false });

    await t.step("the first pass reads both pages: our orphan on page 2 goes, other prefixes stay", async () => {
      const { report, lists } = await passWithLists(bed);
      assert.deepEqual(lists.map((l) => l.page), ["1", "2"]);
      assert.deepEqual(summary(report), [
        "create container: done",
        "create container: done",
        "remove orphan-registration: done",
      ]);
      assert.equal(bed.fake.runners().length, 150 + 2, "150 others and our 2 new runners");
      await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners" });
    });

    await t.step("our runners, on page 2, count as idle: nothing to do", async () => {
      const ids = new Map(bed.fake.runners().map((r, i) => [r.name, i]));
      assert.ok(idleRunners(bed).every((name) => ids.get(name)! >= 100), "our runners are on page 2");
      const report = await bed.pass();
      assert.deepEqual(summary(report), []);
      assert.equal(report.before.idle, 2);
      assert.equal(report.runners.length, 2, "other prefixes' runners are not ours");
    });

    await t.step("a steady-state pass: both pages answered 304, no request counted", async () => {
      const counted = bed.fake.counted;
      const { report, lists } = await passWithLists(bed);
      assert.deepEqual(summary(report), []);
      assert.deepEqual(lists, [{ page: "1", status: 304 }, { page: "2", status: 304 }]);
      assert.equal(bed.fake.counted - counted, 0, "counted requests in a steady-state pass");
      assert.deepEqual(await ownRunners(bed), {
        registered: idleRunners(bed).sort(),
        instances: idleRunners(bed).sort(),
      });
    });
    assert.deepEqual(bed.fake.violations, []);
  } finally {
    await bed.close();
  }
});
