/** Human-readable renderings of pass reports and runner lists, for terminals. Pure. */
import type { PassReport, RunnerSummary } from "./reconcile.ts";
import { formatDuration } from "./units.ts";

export function formatRunnerTable(runners: RunnerSummary[]): string {
  if (runners.length === 0) return "No runners with this prefix.";
  const rows = [["NAME", "TYPE", "STATE", "GITHUB", "BUSY", "LXD", "AGE"]];
  for (const r of runners) {
    rows.push([
      r.name,
      r.type === "virtual-machine" ? "vm" : r.type ?? "-",
      r.bucket,
      r.githubStatus ?? "-",
      r.busy ? "yes" : "no",
      r.lxdStatus ?? "-",
      r.lxdStatus ? formatDuration(r.ageMs) : "-",
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

export function formatPassReport(report: PassReport): string {
  const b = report.before;
  const lines = [
    `Prefix ${report.prefix}: ${b.idle} idle, ${b.busy} busy, ${b.booting} booting` +
    ` (target ${report.target.containers} containers, ${report.target.virtualMachines} virtual machines` +
    `${report.target.maxRunners ? `, max ${report.target.maxRunners}` : ""})`,
  ];
  for (const r of report.results) {
    const what = r.action.kind === "create"
      ? `create ${r.action.type}${r.name ? ` ${r.name}` : ""}`
      : r.action.kind === "remove"
      ? `remove ${r.action.name} (${r.action.cause})`
      : `mark ${r.action.name} finished`;
    const how = r.outcome === "failed"
      ? `FAILED: ${r.error}`
      : r.outcome === "kept-busy"
      ? "kept: the runner is busy"
      : r.outcome === "kept"
      ? "kept: GitHub still lists it"
      : "done";
    lines.push(`  ${what}: ${how}`);
  }
  if (report.results.length === 0 && !report.error) lines.push("  nothing to do");
  if (report.error) lines.push(`  pass stopped: ${report.error}`);
  lines.push(`Pass took ${formatDuration(report.durationMs)}.`);
  return lines.join("\n");
}
