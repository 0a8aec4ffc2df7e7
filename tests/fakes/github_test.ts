/**
 * Tests of the fake GitHub itself, through the real @octokit/rest client, so the fake is held to what octokit
 * (and so the manager) sees. The LXD end-to-end test of the fake runner application is in github_lxd_test.ts.
 */
import assert from "node:assert/strict";
import { Octokit } from "@octokit/rest";
import { primaryRateLimit, secondaryRateLimit } from "./github.ts";
import { sha256Hex } from "./runner_app.ts";
import { quietLog, rejection, withFake } from "./with_fake.ts";

const ORG = "acme";

Deno.test("octokit paginates more than 100 runners over pages with GitHub's Link header", async () => {
  await withFake(async (fake, octokit) => {
    for (let i = 0; i < 150; i++) {
      fake.addRunner({ name: `other-${i}`, status: i % 2 ? "online" : "offline", busy: false });
    }
    const all = await octokit.paginate(octokit.rest.actions.listSelfHostedRunnersForOrg, { org: ORG, per_page: 100 });
    assert.equal(all.length, 150);
    assert.deepEqual(new Set(all.map((r) => r.name)).size, 150);
    assert.equal(fake.requests.length, 2);
    // GitHub's Link header: id-based path, the request's query with page replaced, rel order prev/next/last/first.
    const first = await octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG, per_page: 100 });
    const next = /<([^>]+)>; rel="next"/.exec(first.headers.link ?? "")?.[1];
    assert.match(
      first.headers.link ?? "",
      /^<http:\/\/127\.0\.0\.1:\d+\/organizations\/\d+\/actions\/runners\?per_page=100&page=2>; rel="next", <[^>]+page=2>; rel="last"$/,
    );
    assert.equal(fake.requests[1].path, new URL(next!).pathname);
    const second = await octokit.request(`GET ${next}`);
    assert.match(second.headers.link ?? "", /^<[^>]+page=1>; rel="prev", <[^>]+page=1>; rel="first"$/);
    assert.equal(second.data.total_count, 150);
    assert.equal(second.data.runners.length, 50);
    const middle = await octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG, per_page: 50, page: 2 });
    assert.deepEqual([...(middle.headers.link ?? "").matchAll(/rel="(\w+)"/g)].map((m) => m[1]), [
      "prev",
      "next",
      "last",
      "first",
    ]);
    assert.deepEqual(fake.violations, []);
  });
});

Deno.test("a matching If-None-Match gets 304 without a body and does not count against the rate limit", async () => {
  await withFake(async (fake, octokit) => {
    fake.addRunner({ name: "r1", status: "online", busy: false });
    const first = await octokit.rest.actions.listSelfHostedRunnersForRepo({ owner: ORG, repo: "app" });
    const etag = first.headers.etag!;
    assert.match(etag, /^"[0-9a-f]{64}"$/);
    assert.equal(fake.counted, 1);
    const notModified = await rejection(
      octokit.rest.actions.listSelfHostedRunnersForRepo({
        owner: ORG,
        repo: "app",
        headers: { "if-none-match": etag },
      }),
    );
    assert.equal(notModified.status, 304);
    assert.equal(notModified.response.headers["x-ratelimit-remaining"], first.headers["x-ratelimit-remaining"]);
    assert.equal(fake.counted, 1);
    assert.deepEqual(fake.requests.at(-1), {
      method: "GET",
      path: `/repos/${ORG}/app/actions/runners`,
      query: "",
      status: 304,
      counted: false,
      hadIfNoneMatch: true,
    });
    fake.addRunner({ name: "r2", status: "online", busy: false });
    const changed = await octokit.rest.actions.listSelfHostedRunnersForRepo({
      owner: ORG,
      repo: "app",
      headers: { "if-none-match": etag },
    });
    assert.equal(changed.status, 200);
    assert.equal(changed.data.total_count, 2);
    assert.equal(fake.counted, 2);
    assert.equal(changed.headers["x-ratelimit-used"], "2");
    assert.equal(changed.headers["x-ratelimit-resource"], "core");
    assert.deepEqual(fake.violations, []);
  });
});

Deno.test("deleting a busy runner is refused with GitHub's 422; idle ones go; unknown ones are 404", async () => {
  await withFake(async (fake, octokit) => {
    const busy = fake.addRunner({ name: "busy-1", status: "online", busy: true });
    const idle = fake.addRunner({ name: "idle-1", status: "online", busy: false });
    const refused = await rejection(
      octokit.rest.actions.deleteSelfHostedRunnerFromOrg({ org: ORG, runner_id: busy.id }),
    );
    assert.equal(refused.status, 422);
    assert.equal(refused.response.data.message, 'Bad request - Runner "busy-1" is still running a job"');
    assert.match(
      refused.response.data.documentation_url,
      /^https:\/\/docs\.github\.com\/rest\/actions\/self-hosted-runners#/,
    );
    const deleted = await octokit.rest.actions.deleteSelfHostedRunnerFromOrg({ org: ORG, runner_id: idle.id });
    assert.equal(deleted.status, 204);
    assert.deepEqual(fake.runners().map((r) => r.name), ["busy-1"]);
    const missing = await rejection(octokit.rest.actions.getSelfHostedRunnerForOrg({ org: ORG, runner_id: idle.id }));
    assert.equal(missing.status, 404);
    assert.equal(missing.response.data.message, "Not Found");
    assert.deepEqual(fake.violations, []);
  });
});

