/**
 * The configuration: parsed and validated once, at the edge, into a frozen Config. Nothing else reads the
 * environment or the config file. `parseConfig` is pure; `loadConfig` (lib/config_load.ts) does the I/O.
 */
import { ConfigError } from "./errors.ts";
import { isLxdSize, parseDuration } from "./units.ts";
import { validatePrefix } from "./names.ts";
import { createHash } from "node:crypto";
import { broadcastOf, formatCidr, networkOf, parseCidr } from "./network_policy.ts";

export type Scope = { kind: "org"; org: string } | { kind: "repo"; owner: string; repo: string };

export interface Config {
  readonly path: string;
  readonly scope: Scope;
  /** Non-enumerable: JSON.stringify(config) and logging a config never show it. */
  readonly token: string;
  readonly containers: number;
  readonly virtualMachines: number;
  readonly checkIntervalMs: number;
  readonly labels: readonly string[];
  readonly group: string;
  readonly image: string;
  readonly vmCpu: number;
  readonly vmMemory: string;
  readonly vmDisk: string;
  /** 0: no limit. */
  readonly containerCpu: number;
  /** "": no limit. */
  readonly containerMemory: string;
  readonly maxRunners: number;
  /** Spawns and removals in flight at once; 0: 4 per core (lib/reconcile.ts defaultConcurrency). */
  readonly concurrency: number;
  readonly bootTimeoutMs: number;
  /** 0: no limit. */
  readonly maxRunnerAgeMs: number;
  /** Undefined: auto-detect at connect time. */
  readonly lxdSocket?: string;
  readonly githubApiUrl: string;
  readonly namePrefix: string;
  readonly cacheDir: string;
  /** `run` only: how often the runner list is watched between full passes (conditional: 304s are free). */
  readonly watchIntervalMs: number;
  /** `run` only: "host:port" of the HTTP listener (/metrics, /healthz, /readyz, /webhook); "" = off. */
  readonly listen: string;
  /** Non-enumerable, like token. Undefined: the /webhook endpoint is off. */
  readonly webhookSecret?: string;
  /** The last pass's summary, for other tools (the charm's update-status). */
  readonly stateDir: string;
  /**
   * Proxy variables of the service's environment (http_proxy, https_proxy, no_proxy, either case), passed on to
   * every runner instance as LXD `environment.*` keys: the runner application and jobs use the same proxy.
   */
  readonly runnerEnvironment: Readonly<Record<string, string>>;
  /** `image build`: the image the runner image is built from (a local alias, or `ubuntu:`/`images:` remote). */
  readonly baseImage: string;
  /** `image build`: a host script run as root in the builder after the recipe. */
  readonly imageScript?: string;
  /** Docker Hub registry mirror written into the image's /etc/docker/daemon.json (https only). */
  readonly dockerhubMirror?: string;
  /**
   * Runners on their own bridge (`network`) behind an LXD network ACL: not the host (but DHCP and DNS), not each
   * other, not the denylist. False: runners use the default profile's network, unfenced.
   */
  readonly networkPolicy: boolean;
  /** The runners' LXD bridge (and ACL) name; github-runner creates it. */
  readonly network: string;
  /** The bridge's "10.x.y.1/24" when github-runner creates it; undefined: picked from the name. */
  readonly networkSubnet?: string;
  /** CIDRs runners must not reach. */
  readonly denylist: readonly string[];
  /** IPv6 on the runners' bridge (off: no IPv6 address, no IPv6 destination allowed). */
  readonly ipv6: boolean;
}

type Kind =
  | "string"
  | "count"
  | "duration"
  | "labels"
  | "size"
  | "path"
  | "url"
  | "https-url"
  | "listen"
  | "bool"
  | "cidrs"
  | "network"
  | "gateway";
interface KeySpec {
  kind: Kind;
  default?: unknown;
  /** Mininum for counts. */
  min?: number;
}

/** Private, shared, link-local (cloud metadata at 169.254.169.254) and unique-local ranges. */
export const DEFAULT_DENYLIST: readonly string[] = Object.freeze([
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "fc00::/7",
  "fe80::/10",
]);

