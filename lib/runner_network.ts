/**
 * The runners' own LXD bridge and its network ACL (the rules are lib/network_policy.ts; this file does the I/O).
 * `ensureRunnerNetwork` runs before a pass spawns: it creates what is missing and corrects what drifted, so a
 * changed denylist or a new host address reaches running runners too. It fails closed: a new ACL starts empty
 * (LXD's default action rejects everything), and a pass that cannot ensure the network spawns nothing.
 *
 * Contract (LXD REST API "Networks" and "Network ACLs"; measured on 5.0.2): a bridge's `security.acls` names ACLs
 * by name; the ACL must exist first. NIC-level ACLs need a newer LXD, so the ACL is the bridge's. `PATCH` of a
 * network merges `config`; `PUT` of an ACL replaces its rules.
 */
import { lookup } from "node:dns/promises";
import { networkInterfaces } from "node:os";
import { type Call, GONE, gone, LxdConnection, startCall } from "./lxd_operations.ts";
import { LxdError } from "./lxd_wire.ts";
import {
  type AclRule,
  type Cidr,
  type Endpoint,
  endpointDescription,
  networkOf,
  pickSubnet,
  policyRules,
} from "./network_policy.ts";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

/** Marks a network and an ACL as made by github-runner: only those it changes. */
export const MANAGED_KEY = "user.github-runner.managed";

export interface RunnerNetworkSpec {
  /** The bridge's name; the ACL has the same name. */
  name: string;
  ipv6: boolean;
  denylist: readonly string[];
  /** The bridge's "address/length" when it is created; undefined: picked (network_policy.ts pickSubnet). */
  subnet?: string;
  /** URLs the runners need (GitHub, proxies, mirror) with where they come from. */
  needs: readonly { url: string; why: string }[];
}

export interface EnsureOptions {
  signal?: AbortSignal;
  /** False: only correct a bridge that exists (a pass that creates no runner has no use for a new one). Default true. */
  createMissing?: boolean;
  /** Default: every address of every interface of this host. */
  hostAddresses?: () => string[];
  /** Default: the system resolver, 5 s at most per name. */
  resolve?: (host: string, signal?: AbortSignal) => Promise<string[]>;
}

export interface EnsureResult {
  /** What was created or changed, for the log; empty when all was in place. */
  changes: string[];
  /**
   * NICs of LXD's default profile other than eth0: a runner would get them too, unfenced, so spawns mask them
   * (device type "none").
   */
  maskNics: string[];
}

const enc = encodeURIComponent;
const TIMEOUT_MS = 30_000;