Deno.test("a wrong or missing token gets 401 and is not counted", async () => {
  await withFake(async (fake) => {
    const wrong = new Octokit({ auth: "ghp_wrong", baseUrl: fake.url, log: quietLog });
    const bad = await rejection(wrong.rest.actions.listSelfHostedRunnersForOrg({ org: ORG }));
    assert.equal(bad.status, 401);
    assert.equal(bad.response.data.message, "Bad credentials");
    const none = await rejection(
      new Octokit({ baseUrl: fake.url, log: quietLog }).rest.actions.listSelfHostedRunnersForOrg({ org: ORG }),
    );
    assert.equal(none.status, 401);
    assert.equal(none.response.data.message, "Requires authentication");
    const bearer = await fetch(`${fake.url}/orgs/${ORG}/actions/runners`, {
      headers: { authorization: `Bearer ${fake.token}` },
    });
    assert.equal(bearer.status, 200);
    await bearer.body?.cancel();
    assert.equal(fake.counted, 1);
  });
});

Deno.test("injected failures: a 500, the primary and the secondary rate limit, then normal service", async () => {
  await withFake(async (fake, octokit) => {
    fake.injectFailure({ method: "GET", pathIncludes: "/actions/runners", status: 500 });
    const failed = await rejection(octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG }));
    assert.equal(failed.status, 500);
    fake.injectFailure(primaryRateLimit({ resetAt: 2_000_000_000 }));
    const primary = await rejection(octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG }));
    assert.equal(primary.status, 403);
    assert.equal(primary.response.headers["x-ratelimit-remaining"], "0");
    assert.equal(primary.response.headers["x-ratelimit-reset"], "2000000000");
    fake.injectFailure(secondaryRateLimit({ status: 429, retryAfterSeconds: 7 }));
    const secondary = await rejection(octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG }));
    assert.equal(secondary.status, 429);
    assert.equal(secondary.response.headers["retry-after"], "7");
    assert.match(secondary.message, /secondary rate limit/);
    const ok = await octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG });
    assert.equal(ok.status, 200);
    assert.deepEqual(fake.requests.map((r) => r.status), [500, 403, 429, 200]);
  });
});

Deno.test("the fake's own primary rate limit runs out with 403 and x-ratelimit-remaining 0", async () => {
  await withFake(async (fake, octokit) => {
    await octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG });
    await octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG });
    const limited = await rejection(octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG }));
    assert.equal(limited.status, 403);
    assert.equal(limited.response.headers["x-ratelimit-remaining"], "0");
    assert.match(limited.message, /API rate limit exceeded/);
    assert.equal(fake.counted, 2);
  }, { rateLimit: 2 });
});

Deno.test("the OpenAPI check flags a malformed request and an unknown query parameter", async () => {
  await withFake(async (fake, octokit) => {
    const refused = await rejection(
      octokit.request(
        "POST /orgs/{org}/actions/runners/generate-jitconfig",
        { org: ORG, runner_group_id: 1, labels: ["x"] } as any,
      ),
    );
    assert.equal(refused.status, 422);
    await octokit.request("GET /orgs/{org}/actions/runners", { org: ORG, per_pgae: 5 } as any);
    const messages = fake.violations.map((v) => `${v.kind}: ${v.message}`);
    assert.equal(messages.length, 2, messages.join("\n"));
    assert.match(
      messages[0],
      /^request: POST \/orgs\/\{org\}\/actions\/runners\/generate-jitconfig .*must have required property 'name'/,
    );
    assert.match(messages[1], /^request: GET \/orgs\/\{org\}\/actions\/runners .*unknown query parameter "per_pgae"/);
  });
});

Deno.test("runner downloads point at a separate host that redirects to the archive and never sees the token", async () => {
  await withFake(async (fake, octokit) => {
    const { data } = await octokit.rest.actions.listRunnerApplicationsForOrg({ org: ORG });
    const linux = data.find((d) => d.os === "linux" && d.architecture === "x64")!;
    assert.match(linux.filename, /^actions-runner-linux-x64-\d+\.\d+\.\d+\.tar\.gz$/);
    assert.ok(linux.download_url.startsWith(fake.downloadUrl + "/"));
    assert.notEqual(new URL(linux.download_url).origin, new URL(fake.url).origin);
    const archive = await fetch(linux.download_url);
    assert.equal(archive.status, 200);
    assert.equal(sha256Hex(new Uint8Array(await archive.arrayBuffer())), linux.sha256_checksum);
    assert.deepEqual(fake.downloadRequests.map((r) => r.path), [
      new URL(linux.download_url).pathname,
      `/objects/${linux.filename}`,
    ]);
    assert.equal(fake.downloadSawAuthorization, false);
    const leaky = await fetch(linux.download_url, { headers: { authorization: `token ${fake.token}` } });
    await leaky.body?.cancel();
    assert.equal(fake.downloadSawAuthorization, true);
    assert.deepEqual(fake.violations, []);
  });
});

Deno.test("org runner groups list Default (id 1) and the groups a test adds", async () => {
  await withFake(async (fake, octokit) => {
    const id = fake.addRunnerGroup("gpu-runners");
    // @octokit/rest 22 has no endpoint method for runner groups: octokit.request reaches it.
    const { data } = await octokit.request("GET /orgs/{org}/actions/runner-groups", { org: ORG });
    assert.deepEqual(data.runner_groups.map((g: any) => [g.id, g.name, g.default]), [[1, "Default", true], [
      id,
      "gpu-runners",
      false,
    ]]);
    const tokens = await octokit.rest.actions.createRegistrationTokenForRepo({ owner: ORG, repo: "app" });
    assert.equal(tokens.status, 201);
    assert.match(tokens.data.token, /^[A-Z2-7]{29}$/);
    const remove = await octokit.rest.actions.createRemoveTokenForOrg({ org: ORG });
    assert.equal(remove.status, 201);
    assert.deepEqual(fake.violations, []);
  });
});
