import assert from "node:assert/strict";
import { parseConfig } from "../lib/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { parseDuration } from "../lib/units.ts";
import { isOwnedName, runnerName, validatePrefix } from "../lib/names.ts";

const base = { hostname: "runner-host.example.com", envToken: "ghp_envtoken" };

Deno.test("config: defaults from a minimal file", () => {
  const c = parseConfig({ ...base, file: { path: "acme", containers: 3 } });
  assert.deepEqual(c.scope, { kind: "org", org: "acme" });
  assert.equal(c.containers, 3);
  assert.equal(c.virtualMachines, 0);
  assert.equal(c.checkIntervalMs, 5 * 60_000);
  assert.equal(c.bootTimeoutMs, 10 * 60_000);
  assert.equal(c.image, "github-runner");
  assert.equal(c.namePrefix, "runner-host");
  assert.equal(c.githubApiUrl, "https://api.github.com");
  assert.equal(c.token, "ghp_envtoken");
  assert.ok(Object.isFrozen(c));
});

Deno.test("config: the token never shows in JSON or in errors", () => {
  const c = parseConfig({ ...base, file: { path: "o/r", token: "ghp_secret123" } });
  assert.equal(c.token, "ghp_secret123");
  assert.ok(!JSON.stringify(c).includes("ghp_secret123"));
  assert.throws(() => parseConfig({ ...base, file: { path: "o/r", token: 42 } }), (e: Error) => {
    assert.ok(e instanceof ConfigError && e.key === "token");
    return !e.message.includes("42");
  });
});

Deno.test("config: flags override the file; strings from flags are converted", () => {
  const c = parseConfig({
    ...base,
    file: { path: "acme", containers: 1 },
    flags: { containers: "4", labels: "gpu, big ,gpu", "check-interval": "30s" },
  });
  assert.equal(c.containers, 4);
  assert.deepEqual(c.labels, ["gpu", "big"]);
  assert.equal(c.checkIntervalMs, 30_000);
});

Deno.test("config: token-file contents win over GITHUB_TOKEN, trailing newline stripped", () => {
  const c = parseConfig({ ...base, file: { path: "acme", "token-file": "/t" }, tokenFileText: "ghp_fromfile\n" });
  assert.equal(c.token, "ghp_fromfile");
});

const bad: [string, Record<string, unknown>, string][] = [
  ["unknown key (typo)", { path: "acme", contianers: 2 }, "contianers"],
  ["missing path", { containers: 1 }, "path"],
  ["bad path", { path: "a/b/c" }, "path"],
  ["negative count", { path: "acme", containers: -1 }, "containers"],
  ["fractional count", { path: "acme", "max-runners": 1.5 }, "max-runners"],
  ["concurrency of a thousand", { path: "acme", concurrency: 1000 }, "concurrency"],
  ["negative concurrency", { path: "acme", concurrency: -1 }, "concurrency"],
  ["bad duration", { path: "acme", "check-interval": "soon" }, "check-interval"],
  ["zero boot timeout", { path: "acme", "boot-timeout": "0s" }, "boot-timeout"],
  ["a check interval of a month", { path: "acme", "check-interval": "30d" }, "check-interval"],
  ["a path of dots", { path: "../x" }, "path"],
  ["bad size", { path: "acme", "vm-memory": "7 gigs" }, "vm-memory"],
  ["bad label", { path: "acme", labels: ["a b"] }, "labels"],
  ["bad url", { path: "acme", "github-api-url": "api.github.com" }, "github-api-url"],
  ["prefix with capitals", { path: "acme", "name-prefix": "Acme" }, "name-prefix"],
  ["prefix too long", { path: "acme", "name-prefix": "a".repeat(55) }, "name-prefix"],
  ["group on a repository", { path: "o/r", group: "big" }, "group"],
  ["token and token-file", { path: "acme", token: "x", "token-file": "/t" }, "token"],
];
for (const [what, file, key] of bad) {
  Deno.test(`config: rejects ${what}, naming "${key}"`, () => {
    assert.throws(
      () => parseConfig({ ...base, file }),
      (e: Error) => e instanceof ConfigError && e.key === key && e.message.includes(key),
    );
  });
}

Deno.test("config: no token anywhere is a clear error", () => {
  assert.throws(() => parseConfig({ hostname: "h", file: { path: "acme" } }), /GITHUB_TOKEN/);
});

Deno.test("units: durations", () => {
  assert.equal(parseDuration(5), 300_000);
  assert.equal(parseDuration("5"), 300_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("5 m"), undefined);
  assert.equal(parseDuration("-5"), undefined);
});