export async function ensureRunnerNetwork(
  socketPath: string,
  spec: RunnerNetworkSpec,
  opts: EnsureOptions = {},
): Promise<EnsureResult> {
  const lxd = new LxdConnection(socketPath);
  const call = (what: string) => startCall(what, TIMEOUT_MS, opts.signal);
  const changes: string[] = [];
  const aclPath = `/1.0/network-acls/${enc(spec.name)}`;
  const netPath = `/1.0/networks/${enc(spec.name)}`;

  // 0. Both read at once (a steady pass pays one round trip). Someone else's bridge of that name: refuse before
  // changing anything.
  const [net, acl, profile] = await Promise.all([
    get(lxd, call(`read network "${spec.name}"`), netPath),
    get(lxd, call(`read network ACL "${spec.name}"`), aclPath),
    get(lxd, call(`read profile "default"`), "/1.0/profiles/default"),
  ]);
  const maskNics = profile === GONE
    ? []
    : Object.entries(profile.devices ?? {}).filter(([n, d]) => d.type === "nic" && n !== "eth0").map(([n]) => n);
  if (net !== GONE && net.config?.[MANAGED_KEY] !== "true") throw notOurs(`network "${spec.name}"`);
  if (net === GONE && opts.createMissing === false) return { changes: [], maskNics };

  // 1. The ACL, empty at first: from the moment the bridge exists, its runners are fenced.
  const empty = { config: { [MANAGED_KEY]: "true" }, description: "github-runner: what runners may reach" };
  if (acl === GONE) {
    await lxd.sync(call(`create network ACL "${spec.name}"`), {
      method: "POST",
      path: "/1.0/network-acls",
      json: { name: spec.name, ...empty, egress: [], ingress: [] },
    });
    changes.push(`created network ACL "${spec.name}"`);
  } else if (acl.config?.[MANAGED_KEY] !== "true") {
    throw notOurs(`network ACL "${spec.name}"`);
  }

  // 2. The bridge.
  const wanted = bridgeConfig(spec);
  let subnet = net === GONE ? undefined : net.config?.["ipv4.address"];
  if (net === GONE) {
    subnet = spec.subnet ?? pickSubnet(spec.name, await usedSubnets(lxd, call), sha256);
    await lxd.sync(call(`create network "${spec.name}"`), {
      method: "POST",
      path: "/1.0/networks",
      json: {
        name: spec.name,
        type: "bridge",
        description: "github-runner: the runners' bridge",
        config: {
          "ipv4.address": subnet,
          "ipv4.nat": "true",
          ...wanted,
        },
      },
    });
    changes.push(`created network "${spec.name}"`);
  } else {
    const drift = Object.entries(wanted).filter(([k, v]) => !sameValue(k, net.config?.[k], v));
    if (drift.length) {
      await lxd.sync(call(`update network "${spec.name}"`), {
        method: "PATCH",
        path: netPath,
        json: { config: Object.fromEntries(drift) },
      });
      changes.push(`set ${drift.map(([k, v]) => `${k}=${v}`).join(", ")} on network "${spec.name}"`);
    }
  }

  // 3. The rules, from the host's addresses as they are now (the bridge's own address included).
  const current: LxdConfigured = acl === GONE ? { ...empty, egress: [], ingress: [] } : acl;
  const { endpoints, unresolved } = await resolveEndpoints(spec.needs, opts);
  const egress = policyRules({
    hostAddresses: (opts.hostAddresses ?? allHostAddresses)(),
    fencedNetworks: subnet ? [subnet] : [],
    denylist: spec.denylist,
    endpoints,
    ipv6: spec.ipv6,
  });
  // A name that did not resolve this time keeps the exact allows it had: a DNS hiccup must not cut running runners
  // off from their proxy or GitHub server.
  for (const why of unresolved) {
    for (const kept of (current.egress ?? []).filter((r) => r.description === endpointDescription(why))) {
      if (!egress.some((r) => r.destination === kept.destination && r.destination_port === kept.destination_port)) {
        egress.push(kept as AclRule);
      }
    }
  }
  if (!sameRules(current.egress, egress) || (current.ingress ?? []).length > 0) {
    await lxd.sync(call(`update network ACL "${spec.name}"`), {
      method: "PUT",
      path: aclPath,
      json: { description: current.description ?? "", config: current.config ?? {}, egress, ingress: [] },
    });
    changes.push(`wrote ${egress.length} rule(s) to network ACL "${spec.name}"`);
  }
  return { changes, maskNics };
}

/**
 * Removes the bridge and its ACL, if github-runner made them and nothing uses the bridge. For `stop` and tests.
 * "absent": there was no bridge of that name.
 */
export async function removeRunnerNetwork(
  socketPath: string,
  name: string,
  opts: { signal?: AbortSignal } = {},
): Promise<"removed" | "absent" | "in use" | "not github-runner's"> {
  const lxd = new LxdConnection(socketPath);
  const call = (what: string) => startCall(what, TIMEOUT_MS, opts.signal);
  const net = await get(lxd, call(`read network "${name}"`), `/1.0/networks/${enc(name)}`);
  if (net !== GONE) {
    if (net.config?.[MANAGED_KEY] !== "true") return "not github-runner's";
    if ((net.used_by ?? []).length > 0) return "in use";
    await lxd.sync(call(`delete network "${name}"`), { method: "DELETE", path: `/1.0/networks/${enc(name)}` })
      .catch(gone);
  }
  const acl = await get(lxd, call(`read network ACL "${name}"`), `/1.0/network-acls/${enc(name)}`);
  if (acl !== GONE && acl.config?.[MANAGED_KEY] === "true") {
    await lxd.sync(call(`delete network ACL "${name}"`), { method: "DELETE", path: `/1.0/network-acls/${enc(name)}` })
      .catch(gone);
  }
  return net === GONE ? "absent" : "removed";
}

/** The bridge settings the policy depends on (checked on every ensure). */
export function bridgeConfig(spec: Pick<RunnerNetworkSpec, "name" | "ipv6">): Record<string, string> {
  return {
    [MANAGED_KEY]: "true",
    "security.acls": spec.name,
    "security.acls.default.egress.action": "reject",
    "security.acls.default.ingress.action": "reject",
    "ipv6.address": spec.ipv6 ? "auto" : "none",
    ...(spec.ipv6 ? { "ipv6.nat": "true" } : {}),
  };
}

