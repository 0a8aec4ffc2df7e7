/**
 * Charm options -> our config keys, validated by the same parseConfig as the CLI, so `juju config` and the TOML
 * file accept and refuse exactly the same values, with the same messages (which name the key). The token comes
 * from the `token` option or from the Juju secret `token-secret-id` names. Pure, apart from the injected
 * secret reader.
 */
import { readFile } from "node:fs/promises";
import { parse as parseToml, stringify as toToml } from "smol-toml";
import { type Config, parseConfig, type RawConfig } from "../config.ts";
import { ConfigError } from "../errors.ts";
import { type CharmContext, proxyVariables } from "./context.ts";

/** Options that are config keys of the same name. An empty string means "not set" (Juju has no null). */
const SAME_NAME = [
  "path",
  "containers",
  "virtual-machines",
  "check-interval",
  "labels",
  "group",
  "image",
  "vm-cpu",
  "vm-memory",
  "vm-disk",
  "max-runners",
  "boot-timeout",
  "max-runner-age",
  "container-cpu",
  "container-memory",
  "github-api-url",
  "lxd-socket",
  "watch-interval",
  "listen",
  "network-policy",
  "network-subnet",
  "denylist",
  "ipv6",
  "base-image",
  "dockerhub-mirror",
];

/** Keys of the secret named by token-secret-id. */
export const SECRET_TOKEN_KEY = "token";
export const SECRET_WEBHOOK_KEY = "webhook-secret";

export interface ResolvedConfig {
  config: Config;
  /** What the service's config file holds (token included): written mode 0600. */
  file: RawConfig;
}

/**
 * Throws ConfigError naming the offending option. `readSecret` is `secret-get`; its failure is reported against
 * token-secret-id, with what to do about it.
 */
export async function resolveConfig(
  options: Record<string, unknown>,
  ctx: Pick<CharmContext, "prefix" | "appName" | "unitNumber" | "paths" | "proxy">,
  readSecret: (id: string) => Promise<Record<string, string>>,
): Promise<ResolvedConfig> {
  const file: RawConfig = {};
  for (const key of SAME_NAME) {
    const value = options[key];
    // "" is a value only for listen (off); elsewhere it means "use the default".
    if (value === undefined || value === null || (value === "" && key !== "listen")) continue;
    file[key] = value;
  }
  if (typeof file.listen === "string" && file.listen !== "") {
    file.listen = offsetPort(file.listen, ctx.unitNumber);
  }
  const { token, webhookSecret } = await pickSecrets(options, ctx.appName, readSecret);
  file.token = token;
  if (webhookSecret !== undefined) file["webhook-secret"] = webhookSecret;
  file["name-prefix"] = ctx.prefix;
  file["cache-dir"] = ctx.paths.cacheDir;
  file["state-dir"] = ctx.paths.stateDir;
  // The model's proxy, as the service gets it (its EnvironmentFile): runners and image builds made by hooks and
  // actions need it as much as the service's own do.
  const config = parseConfig({ file, hostname: ctx.prefix, proxyEnv: proxyVariables(ctx.proxy) });
  return { config, file };
}

async function pickSecrets(
  options: Record<string, unknown>,
  appName: string,
  readSecret: (id: string) => Promise<Record<string, string>>,
): Promise<{ token: string; webhookSecret?: string }> {
  const token = stringOption(options, "token");
  const secretId = stringOption(options, "token-secret-id");
  const webhookOption = stringOption(options, "webhook-secret");
  if (token && secretId) throw new ConfigError("token-secret-id", "set token or token-secret-id, not both");
  if (!secretId) {
    if (!token) {
      throw new ConfigError("token", 'is required: set token, or token-secret-id to a Juju secret with a "token" key');
    }
    return { token, webhookSecret: webhookOption || undefined };
  }
  let content: Record<string, string>;
  try {
    content = await readSecret(secretId);
  } catch (e) {
    const why = (e as Error).message.split("\n")[0];
    throw new ConfigError(
      "token-secret-id",
      `cannot read secret "${secretId}" (${why}); grant it with "juju grant-secret ${secretId} ${appName}"`,
    );
  }
  const fromSecret = content[SECRET_TOKEN_KEY];
  if (!fromSecret) throw new ConfigError("token-secret-id", `secret "${secretId}" has no "${SECRET_TOKEN_KEY}" key`);
  return { token: fromSecret, webhookSecret: webhookOption || content[SECRET_WEBHOOK_KEY] || undefined };
}

function stringOption(options: Record<string, unknown>, key: string): string {
  const v = options[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new ConfigError(key, `must be a string, got ${typeof v}`);
  return v.trim();
}

/** Unit N listens on the configured port + N: units of one application may share a machine (and its ports). */
export function offsetPort(listen: string, unitNumber: number): string {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) return listen; // parseConfig reports the malformed value, naming the key
  const port = Number(m[2]) + unitNumber;
  if (port > 65535) {
    throw new ConfigError("listen", `port ${m[2]} + unit number ${unitNumber} is past 65535: choose a lower port`);
  }
  return `${m[1]}:${port}`;
}

export function configFileText(file: RawConfig): string {
  return "# Written by the github-runner charm on every config-changed: edits are overwritten.\n" + toToml(file) +
    "\n";
}

/** The config the service ran with last (the charm's only memory of the old path and token), if any. */
export async function readPreviousConfig(path: string, prefix: string): Promise<Config | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    return parseConfig({ file: parseToml(text) as RawConfig, hostname: prefix });
  } catch {
    return undefined; // an unreadable old file cannot name old runners; the new config's passes still clean up
  }
}

/** The same config with other targets: Config is frozen and its secrets are not enumerable, so copy them over. */
export function withTargets(config: Config, containers: number, virtualMachines: number): Config {
  const copy = { ...config, containers, virtualMachines, maxRunners: 0 };
  Object.defineProperty(copy, "token", { value: config.token, enumerable: false });
  Object.defineProperty(copy, "webhookSecret", { value: config.webhookSecret, enumerable: false });
  return Object.freeze(copy) as Config;
}
