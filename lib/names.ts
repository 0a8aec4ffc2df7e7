/**
 * Runner and instance names, and the ownership marks written on instances. Pure.
 *
 * A runner's GitHub name and its LXD instance name are the same: `<prefix>-<8 hex>`. The strict suffix makes
 * ownership unambiguous: prefix "acme" never claims "acme-1-0a1b2c3d", which belongs to prefix "acme-1".
 */

/** LXD instance names are host names: at most 63 characters of [a-z0-9-]. */
const MAX_NAME = 63;
const SUFFIX_HEX = 8;
export const MAX_PREFIX = MAX_NAME - 1 - SUFFIX_HEX;

/** `user.*` keys written on every instance this tool creates. */
export const KEY_PREFIX = "user.github-runner.prefix";
/** The GitHub server and path the instance's runner registered with: see scopeOf. */
export const KEY_SCOPE = "user.github-runner.scope";
/**
 * The GitHub runner id of the instance's registration. Written at creation: the runner registers (JIT) BEFORE its
 * instance is made, so an instance carrying this key whose registration is gone has finished its job (or was
 * deregistered), and is never mistaken for one still booting (lib/classify.ts). Not a secret.
 */
export const KEY_RUNNER_ID = "user.github-runner.runner-id";
/**
 * When a pass first saw the instance's registration gone (milliseconds since the epoch): the start of its grace to
 * power off by itself before it is deleted.
 */
export const KEY_FINISHED_AT = "user.github-runner.finished-at";

/** Where runners register: the API URL and the org or owner/repo. Instances of another scope drain. */
export function scopeOf(config: { githubApiUrl: string; path: string }): string {
  return `${config.githubApiUrl}/${config.path}`;
}

/** Why `prefix` cannot be used, or undefined when it can. */
export function validatePrefix(prefix: string): string | undefined {
  if (prefix.length === 0) return "is empty";
  if (prefix.length > MAX_PREFIX) {
    return `is ${prefix.length} characters; at most ${MAX_PREFIX} fit in a 63-character instance name`;
  }
  if (!/^[a-z][a-z0-9-]*$/.test(prefix)) {
    return "must start with a lower-case letter and hold only lower-case letters, digits and '-'";
  }
  if (prefix.endsWith("-") || prefix.includes("--")) return "must not end with '-' or contain '--'";
  return undefined;
}

/** A new runner name; `randomBytes` is injected so tests are deterministic. */
export function runnerName(prefix: string, randomBytes: (n: number) => Uint8Array): string {
  const hex = [...randomBytes(SUFFIX_HEX / 2)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${prefix}-${hex}`;
}

/** True when `name` was made by runnerName(prefix, ...). */
export function isOwnedName(prefix: string, name: string): boolean {
  return name.length === prefix.length + 1 + SUFFIX_HEX && name.startsWith(`${prefix}-`) &&
    /^[0-9a-f]+$/.test(name.slice(prefix.length + 1));
}

/** True when an instance is ours: an owned name AND our mark on it (never delete what we did not create). */
export function isOwnedInstance(prefix: string, inst: { name: string; userKeys: Record<string, string> }): boolean {
  return isOwnedName(prefix, inst.name) && inst.userKeys[KEY_PREFIX] === prefix;
}
