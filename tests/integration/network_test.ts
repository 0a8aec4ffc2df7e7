/**
 * The runners' fence, proven with real traffic on the real LXD: from inside a runner, a server on the host, a
 * server in another runner and a server in a denylisted network are unreachable, while the fake GitHub on the host
 * (an endpoint the runners need) is reachable and DHCP and DNS work. Every "unreachable" has a control: the same
 * server answers from a vantage point the policy does not fence, so a dead server cannot pass for a fence.
 */
import assert from "node:assert/strict";
import { bridgeAddress, idleRunners, openBed, summary } from "./harness.ts";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { MANAGED_KEY } from "../../lib/runner_network.ts";
import { GONE, gone, LxdConnection, startCall } from "../../lib/lxd_operations.ts";

const WAIT = { timeoutMs: 60_000 };

/** "reached" when a TCP connection was made, "fenced" when it was refused or timed out; anything else throws. */
async function probe(lxd: LxdClient, from: string, host: string, port: number): Promise<"reached" | "fenced"> {
  // busybox nc: exit 0 once connected (stdin is empty, so it closes at once); "can't connect" when refused.
  const r = await lxd.exec(from, ["sh", "-c", `nc -w 3 ${host} ${port} </dev/null 2>&1; echo "rc=$?"`]);
  const out = (r.stdout + r.stderr).trim();
  if (/(^|\n)rc=0$/.test(out)) return "reached";
  if (/can't connect|refused|timed out|unreachable/i.test(out) && /rc=1$/.test(out)) return "fenced";
  throw new Error(`nc from ${from} to ${host}:${port} said something unexpected: ${out}`);
}

async function ipv4Of(lxd: LxdClient, name: string): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const r = await lxd.exec(name, ["sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"]);
    const ip = r.stdout.trim();
    if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return ip;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`${name} got no IPv4 address from DHCP`);
}

async function serveHttp(lxd: LxdClient, name: string): Promise<void> {
  const r = await lxd.exec(name, [
    "sh",
    "-c",
    "mkdir -p /tmp/www && echo hello > /tmp/www/index.html && busybox httpd -p 8080 -h /tmp/www",
  ]);
  assert.equal(r.exitCode, 0, `httpd in ${name}: ${r.stderr}`);
}

