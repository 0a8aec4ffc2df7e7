/** The narrow GitHub client against the fake GitHub: a runner list that changes while it is paged is never trusted. */
import assert from "node:assert/strict";
import { FakeGithub } from "./fakes/github.ts";
import { GithubClient } from "../lib/github.ts";
import { GithubError } from "../lib/errors.ts";

async function setup(runners: number) {
  const fake = await FakeGithub.start({ hostname: "127.0.0.1" });
  for (let i = 0; i < runners; i++) {
    fake.addRunner({ name: `other-${String(i).padStart(8, "0")}`, status: "online", busy: false });
  }
  const github = new GithubClient({ token: fake.token, apiUrl: fake.url, scope: { kind: "org", org: "acme" } });
  return { fake, github };
}

/** Page 1 as it looked before a runner was added: 100 runners, but a total one higher than page 2 reports. */
function shiftedFirstPage(fake: FakeGithub) {
  const runners = fake.runners().slice(0, 100).map((r) => ({
    id: r.id,
    name: r.name,
    os: r.os,
    status: r.status,
    busy: r.busy,
    labels: r.labels.map((name, id) => ({ id, name, type: "custom" })),
  }));
  return { total_count: 151, runners };
}

const listRequests = (fake: FakeGithub) =>
  fake.requests.filter((r) => r.method === "GET" && r.path.endsWith("/actions/runners")).length;

Deno.test("github client: a list that changed between pages is read again", async () => {
  const { fake, github } = await setup(150);
  try {
    fake.injectFailure({
      method: "GET",
      pathIncludes: "/actions/runners",
      status: 200,
      body: shiftedFirstPage(fake),
      times: 1,
    });
    const runners = await github.listRunners();
    assert.equal(runners.length, 150);
    assert.equal(new Set(runners.map((r) => r.id)).size, 150);
    assert.equal(listRequests(fake), 4, "two walks of two pages");
  } finally {
    await fake.close();
  }
});

Deno.test("github client: a list that keeps changing fails the call instead of missing runners", async () => {
  const { fake, github } = await setup(150);
  try {
    // Every read answers with the shifted page: both walks see duplicates and a total that does not add up.
    fake.injectFailure({
      method: "GET",
      pathIncludes: "/actions/runners",
      status: 200,
      body: shiftedFirstPage(fake),
      times: 4,
    });
    await assert.rejects(
      github.listRunners(),
      (e: Error) => e instanceof GithubError && /changed while it was read/.test(e.message),
    );
  } finally {
    await fake.close();
  }
});

Deno.test("github client: findRunner asks GitHub by name", async () => {
  const { fake, github } = await setup(3);
  try {
    fake.addRunner({ name: "acme-0000000a", status: "online", busy: true });
    const found = await github.findRunner("acme-0000000a");
    assert.equal(found?.busy, true);
    assert.equal(await github.findRunner("acme-0000000b"), undefined);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});

Deno.test("github client: runner groups are found on any page, by name", async () => {
  const { fake, github } = await setup(0);
  try {
    for (let i = 0; i < 120; i++) fake.addRunnerGroup(`group-${i}`);
    const id = await github.runnerGroupId("group-115");
    assert.ok(id > 100, `group-115 has id ${id}`);
    assert.equal(await github.runnerGroupId("default"), 1);
    await assert.rejects(github.runnerGroupId("nope"), /no runner group "nope"/);
    assert.deepEqual(fake.violations, []);
  } finally {
    await fake.close();
  }
});
