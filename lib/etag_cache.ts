/**
 * The GitHub client's conditional-request cache on disk (<cache-dir>/github-etags.json), so a one-shot
 * `reconcile` or `check` also gets free 304s. It holds runner lists (names, labels, status): no secret. Losing it
 * only costs one counted request; a corrupt file is ignored.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { GithubClient } from "./github.ts";

const file = (cacheDir: string) => join(cacheDir, "github-etags.json");

export async function loadEtags(github: GithubClient, cacheDir: string): Promise<void> {
  try {
    github.importEtags(JSON.parse(await readFile(file(cacheDir), "utf8")));
  } catch {
    // no cache yet, or an unreadable one: the next answer refills it
  }
}

export async function saveEtags(github: GithubClient, cacheDir: string): Promise<void> {
  const path = file(cacheDir);
  try {
    await writeFile(`${path}.${process.pid}`, JSON.stringify(github.exportEtags()), { mode: 0o600 });
    await rename(`${path}.${process.pid}`, path);
  } catch {
    // a cache: failing to keep it costs one counted request next time, nothing else
  }
}
