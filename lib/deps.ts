/** Building the real clients from a Config: the one place that wires GitHub, LXD, the clock and randomness. */
import type { Config } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { GithubClient, type ResponseInfo } from "./github.ts";
import { detectLxdSocket, LxdClient, LxdError } from "./lxd.ts";
import { logger } from "./log.ts";
import { hostCapacity } from "./lxd_resources.ts";
import { LxdImages } from "./lxd_images.ts";
import type { PassDeps } from "./reconcile.ts";
import { ensureRunnerNetwork, type RunnerNetworkSpec } from "./runner_network.ts";

export interface DepsHooks {
  /** Every GitHub HTTP exchange (metrics). */
  onGithubResponse?: (info: ResponseInfo) => void;
  /** Every failed LXD call (metrics). */
  onLxdError?: (error: LxdError) => void;
}

export function makeDeps(config: Config, hooks: DepsHooks = {}): PassDeps {
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
      onResponse: (r) => {
        githubLog.debug("{method} {route} -> {status}", { ...r });
        hooks.onGithubResponse?.(r);
      },
      onRateLimit: (r) => githubLog.warning("GitHub rate limit on {route}: asked to wait {retryAfterS} s", { ...r }),
    }),
    lxd: hooks.onLxdError
      ? reportingErrors(new LxdClient({ socketPath }), hooks.onLxdError)
      : new LxdClient({ socketPath }),
    clock: Date.now,
    randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
    capacity: (signal) => hostCapacity(socketPath, { signal }),
    // An alias can be moved to a rebuilt image; a fingerprint names one image for ever (nothing to rotate).
    currentImage: (signal) =>
      /^[0-9a-f]{12,64}$/.test(config.image)
        ? Promise.resolve(undefined)
        : new LxdImages({ socketPath }).aliasTarget(config.image, { signal }),
    log,
    network: config.networkPolicy
      ? (signal, opts) => ensureRunnerNetwork(socketPath, runnerNetworkSpec(config), { signal, ...opts })
      : undefined,
  };
}

/** The fence of config: what the runners' bridge and ACL must look like. */
export function runnerNetworkSpec(config: Config): RunnerNetworkSpec {
  const env = config.runnerEnvironment;
  const proxies = ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"]
    .filter((name) => env[name])
    .map((name) => ({ url: /^[a-z]+:\/\//i.test(env[name]) ? env[name] : `http://${env[name]}`, why: name }));
  return {
    name: config.network,
    subnet: config.networkSubnet,
    ipv6: config.ipv6,
    denylist: config.denylist,
    needs: [
      { url: config.githubApiUrl, why: "github-api-url" },
      ...proxies,
      ...(config.dockerhubMirror ? [{ url: config.dockerhubMirror, why: "dockerhub-mirror" }] : []),
    ],
  };
}

/** Where passes take their cross-process lock. */
export function lockPath(config: Config): string {
  return `${config.cacheDir}/reconcile.lock`;
}

/** The same client, with every LxdError its async methods throw reported first (then rethrown unchanged). */
function reportingErrors(client: LxdClient, report: (e: LxdError) => void): LxdClient {
  return new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        try {
          return await value.apply(target, args);
        } catch (e) {
          if (e instanceof LxdError) report(e);
          throw e;
        }
      };
    },
  });
}
