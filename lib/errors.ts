/**
 * One error type per boundary, each carrying the data a caller or a log needs.
 * Messages are sentence case, quote values, and say the action then the state. None ever holds a secret.
 */

/** Bad input from the config file, a flag or the environment. Exit code 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly key: string, problem: string) {
    super(key ? `Invalid config "${key}": ${problem}` : problem);
  }
}

/** Bad command-line usage (unknown command or flag). Exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What a GitHub failure means for the operator. */
export type GithubFailureKind =
  | "bad-credentials"
  | "forbidden"
  | "rate-limited"
  | "not-found"
  | "busy"
  | "conflict"
  | "server"
  | "network";

/** A failed GitHub API call. `route` is the templated route, never a URL with a token in it. */
export class GithubError extends Error {
  override name = "GithubError";
  constructor(
    readonly status: number,
    readonly route: string,
    readonly kind: GithubFailureKind,
    detail: string,
  ) {
    super(`GitHub ${route} failed${status ? ` with ${status}` : ""}: ${detail}`);
  }
}
