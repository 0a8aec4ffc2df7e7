/**
 * The charm's pure parts and thin wrappers, without processes: options -> config, hook-tool arguments, the
 * systemd unit and its systemctl calls, the dispatch path and unit name, LXD host preparation on a fake socket.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../lib/errors.ts";
import { charmContext, parseDispatchPath } from "../../lib/charm/context.ts";
import { HookTools } from "../../lib/charm/hook_tools.ts";
import { offsetPort, resolveConfig, withTargets } from "../../lib/charm/options.ts";
import { Service, unitFileText } from "../../lib/charm/systemd.ts";
import { ensureLxd } from "../../lib/charm/lxd_host.ts";
import { FakeLxd } from "./fake_lxd.ts";

const ctx = charmContext(["hooks/install", "/res/github-runner"], { JUJU_UNIT_NAME: "github-runner/3" }, "/r");

Deno.test("context: unit name -> prefix, service and files; dispatch path -> event", () => {
  assert.equal(ctx.prefix, "github-runner-3");
  assert.equal(ctx.paths.service, "github-runner-github-runner-3");
  assert.equal(ctx.paths.configFile, "/r/etc/github-runner/github-runner-3/config.toml");
  assert.deepEqual(parseDispatchPath("actions/flush-runners"), { kind: "action", name: "flush-runners" });
  assert.throws(() => parseDispatchPath("hooks/../x"), /Cannot tell the event/);
  assert.throws(
    () => charmContext(["hooks/install", "/b"], { JUJU_UNIT_NAME: `${"a".repeat(60)}/0` }),
    /Deploy under a shorter application name/,
  );
});

Deno.test("options: same validation as the CLI, token or secret, per-unit port", async () => {
  const noSecret = () => Promise.reject(new Error("ERROR secret not found"));
  const { config, file } = await resolveConfig(
    { path: "acme", token: "t0k", containers: 3, labels: "", listen: "127.0.0.1:9464" },
    ctx,
    noSecret,
  );
  assert.equal(config.containers, 3);
  assert.equal(config.namePrefix, "github-runner-3");
  assert.equal(config.listen, "127.0.0.1:9467");
  assert.equal(file.token, "t0k");
  assert.equal(JSON.stringify(config).includes("t0k"), false);
  const fromSecret = await resolveConfig(
    { path: "acme", "token-secret-id": "secret:x" },
    ctx,
    () => Promise.resolve({ token: "s3cret" }),
  );
  assert.equal(fromSecret.config.token, "s3cret");
  // The model's proxy is in the config the hooks' own passes and image builds use (not only in the service's env).
  const proxied = await resolveConfig({ path: "acme", token: "t" }, {
    ...ctx,
    proxy: { http: "", https: "http://p:3128", noProxy: "10.0.0.0/8" },
  }, noSecret);
  assert.deepEqual(proxied.config.runnerEnvironment, {
    https_proxy: "http://p:3128",
    HTTPS_PROXY: "http://p:3128",
    no_proxy: "10.0.0.0/8",
    NO_PROXY: "10.0.0.0/8",
  });
  await assert.rejects(
    resolveConfig({ path: "acme", "token-secret-id": "secret:x" }, ctx, () => Promise.resolve({ other: "v" })),
    (e) => e instanceof ConfigError && e.key === "token-secret-id" && /has no "token" key/.test(e.message),
  );
  await assert.rejects(
    resolveConfig({ path: "acme", token: "t", containers: -2 }, ctx, noSecret),
    (e) => (e as ConfigError).key === "containers",
  );
  assert.throws(() => offsetPort("[::1]:65535", 1), /past 65535/);
  const zero = withTargets(config, 0, 0);
  assert.deepEqual([zero.containers, zero.virtualMachines, zero.token], [0, 0, "t0k"]);
});

Deno.test("hook tools: documented arguments, flattened results, invalid keys refused before the call", async () => {
  const calls: string[][] = [];
  const tools = new HookTools((tool, args) => {
    calls.push([tool, ...args]);
    return Promise.resolve(tool === "config-get" ? '{"containers":2}' : "");
  });
  assert.deepEqual(await tools.configGet(), { containers: 2 });
  await tools.statusSet("blocked", "-x\nbad");
  await tools.actionSet({ online: 2, delta: { containers: 1, "virtual-machines": 0 }, names: ["a", "b"] });
  await tools.log("WARNING", "hello");
  await assert.rejects(tools.actionSet({ Bad_Key: 1 }), /Invalid action result key/);
  await assert.rejects(tools.actionSet({ stdout: 1 }), /Invalid action result key/);
  assert.deepEqual(calls, [
    ["config-get", "--format=json"],
    ["status-set", "blocked", "x; bad"],
    ["action-set", "online=2", "delta.containers=1", "delta.virtual-machines=0", "names=a, b"],
    ["juju-log", "-l", "WARNING", "hello"],
  ]);
});

Deno.test("systemd: the unit runs the binary on the unit's config; daemon-reload only on change", async () => {
  const text = unitFileText({
    unitName: "github-runner/3",
    binary: "/var/lib/juju/x y/github-runner",
    paths: ctx.paths,
  });
  assert.match(
    text,
    /^ExecStart="\/var\/lib\/juju\/x y\/github-runner" run -c \/r\/etc\/github-runner\/github-runner-3\/config.toml$/m,
  );
  assert.match(text, /^EnvironmentFile=-\/r\/etc\/github-runner\/github-runner-3\/proxy.env$/m);
  const calls: string[] = [];
  const unitFile = join(mkdtempSync(join(tmpdir(), "systemd-")), "x.service");
  const service = new Service("x", unitFile, (args) => {
    calls.push(args.join(" "));
    return args[0] === "is-active"
      ? Promise.reject(Object.assign(new Error("3"), { stdout: "inactive\n" }))
      : Promise.resolve("");
  });
  assert.equal(await service.install(text), true);
  assert.equal(await service.install(text), false);
  assert.equal(readFileSync(unitFile, "utf8"), text);
  assert.equal(await service.state(), "inactive");
  await service.remove();
  assert.deepEqual(calls, [
    "daemon-reload",
    "enable x.service",
    "enable x.service",
    "is-active x.service",
    "disable --now x.service",
    "daemon-reload",
  ]);
});

Deno.test("lxd host: installs and initialises LXD when needed, owns only its proxy keys", async () => {
  const lxd = await FakeLxd.start();
  try {
    const commands: string[] = [];
    let socket: string | undefined;
    const deps = {
      run: (cmd: string, args: string[]) => {
        commands.push([cmd, ...args].join(" "));
        if (cmd === "snap") socket = lxd.socketPath;
        return Promise.resolve("");
      },
      detectSocket: () => socket,
      progress: () => Promise.resolve(),
    };
    lxd.state.pools = [];
    assert.equal(await ensureLxd(undefined, deps), lxd.socketPath);
    assert.deepEqual(commands, ["snap install lxd", "lxd waitready --timeout=600", "lxd init --auto"]);
    await assert.rejects(
      ensureLxd("/nowhere.socket", { ...deps, detectSocket: () => undefined }),
      /No LXD socket at "\/nowhere.socket"/,
    );
    delete lxd.state.profile.devices.root;
    await assert.rejects(ensureLxd(lxd.socketPath, deps), /has no root disk/);
    lxd.state.profile.devices.root = { type: "disk", path: "/", pool: "default" };
  } finally {
    await lxd.close();
  }
});
