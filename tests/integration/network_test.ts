/**
 * The runners' fence, proven with real traffic on the real LXD: from inside a runner, a server on the host, a
 * server in another runner and a server in a denylisted network are unreachable, while the fake GitHub on the host
 * (an endpoint the runners need) is reachable and DHCP and DNS work. Every "unreachable" has a control: the same
 * server answers from a vantage point the policy does not fence, so a dead server cannot pass for a fence.
 */
import assert from "node:assert/strict";
import { bridgeAddress, idleRunners, openBed, readLxd, summary } from "./harness.ts";
import { detectLxdSocket, LxdClient } from "../../lib/lxd.ts";
import { MANAGED_KEY } from "../../lib/runner_network.ts";
import { GONE } from "../../lib/lxd_operations.ts";

const WAIT = { timeoutMs: 60_000 };

/** "reached" when a TCP connection was made, "fenced" when it was refused or timed out; anything else throws. */
async function probe(lxd: LxdClient, from: string, host: string, port: number): Promise<"reached" | "fenced"> {
  // busybox nc: exit 0 once connected (stdin is empty, so it closes at once); "can't connect" when refused.
  const r = await lxd.exec(from, ["sh", "-c", `nc -w 3 ${host} ${port} </dev/null 2>&1; echo "rc=$?"`]);
  const out = (r.stdout + r.stderr).trim();
  if (/(^|\n)rc=0$/.test(out)) return "reached";
  // The ACL's reject answers with an ICMP port-unreachable: "Connection refused". A missing route is no fence.
  if (/refused|timed out/i.test(out) && /rc=1$/.test(out)) return "fenced";
  throw new Error(`nc from ${from} to ${host}:${port} said something unexpected: ${out}`);
}

/** True when an ARP request from `from` to `ip` is answered. */
async function arping(lxd: LxdClient, from: string, ip: string): Promise<boolean> {
  const r = await lxd.exec(from, ["sh", "-c", `arping -c 2 -w 3 -I eth0 ${ip} >/dev/null 2>&1; echo "rc=$?"`]);
  const rc = /rc=(\d+)/.exec(r.stdout)?.[1];
  if (rc !== "0" && rc !== "1") throw new Error(`arping from ${from} to ${ip}: ${r.stdout}${r.stderr}`);
  return rc === "0";
}

async function waitFor<T>(f: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 60; i++) {
    const v = await f();
    if (v !== undefined) return v;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`Timed out: ${what}`);
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
      const bridge = await readLxd(`/1.0/networks/${bed.config.network}`);
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
      // The ACL fences the runners' subnet too (and sees bridged traffic when br_netfilter is loaded), so TCP alone
      // cannot show port isolation. ARP is below both: only port isolation keeps it from crossing.
      assert.equal(await arping(lxd, a, gateway), true, "control: ARP reaches the gateway");
      assert.equal(await arping(lxd, a, ipB), false, "not even ARP crosses from one runner to another");
    });

    await t.step("a denylisted network is unreachable; emptying the denylist opens it on the next pass", async () => {
      assert.equal(await probe(lxd, neighbour, neighbourIp, 8080), "reached", "control: the neighbour serves");
      assert.equal(await probe(lxd, a, neighbourIp, 8080), "fenced");
      bed.reconfigure({ containers: 2, "network-policy": true, denylist: [] });
      const report = await bed.pass();
      assert.equal(report.ok, true, report.problems.join());
      assert.equal(await probe(lxd, a, neighbourIp, 8080), "reached", "the ACL changed under the running runner");
      assert.equal(await probe(lxd, a, gateway, hostPort), "fenced", "the host stays fenced without a denylist");
      assert.equal(await probe(lxd, a, bridgeAddress(), hostPort), "fenced", "at its other addresses too");
      assert.equal(await probe(lxd, a, ipB, 8080), "fenced", "runners stay apart without a denylist");
    });

    await t.step("with ipv6 the runners get IPv6, and the host stays fenced over it", async () => {
      const host6 = Deno.serve({ hostname: "::", port: 0, onListen() {} }, () => new Response("host6"));
      try {
        bed.reconfigure({ containers: 2, "network-policy": true, denylist: [], ipv6: true });
        const report = await bed.pass();
        assert.equal(report.ok, true, report.problems.join());
        const gateway6 = (await readLxd(`/1.0/networks/${bed.config.network}`)).config["ipv6.address"].split("/")[0];
        assert.match(gateway6, /:/, "the bridge has an IPv6 address now");
        const ip6 = await waitFor(async () => {
          // Not while tentative (duplicate address detection): the address cannot send yet.
          const r = await lxd.exec(a, [
            "sh",
            "-c",
            "ip -6 -o addr show scope global | grep -v tentative | awk '{print $4}'",
          ]);
          return r.stdout.trim().split("/")[0] || undefined;
        }, `${a} gets a global IPv6 address`);
        assert.match(ip6, /:/);
        const control = await fetch(`http://[${gateway6}]:${host6.addr.port}/`).then((r) => r.text());
        assert.equal(control, "host6", "control: the host serves on its IPv6 bridge address");
        assert.equal(await probe(lxd, a, gateway6, host6.addr.port), "fenced");
        const acl = await readLxd(`/1.0/network-acls/${bed.config.network}`) as { egress: { destination?: string }[] };
        assert.ok(acl.egress.some((r) => r.destination?.includes("::")), "the ACL allows IPv6 destinations now");
      } finally {
        await host6.shutdown();
      }
      bed.reconfigure({ containers: 2, "network-policy": true, denylist: [] });
      assert.equal((await bed.pass()).ok, true);
      assert.equal(
        (await readLxd(`/1.0/networks/${bed.config.network}`)).config["ipv6.address"],
        "none",
        "and off again",
      );
    });

    await t.step(
      "a network github-runner did not make is refused, left as it was, and nothing is spawned",
      async () => {
        const before = await readLxd("/1.0/networks/lxdbr0");
        assert.notEqual(before, GONE, "lxdbr0 exists");
        bed.reconfigure({ containers: 3, "network-policy": true, network: "lxdbr0" });
        const report = await bed.pass();
        assert.deepEqual(summary(report), []);
        assert.equal(report.ok, false);
        assert.match(report.problems.join("\n"), /network ACL "lxdbr0"|network "lxdbr0" exists and github-runner/);
        assert.deepEqual((await readLxd("/1.0/networks/lxdbr0")).config, before.config);
        assert.equal(await readLxd("/1.0/network-acls/lxdbr0"), GONE, "no ACL was made for it");
        bed.reconfigure({ containers: 2, "network-policy": true });
      },
    );
  } finally {
    await hostServer.shutdown();
    await bed.close();
  }
  assert.equal(await readLxd(`/1.0/networks/${bed.config.network}`), GONE, "close() removed the runners' bridge");
});
