/** `check`: runners as GitHub and LXD see them. Changes nothing. */
import type { Config } from "../config.ts";
import { makeDeps } from "../deps.ts";
import { loadEtags, saveEtags } from "../etag_cache.ts";
import { classify, countBuckets } from "../classify.ts";
import { desiredOf, observe, summarizeViews } from "../reconcile.ts";
import { formatRunnerTable } from "../report_format.ts";
import type { Io } from "./io.ts";

export async function checkCommand(config: Config, io: Io, opts: { json: boolean }): Promise<number> {
  const deps = makeDeps(config);
  await loadEtags(deps.github, config.cacheDir);
  const observed = await observe(deps, AbortSignal.any([io.stop, AbortSignal.timeout(120_000)]));
  await saveEtags(deps.github, config.cacheDir);
  const views = classify(observed, desiredOf(config), deps.clock());
  const runners = summarizeViews(views);
  if (opts.json) io.out(JSON.stringify({ prefix: config.namePrefix, counts: countBuckets(views), runners }) + "\n");
  else io.out(formatRunnerTable(runners) + "\n");
  return 0;
}
