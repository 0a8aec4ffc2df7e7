/** The I/O half of configuration: reads the TOML file, token-file and environment, then parseConfig. */
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parse as parseToml } from "smol-toml";
import { type Config, parseConfig, type RawConfig } from "./config.ts";
import { ConfigError } from "./errors.ts";

export const DEFAULT_CONFIG_FILE = "/etc/github-runner/config.toml";

export function loadConfig(opts: { file?: string; flags: RawConfig; env: Record<string, string | undefined> }): Config {
  const path = opts.file ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  let file: RawConfig | undefined;
  if (path !== undefined) {
    const text = readSecretFile("config", path);
    try {
      file = parseToml(text) as RawConfig;
    } catch (e) {
      // Only smol-toml's first line: the following ones quote the offending source line, which may hold a token.
      const first = String((e as Error).message).split("\n")[0];
      const where = (e as { line?: number }).line ? ` (line ${(e as { line?: number }).line})` : "";
      throw new ConfigError("config", `"${path}" is not valid TOML${where}: ${first}`);
    }
  }
  const tokenFile = (opts.flags["token-file"] ?? file?.["token-file"]) as string | undefined;
  const tokenFileText = typeof tokenFile === "string" ? readSecretFile("token-file", tokenFile) : undefined;
  const secretFile = (opts.flags["webhook-secret-file"] ?? file?.["webhook-secret-file"]) as string | undefined;
  const webhookSecretFileText = typeof secretFile === "string"
    ? readSecretFile("webhook-secret-file", secretFile)
    : undefined;
  return parseConfig({
    file,
    flags: opts.flags,
    envToken: opts.env.GITHUB_TOKEN,
    tokenFileText,
    webhookSecretFileText,
    proxyEnv: opts.env,
    hostname: hostname(),
  });
}

/** Reads a file the config names; a failure is a ConfigError naming the key (never the contents). */
function readSecretFile(key: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    // A value without a "/" may be a secret pasted where its file's path belongs: do not echo it.
    const shown = path.includes("/") ? `"${path}"` : "the file it names";
    throw new ConfigError(key, `cannot read ${shown}: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
}
