/**
 * The fake's just-in-time runners and its broker, driven over HTTP the way runner-app/run.sh drives it
 * (github_lxd_test.ts runs the real run.sh in a container).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Octokit } from "@octokit/rest";
import { rejection, withFake } from "./with_fake.ts";

const ORG = "acme";

/** Registers a JIT runner and returns what run.sh would read from its .runner file, plus a broker client. */
async function jitRunner(octokit: Octokit, name: string, labels = ["self-hosted"]) {
  const { data } = await octokit.rest.actions.generateRunnerJitconfigForOrg({
    org: ORG,
    name,
    runner_group_id: 1,
    labels,
  });
  const files = JSON.parse(Buffer.from(data.encoded_jit_config, "base64").toString());
  const runnerFile = JSON.parse(Buffer.from(files[".runner"], "base64").toString());
  const call = async (path: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${runnerFile.serverUrlV2}/runners/${runnerFile.agentId}${path}`, {
      method: "POST",
      body: runnerFile.fakeBrokerSecret,
    });
    return { status: res.status, text: (await res.text()).trim() };
  };
  return { id: data.runner.id as number, call };
}

Deno.test("generate-jitconfig registers an offline runner once per name; its JIT config connects once", async () => {
  await withFake(async (fake, octokit) => {
    const { data, status } = await octokit.rest.actions.generateRunnerJitconfigForOrg({
      org: ORG,
      name: "acme-0-abc",
      runner_group_id: 1,
      labels: ["self-hosted", "X64", "gpu"],
    });
    assert.equal(status, 201);
    assert.deepEqual(
      { ...data.runner, id: 0 },
      {
        id: 0,
        name: "acme-0-abc",
        os: "unknown",
        status: "offline",
        busy: false,
        ephemeral: true,
        runner_group_id: 1,
        labels: [{ id: 5, name: "self-hosted", type: "read-only" }, { id: 7, name: "X64", type: "read-only" }, {
          id: 100,
          name: "gpu",
          type: "custom",
        }],
      },
    );
    const files = JSON.parse(Buffer.from(data.encoded_jit_config, "base64").toString());
    assert.deepEqual(Object.keys(files).sort(), [".credentials", ".credentials_rsaparams", ".runner"]);
    const runnerFile = JSON.parse(Buffer.from(files[".runner"], "base64").toString());
    assert.equal(runnerFile.agentId, data.runner.id);
    assert.equal(runnerFile.agentName, "acme-0-abc");
    assert.equal(runnerFile.serverUrlV2, fake.brokerUrl);
    const again = await rejection(
      octokit.rest.actions.generateRunnerJitconfigForOrg({
        org: ORG,
        name: "acme-0-abc",
        runner_group_id: 1,
        labels: ["x"],
      }),
    );
    assert.equal(again.status, 409);
    assert.equal(again.response.data.message, "Already exists - A runner with the name acme-0-abc already exists.");

    const connect = () =>
      fetch(`${fake.brokerUrl}/runners/${runnerFile.agentId}/connect?version=2.329.0`, {
        method: "POST",
        body: runnerFile.fakeBrokerSecret,
      });
    const first = await connect();
    assert.equal(first.status, 200);
    await first.body?.cancel();
    const second = await connect();
    assert.equal(second.status, 409);
    await second.body?.cancel();
    const online = await octokit.rest.actions.getSelfHostedRunnerForOrg({ org: ORG, runner_id: data.runner.id });
    // @octokit/rest 22's runner type predates GitHub's `version` field.
    const version = (online.data as { version?: string }).version;
    assert.deepEqual([online.data.status, online.data.os, version], ["online", "linux", "2.329.0"]);
    assert.deepEqual(fake.violations, []);
  });
});

Deno.test("the broker hands a queued job to an idle runner with its labels; started is busy; done removes it", async () => {
  await withFake(async (fake, octokit) => {
    const gpu = await jitRunner(octokit, "gpu-1", ["self-hosted", "gpu"]);
    const plain = await jitRunner(octokit, "plain-1");
    assert.equal((await gpu.call("/poll")).status, 409, "polling before connecting");
    assert.equal((await gpu.call("/connect?version=2.329.0")).status, 200);
    assert.equal((await plain.call("/connect?version=2.329.0")).status, 200);
    const job = fake.assignJob({ seconds: 3, labels: ["GPU"] });
    assert.deepEqual(await plain.call("/poll"), { status: 200, text: "none" });
    assert.deepEqual(await gpu.call("/poll"), { status: 200, text: `job ${job.id} 3` });
    assert.equal((await gpu.call(`/jobs/${job.id}/started`)).status, 200);
    const busy = await octokit.rest.actions.getSelfHostedRunnerForOrg({ org: ORG, runner_id: gpu.id });
    assert.equal(busy.data.busy, true);
    const refused = await rejection(
      octokit.rest.actions.deleteSelfHostedRunnerFromOrg({ org: ORG, runner_id: gpu.id }),
    );
    assert.equal(refused.status, 422);
    assert.equal((await gpu.call(`/jobs/${job.id}/renew`)).status, 200);
    assert.equal((await gpu.call(`/jobs/${job.id}/done`)).status, 200);
    assert.deepEqual(fake.runners().map((r) => r.name), ["plain-1"]);
    assert.deepEqual(fake.jobs().map((j) => [j.state, j.runner]), [["done", "gpu-1"]]);
    assert.equal((await gpu.call("/poll")).status, 404, "the removed runner's registration is gone");
    assert.deepEqual(fake.violations, []);
  }, { pollHoldMs: 200 });
});

Deno.test("a waiting poll wakes for a job aimed at its runner, and answers 404 when the runner is deleted", async () => {
  await withFake(async (fake, octokit) => {
    const a = await jitRunner(octokit, "a");
    const b = await jitRunner(octokit, "b");
    await a.call("/connect?version=2.329.0");
    await b.call("/connect?version=2.329.0");
    const polls = [a.call("/poll"), b.call("/poll")];
    await fake.waitFor((f) => f.pollsWaiting === 2, { timeoutMs: 5000, what: "both polls to wait" });
    const job = fake.assignJob("a", { seconds: 1 });
    assert.deepEqual(await polls[0], { status: 200, text: `job ${job.id} 1` });
    await octokit.rest.actions.deleteSelfHostedRunnerFromOrg({ org: ORG, runner_id: b.id });
    assert.equal((await polls[1]).status, 404);
  }, { pollHoldMs: 10_000 });
});

Deno.test("a connected runner that stops talking to the broker goes offline", async () => {
  await withFake(async (fake, octokit) => {
    const r = await jitRunner(octokit, "quiet-1");
    assert.equal(fake.runners()[0].status, "offline", "registered, never connected");
    await r.call("/connect?version=2.329.0");
    assert.equal(fake.runners()[0].status, "online");
    await fake.waitFor((f) => f.runners()[0].status === "offline", {
      timeoutMs: 10_000,
      what: "the runner to go offline",
    });
    const seen = await octokit.rest.actions.listSelfHostedRunnersForOrg({ org: ORG });
    assert.equal(seen.data.runners[0].status, "offline");
  }, { offlineAfterMs: 300 });
});

Deno.test("a committed failure registers the runner yet answers 502, so the client's retry meets 409", async () => {
  await withFake(async (fake, octokit) => {
    fake.injectFailure({
      method: "POST",
      pathIncludes: "generate-jitconfig",
      status: 502,
      body: "<html>Unicorn!</html>",
      commit: true,
    });
    const spec = { org: ORG, name: "twice", runner_group_id: 1, labels: ["self-hosted"] };
    const failed = await rejection(octokit.rest.actions.generateRunnerJitconfigForOrg(spec));
    assert.equal(failed.status, 502);
    assert.match(failed.response.headers["content-type"], /^text\/html/);
    assert.deepEqual(fake.runners().map((r) => r.name), ["twice"]);
    const retried = await rejection(octokit.rest.actions.generateRunnerJitconfigForOrg(spec));
    assert.equal(retried.status, 409);
    assert.deepEqual(fake.violations, [], "an injected failure is not a violation");
  });
});
