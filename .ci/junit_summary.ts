/** Prints the plain "N passed, N failed, N skipped" line CI reads, from deno's JUnit report. */
import { existsSync, readFileSync } from "node:fs";

const path = process.argv[2];
if (!path || !existsSync(path)) {
  console.log("0 passed, 1 failed"); // no report: the run died before testing (e.g. a type error)
  process.exit(0);
}
const xml = readFileSync(path, "utf8");
const cases = xml.match(/<testcase\b[\s\S]*?(?:\/>|<\/testcase>)/g) ?? [];
let failed = 0, skipped = 0;
for (const c of cases) {
  const open = c.match(/^<testcase\b[^>]*>/)?.[0] ?? "";
  if (open.endsWith("/>")) continue;
  if (/<(failure|error)\b/.test(c)) failed++;
  else if (/<skipped\b/.test(c)) skipped++;
}
console.log(`${cases.length - failed - skipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