/** Every key the config file and the command line accept, with its default. The README documents each. */
export const CONFIG_KEYS: Readonly<Record<string, KeySpec>> = Object.freeze({
  "path": { kind: "string" },
  "token": { kind: "string" },
  "token-file": { kind: "path" },
  "containers": { kind: "count", default: 0, min: 0 },
  "virtual-machines": { kind: "count", default: 0, min: 0 },
  "check-interval": { kind: "duration", default: "5m" },
  "labels": { kind: "labels", default: [] },
  "group": { kind: "string", default: "default" },
  "image": { kind: "string", default: "github-runner" },
  "vm-cpu": { kind: "count", default: 2, min: 1 },
  "vm-memory": { kind: "size", default: "7GiB" },
  "vm-disk": { kind: "size", default: "10GiB" },
  "container-cpu": { kind: "count", default: 0, min: 0 },
  "container-memory": { kind: "size", default: "" },
  "max-runners": { kind: "count", default: 0, min: 0 },
  "concurrency": { kind: "count", default: 0, min: 0 },
  "boot-timeout": { kind: "duration", default: "10m" },
  "max-runner-age": { kind: "duration", default: "0s" },
  "lxd-socket": { kind: "path" },
  "github-api-url": { kind: "url", default: "https://api.github.com" },
  "name-prefix": { kind: "string" },
  "cache-dir": { kind: "path", default: "/var/cache/github-runner" },
  "watch-interval": { kind: "duration", default: "5s" },
  "listen": { kind: "listen", default: "127.0.0.1:9464" },
  "webhook-secret": { kind: "string" },
  "webhook-secret-file": { kind: "path" },
  "state-dir": { kind: "path", default: "/var/lib/github-runner" },
  "base-image": { kind: "string", default: "ubuntu:24.04" },
  "image-script": { kind: "path" },
  "dockerhub-mirror": { kind: "https-url" },
  "network-policy": { kind: "bool", default: true },
  "network": { kind: "network" },
  "network-subnet": { kind: "gateway" },
  "denylist": { kind: "cidrs", default: DEFAULT_DENYLIST },
  "ipv6": { kind: "bool", default: false },
});

/** Raw values by key, as read from TOML (typed) or flags (strings). */
export type RawConfig = Record<string, unknown>;

export interface ConfigSources {
  /** Parsed TOML file contents. */
  file?: RawConfig;
  /** `--key value` flags; they override the file. */
  flags?: RawConfig;
  /** GITHUB_TOKEN from the environment, used when neither token nor token-file is set. */
  envToken?: string;
  /** Contents of token-file, when the file named one (read by the caller). */
  tokenFileText?: string;
  /** Contents of webhook-secret-file, likewise. */
  webhookSecretFileText?: string;
  /** The process environment's proxy variables (see Config.runnerEnvironment). */
  proxyEnv?: Record<string, string | undefined>;
  /** The host name: the default name-prefix. */
  hostname: string;
}

const NAME = /^(?!\.\.?$)[A-Za-z0-9_.-]+$/;
const DAY_MS = 86_400_000;

/** Validates and merges the sources; throws ConfigError naming the first bad key. Never echoes a token. */
export function parseConfig(src: ConfigSources): Config {
  const raw: RawConfig = { ...(src.file ?? {}), ...(src.flags ?? {}) };
  for (const key of Object.keys(raw)) {
    if (!(key in CONFIG_KEYS)) {
      throw new ConfigError(key, `unknown key (known keys: ${Object.keys(CONFIG_KEYS).join(", ")})`);
    }
  }
  const get = (key: string) => normalise(key, raw[key] ?? CONFIG_KEYS[key].default);

  const path = get("path") as string | undefined;
  if (path === undefined || path === "") throw new ConfigError("path", "is required: an organisation or owner/repo");
  const scope = parseScope(path);

  const token = pickToken(raw, src);
  const namePrefix = (get("name-prefix") as string | undefined) ?? defaultPrefix(src.hostname);
  const prefixProblem = validatePrefix(namePrefix);
  if (prefixProblem) throw new ConfigError("name-prefix", `"${namePrefix}" ${prefixProblem}`);

  const config = {
    path,
    scope,
    containers: get("containers") as number,
    virtualMachines: get("virtual-machines") as number,
    checkIntervalMs: get("check-interval") as number,
    labels: get("labels") as string[],
    group: get("group") as string,
    image: get("image") as string,
    vmCpu: get("vm-cpu") as number,
    vmMemory: get("vm-memory") as string,
    vmDisk: get("vm-disk") as string,
    containerCpu: get("container-cpu") as number,
    containerMemory: get("container-memory") as string,
    maxRunners: get("max-runners") as number,
    concurrency: get("concurrency") as number,
    bootTimeoutMs: get("boot-timeout") as number,
    maxRunnerAgeMs: get("max-runner-age") as number,
    lxdSocket: get("lxd-socket") as string | undefined,
    githubApiUrl: (get("github-api-url") as string).replace(/\/+$/, ""),
    namePrefix,
    cacheDir: get("cache-dir") as string,
    watchIntervalMs: get("watch-interval") as number,
    listen: get("listen") as string,
    stateDir: get("state-dir") as string,
    runnerEnvironment: proxyEnvironment(src.proxyEnv ?? {}),
    baseImage: get("base-image") as string,
    imageScript: get("image-script") as string | undefined,
    dockerhubMirror: get("dockerhub-mirror") as string | undefined,
    networkPolicy: get("network-policy") as boolean,
    network: (get("network") as string | undefined) ?? defaultNetwork(namePrefix),
    networkSubnet: get("network-subnet") as string | undefined,
    denylist: get("denylist") as string[],
    ipv6: get("ipv6") as boolean,
  };
  // Timers beyond a day are surely a typo, and past 24.8 days setTimeout would fire at once.
  for (
    const [key, ms] of [["watch-interval", config.watchIntervalMs], ["check-interval", config.checkIntervalMs], [
      "boot-timeout",
      config.bootTimeoutMs,
    ]] as const
  ) {
    if (ms < 1_000 || ms > DAY_MS) throw new ConfigError(key, "must be between 1s and 24h");
  }
  if (config.concurrency > 100) throw new ConfigError("concurrency", "must be at most 100 (0: 4 per core)");
  if (scope.kind === "repo" && config.group !== "default") {
    throw new ConfigError("group", `runner groups exist only for organisations, and path "${path}" is a repository`);
  }
  Object.defineProperty(config, "token", { value: token, enumerable: false });
  Object.defineProperty(config, "webhookSecret", { value: pickWebhookSecret(raw, src), enumerable: false });
  return Object.freeze(config) as unknown as Config;
}

