/**
 * The runners' network policy, as LXD network ACL rules. Pure: the addresses come in, the rules go out.
 *
 * Runners sit on their own LXD bridge. The bridge's ACL lets them reach everything except the host, the `denylist`
 * and loopback; LXD itself keeps DHCP and DNS to the host open. Port isolation on every runner's NIC keeps runners
 * from each other (bridge ACLs act only where traffic leaves the bridge, never between two ports of it).
 *
 * LXD (5.0, nftables) orders a bridge ACL's rules drop, reject, allow, whatever their order in the ACL: an allow can
 * never punch a hole into a reject. So the policy is made of allows only: the complement of what is fenced, plus an
 * exact allow for each endpoint the runners need (GitHub, the proxy, the Docker Hub mirror) that lies inside the
 * fence. Everything else meets the ACL's default action, reject.
 */

export interface Cidr {
  family: 4 | 6;
  /** The network address as a number (host bits zero). */
  base: bigint;
  bits: number;
}

/** An address and port the runners need, e.g. a proxy on the host. */
export interface Endpoint {
  address: string;
  port: number;
  /** Where it comes from, for the rule's description: "github-api-url", "https_proxy", ... */
  why: string;
}

/** One rule of an LXD network ACL (REST API: NetworkACLRule). */
export interface AclRule {
  action: "allow" | "reject" | "drop";
  destination?: string;
  protocol?: "tcp" | "udp";
  destination_port?: string;
  description: string;
  state: "enabled";
}

export interface PolicyInput {
  /**
   * Every address of the host (all interfaces), v4 and v6: a bare address, or "address/length" (as Node's
   * networkInterfaces gives it), which also fences that network's IPv4 broadcast address.
   */
  hostAddresses: readonly string[];
  /** Networks fenced whatever the denylist says: the runners' own bridge subnet (its gateway and broadcast). */
  fencedNetworks?: readonly string[];
  /** CIDRs the runners must not reach (config `denylist`). */
  denylist: readonly string[];
  /** Endpoints the runners need; the ones inside the fence get an exact allow. */
  endpoints: readonly Endpoint[];
  /** Config `ipv6`: without it no IPv6 destination is allowed (and the bridge has no IPv6 address). */
  ipv6: boolean;
}

/**
 * Never reachable, whatever the denylist says: loopback, "this network", multicast and the reserved block with the
 * limited broadcast (both land on the host's own input: mDNS, SSDP, LLMNR listeners), IPv6 multicast.
 */
const ALWAYS_FENCED = ["127.0.0.0/8", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "::1/128", "::/128", "ff00::/8"];

