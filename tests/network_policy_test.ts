import assert from "node:assert/strict";
import {
  complement,
  contains,
  formatCidr,
  networkOf,
  parseCidr,
  pickSubnet,
  policyRules,
} from "../lib/network_policy.ts";
import { createHash } from "node:crypto";
import { DEFAULT_DENYLIST } from "../lib/config.ts";

/** Whether an address is inside any CIDR of a comma-separated destination list. */
function allows(destination: string, address: string): boolean {
  const a = parseCidr(address)!;
  return destination.split(",").some((c) => contains(parseCidr(c)!, a));
}

Deno.test("parseCidr reads v4 and v6, with or without a length, and refuses host bits and nonsense", () => {
  assert.equal(formatCidr(parseCidr("10.0.0.0/8")!), "10.0.0.0/8");
  assert.equal(formatCidr(parseCidr("192.0.2.7")!), "192.0.2.7/32");
  assert.equal(formatCidr(parseCidr("fc00::/7")!), "fc00::/7");
  assert.equal(formatCidr(parseCidr("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1/128");
  assert.equal(formatCidr(parseCidr("::")!), "::/128");
  for (const bad of ["10.0.0.1/8", "10.0.0.0/33", "256.0.0.0/8", "10.0.0/8", "fc00::/129", "1::2::3", "x", ""]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

Deno.test("complement covers exactly what is not excluded", () => {
  const excluded = ["10.0.0.0/8", "192.168.1.1/32"].map((c) => parseCidr(c)!);
  const open = complement(excluded, 4);
  const dest = open.map(formatCidr).join(",");
  for (const inside of ["10.0.0.0", "10.255.255.255", "192.168.1.1"]) assert.equal(allows(dest, inside), false, inside);
  for (const outside of ["9.255.255.255", "11.0.0.0", "192.168.1.0", "192.168.1.2", "0.0.0.0", "255.255.255.255"]) {
    assert.equal(allows(dest, outside), true, outside);
  }
  // No two open ranges overlap, and together with the excluded ones they are the whole space.
  const size = (c: { bits: number }) => 2n ** BigInt(32 - c.bits);
  assert.equal(open.reduce((n, c) => n + size(c), 0n) + size(excluded[0]) + size(excluded[1]), 2n ** 32n);
  assert.deepEqual(complement([], 4).map(formatCidr), ["0.0.0.0/0"]);
  assert.deepEqual(complement([parseCidr("0.0.0.0/0")!], 4), []);
});

Deno.test("policy: the host, loopback and the denylist are fenced; the rest of IPv4 is open; IPv6 is shut", () => {
  const rules = policyRules({
    hostAddresses: ["127.0.0.1", "203.0.113.5", "10.94.1.1", "fe80::1%eth0", "2001:db8::5"],
    denylist: DEFAULT_DENYLIST,
    endpoints: [],
    ipv6: false,
  });
  assert.equal(rules.length, 1);
  assert.ok(rules.every((r) => r.action === "allow"), "allow rules only: LXD puts rejects before any allow");
  const dest = rules[0].destination!;
  for (const fenced of ["203.0.113.5", "10.94.1.1", "127.0.0.1", "172.20.0.1", "192.168.0.9", "169.254.169.254"]) {
    assert.equal(allows(dest, fenced), false, fenced);
  }
  for (const open of ["140.82.112.3", "203.0.113.4", "8.8.8.8", "172.32.0.1"]) {
    assert.equal(allows(dest, open), true, open);
  }
  assert.ok(!dest.includes(":"), "no IPv6 destination without ipv6");
});

Deno.test("policy with ipv6: public v6 is open, the host's v6 addresses and the v6 denylist are not", () => {
  const rules = policyRules({ hostAddresses: ["2001:db8::5"], denylist: ["fc00::/7"], endpoints: [], ipv6: true });
  const v6 = rules.find((r) => r.destination!.includes(":"))!.destination!;
  assert.equal(allows(v6, "2001:db8::5"), false);
  assert.equal(allows(v6, "fd00::1"), false);
  assert.equal(allows(v6, "::1"), false);
  assert.equal(allows(v6, "2001:db8::6"), true);
  assert.equal(allows(v6, "2606:50c0:8000::154"), true);
});

Deno.test("policy: needed endpoints inside the fence get an exact allow, endpoints outside none", () => {
  const rules = policyRules({
    hostAddresses: ["10.200.77.1"],
    denylist: ["10.0.0.0/8"],
    endpoints: [
      { address: "10.200.77.1", port: 8443, why: "github-api-url" },
      { address: "10.1.2.3", port: 3128, why: "https_proxy" },
      { address: "10.1.2.3", port: 3128, why: "http_proxy" },
      { address: "140.82.112.3", port: 443, why: "github-api-url" },
    ],
    ipv6: false,
  });
  const exact = rules.filter((r) => r.destination_port);
  assert.deepEqual(exact.map((r) => `${r.destination}:${r.protocol}/${r.destination_port} ${r.description}`), [
    "10.200.77.1/32:tcp/8443 github-api-url (inside the fence)",
    "10.1.2.3/32:tcp/3128 https_proxy (inside the fence)",
  ]);
});

Deno.test("policy: a denylist entry that is not a CIDR is an error, not an open door", () => {
  assert.throws(
    () => policyRules({ hostAddresses: [], denylist: ["10.0.0.0/33"], endpoints: [], ipv6: false }),
    /"10\.0\.0\.0\/33" is not a CIDR/,
  );
});

Deno.test("pickSubnet: a /24 in 10/8 from the name, stable, never overlapping what the host uses", () => {
  const hash = (t: string) => new Uint8Array(createHash("sha256").update(t).digest());
  const first = pickSubnet("ghr-a", [], hash);
  assert.match(first, /^10\.\d+\.\d+\.1\/24$/);
  assert.equal(pickSubnet("ghr-a", [], hash), first, "stable");
  const taken = networkOf(first.split("/")[0], 24)!;
  const second = pickSubnet("ghr-a", [taken], hash);
  assert.notEqual(second, first);
  assert.match(
    pickSubnet("ghr-a", [parseCidr("10.0.0.0/9")!], hash),
    /^10\.(12[89]|1[3-9]\d|2[0-5]\d)\./,
    "upper half only",
  );
  assert.throws(() => pickSubnet("ghr-a", [parseCidr("10.0.0.0/8")!], hash), /Cannot find a free \/24.*network-subnet/);
  assert.equal(formatCidr(networkOf("10.200.77.9", 24)!), "10.200.77.0/24");
});

Deno.test("policy: broadcast and multicast, which land on the host's own input, are fenced even without a denylist", () => {
  const [rule] = policyRules({
    hostAddresses: ["192.0.2.10/24", "fe80::1/64"],
    fencedNetworks: ["198.51.100.1/24"],
    denylist: [],
    endpoints: [],
    ipv6: false,
  });
  const dest = rule.destination!;
  for (const fenced of ["192.0.2.10", "192.0.2.255", "255.255.255.255", "224.0.0.251", "239.255.255.250"]) {
    assert.equal(allows(dest, fenced), false, fenced);
  }
  for (const fenced of ["198.51.100.1", "198.51.100.255", "198.51.100.7"]) assert.equal(allows(dest, fenced), false);
  for (const open of ["192.0.2.11", "192.0.2.254", "8.8.8.8", "223.255.255.255"]) {
    assert.equal(allows(dest, open), true);
  }
  const v6 = policyRules({ hostAddresses: [], denylist: [], endpoints: [], ipv6: true })[1].destination!;
  assert.equal(allows(v6, "ff02::fb"), false);
  assert.equal(allows(v6, "2606:4700::1"), true);
});