function parseScope(path: string): Scope {
  const parts = path.split("/");
  if (parts.length === 1 && NAME.test(parts[0])) return { kind: "org", org: parts[0] };
  if (parts.length === 2 && parts.every((p) => NAME.test(p))) return { kind: "repo", owner: parts[0], repo: parts[1] };
  throw new ConfigError("path", `"${path}" is neither an organisation nor owner/repo`);
}

function pickToken(raw: RawConfig, src: ConfigSources): string {
  if (raw["token"] !== undefined && raw["token-file"] !== undefined) {
    throw new ConfigError("token", "set token or token-file, not both");
  }
  let token: string | undefined;
  if (raw["token"] !== undefined) token = normalise("token", raw["token"]) as string;
  else if (raw["token-file"] !== undefined) token = src.tokenFileText?.replace(/\r?\n$/, "");
  else token = src.envToken;
  if (!token) {
    const where = raw["token-file"] !== undefined ? `the file "${raw["token-file"]}" is empty` : "no token";
    throw new ConfigError("token", `${where}: set token, token-file or the GITHUB_TOKEN environment variable`);
  }
  if (/\s/.test(token)) {
    throw new ConfigError(raw["token-file"] ? "token-file" : "token", "the token contains white space");
  }
  return token;
}

function pickWebhookSecret(raw: RawConfig, src: ConfigSources): string | undefined {
  if (raw["webhook-secret"] !== undefined && raw["webhook-secret-file"] !== undefined) {
    throw new ConfigError("webhook-secret", "set webhook-secret or webhook-secret-file, not both");
  }
  const secret = raw["webhook-secret"] !== undefined
    ? normalise("webhook-secret", raw["webhook-secret"]) as string
    : src.webhookSecretFileText?.replace(/\r?\n$/, "");
  if (secret === undefined) return undefined;
  const key = raw["webhook-secret"] !== undefined ? "webhook-secret" : "webhook-secret-file";
  if (secret.length < 16) throw new ConfigError(key, "the webhook secret must be at least 16 characters");
  return secret;
}

const PROXY_VARIABLES = ["http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

function proxyEnvironment(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROXY_VARIABLES) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    if (/[\n\r]/.test(value)) throw new ConfigError("", `The ${name} environment variable holds a line break`);
    out[name] = value;
  }
  return Object.freeze(out);
}

/**
 * The `listen` setting: "host:port" (a name or IPv4 address), "[ipv6]:port", or ":port" for every IPv4 interface
 * (0.0.0.0, as in Go's and Prometheus exporters' convention; write "[::]:port" for IPv6). Empty: no listener (null).
 */
