/**
 * charm/dispatch as Juju runs it, with stand-in hook tools that answer as Juju's documentation describes: the
 * resource checks, install and config-changed on a prepared host, invalid options, the token from a secret,
 * update-status from the state file, proxies, stop. LXD is a fake socket here (the real one is in
 * charm_lxd_test.ts); GitHub is the fake server.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { JujuUnit } from "./juju_unit.ts";
import { APP, bed, noSecretIn } from "./unit_bed.ts";

Deno.test("dispatch: no resource attached: Blocked with the command that fixes it; an action fails", async () => {
  const unit = new JujuUnit({ app: APP });
  try {
    const run = await unit.hook("install");
    assert.equal(run.code, 0);
    assert.deepEqual(unit.status(), {
      status: "blocked",
      message:
        `Missing resource github-runner-binary: juju attach-resource ${APP} github-runner-binary=./github-runner-linux-x64`,
    });
    const action = await unit.action("check-runners");
    assert.match(JujuUnit.failure(action) ?? "", /^Missing resource github-runner-binary/);
  } finally {
    unit.close();
  }
});

Deno.test("dispatch: a resource that does not run here is Blocked, not exec'd", async () => {
  const unit = new JujuUnit({ app: APP });
  try {
    const junk = join(unit.dir, "junk");
    writeFileSync(junk, "\x7fELF not really", { mode: 0o644 });
    unit.writeFixture("resources.json", { "github-runner-binary": junk });
    await unit.hook("config-changed");
    assert.equal(unit.status()?.status, "blocked");
    assert.match(unit.status()!.message, /^Resource github-runner-binary does not run on this x64 machine/);
    assert.equal(statSync(junk).mode & 0o111, 0o111, "dispatch makes the resource executable first");
  } finally {
    unit.close();
  }
});

Deno.test("dispatch: install on a prepared host writes the service and starts it, as Maintenance then Active", async () => {
  const b = await bed({ containers: 3 });
  try {
    const run = await b.unit.hook("install");
    assert.equal(run.code, 0, run.stderr);
    const statuses = run.calls.filter((c) => c.tool === "status-set").map((c) => `${c.args[0]}: ${c.args[1]}`);
    assert.deepEqual(statuses, [
      "maintenance: Checking LXD",
      "maintenance: Downloading the runner application",
      "maintenance: Restarting the service",
      "active: Service started: the first pass is under way",
    ]);
    const systemctl = run.calls.filter((c) => c.tool === "systemctl").map((c) => c.args.join(" "));
    const service = `github-runner-${APP}-0.service`;
    assert.deepEqual(systemctl, ["daemon-reload", `enable ${service}`, `enable ${service}`, `restart ${service}`]);
    const unitText = readFileSync(b.paths.unitFile, "utf8");
    assert.match(unitText, new RegExp(`^ExecStart=${b.unit.dir}/github-runner run -c ${b.paths.config}$`, "m"));
    assert.equal(statSync(b.paths.config).mode & 0o777, 0o600);
    assert.equal(statSync(join(b.paths.config, "..")).mode & 0o777, 0o700);
    const config = readFileSync(b.paths.config, "utf8");
    assert.match(config, /^name-prefix = "charmtestd-0"$/m);
    assert.match(config, /^containers = 3$/m);
    assert.ok(config.includes(b.fake.token), "the service's config holds the token");
    assert.ok(existsSync(join(b.unit.root, `var/cache/github-runner/${APP}-0`)), "runner application cached");
    assert.ok(b.fake.downloadRequests.some((r) => r.method === "GET"), "the runner application was downloaded");
    assert.equal(b.fake.downloadSawAuthorization, false, "without the token: the download host is not the API");
    assert.deepEqual(run.calls.find((c) => c.tool === "application-version-set")?.args, ["0.1.0"]);
    noSecretIn(run.calls, b.fake.token);
  } finally {
    await b.close();
  }
});

Deno.test("dispatch: every invalid option is Blocked with its key and reason; the service keeps its config", async () => {
  const b = await bed({});
  try {
    b.markInstalled();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ containers: -1 }, /^Invalid config "containers": must be a whole number >= 0, got -1$/],
      [{ "check-interval": "soon" }, /^Invalid config "check-interval": must be minutes or a duration/],
      [{ path: "" }, /^Invalid config "path": is required/],
      [{ path: "a/b/c" }, /^Invalid config "path": "a\/b\/c" is neither an organisation nor owner\/repo$/],
      [{ token: "" }, /^Invalid config "token": is required: set token, or token-secret-id/],
      [
        { "token-secret-id": "secret:cv1" },
        /^Invalid config "token-secret-id": set token or token-secret-id, not both$/,
      ],
      [
        { token: "", "token-secret-id": "secret:gone" },
        /^Invalid config "token-secret-id": cannot read secret "secret:gone" \(.*not found.*\); grant it with "juju grant-secret secret:gone charmtestd"$/,
      ],
      [{ "vm-memory": "lots" }, /^Invalid config "vm-memory": must be a size like "7GiB"/],
      [{ listen: "nowhere" }, /^Invalid config "listen": must be "host:port"/],
      [
        { group: "builders", path: "acme/widgets" },
        /^Invalid config "group": runner groups exist only for organisations/,
      ],
    ];
    for (const [over, message] of cases) {
      b.unit.setConfig({ path: "acme", token: b.fake.token, "lxd-socket": b.lxd.socketPath, ...over });
      const run = await b.unit.hook("config-changed");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(b.unit.status()?.status, "blocked", JSON.stringify(over));
      assert.match(b.unit.status()!.message, message);
      assert.equal(run.calls.filter((c) => c.tool === "systemctl").length, 0, "no restart with a bad config");
      noSecretIn(run.calls, b.fake.token);
    }
    assert.ok(!existsSync(b.paths.config), "no config file written from a bad config");
  } finally {
    await b.close();
  }
});

Deno.test("dispatch: the token from a Juju secret never reaches a hook tool's arguments", async () => {
  const secret = "ghp_fakeGithubToken0000000000000000000";
  const b = await bed({ token: "", "token-secret-id": "secret:cv1" }, {
    secrets: { "secret:cv1": { token: secret, "webhook-secret": "0123456789abcdef-hook" } },
  });
  try {
    b.markInstalled();
    const run = await b.unit.hook("config-changed");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(b.unit.status()?.status, "active", JSON.stringify(b.unit.status()));
    assert.deepEqual(run.calls.find((c) => c.tool === "secret-get")?.args, [
      "secret:cv1",
      "--format=json",
      "--refresh",
    ]);
    const config = readFileSync(b.paths.config, "utf8");
    assert.match(config, /^token = "ghp_fakeGithubToken0+"$/m);
    assert.match(config, /^webhook-secret = "0123456789abcdef-hook"$/m);
    noSecretIn(run.calls, secret, "0123456789abcdef-hook");
    assert.ok(!run.stderr.includes(secret), "the token reached the log");
  } finally {
    await b.close();
  }
});

Deno.test("dispatch: update-status reads the state file and systemd, and never calls GitHub", async () => {
  const b = await bed({ containers: 2 });
  try {
    b.markInstalled();
    const state = (over: Record<string, unknown>) =>
      writeFileSync(
        join(b.paths.state, "state.json"),
        JSON.stringify({
          updatedAt: new Date().toISOString(),
          prefix: `${APP}-0`,
          ok: true,
          error: null,
          counts: { idle: 2, busy: 1, booting: 0 },
          target: { containers: 2, virtualMachines: 0, maxRunners: 0 },
          actions: { created: 0, removed: 0, keptBusy: 0, failed: 0 },
          failures: [],
          ...over,
        }),
      );
    const expect = async (status: string, message: string) => {
      const run = await b.unit.hook("update-status");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(b.unit.status(), { status, message });
    };
    await expect("active", "Waiting for the first pass");
    state({});
    await expect("active", "2 idle, 1 busy");
    state({ ok: false, actions: { created: 0, removed: 0, keptBusy: 0, failed: 1 }, failures: ["LXD said no"] });
    await expect("active", "2 idle, 1 busy; last pass: 1 failed: LXD said no");
    state({ ok: false, error: "GitHub GET /orgs/{org}/actions/runners failed with 401: Bad credentials" });
    await expect(
      "blocked",
      "Last pass failed: GitHub GET /orgs/{org}/actions/runners failed with 401: Bad credentials",
    );
    b.unit.writeFixture("services.json", { [`github-runner-${APP}-0.service`]: "failed" });
    await expect("blocked", `Service github-runner-${APP}-0 is failed: see journalctl -u github-runner-${APP}-0`);
    assert.deepEqual(b.fake.requests, []);
  } finally {
    await b.close();
  }
});

Deno.test("dispatch: the model's proxy reaches the binary, the service and the runners' LXD profile", async () => {
  const proxy = { JUJU_CHARM_HTTP_PROXY: "http://squid.internal:3128", JUJU_CHARM_NO_PROXY: "127.0.0.1,localhost" };
  const b = await bed({}, { env: proxy });
  try {
    b.markInstalled();
    const run = await b.unit.hook("config-changed");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(statSync(b.paths.env).mode & 0o777, 0o600);
    const env = readFileSync(b.paths.env, "utf8").trim().split("\n").sort();
    assert.deepEqual(env, [
      "HTTP_PROXY=http://squid.internal:3128",
      "NO_PROXY=127.0.0.1,localhost",
      "http_proxy=http://squid.internal:3128",
      "no_proxy=127.0.0.1,localhost",
    ]);
    assert.match(readFileSync(b.paths.unitFile, "utf8"), new RegExp(`^EnvironmentFile=-${b.paths.env}$`, "m"));
    // The service passes them on to each runner instance (lib/spawn.ts), never to LXD's shared default profile.
    assert.equal(b.lxd.state.profile.config["environment.http_proxy"], undefined);

    // dispatch itself exports them to the binary (its GitHub calls in actions go through the proxy).
    const probe = join(b.unit.dir, "probe");
    writeFileSync(probe, `#!/bin/sh\n[ "$1" = version ] && exit 0\nenv > "${b.unit.dir}/env.txt"\n`, { mode: 0o755 });
    b.unit.writeFixture("resources.json", { "github-runner-binary": probe });
    await b.unit.hook("update-status");
    const seen = readFileSync(join(b.unit.dir, "env.txt"), "utf8");
    assert.match(seen, /^HTTP_PROXY=http:\/\/squid.internal:3128$/m);
    assert.match(seen, /^no_proxy=127.0.0.1,localhost$/m);
  } finally {
    await b.close();
  }
});

Deno.test("dispatch: hooks the charm has no use for succeed and change nothing", async () => {
  const b = await bed({});
  try {
    const run = await b.unit.hook("leader-elected");
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.calls.map((c) => c.tool), ["resource-get"]);
  } finally {
    await b.close();
  }
});

Deno.test("dispatch: an action with a bad option fails with the key; stop removes the service and its files", async () => {
  const b = await bed({});
  try {
    b.unit.setConfig({ path: "", token: b.fake.token });
    const action = await b.unit.action("check-runners");
    assert.equal(JujuUnit.failure(action), 'Invalid config "path": is required: an organisation or owner/repo');

    b.unit.setConfig({
      path: "acme",
      token: b.fake.token,
      "github-api-url": b.fake.url,
      "lxd-socket": b.lxd.socketPath,
    });
    assert.equal((await b.unit.hook("install")).code, 0);
    assert.ok(existsSync(b.paths.unitFile) && existsSync(b.paths.config));
    const run = await b.unit.hook("stop");
    assert.equal(run.code, 0, run.stderr);
    const service = `github-runner-${APP}-0.service`;
    assert.deepEqual(run.calls.filter((c) => c.tool === "systemctl").map((c) => c.args.join(" ")), [
      `stop ${service}`,
      `disable --now ${service}`,
      "daemon-reload",
    ]);
    assert.ok(!existsSync(b.paths.unitFile) && !existsSync(b.paths.config), "service and token are gone");
    assert.equal((await b.unit.hook("remove")).code, 0, "remove after stop finds nothing left to do");
  } finally {
    await b.close();
  }
});
