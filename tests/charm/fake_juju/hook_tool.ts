/**
 * A stand-in for Juju's hook tools (and systemctl), run as `hook_tool.ts <tool> [args...]` by small wrappers
 * named after each tool. It records every call as a JSON line in $FAKE_JUJU_DIR/calls.jsonl and answers as
 * Juju's documentation describes each tool (documentation.ubuntu.com/juju, reference/hook-command):
 *   config-get [--format json|smart|yaml] [-a|--all] [<key>]   set values plus non-nil defaults of config.yaml
 *   status-set [--application] <maintenance|blocked|waiting|active> [<message>]
 *   action-get [--format ...] [<key>[.<key>...]]               params plus the defaults of actions.yaml
 *   action-set <key>=<value> ...                               keys: lowercase alphanumeric and hyphens, dotted
 *   action-fail [<message>], action-log <message>, juju-log [-l LEVEL] [--debug] <message>
 *   resource-get <name>                                        the path, or an error when none is attached
 *   secret-get <ID> [key] [--format json|yaml] [--peek] [--refresh] [--label L]
 *   application-version-set <version>
 * Fixtures in $FAKE_JUJU_DIR: config.json (set values), params.json, resources.json, secrets.json, services.json.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";

const [tool, ...args] = process.argv.slice(2);
const dir = process.env.FAKE_JUJU_DIR!;
const charmDir = process.env.JUJU_CHARM_DIR ?? "";
appendFileSync(join(dir, "calls.jsonl"), JSON.stringify({ tool, args, action: process.env.JUJU_ACTION_NAME }) + "\n");

function fixture<T>(name: string, fallback: T): T {
  const path = join(dir, name);
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : fallback;
}

/** Juju's commands fail with "ERROR <message>" on stderr; usage errors exit 2, others 1. */
function fail(message: string, code = 1): never {
  process.stderr.write(`ERROR ${message}\n`);
  process.exit(code);
}

/** gnuflag-style parsing: flags before or after positionals, --flag=value or --flag value. */
function flags(spec: Record<string, "bool" | "value">): { opts: Record<string, string | true>; rest: string[] } {
  const opts: Record<string, string | true> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-") || a === "-") {
      rest.push(a);
      continue;
    }
    const [name, inline] = a.replace(/^--?/, "").split(/=(.*)/s, 2);
    const kind = spec[name];
    if (!kind) fail(`flag provided but not defined: ${a.split("=")[0]}`, 2);
    if (kind === "bool") opts[name] = true;
    else opts[name] = inline ?? args[++i] ?? fail(`flag needs an argument: ${a}`, 2);
  }
  return { opts, rest };
}

function output(value: unknown, format: string | true | undefined): void {
  if (format === "json") process.stdout.write(JSON.stringify(value) + "\n");
  else if (typeof value === "string" && format !== "yaml") process.stdout.write(value + "\n");
  else if (value !== null && value !== undefined) process.stdout.write(stringify(value));
}

function charmYaml(name: string): Record<string, any> {
  const path = join(charmDir, name);
  return existsSync(path) ? parse(readFileSync(path, "utf8")) ?? {} : {};
}

const ACTION_KEY = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