export function parseListen(value: string): { hostname: string; port: number } | null {
  const v = value.trim();
  if (v === "") return null;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(v);
  if (!m) {
    throw new ConfigError(
      "listen",
      `must be "host:port" (e.g. "127.0.0.1:9464", ":9464", or "[::1]:9464" with brackets for IPv6), or "" for off, got ${
        JSON.stringify(value)
      }`,
    );
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new ConfigError("listen", `port ${port} is not between 1 and 65535`);
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/**
 * The runners' bridge by default: "ghr-" and the prefix, or a hash of a prefix too long for an interface name
 * (15 characters). One bridge per prefix: two services on one host never rewrite each other's ACL.
 */
export function defaultNetwork(prefix: string): string {
  const name = `ghr-${prefix}`;
  return name.length <= 15 ? name : `ghr-${createHash("sha256").update(prefix).digest("hex").slice(0, 11)}`;
}

/** The first label of the host name, lower-cased: a stable, per-host default prefix. */
export function defaultPrefix(hostname: string): string {
  return hostname.split(".")[0].toLowerCase();
}

function normalise(key: string, value: unknown): unknown {
  if (value === undefined) return undefined;
  const spec = CONFIG_KEYS[key];
  const shown = key === "token" || key === "webhook-secret" ? "(hidden)" : JSON.stringify(value);
  switch (spec.kind) {
    case "string":
    case "path": {
      if (typeof value !== "string") throw new ConfigError(key, `must be a string, got ${shown}`);
      return value;
    }
    case "url": {
      if (typeof value !== "string" || !/^https?:\/\/[^\s/]+/.test(value)) {
        throw new ConfigError(key, `must be an http(s) URL, got ${shown}`);
      }
      return value;
    }
    case "https-url": {
      // Written into a JSON file inside the image: no credentials, quotes or white space.
      if (typeof value !== "string" || !/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?(\/[A-Za-z0-9._~\/-]*)?$/.test(value)) {
        throw new ConfigError(
          key,
          `must be an https URL without credentials (e.g. "https://mirror.example"), got ${shown}`,
        );
      }
      return value;
    }
    case "count": {
      const n = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < (spec.min ?? 0)) {
        throw new ConfigError(key, `must be a whole number >= ${spec.min ?? 0}, got ${shown}`);
      }
      return n;
    }
    case "duration": {
      const ms = parseDuration(value);
      if (ms === undefined) {
        throw new ConfigError(key, `must be minutes or a duration like "30s" or "5m", got ${shown}`);
      }
      return ms;
    }
    case "size": {
      if (value === "" && spec.default === "") return ""; // an optional limit, unset
      if (typeof value !== "string" || !isLxdSize(value)) {
        throw new ConfigError(key, `must be a size like "7GiB" or "512MiB", got ${shown}`);
      }
      return value;
    }
    case "labels":
      return parseLabels(key, value);
    case "bool": {
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "false") return value === "true";
      throw new ConfigError(key, `must be true or false, got ${shown}`);
    }
    case "cidrs": {
      // "none": the empty list where a list cannot be written (a Juju option, where "" means the default).
      const items = value === "none" ? [] : typeof value === "string" ? value.split(",") : value;
      if (!Array.isArray(items) || items.some((c) => typeof c !== "string")) {
        throw new ConfigError(key, `must be a list of CIDRs like ["10.0.0.0/8"], got ${shown}`);
      }
      const cidrs = items.map((c: string) => c.trim()).filter((c) => c !== "");
      const bad = cidrs.find((c) => !parseCidr(c));
      if (bad !== undefined) {
        throw new ConfigError(
          key,
          `"${bad}" is not a CIDR (an address/length with the host bits zero, e.g. "10.0.0.0/8")`,
        );
      }
      return Object.freeze(cidrs);
    }
    case "gateway": {
      const m = typeof value === "string" ? /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(value) : null;
      const net = m && networkOf(m[1], Number(m[2]));
      const bits = Number(m?.[2]);
      const broadcast = net && formatCidr(broadcastOf(net));
      if (
        !m || !net || bits < 8 || bits > 30 || formatCidr(net) === `${m[1]}/${m[2]}` ||
        broadcast === `${m[1]}/32` || m[1].split(".").some((o) => /^0\d/.test(o))
      ) {
        throw new ConfigError(key, `must be the bridge's IPv4 address and length, like "10.42.0.1/24", got ${shown}`);
      }
      return value;
    }
    case "network": {
      // An interface name (15 characters at most) that is also a valid LXD network ACL name.
      if (typeof value !== "string" || !/^[A-Za-z](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?$/.test(value)) {
        throw new ConfigError(
          key,
          `must be an LXD network name: a letter, then letters, digits or "-", not ending in "-", 15 characters at most, got ${shown}`,
        );
      }
      return value;
    }
    case "listen": {
      if (typeof value !== "string") throw new ConfigError(key, `must be "host:port", or "" for off, got ${shown}`);
      parseListen(value);
      return value;
    }
  }
}

function parseLabels(key: string, value: unknown): string[] {
  const items = typeof value === "string" ? value.split(",") : value;
  if (!Array.isArray(items) || items.some((l) => typeof l !== "string")) {
    throw new ConfigError(key, `must be a list of strings or a comma-separated string, got ${JSON.stringify(value)}`);
  }
  const labels = items.map((l: string) => l.trim()).filter((l) => l !== "");
  for (const label of labels) {
    if (label.length > 256 || /[\s,]/.test(label)) throw new ConfigError(key, `label "${label}" is not valid`);
  }
  return [...new Set(labels)];
}
