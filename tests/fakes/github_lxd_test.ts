/**
 * End to end through a real LXD container: the fake runner application, unpacked from the fake's runner archive,
 * connects to the fake GitHub over the LXD bridge, goes online, takes a job, is busy, finishes and disappears,
 * as an ephemeral JIT runner does on GitHub. Needs LXD with the busybox image `github-runner-test` and the bridge at
 * 10.200.77.1 (scripts/lxd-test-host.sh). SKIP_LXD_TESTS=1 skips it where there is no LXD.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Octokit } from "@octokit/rest";
import { FakeGithub } from "./github.ts";
import { buildFakeRunnerTarball } from "./runner_app.ts";

const BRIDGE = "10.200.77.1";
const IMAGE = "github-runner-test";
const RUNNER_UID = "1001";

async function lxc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // `timeout` bounds every call, so a wedged daemon fails the test instead of hanging it.
  const out = await new Deno.Command("timeout", { args: ["120", "lxc", ...args], stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

async function lxcOk(...args: string[]): Promise<string> {
  const out = await lxc(...args);
  assert.equal(out.code, 0, `lxc ${args.slice(0, 3).join(" ")} failed: ${out.stderr}`);
  return out.stdout;
}

Deno.test({
  name: "the fake runner application in an LXD container goes online, runs one job and is removed",
  ignore: Deno.env.get("SKIP_LXD_TESTS") === "1",
  fn: async () => {
    const fake = await FakeGithub.start({ hostname: BRIDGE, pollHoldMs: 2000 });
    const dir = await mkdtemp(join(tmpdir(), "fake-runner-"));
    const container = `fake-runner-test-${crypto.randomUUID().slice(0, 8)}`;
    try {
      const tarball = await buildFakeRunnerTarball(dir);
      const octokit = new Octokit({ auth: fake.token, baseUrl: fake.url });
      const { data: jit } = await octokit.rest.actions.generateRunnerJitconfigForOrg({
        org: "acme",
        name: container,
        runner_group_id: 1,
        labels: ["self-hosted", "linux", "x64"],
      });
      const { data: downloads } = await octokit.rest.actions.listRunnerApplicationsForOrg({ org: "acme" });
      const linux = downloads.find((d) => d.os === "linux" && d.architecture === "x64")!;

      await lxcOk("launch", IMAGE, container, "--ephemeral");
      await lxcOk(
        "file",
        "push",
        tarball.path,
        `${container}/home/runner/runner.tar.gz`,
        "--uid",
        RUNNER_UID,
        "--gid",
        RUNNER_UID,
      );
      const asRunner = [
        "exec",
        container,
        "--user",
        RUNNER_UID,
        "--group",
        RUNNER_UID,
        "--cwd",
        "/home/runner",
        "--env",
        "HOME=/home/runner",
      ];
      await lxcOk(...asRunner, "--", "tar", "xzf", "runner.tar.gz");

      // The container can fetch the archive itself from the download host (busybox wget follows the redirect).
      const fetched = await lxcOk(
        ...asRunner,
        "--",
        "sh",
        "-c",
        `timeout 30 wget -q -O dl.tar.gz '${linux.download_url}' && sha256sum dl.tar.gz`,
      );
      assert.equal(fetched.split(" ")[0], linux.sha256_checksum);
      assert.equal(fetched.split(" ")[0], tarball.sha256);

      const asRoot = await lxc(
        "exec",
        container,
        "--cwd",
        "/home/runner",
        "--env",
        `ACTIONS_RUNNER_INPUT_JITCONFIG=${jit.encoded_jit_config}`,
        "--",
        "./run.sh",
      );
      assert.equal(asRoot.code, 1);
      assert.match(asRoot.stderr, /Must not run with sudo/);
      assert.equal(fake.brokerLog.length, 0);

      // The manager passes the JIT config in the environment (LXD's exec API), never in run.sh's argv.
      const run = new Deno.Command("timeout", {
        args: [
          "180",
          "lxc",
          ...asRunner,
          "--env",
          `ACTIONS_RUNNER_INPUT_JITCONFIG=${jit.encoded_jit_config}`,
          "--",
          "./run.sh",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const exited = run.output();
      const named = (f: FakeGithub) => f.runners().find((r) => r.name === container);
      await fake.waitFor((f) => named(f)?.status === "online", {
        timeoutMs: 60_000,
        what: "the runner to come online",
      });
      assert.equal(named(fake)?.busy, false);
      assert.equal(named(fake)?.version, linux.filename.match(/(\d+\.\d+\.\d+)/)![1]);

      const job = fake.assignJob(container, { seconds: 2 });
      await fake.waitFor((f) => named(f)?.busy === true, { timeoutMs: 30_000, what: "the runner to be busy" });
      await fake.waitFor((f) => named(f) === undefined, {
        timeoutMs: 30_000,
        what: "the ephemeral runner to be removed",
      });
      assert.deepEqual(fake.jobs().map((j) => [j.id, j.state, j.runner]), [[job.id, "done", container]]);

      const result = await exited;
      const output = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
      assert.equal(result.code, 0, output);
      assert.match(
        output,
        /Connected to GitHub[\s\S]*Running job: fake-job-\d+[\s\S]*completed with result: Succeeded/,
      );
      assert.ok(!output.includes(jit.encoded_jit_config), "run.sh printed the JIT config");
      const leftovers = await lxc(
        ...asRunner,
        "--",
        "sh",
        "-c",
        "ls -a /home/runner | grep -e '^\\.runner$' -e '^\\.credentials' -e '^\\.fake-runner$'",
      );
      assert.equal(leftovers.stdout, "", "run.sh left the runner's credentials behind");

      // As the manager does once the runner exits: power off; the ephemeral container deletes itself.
      await lxc("exec", container, "--", "poweroff");
      await fake.waitFor(async () => (await lxc("info", container)).code !== 0, {
        timeoutMs: 60_000,
        what: "the container to be gone",
      });
      assert.equal(fake.downloadSawAuthorization, false);
      assert.deepEqual(fake.violations, []);
    } finally {
      await lxc("delete", "--force", container);
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
});