switch (tool) {
  case "config-get": {
    const { opts, rest } = flags({ format: "value", a: "bool", all: "bool", o: "value", output: "value" });
    if (rest.length > 1) fail(`unrecognized args: ${JSON.stringify(rest.slice(1))}`, 2);
    if (rest.length && (opts.a || opts.all)) fail("cannot use argument --all together with key", 2);
    const options = (charmYaml("config.yaml").options ?? {}) as Record<string, { default?: unknown }>;
    const set = fixture<Record<string, unknown>>("config.json", {});
    const all: Record<string, unknown> = {};
    for (const [k, o] of Object.entries(options)) all[k] = k in set ? set[k] : o.default ?? null;
    if (rest.length) output(all[rest[0]] ?? null, opts.format);
    else if (opts.a || opts.all) output(all, opts.format ?? "yaml");
    else output(Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null)), opts.format ?? "yaml");
    break;
  }
  case "status-set": {
    const { rest } = flags({ application: "bool" });
    if (!["maintenance", "blocked", "waiting", "active"].includes(rest[0])) {
      fail(`invalid status "${rest[0] ?? ""}", expected one of [maintenance blocked waiting active]`, 2);
    }
    if (rest.length > 2) fail(`unrecognized args: ${JSON.stringify(rest.slice(2))}`, 2);
    break;
  }
  case "action-get": {
    if (!process.env.JUJU_ACTION_NAME) fail("not running an action");
    const { opts, rest } = flags({ format: "value", o: "value", output: "value" });
    const spec = (charmYaml("actions.yaml")[process.env.JUJU_ACTION_NAME]?.params ?? {}) as Record<string, any>;
    const params: Record<string, unknown> = {};
    for (const [k, p] of Object.entries(spec)) if (p?.default !== undefined) params[k] = p.default;
    Object.assign(params, fixture("params.json", {}));
    let value: unknown = params;
    for (const key of rest[0]?.split(".") ?? []) value = (value as Record<string, unknown> | undefined)?.[key];
    output(value ?? null, opts.format);
    break;
  }
  case "action-set": {
    if (!process.env.JUJU_ACTION_NAME) fail("not running an action");
    if (args.length === 0) fail("no key=value pairs specified", 2);
    for (const a of args) {
      const i = a.indexOf("=");
      if (i < 1) fail(`argument "${a}" must be of the form key=value`, 2);
      const key = a.slice(0, i);
      if (!ACTION_KEY.test(key)) {
        fail(
          `key "${key}" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods`,
          2,
        );
      }
      if (["stdout", "stdout-encoding", "stderr", "stderr-encoding"].includes(key)) {
        fail(`cannot set reserved action key "${key}"`, 2);
      }
    }
    break;
  }
  case "action-fail":
  case "action-log":
    if (!process.env.JUJU_ACTION_NAME) fail("not running an action");
    if (tool === "action-log" && args.length === 0) fail("no message specified", 2);
    break;
  case "juju-log": {
    const { rest } = flags({ l: "value", "log-level": "value", debug: "bool", format: "value" });
    if (rest.length === 0) fail("no message specified", 2);
    break;
  }
  case "resource-get": {
    if (args.length !== 1) fail("missing resource name", 2);
    const path = fixture<Record<string, string>>("resources.json", {})[args[0]];
    if (!path) {
      fail(`could not download resource: resource#${process.env.JUJU_UNIT_NAME?.split("/")[0]}/${args[0]} not found`);
    }
    process.stdout.write(path + "\n");
    break;
  }
  case "secret-get": {
    const { opts, rest } = flags({
      format: "value",
      label: "value",
      o: "value",
      output: "value",
      peek: "bool",
      refresh: "bool",
    });
    if (!rest[0]) fail("require either a secret URI or label", 2);
    const content = fixture<Record<string, Record<string, string>>>("secrets.json", {})[rest[0]];
    if (!content) fail(`secret "${rest[0].replace(/^secret:/, "")}" not found`);
    output(rest[1] ? content[rest[1]] ?? null : content, opts.format ?? "yaml");
    break;
  }
  case "application-version-set":
    if (args.length !== 1) fail("no version specified", 2);
    break;
  case "systemctl": {
    // is-active prints the state and exits 3 unless it is "active" (systemctl(1)).
    if (args[0] === "is-active") {
      const state = fixture<Record<string, string>>("services.json", {})[args[1]] ?? "active";
      process.stdout.write(state + "\n");
      process.exit(state === "active" ? 0 : 3);
    }
    break;
  }
  default:
    fail(`unknown tool ${tool}`, 127);
}