Deno.test({
  name: "network policy: runners reach GitHub, DHCP and DNS, and nothing of the host, each other or the denylist",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const bed = await openBed({ containers: 2, "network-policy": true });
  const lxd = new LxdClient({ socketPath: detectLxdSocket()! });
  const hostServer = Deno.serve({ hostname: "0.0.0.0", port: 0, onListen() {} }, () => new Response("host"));
  const hostPort = hostServer.addr.port;
  const neighbour = bed.newName("other");
  try {
    // A server outside the runners' network, on the default bridge (10.200.77.0/24: inside the default denylist).
    await bed.createInstance({ name: neighbour, start: true, ephemeral: true });
    const neighbourIp = await ipv4Of(lxd, neighbour);
    await serveHttp(lxd, neighbour);

    let a = "", b = "", gateway = "", ipB = "";
    await t.step("the runners come up on their own bridge, through the fence to GitHub", async () => {
      const report = await bed.pass();
      assert.deepEqual(summary(report), ["create container: done", "create container: done"], report.problems.join());
      await bed.fake.waitFor(() => idleRunners(bed).length === 2, { ...WAIT, what: "2 idle runners" });
      [a, b] = idleRunners(bed).sort();
      const network = (await lxd.listInstances()).find((i) => i.name === a);
      assert.ok(network, "runner instance listed");
      const bridge = await readNetwork(bed.config.network);
      assert.equal(bridge.config[MANAGED_KEY], "true");
      assert.equal(bridge.config["security.acls"], bed.config.network);
      assert.equal(bridge.config["ipv6.address"], "none", "IPv6 is off unless enabled");
      gateway = bridge.config["ipv4.address"].split("/")[0];
      assert.ok(gateway !== bridgeAddress(), "the runners' bridge is not the default one");
      assert.ok(bridge.used_by.some((u: string) => u.endsWith(`/${a}`)), "runner a is on the runners' bridge");
    });

    await t.step("DHCP and DNS work; IPv6 has no global address", async () => {
      const ipA = await ipv4Of(lxd, a);
      assert.ok(ipA.startsWith(gateway.split(".").slice(0, 3).join(".") + "."), `${ipA} is on ${gateway}'s subnet`);
      const dns = await lxd.exec(a, ["sh", "-c", `nslookup ${b} ${gateway}`]);
      assert.match(dns.stdout, new RegExp(`Address:? .*${(await ipv4Of(lxd, b)).replaceAll(".", "\\.")}`));
      const v6 = await lxd.exec(a, ["sh", "-c", "ip -6 addr show scope global"]);
      assert.equal(v6.stdout.trim(), "");
    });

    await t.step(
      "the fake GitHub on the host is reachable: the fence lets the runners' endpoints through",
      async () => {
        const url = new URL(bed.fake.url);
        assert.equal(await probe(lxd, a, url.hostname, Number(url.port)), "reached");
      },
    );

    await t.step("a server on the host is unreachable, at every host address", async () => {
      assert.equal(await (await fetch(`http://${gateway}:${hostPort}/`)).text(), "host", "control: it serves");
      assert.equal(await probe(lxd, a, gateway, hostPort), "fenced");
      assert.equal(await probe(lxd, a, bridgeAddress(), hostPort), "fenced");
    });

    await t.step("another runner is unreachable (port isolation)", async () => {
      await serveHttp(lxd, b);
      ipB = await ipv4Of(lxd, b);
      assert.equal(await probe(lxd, b, ipB, 8080), "reached", "control: b serves");
      assert.equal(await probe(lxd, a, ipB, 8080), "fenced");
    });

    await t.step("a denylisted network is unreachable; emptying the denylist opens it on the next pass", async () => {
      assert.equal(await probe(lxd, neighbour, neighbourIp, 8080), "reached", "control: the neighbour serves");
      assert.equal(await probe(lxd, a, neighbourIp, 8080), "fenced");
      bed.reconfigure({ containers: 2, "network-policy": true, denylist: [] });
      const report = await bed.pass();
      assert.equal(report.ok, true, report.problems.join());
      assert.equal(await probe(lxd, a, neighbourIp, 8080), "reached", "the ACL changed under the running runner");
      assert.equal(await probe(lxd, a, gateway, hostPort), "fenced", "the host stays fenced without a denylist");
      // With br_netfilter loaded (docker loads it) the ACL also sees traffic inside the bridge, and the runners'
      // subnet is in the default denylist: only without a denylist does this show that port isolation holds alone.
      assert.equal(await probe(lxd, a, ipB, 8080), "fenced", "runners stay apart without a denylist");
    });

    await t.step(
      "a network github-runner did not make is refused, left as it was, and nothing is spawned",
      async () => {
        const before = await readNetwork("lxdbr0");
        bed.reconfigure({ containers: 3, "network-policy": true, network: "lxdbr0" });
        const report = await bed.pass();
        assert.deepEqual(summary(report), []);
        assert.equal(report.ok, false);
        assert.match(report.problems.join("\n"), /network ACL "lxdbr0"|network "lxdbr0" exists and github-runner/);
        assert.deepEqual((await readNetwork("lxdbr0")).config, before.config);
        assert.equal(await readAcl("lxdbr0").catch(gone), GONE, "no ACL was made for it");
        bed.reconfigure({ containers: 2, "network-policy": true });
      },
    );
  } finally {
    await hostServer.shutdown();
    await bed.close();
  }
  assert.equal(await readNetwork(bed.config.network).catch(gone), GONE, "close() removed the runners' bridge");
});

// deno-lint-ignore no-explicit-any
async function readNetwork(name: string): Promise<any> {
  const lxd = new LxdConnection(detectLxdSocket()!);
  return await lxd.sync(startCall(`read network "${name}"`, 10_000), { method: "GET", path: `/1.0/networks/${name}` });
}

async function readAcl(name: string): Promise<unknown> {
  const lxd = new LxdConnection(detectLxdSocket()!);
  return await lxd.sync(startCall(`read network ACL "${name}"`, 10_000), {
    method: "GET",
    path: `/1.0/network-acls/${name}`,
  });
}
