/**
 * What Juju tells a hook or action through its environment, turned into one value at the edge: which event,
 * which unit (and so which runner name prefix and which files), and the model's proxy settings. Pure.
 */
import { join } from "node:path";
import { validatePrefix } from "../names.ts";

export type CharmEvent = { kind: "hook" | "action"; name: string };

export interface UnitPaths {
  /** systemd service name, without ".service". */
  service: string;
  unitFile: string;
  configDir: string;
  /** The service's TOML config, mode 0600: it holds the token. Also the charm's memory of the last good config. */
  configFile: string;
  /** Proxy variables for the service, mode 0600: a proxy URL may carry credentials. */
  envFile: string;
  cacheDir: string;
  stateDir: string;
  /** Present once `install` has prepared the host. */
  installedMarker: string;
}

export interface Proxy {
  http: string;
  https: string;
  noProxy: string;
}

export interface CharmContext {
  event: CharmEvent;
  unitName: string;
  appName: string;
  /** `github-runner/0` -> 0: offsets the metrics port so co-located units never collide. */
  unitNumber: number;
  /** `github-runner/0` -> `github-runner-0`: every GitHub and LXD listing is filtered by it. */
  prefix: string;
  /** The attached binary (resource-get's answer, passed on by dispatch): what the service runs. */
  binary: string;
  paths: UnitPaths;
  proxy: Proxy;
  /** The environment for child processes (hook tools, systemctl, lxc). */
  env: Record<string, string | undefined>;
}

export class CharmContextError extends Error {
  override name = "CharmContextError";
}

/** JUJU_DISPATCH_PATH is "hooks/<hook>" or "actions/<action>" (what dispatch was invoked for). */
export function parseDispatchPath(path: string | undefined): CharmEvent {
  const m = /^(hooks|actions)\/([a-z0-9][a-z0-9-]*)$/.exec(path ?? "");
  if (!m) throw new CharmContextError(`Cannot tell the event from JUJU_DISPATCH_PATH "${path ?? ""}"`);
  return { kind: m[1] === "hooks" ? "hook" : "action", name: m[2] };
}

/**
 * `root` stands in for "/" (tests put the unit's files in a temporary folder; production passes "/").
 */
export function charmContext(
  argv: string[],
  env: Record<string, string | undefined>,
  root = "/",
): CharmContext {
  const [dispatchPath, binary] = argv;
  const event = parseDispatchPath(dispatchPath ?? env.JUJU_DISPATCH_PATH);
  const unitName = env.JUJU_UNIT_NAME ?? "";
  const m = /^([a-z][a-z0-9-]*)\/(\d+)$/.exec(unitName);
  if (!m) throw new CharmContextError(`Cannot use JUJU_UNIT_NAME "${unitName}": expected <application>/<number>`);
  if (!binary) throw new CharmContextError("Missing the binary path: dispatch passes it after the dispatch path");
  const prefix = `${m[1]}-${m[2]}`;
  const problem = validatePrefix(prefix);
  if (problem) {
    throw new CharmContextError(
      `Cannot name this unit's runners "${prefix}" (from unit ${unitName}): it ${problem}. Deploy under a shorter application name`,
    );
  }
  const service = `github-runner-${prefix}`;
  const configDir = join(root, "etc/github-runner", prefix);
  return {
    event,
    unitName,
    appName: m[1],
    unitNumber: Number(m[2]),
    prefix,
    binary,
    paths: {
      service,
      unitFile: join(root, "etc/systemd/system", `${service}.service`),
      configDir,
      configFile: join(configDir, "config.toml"),
      envFile: join(configDir, "proxy.env"),
      cacheDir: join(root, "var/cache/github-runner", prefix),
      stateDir: join(root, "var/lib/github-runner", prefix),
      installedMarker: join(root, "var/lib/github-runner", prefix, "installed"),
    },
    proxy: {
      http: env.JUJU_CHARM_HTTP_PROXY ?? "",
      https: env.JUJU_CHARM_HTTPS_PROXY ?? "",
      noProxy: env.JUJU_CHARM_NO_PROXY ?? "",
    },
    env,
  };
}

/** The proxy as environment variables, both spellings: tools disagree on which one they read. */
export function proxyVariables(proxy: Proxy): Record<string, string> {
  const vars: Record<string, string> = {};
  const set = (name: string, value: string) => {
    if (value) vars[name] = vars[name.toUpperCase()] = value;
  };
  set("http_proxy", proxy.http);
  set("https_proxy", proxy.https);
  set("no_proxy", proxy.noProxy);
  return vars;
}
