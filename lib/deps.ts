/** Building the real clients from a Config: the one place that wires GitHub, LXD, the clock and randomness. */
import type { Config } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { GithubClient } from "./github.ts";
import { detectLxdSocket, LxdClient } from "./lxd.ts";
import { logger } from "./log.ts";
import type { PassDeps } from "./reconcile.ts";

export function makeDeps(config: Config): PassDeps {
  const log = logger("reconcile");
  const githubLog = logger("github");
  const socketPath = config.lxdSocket ?? detectLxdSocket();
  if (!socketPath) {
    throw new ConfigError(
      "lxd-socket",
      "no LXD socket found at /var/snap/lxd/common/lxd/unix.socket or /var/lib/lxd/unix.socket: is LXD installed and running?",
    );
  }
  return {
    github: new GithubClient({
      token: config.token,
      apiUrl: config.githubApiUrl,
      scope: config.scope,
      onResponse: (r) => githubLog.debug("{method} {route} -> {status}", { ...r }),
      onRateLimit: (r) => githubLog.warning("GitHub rate limit on {route}: asked to wait {retryAfterS} s", { ...r }),
    }),
    lxd: new LxdClient({ socketPath }),
    clock: Date.now,
    randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
    log,
  };
}

/** Where passes take their cross-process lock. */
export function lockPath(config: Config): string {
  return `${config.cacheDir}/reconcile.lock`;
}