/** The IPv6 address of an existing bridge is a real prefix, not "auto": only none/not-none is compared. */
function sameValue(key: string, have: string | undefined, want: string): boolean {
  if (key === "ipv6.address") return want === "none" ? have === "none" : have !== undefined && have !== "none";
  return have === want;
}

interface LxdConfigured {
  config?: Record<string, string>;
  devices?: Record<string, Record<string, string>>;
  description?: string;
  egress?: Partial<AclRule>[];
  ingress?: Partial<AclRule>[];
  used_by?: string[];
}

async function get(lxd: LxdConnection, call: Call, path: string): Promise<LxdConfigured | typeof GONE> {
  const meta = await lxd.sync(call, { method: "GET", path }).catch(gone);
  return meta === GONE ? GONE : (meta ?? {}) as LxdConfigured;
}

function sameRules(have: Partial<AclRule>[] | undefined, want: AclRule[]): boolean {
  const norm = (r: Partial<AclRule>) =>
    JSON.stringify([r.action, r.destination ?? "", r.protocol ?? "", r.destination_port ?? "", r.description ?? ""]);
  return (have ?? []).length === want.length && want.every((r, i) => norm(r) === norm(have![i]));
}

function notOurs(what: string): LxdError {
  return new LxdError(
    `prepare the runners' network`,
    409,
    `${what} exists and github-runner did not create it: set "network" to another name, or network-policy = false`,
  );
}

/** The host's networks and every LXD network's subnet: what a new bridge must not overlap. */
async function usedSubnets(lxd: LxdConnection, call: (what: string) => Call): Promise<Cidr[]> {
  const used = Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).map((a) => networkOf(a.address, Number(a.cidr?.split("/")[1] ?? 32)))
  );
  used.push(...await routedSubnets());
  const networks = await lxd.sync(call("list networks"), { method: "GET", path: "/1.0/networks?recursion=1" });
  for (const n of Array.isArray(networks) ? networks as LxdConfigured[] : []) {
    const [address, bits] = (n.config?.["ipv4.address"] ?? "").split("/");
    if (bits) used.push(networkOf(address, Number(bits)));
  }
  return used.filter((c): c is Cidr => c !== undefined);
}

/** Subnets the host routes somewhere (a VPN, a static route): a new bridge there would take them over. */
async function routedSubnets(): Promise<(Cidr | undefined)[]> {
  const text = await readFile("/proc/net/route", "utf8").catch(() => "");
  // Destination and Mask are little-endian hex; the header line and the default route (mask 0) are skipped.
  const le = (hex: string) => [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(".");
  return text.split("\n").slice(1).map((line) => line.trim().split(/\s+/)).filter((f) =>
    f.length >= 8 && f[7] !== "00000000"
  )
    .map((f) => networkOf(le(f[1]), maskBits(le(f[7]))));
}

function maskBits(mask: string): number {
  return mask.split(".").reduce((n, o) => n + Number(o).toString(2).replaceAll("0", "").length, 0);
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/** "address/length" of every interface: the address and, for IPv4, its network's broadcast are fenced. */
function allHostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.cidr ?? a.address));
}

/**
 * Each URL's host, resolved (all at once), with its port, addresses sorted so that round-robin DNS does not rewrite
 * the ACL. `unresolved` names the needs whose lookup failed.
 */
async function resolveEndpoints(
  needs: RunnerNetworkSpec["needs"],
  opts: EnsureOptions,
): Promise<{ endpoints: Endpoint[]; unresolved: string[] }> {
  const resolve = opts.resolve ?? systemResolve;
  const unresolved: string[] = [];
  const found = await Promise.all(needs.map(async (need) => {
    let url: URL;
    try {
      url = new URL(need.url);
    } catch {
      return [];
    }
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const addresses = /^[\d.]+$|:/.test(host) ? [host] : await resolve(host, opts.signal).catch(() => {
      unresolved.push(need.why);
      return [];
    });
    return [...addresses].sort().map((address) => ({ address, port, why: need.why }));
  }));
  return { endpoints: found.flat(), unresolved };
}

async function systemResolve(host: string, signal?: AbortSignal): Promise<string[]> {
  const timeout = AbortSignal.timeout(5_000);
  const stop = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const stopped = new Promise<never>((_, reject) => {
    stop.addEventListener("abort", () => reject(stop.reason), { once: true });
  });
  const found = await Promise.race([lookup(host, { all: true }), stopped]);
  return found.map((a) => a.address);
}