/** The egress rules of the runners' ACL; ingress stays empty (default: reject what the runners did not start). */
export function policyRules(input: PolicyInput): AclRule[] {
  const fenced = [
    ...ALWAYS_FENCED.map((c) => parseCidr(c)!),
    ...input.hostAddresses.flatMap(hostCidrs),
    ...(input.fencedNetworks ?? []).map((c) => networkOfCidr(c)).filter((c): c is Cidr => c !== undefined),
    ...input.denylist.map((c) => {
      const cidr = parseCidr(c);
      if (!cidr) throw new RangeError(`Cannot build the network policy: "${c}" is not a CIDR`);
      return cidr;
    }),
  ];
  const families: (4 | 6)[] = input.ipv6 ? [4, 6] : [4];
  const rules: AclRule[] = [];
  for (const family of families) {
    const open = complement(fenced.filter((c) => c.family === family), family);
    if (open.length === 0) continue;
    rules.push({
      action: "allow",
      destination: open.map(formatCidr).join(","),
      description: `IPv${family}: everything but the host, the denylist and loopback`,
      state: "enabled",
    });
  }
  const seen = new Set<string>();
  for (const e of input.endpoints) {
    const cidr = hostCidr(e.address);
    if (!cidr || !families.includes(cidr.family)) continue;
    if (!fenced.some((f) => contains(f, cidr))) continue; // already open
    const key = `${formatCidr(cidr)}:${e.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push({
      action: "allow",
      destination: formatCidr(cidr),
      protocol: "tcp",
      destination_port: String(e.port),
      description: endpointDescription(e.why),
      state: "enabled",
    });
  }
  return rules;
}

/**
 * A /24 in 10.0.0.0/8 for a new runners' bridge, as LXD's ipv4.address wants it ("10.x.y.1/24"): derived from the
 * bridge's name (stable across hosts), skipping subnets that overlap `used` (the host's networks). LXD's own "auto"
 * pings candidate gateways and gives up where every address answers, as on some sandboxed hosts.
 */
export function pickSubnet(name: string, used: readonly Cidr[], hash: (text: string) => Uint8Array): string {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const h = hash(`${name}/${attempt}`);
    const candidate: Cidr = { family: 4, base: (10n << 24n) | (BigInt(h[0]) << 16n) | (BigInt(h[1]) << 8n), bits: 24 };
    if (!used.some((u) => contains(u, candidate) || contains(candidate, u))) {
      return `${formatAddress(4, candidate.base + 1n)}/24`;
    }
  }
  throw new Error(`Cannot find a free /24 in 10.0.0.0/8 for network "${name}": set network-subnet`);
}

/** The network a host address with a netmask length belongs to, e.g. "10.200.77.1", 24 -> 10.200.77.0/24. */
export function networkOf(address: string, bits: number): Cidr | undefined {
  const a = parseAddress(address.replace(/%.*$/, ""));
  if (!a) return undefined;
  const width = a.family === 4 ? 32 : 128;
  const b = Math.min(Math.max(bits, 0), width);
  const mask = ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - b)) - 1n);
  return { family: a.family, base: a.value & mask, bits: b };
}

/** The description of an endpoint's exact allow; also how a later pass finds the rules of one endpoint. */
export function endpointDescription(why: string): string {
  return `${why} (inside the fence)`;
}

/** The smallest set of CIDRs covering every address of the family that no `excluded` CIDR covers. */
export function complement(excluded: readonly Cidr[], family: 4 | 6): Cidr[] {
  const width = family === 4 ? 32 : 128;
  const out: Cidr[] = [];
  const walk = (base: bigint, bits: number) => {
    const here: Cidr = { family, base, bits };
    const overlapping = excluded.filter((e) => contains(e, here) || contains(here, e));
    if (overlapping.length === 0) return void out.push(here);
    if (overlapping.some((e) => contains(e, here))) return;
    const half = 1n << BigInt(width - bits - 1);
    walk(base, bits + 1);
    walk(base + half, bits + 1);
  };
  walk(0n, 0);
  return out;
}

/** Whether `outer` covers every address of `inner` (same family). */
export function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.bits > inner.bits) return false;
  const shift = BigInt((outer.family === 4 ? 32 : 128) - outer.bits);
  return (outer.base >> shift) === (inner.base >> shift);
}

/** "10.0.0.0/8", "fc00::/7", or a bare address (a /32 or /128). Host bits must be zero. Undefined if invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return undefined;
  const address = parseAddress(m[1]);
  if (!address) return undefined;
  const width = address.family === 4 ? 32 : 128;
  const bits = m[2] === undefined ? width : Number(m[2]);
  if (bits > width) return undefined;
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  if ((address.value & hostMask) !== 0n) return undefined;
  return { family: address.family, base: address.value, bits };
}

export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.family, c.base)}/${c.bits}`;
}

/** A host address as a /32 or /128, and with a length also its network's IPv4 broadcast address. */
function hostCidrs(text: string): Cidr[] {
  const [address, bits] = text.split("/");
  const own = hostCidr(address);
  if (!own) return [];
  if (own.family !== 4 || bits === undefined) return [own];
  const net = networkOf(address, Number(bits));
  if (!net || net.bits >= 31) return [own];
  return [own, broadcastOf(net)];
}

/** An IPv4 network's broadcast address (its last), as a /32. */
export function broadcastOf(net: Cidr): Cidr {
  return { family: 4, base: net.base | ((1n << BigInt(32 - net.bits)) - 1n), bits: 32 };
}

/** "10.42.0.1/24" (an address with a length, as LXD's ipv4.address) -> 10.42.0.0/24. */
function networkOfCidr(text: string): Cidr | undefined {
  const [address, bits] = text.split("/");
  return bits === undefined ? undefined : networkOf(address, Number(bits));
}

/** One address as a /32 or /128; an IPv6 zone ("%eth0") is dropped. */
function hostCidr(address: string): Cidr | undefined {
  const parsed = parseAddress(address.replace(/%.*$/, ""));
  return parsed && { family: parsed.family, base: parsed.value, bits: parsed.family === 4 ? 32 : 128 };
}

function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const octets = text.split(".").map(Number);
    if (octets.some((o) => o > 255)) return undefined;
    return { family: 4, value: octets.reduce((v, o) => (v << 8n) | BigInt(o), 0n) };
  }
  if (!/^[0-9A-Fa-f:]+$/.test(text) || (text.match(/::/g) ?? []).length > 1) return undefined;
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const all = [...left, ...Array(tail === undefined ? 0 : missing).fill("0"), ...right];
  if (all.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g))) return undefined;
  return { family: 6, value: all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

function formatAddress(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}