Deno.test("names: strict ownership and valid generated names", () => {
  const name = runnerName("acme", () => new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  assert.equal(name, "acme-deadbeef");
  assert.ok(isOwnedName("acme", name));
  assert.ok(!isOwnedName("acme", "acme-1-deadbeef"));
  assert.ok(!isOwnedName("acme", "acme-DEADBEEF"));
  assert.ok(!isOwnedName("acm", name));
  const longest = runnerName("a".repeat(54), () => new Uint8Array(4));
  assert.equal(longest.length, 63);
  assert.equal(validatePrefix("a".repeat(54)), undefined);
  assert.match(validatePrefix("1abc") ?? "", /start with a lower-case letter/);
});

Deno.test("config: operations keys (listen, watch-interval, webhook secret, state-dir)", () => {
  const c = parseConfig({
    ...base,
    file: { path: "acme", "webhook-secret-file": "/s" },
    webhookSecretFileText: "0123456789abcdef-secret\n",
  });
  assert.equal(c.listen, "127.0.0.1:9464");
  assert.equal(c.watchIntervalMs, 5_000);
  assert.equal(c.stateDir, "/var/lib/github-runner");
  assert.equal(c.webhookSecret, "0123456789abcdef-secret");
  assert.ok(!JSON.stringify(c).includes("secret"), "the webhook secret is not enumerable");
  assert.equal(parseConfig({ ...base, file: { path: "acme", listen: "" } }).listen, "");
  assert.equal(parseConfig({ ...base, file: { path: "acme", listen: "[::1]:9000" } }).listen, "[::1]:9000");
  for (const listen of ["9464", "host:0", "host:70000", "a b:80"]) {
    assert.throws(() => parseConfig({ ...base, file: { path: "acme", listen } }), /"listen"/, listen);
  }
  assert.throws(() => parseConfig({ ...base, file: { path: "acme", "webhook-secret": "short" } }), /at least 16/);
});

Deno.test("config: the service's proxy variables become the runners' environment", () => {
  const c = parseConfig({
    ...base,
    file: { path: "acme" },
    proxyEnv: { HTTPS_PROXY: "http://squid:3128", no_proxy: "localhost", PATH: "/bin", GITHUB_TOKEN: "x" },
  });
  assert.deepEqual(c.runnerEnvironment, { no_proxy: "localhost", HTTPS_PROXY: "http://squid:3128" });
});

Deno.test("config: container limits are optional and validated", () => {
  const none = parseConfig({ ...base, file: { path: "acme" } });
  assert.deepEqual([none.containerCpu, none.containerMemory], [0, ""]);
  const set = parseConfig({ ...base, file: { path: "acme", "container-cpu": 2, "container-memory": "4GiB" } });
  assert.deepEqual([set.containerCpu, set.containerMemory], [2, "4GiB"]);
  assert.throws(
    () => parseConfig({ ...base, file: { path: "acme", "container-memory": "4 gigs" } }),
    /"container-memory"/,
  );
});

Deno.test("config: the network fence is on by default, on a bridge named after the prefix", () => {
  const c = parseConfig({ ...base, file: { path: "acme" } });
  assert.equal(c.networkPolicy, true);
  assert.equal(c.network, "ghr-runner-host");
  assert.equal(c.ipv6, false);
  assert.equal(c.networkSubnet, undefined);
  assert.ok(c.denylist.includes("10.0.0.0/8") && c.denylist.includes("169.254.0.0/16"));
  const long = parseConfig({ ...base, file: { path: "acme", "name-prefix": "a-rather-long-prefix" } });
  assert.match(long.network, /^ghr-[0-9a-f]{11}$/, "an interface name has at most 15 characters");
  const other = parseConfig({ ...base, file: { path: "acme", "name-prefix": "a-rather-long-prefiy" } });
  assert.notEqual(other.network, long.network, "two long prefixes get two bridges");
  const flags = parseConfig({
    ...base,
    file: { path: "acme" },
    flags: { "network-policy": "false", denylist: "192.0.2.0/24, 2001:db8::/32", ipv6: "true" },
  });
  assert.deepEqual([flags.networkPolicy, flags.ipv6, [...flags.denylist]], [false, true, [
    "192.0.2.0/24",
    "2001:db8::/32",
  ]]);
  assert.deepEqual([...parseConfig({ ...base, file: { path: "acme", denylist: [] } }).denylist], []);
  assert.deepEqual([...parseConfig({ ...base, file: { path: "acme", denylist: "none" } }).denylist], []);
});

Deno.test("config: a bad fence setting is one error naming the key", () => {
  const bad: [string, unknown, RegExp][] = [
    ["denylist", ["10.0.0.1/8"], /Invalid config "denylist": "10\.0\.0\.1\/8" is not a CIDR/],
    ["denylist", "10.0.0.0/33", /"denylist": "10\.0\.0\.0\/33" is not a CIDR/],
    ["network", "has space", /Invalid config "network": must be an LXD network name/],
    ["network", "sixteen-chars-xx", /"network": must be an LXD network name/],
    ["network", "ends-with-", /"network": must be an LXD network name/],
    ["network", "under_score", /"network": must be an LXD network name/],
    ["network-subnet", "10.42.0.255/24", /"network-subnet"/],
    ["network-subnet", "10.042.0.1/24", /"network-subnet"/],
    ["network-subnet", "10.42.0.0/24", /"network-subnet": must be the bridge's IPv4 address and length/],
    ["network-subnet", "10.42.0.1", /"network-subnet"/],
    ["network-policy", "yes", /Invalid config "network-policy": must be true or false, got "yes"/],
    ["ipv6", 1, /Invalid config "ipv6": must be true or false/],
  ];
  for (const [key, value, message] of bad) {
    assert.throws(() => parseConfig({ ...base, file: { path: "acme", [key]: value } }), (e: Error) => {
      assert.ok(e instanceof ConfigError, `${key}: ${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
  assert.equal(
    parseConfig({ ...base, file: { path: "acme", "network-subnet": "10.42.0.1/24" } }).networkSubnet,
    "10.42.0.1/24",
  );
});
