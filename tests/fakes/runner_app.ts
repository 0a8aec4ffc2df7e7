/**
 * Packs the fake runner application (tests/fakes/runner-app/) as a tar.gz laid out like GitHub's
 * actions-runner-linux-x64-<version>.tar.gz: run.sh, config.sh and bin/ at the top level, no enclosing folder.
 *
 * The archive is byte-for-byte reproducible (fixed mtimes and owners, gzip without a timestamp), so its sha256 is
 * stable; the tar writer is a minimal ustar one so no `tar` binary is needed on the host.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** The runner version the fake reports (GitHub's `version` field, and the archive's file name). */
export const FAKE_RUNNER_VERSION = "2.329.0";

/** GitHub's archive name for a platform, as listed by GET .../actions/runners/downloads. */
export function runnerFilename(os = "linux", arch = "x64"): string {
  return `actions-runner-${os}-${arch}-${FAKE_RUNNER_VERSION}.tar.gz`;
}

export interface FakeRunnerTarball {
  /** Absolute path of the written archive. */
  path: string;
  /** Lower-case hex, as GitHub's `sha256_checksum`. */
  sha256: string;
  /** actions-runner-linux-x64-<version>.tar.gz */
  filename: string;
}

/** Writes the archive into outDir (created if needed) and returns where it is and its checksum. */
export async function buildFakeRunnerTarball(outDir: string): Promise<FakeRunnerTarball> {
  const bytes = fakeRunnerTarballBytes();
  const filename = runnerFilename();
  await mkdir(outDir, { recursive: true });
  const path = join(outDir, filename);
  await writeFile(path, bytes);
  return { path, sha256: sha256Hex(bytes), filename };
}

/** The archive's bytes (what the fake's download host serves). */
export function fakeRunnerTarballBytes(): Uint8Array {
  const source = (name: string) => readFileSync(new URL(`./runner-app/${name}`, import.meta.url));
  // The real bin/Runner.Listener answers --version; tools read it to learn an unpacked runner's version.
  const listener = `#!/bin/sh\n# Fake Runner.Listener: only --version; the fake runner is run.sh.\n` +
    `if [ "\${1:-}" = --version ]; then echo ${FAKE_RUNNER_VERSION}; exit 0; fi\n` +
    `echo "The fake Runner.Listener only answers --version; use run.sh" >&2\nexit 1\n`;
  return gzipSync(
    tar([
      { name: "bin/", mode: 0o755 },
      { name: "bin/Runner.Listener", mode: 0o755, data: new TextEncoder().encode(listener) },
      { name: "config.sh", mode: 0o755, data: source("config.sh") },
      { name: "run.sh", mode: 0o755, data: source("run.sh") },
    ]),
    { level: 9 },
  );
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

interface Entry {
  name: string;
  mode: number;
  data?: Uint8Array;
}

/** 2025-01-01T00:00:00Z: a fixed mtime keeps the archive reproducible. */
const MTIME = 1735689600;

/**
 * One ustar header (POSIX.1-1988): root-owned, the fixed mtime, a regular file or (name ending in "/") a directory.
 * scripts/bench_image.ts appends an entry to the fake archive with it.
 */
export function ustarHeader(name: string, mode: number, size: number): Uint8Array {
  const header = new Uint8Array(512);
  const put = (offset: number, length: number, text: string) => {
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > length) throw new Error(`Cannot pack "${name}": "${text}" does not fit ${length} bytes`);
    header.set(bytes, offset);
  };
  const octal = (offset: number, length: number, value: number) =>
    put(offset, length, value.toString(8).padStart(length - 1, "0") + "\0");
  put(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, size);
  octal(136, 12, MTIME);
  put(148, 8, "        "); // checksum placeholder: spaces while summing
  put(156, 1, name.endsWith("/") ? "5" : "0");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  put(265, 32, "root");
  put(297, 32, "root");
  const sum = header.reduce((a, b) => a + b, 0);
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return header;
}

/** A ustar archive: a header per entry, data padded to 512, two zero blocks at the end. */
function tar(entries: Entry[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const entry of entries) {
    const data = entry.data ?? new Uint8Array();
    blocks.push(
      ustarHeader(entry.name, entry.mode, data.length),
      data,
      new Uint8Array((512 - (data.length % 512)) % 512),
    );
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const block of blocks) {
    out.set(block, offset);
    offset += block.length;
  }
  return out;
}
