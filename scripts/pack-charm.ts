/**
 * Packs charm/ into a deployable .charm without charmcraft: the zip `charmcraft pack` would make from
 * charm/charmcraft.yaml. charmcraft.yaml is split into the files Juju reads (metadata.yaml, config.yaml,
 * actions.yaml), manifest.yaml lists the bases of `platforms`, and the `dump` part's primed files are copied in
 * (just `dispatch`, executable). One archive serves every platform: the charm holds no compiled code, the
 * architecture lives in the resource.
 *
 *   deno run -A scripts/pack-charm.ts [OUT]     (build.ts calls packCharm after compiling)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Zippable, zipSync } from "fflate";
import { parse, stringify } from "yaml";
import { VERSION } from "../lib/version.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The keys of charmcraft.yaml that go to metadata.yaml (charmcraft's CHARM_METADATA_KEYS). */
const METADATA_KEYS = [
  "name",
  "summary",
  "description",
  "assumes",
  "containers",
  "devices",
  "extra-bindings",
  "peers",
  "provides",
  "requires",
  "resources",
  "storage",
  "subordinate",
  "terms",
];

export interface PackOptions {
  /** Folder holding charmcraft.yaml and the files its dump part primes. Default: charm/. */
  charmDir?: string;
  outFile: string;
  /** Recorded in manifest.yaml; default now. The zip entries themselves carry a fixed time (reproducible). */
  startedAt?: Date;
}

export interface CharmFile {
  data: Uint8Array;
  mode: number;
}

/** The archive's files, by name. Pure apart from reading the primed files through `read`. */
export function charmFiles(
  charmcraftYaml: string,
  read: (name: string) => Uint8Array,
  startedAt: Date,
): Record<string, CharmFile> {
  const project = parse(charmcraftYaml) as Record<string, unknown>;
  if (project.type !== "charm") throw new Error(`charmcraft.yaml: type must be "charm", got ${project.type}`);
  const metadata: Record<string, unknown> = {};
  for (const key of METADATA_KEYS) if (project[key] !== undefined) metadata[key] = project[key];
  // charmcraft writes charmcraft.yaml's `title` as metadata.yaml's `display-name`.
  if (project.title !== undefined) metadata["display-name"] = project.title;
  const manifest = {
    "charmcraft-version": `github-runner pack-charm ${VERSION}`,
    "charmcraft-started-at": startedAt.toISOString(),
    bases: basesOf(project.platforms),
    analysis: { attributes: [{ name: "language", result: "unknown" }, { name: "framework", result: "unknown" }] },
  };
  const text = (value: unknown) => new TextEncoder().encode(stringify(value, { lineWidth: 0 }));
  const files: Record<string, CharmFile> = {
    "metadata.yaml": { data: text(metadata), mode: 0o644 },
    "manifest.yaml": { data: text(manifest), mode: 0o644 },
    // Juju shows it as the charm's version.
    version: { data: new TextEncoder().encode(`${VERSION}\n`), mode: 0o644 },
  };
  const config = project.config as { options?: unknown } | undefined;
  if (config) files["config.yaml"] = { data: text({ options: config.options ?? {} }), mode: 0o644 };
  if (project.actions) files["actions.yaml"] = { data: text(project.actions), mode: 0o644 };
  for (const name of primedFiles(project.parts)) {
    files[name] = { data: read(name), mode: name === "dispatch" || name.startsWith("hooks/") ? 0o755 : 0o644 };
  }
  if (!files.dispatch) throw new Error("charmcraft.yaml: no part primes a dispatch file");
  return files;
}

/** `platforms` in multi-base notation ("ubuntu@22.04:amd64", or build-for entries) -> manifest bases. */
export function basesOf(platforms: unknown): { name: string; channel: string; architectures: string[] }[] {
  if (!platforms || typeof platforms !== "object") throw new Error("charmcraft.yaml: platforms is missing");
  const byBase = new Map<string, Set<string>>();
  for (const [name, value] of Object.entries(platforms)) {
    const targets = value === null ? [name] : ((value as { "build-for"?: string[] })["build-for"] ?? []);
    for (const target of targets) {
      const m = /^([a-z]+)@([0-9.]+):([a-z0-9]+)$/.exec(target);
      if (!m) throw new Error(`charmcraft.yaml: platform "${target}" is not <distribution>@<series>:<arch>`);
      const key = `${m[1]}@${m[2]}`;
      byBase.set(key, (byBase.get(key) ?? new Set()).add(m[3]));
    }
  }
  return [...byBase].map(([key, archs]) => {
    const [name, channel] = key.split("@");
    return { name, channel, architectures: [...archs].sort() };
  });
}

/** Files the `dump` parts put in the charm: each part's `prime` list (the whole source is not wanted). */
function primedFiles(parts: unknown): string[] {
  const names: string[] = [];
  for (const [name, part] of Object.entries((parts ?? {}) as Record<string, Record<string, unknown>>)) {
    if (part.plugin !== "dump") {
      throw new Error(`charmcraft.yaml: part "${name}" uses plugin "${part.plugin}"; only dump is packed`);
    }
    const prime = part.prime;
    if (!Array.isArray(prime) || prime.some((p) => typeof p !== "string" || p.includes("*"))) {
      throw new Error(`charmcraft.yaml: part "${name}" must list the files it primes, without wildcards`);
    }
    names.push(...prime);
  }
  return names;
}

export function packCharm(opts: PackOptions): { path: string; files: string[] } {
  const dir = opts.charmDir ?? join(ROOT, "charm");
  const files = charmFiles(
    readFileSync(join(dir, "charmcraft.yaml"), "utf8"),
    (name) => readFileSync(join(dir, name)),
    opts.startedAt ?? new Date(),
  );
  const zippable: Zippable = {};
  const mtime = new Date("2000-01-01T00:00:00Z");
  for (const [name, f] of Object.entries(files)) {
    // os 3 = Unix: the external attributes then carry the file mode (Juju unpacks dispatch executable).
    zippable[name] = [f.data, { os: 3, attrs: ((0o100000 | f.mode) << 16) >>> 0, mtime }];
  }
  writeFileSync(opts.outFile, zipSync(zippable, { level: 9 }));
  return { path: opts.outFile, files: Object.keys(files).sort() };
}

if (import.meta.main) {
  const out = process.argv[2] ?? join(ROOT, "dist/github-runner.charm");
  const { path, files } = packCharm({ outFile: out });
  console.log(`${path}: ${files.join(", ")}`);
}
