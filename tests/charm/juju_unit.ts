/**
 * A Juju unit without Juju: the packed charm unpacked into a charm folder, stand-in hook tools and systemctl on
 * PATH (tests/charm/fake_juju/hook_tool.ts, recording every call), and `dispatch` run with the environment Juju
 * gives a hook or an action (JUJU_DISPATCH_PATH, JUJU_UNIT_NAME, JUJU_CHARM_DIR, JUJU_ACTION_NAME, ...). Files
 * the charm writes under / go to a temporary root (GITHUB_RUNNER_CHARM_ROOT).
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { unzipSync } from "fflate";
import { packCharm } from "../../scripts/pack-charm.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TOOL = join(ROOT, "tests/charm/fake_juju/hook_tool.ts");
const TOOLS = [
  "config-get",
  "status-set",
  "action-get",
  "action-set",
  "action-fail",
  "action-log",
  "juju-log",
  "resource-get",
  "secret-get",
  "application-version-set",
  "systemctl",
];

export interface ToolCall {
  tool: string;
  args: string[];
  action?: string;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  calls: ToolCall[];
}

/** The zip's entries with their unix modes, read from the central directory (fflate does not report them). */
export function zipModes(zip: Uint8Array): Map<string, number> {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let eocd = zip.length - 22;
  while (eocd >= 0 && view.getUint32(eocd, true) !== 0x06054b50) eocd--;
  const count = view.getUint16(eocd + 10, true);
  let at = view.getUint32(eocd + 16, true);
  const modes = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const nameLen = view.getUint16(at + 28, true), extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    const name = new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLen));
    modes.set(name, view.getUint32(at + 38, true) >>> 16);
    at += 46 + nameLen + extraLen + commentLen;
  }
  return modes;
}

let packed: string | undefined;
/** The charm `deno task build` would ship, packed once per test process. */
export function packedCharm(): string {
  if (!packed) {
    const dir = mkdtempSync(join(tmpdir(), "charm-pack-"));
    packed = packCharm({ outFile: join(dir, "github-runner.charm") }).path;
  }
  return packed;
}

/**
 * The binary an operator attaches, compiled from this source tree into `dir` the way build.ts compiles it (a
 * private copy: dist/ may be stale, or in use by another test).
 */
