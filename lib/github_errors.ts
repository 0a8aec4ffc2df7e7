/**
 * Turning octokit's RequestError into a GithubError that tells the operator what to do: a bad token (401),
 * missing permissions (403) and a rate limit (403/429 with rate-limit headers) read differently.
 */
import { GithubError } from "./errors.ts";

interface RequestErrorLike {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | undefined>; data?: { message?: string } };
}

export function toGithubError(e: unknown, route: string): GithubError {
  if (e instanceof GithubError) return e;
  const err = (e ?? {}) as RequestErrorLike;
  const status = err.status ?? 0;
  const headers = err.response?.headers ?? {};
  const said = err.response?.data?.message ?? err.message ?? String(e);
  if (!err.response) {
    // octokit reports transport failures (refused, reset, our timeout) as status 500 without a response.
    return new GithubError(0, route, "network", `no answer from GitHub: ${err.message ?? String(e)}`);
  }
  if (status === 401) {
    return new GithubError(
      status,
      route,
      "bad-credentials",
      "the token was rejected (Bad credentials): check token, token-file or GITHUB_TOKEN",
    );
  }
  const rateLimited = status === 429 ||
    (status === 403 && (headers["x-ratelimit-remaining"] === "0" || /rate limit/i.test(said)));
  if (rateLimited) {
    const reset = Number(headers["x-ratelimit-reset"]);
    const when = headers["retry-after"]
      ? `retry after ${headers["retry-after"]} s`
      : Number.isFinite(reset) && reset > 0
      ? `the limit resets at ${new Date(reset * 1000).toISOString()}`
      : "wait before retrying";
    return new GithubError(status, route, "rate-limited", `rate limit exceeded (${said}); ${when}`);
  }
  if (status === 403) {
    return new GithubError(
      status,
      route,
      "forbidden",
      `the token lacks permission (${said}): self-hosted runners need "Administration: read and write" on a repository or "Self-hosted runners: read and write" on an organisation (classic tokens: repo or admin:org)`,
    );
  }
  if (status === 404) {
    return new GithubError(
      status,
      route,
      "not-found",
      `not found (${said}): check "path", and that the token can see it`,
    );
  }
  if (status === 409) return new GithubError(status, route, "conflict", said);
  if (status === 422) return new GithubError(status, route, "busy", said);
  return new GithubError(status, route, "server", said);
}
