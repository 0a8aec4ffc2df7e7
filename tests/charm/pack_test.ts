/**
 * The packed charm against what Juju requires of a charm archive (rules read from juju/charm: url.go's name
 * pattern, config.go's option types and typed defaults, actions.go's names and JSON-Schema params,
 * resource/meta.go's file resources, manifest.go's bases), and charmcraft.yaml against the issue: one file,
 * 22.04 and 24.04 on amd64 and arm64, a dump part, a file resource, every service option.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { unzipSync } from "fflate";
import { parse } from "yaml";
import { CONFIG_KEYS, parseConfig } from "../../lib/config.ts";
import { packedCharm, zipModes } from "./juju_unit.ts";

const CHARM_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$/;
const ACTION_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const OPTION_TYPES: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === "string",
  int: (v) => Number.isInteger(v),
  float: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  secret: (v) => typeof v === "string" && v.startsWith("secret:"),
};
const JSON_SCHEMA_TYPES = new Set(["string", "integer", "number", "boolean", "object", "array", "null"]);

function unpacked(): Record<string, string> {
  const files = unzipSync(readFileSync(packedCharm()));
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, new TextDecoder().decode(v)]));
}

Deno.test("pack: the archive holds what Juju reads, dispatch executable", () => {
  const zip = readFileSync(packedCharm());
  const modes = zipModes(zip);
  assert.deepEqual([...modes.keys()].sort(), [
    "actions.yaml",
    "config.yaml",
    "dispatch",
    "manifest.yaml",
    "metadata.yaml",
    "version",
  ]);
  assert.equal(modes.get("dispatch")! & 0o777, 0o755);
  assert.equal(modes.get("metadata.yaml")! & 0o777, 0o644);
  assert.equal(unpacked().dispatch, readFileSync(new URL("../../charm/dispatch", import.meta.url), "utf8"));
});

Deno.test("pack: metadata.yaml is valid charm metadata (v2: bases in manifest.yaml, no series)", () => {
  const meta = parse(unpacked()["metadata.yaml"]);
  assert.match(meta.name, CHARM_NAME);
  assert.equal(meta.name, "github-runner");
  assert.equal(typeof meta.summary, "string");
  assert.equal(typeof meta.description, "string");
  for (const banned of ["series", "min-juju-version", "deployment", "type", "platforms", "parts", "config"]) {
    assert.equal(meta[banned], undefined, `${banned} must not be in metadata.yaml`);
  }
  assert.deepEqual(Object.keys(meta.resources), ["github-runner-binary"]);
  const res = meta.resources["github-runner-binary"];
  assert.equal(res.type, "file");
  assert.ok(res.filename && !res.filename.includes("/"), "a file resource needs a filename without /");
  assert.deepEqual(meta.assumes, ["juju >= 3.1"]);
});

Deno.test("pack: manifest.yaml lists Ubuntu 22.04 and 24.04 on amd64 and arm64", () => {
  const manifest = parse(unpacked()["manifest.yaml"]);
  assert.deepEqual(manifest.bases, [
    { name: "ubuntu", channel: "22.04", architectures: ["amd64", "arm64"] },
    { name: "ubuntu", channel: "24.04", architectures: ["amd64", "arm64"] },
  ]);
  assert.equal(typeof manifest["charmcraft-version"], "string");
  assert.ok(!Number.isNaN(Date.parse(manifest["charmcraft-started-at"])));
});

Deno.test("pack: config.yaml options have known types, typed defaults and descriptions", () => {
  const { options } = parse(unpacked()["config.yaml"]);
  for (const [name, o] of Object.entries(options as Record<string, Record<string, unknown>>)) {
    assert.ok(o.type && OPTION_TYPES[o.type as string], `${name}: unknown type ${o.type}`);
    assert.ok(typeof o.description === "string" && o.description.length > 10, `${name}: needs a description`);
    // Juju skips validation of "" for strings (pyjuju compatibility); every other default must fit its type.
    if (o.default !== undefined && !(o.default === "" && o.type === "string")) {
      assert.ok(OPTION_TYPES[o.type as string](o.default), `${name}: default ${o.default} is not a ${o.type}`);
    }
  }
});

Deno.test("pack: every option but the token's secret is a config key, and the defaults are the CLI's", () => {
  const { options } = parse(unpacked()["config.yaml"]);
  const file: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(options as Record<string, { default?: unknown }>)) {
    if (name === "token-secret-id") continue;
    assert.ok(name in CONFIG_KEYS, `option ${name} is not a config key`);
    const cli = CONFIG_KEYS[name].default;
    if (cli !== undefined && !Array.isArray(cli)) {
      assert.equal(o.default, cli, `${name}: default differs from the CLI's`);
    } else if (Array.isArray(cli) && cli.length > 0) {
      assert.equal(o.default, cli.join(","), `${name}: default differs from the CLI's`);
    }
    if (o.default !== "" && o.default !== undefined) file[name] = o.default;
  }
  for (
    const key of [
      "path",
      "token",
      "containers",
      "virtual-machines",
      "check-interval",
      "labels",
      "group",
      "vm-cpu",
      "vm-memory",
      "vm-disk",
      "max-runners",
      "watch-interval",
      "listen",
      "webhook-secret",
      "github-api-url",
      "lxd-socket",
    ]
  ) {
    assert.ok(key in options, `missing option ${key}`);
  }
  // The defaults themselves pass the CLI's validation.
  parseConfig({ file: { ...file, path: "acme", token: "t" }, hostname: "h" });
});

Deno.test("pack: actions.yaml has valid names, descriptions and JSON-Schema params", () => {
  const actions = parse(unpacked()["actions.yaml"]) as Record<string, Record<string, any>>;
  assert.deepEqual(Object.keys(actions).sort(), [
    "check-runners",
    "flush-runners",
    "reconcile-runners",
    "update-runner-bin",
  ]);
  for (const [name, spec] of Object.entries(actions)) {
    assert.match(name, ACTION_NAME);
    assert.ok(!name.startsWith("juju-") && name !== "juju", `${name} is reserved`);
    assert.equal(typeof spec.description, "string");
    for (const [param, schema] of Object.entries((spec.params ?? {}) as Record<string, any>)) {
      assert.ok(JSON_SCHEMA_TYPES.has(schema.type), `${name}.${param}: type ${schema.type}`);
      assert.ok(!("$ref" in schema) && !("$schema" in schema), "Juju refuses $ref and $schema");
      if (schema.type === "boolean") assert.equal(typeof schema.default, "boolean");
    }
  }
  assert.deepEqual(actions["flush-runners"].params["flush-busy"], {
    type: "boolean",
    default: false,
    description: "Also remove busy runners, cancelling the jobs they are running.",
  });
});

Deno.test("pack: charmcraft.yaml is one file with platforms, a dump part, the resource and actions", () => {
  const project = parse(readFileSync(new URL("../../charm/charmcraft.yaml", import.meta.url), "utf8"));
  assert.equal(project.type, "charm");
  assert.deepEqual(Object.keys(project.platforms).sort(), [
    "ubuntu@22.04:amd64",
    "ubuntu@22.04:arm64",
    "ubuntu@24.04:amd64",
    "ubuntu@24.04:arm64",
  ]);
  assert.deepEqual(project.parts, { charm: { plugin: "dump", source: ".", prime: ["dispatch"] } });
  assert.equal(project.resources["github-runner-binary"].type, "file");
});