export function compiledBinary(dir: string): string {
  const local = join(ROOT, "tools/node_modules/.bin/bun");
  const bun = existsSync(local) ? local : "bun";
  const out = join(dir, "github-runner");
  const args = ["build", "--compile", "--minify", "--bytecode", "--format=esm", "--target=bun-linux-x64"];
  execFileSync(bun, [...args, join(ROOT, "main.ts"), "--outfile", out], {
    cwd: ROOT,
    stdio: "ignore",
    env: { ...process.env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" },
  });
  return out;
}

/** A binary resource that runs this source tree through deno: quick to start, no build. */
export function sourceBinary(dir: string): string {
  const path = join(dir, "github-runner");
  writeFileSync(
    path,
    `#!/bin/sh\nexec "${process.execPath}" run -A --quiet --config "${ROOT}deno.json" "${ROOT}main.ts" "$@"\n`,
    { mode: 0o755 },
  );
  return path;
}

export interface UnitOptions {
  app: string;
  unit?: number;
  /** Options set with `juju config` (the rest take config.yaml's defaults). */
  config?: Record<string, unknown>;
  /** The attached binary; undefined: none attached. */
  resource?: string;
  secrets?: Record<string, Record<string, string>>;
  /** Extra environment (JUJU_CHARM_HTTP_PROXY, ...). */
  env?: Record<string, string>;
}

export class JujuUnit {
  readonly name: string;
  readonly dir: string;
  /** Stands in for "/" for the files the charm writes. */
  readonly root: string;
  readonly charmDir: string;
  readonly fakeDir: string;
  #env: Record<string, string>;

  constructor(readonly opts: UnitOptions) {
    this.name = `${opts.app}/${opts.unit ?? 0}`;
    this.dir = mkdtempSync(join(tmpdir(), "charm-unit-"));
    this.root = join(this.dir, "root");
    this.charmDir = join(this.dir, "charm");
    this.fakeDir = join(this.dir, "fake");
    const bin = join(this.dir, "bin");
    for (const d of [this.root, this.charmDir, this.fakeDir, bin]) mkdirSync(d, { recursive: true });
    const zip = readFileSync(packedCharm());
    const modes = zipModes(zip);
    for (const [name, data] of Object.entries(unzipSync(zip))) {
      mkdirSync(dirname(join(this.charmDir, name)), { recursive: true });
      writeFileSync(join(this.charmDir, name), data);
      chmodSync(join(this.charmDir, name), modes.get(name)! & 0o777);
    }
    for (const tool of TOOLS) {
      const script =
        `#!/bin/sh\nexec "${process.execPath}" run -A --quiet --config "${ROOT}deno.json" "${TOOL}" ${tool} "$@"\n`;
      writeFileSync(join(bin, tool), script, { mode: 0o755 });
    }
    this.setConfig(opts.config ?? {});
    this.writeFixture("resources.json", opts.resource ? { "github-runner-binary": opts.resource } : {});
    this.writeFixture("secrets.json", opts.secrets ?? {});
    this.#env = {
      PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: this.dir,
      NO_COLOR: "1",
      JUJU_UNIT_NAME: this.name,
      JUJU_CHARM_DIR: this.charmDir,
      JUJU_MODEL_NAME: "test-model",
      JUJU_MODEL_UUID: "00000000-0000-4000-8000-000000000000",
      JUJU_VERSION: "3.6.0",
      FAKE_JUJU_DIR: this.fakeDir,
      GITHUB_RUNNER_CHARM_ROOT: this.root,
      DENO_NO_UPDATE_CHECK: "1",
      ...opts.env,
    };
  }

  setConfig(values: Record<string, unknown>): void {
    this.writeFixture("config.json", values);
  }

  writeFixture(name: string, value: unknown): void {
    writeFileSync(join(this.fakeDir, name), JSON.stringify(value));
  }

  calls(): ToolCall[] {
    try {
      return readFileSync(join(this.fakeDir, "calls.jsonl"), "utf8").trim().split("\n").filter(Boolean)
        .map((l) => JSON.parse(l));
    } catch {
      return [];
    }
  }

  /** The last status-set: what `juju status` would show for the unit. */
  status(): { status: string; message: string } | undefined {
    const last = this.calls().filter((c) => c.tool === "status-set").at(-1);
    const a = last?.args.filter((x) => x !== "--application");
    return a && { status: a[0], message: a[1] ?? "" };
  }

  hook(name: string): Promise<Run> {
    return this.#dispatch({ JUJU_DISPATCH_PATH: `hooks/${name}`, JUJU_HOOK_NAME: name });
  }

  action(name: string, params: Record<string, unknown> = {}): Promise<Run> {
    this.writeFixture("params.json", params);
    return this.#dispatch({
      JUJU_DISPATCH_PATH: `actions/${name}`,
      JUJU_ACTION_NAME: name,
      JUJU_ACTION_UUID: crypto.randomUUID(),
    });
  }

  /** Results an action set, as Juju would merge the action-set calls (dotted keys kept flat here). */
  static results(run: Run): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of run.calls.filter((c) => c.tool === "action-set")) {
      for (const a of c.args) out[a.slice(0, a.indexOf("="))] = a.slice(a.indexOf("=") + 1);
    }
    return out;
  }

  static failure(run: Run): string | undefined {
    return run.calls.find((c) => c.tool === "action-fail")?.args[0];
  }

  #dispatch(extra: Record<string, string>): Promise<Run> {
    const before = this.calls().length;
    // Asynchronous: a fake GitHub may be answering from this very process.
    return new Promise((resolve) => {
      execFile(
        join(this.charmDir, "dispatch"),
        [],
        { cwd: this.charmDir, env: { ...this.#env, ...extra }, encoding: "utf8", timeout: 300_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
          resolve({ code, stdout, stderr, calls: this.calls().slice(before) });
        },
      );
    });
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
