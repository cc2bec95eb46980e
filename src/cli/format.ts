/** Text rendering for the `raftkv` command: the cluster table and small value formatters. */
import type { ClusterInfo } from '../client/index.js';

/** Milliseconds as a short human duration (`35ms`, `1.2s`, `3m05s`), or `-` when unknown. */
export function formatAgo(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function show(v: number | string | null): string {
  return v === null ? '-' : String(v);
}

/** Lays out rows as left-aligned columns separated by two spaces. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** The `raftkv cluster` output: a summary line and one row per member, the leader marked with `*`. */
export function renderCluster(info: ClusterInfo): string {
  const leaderId = info.leader?.id ?? null;
  const head = `leader: ${leaderId ?? 'none'}   term: ${info.term}   commit: ${info.commitIndex}   (answered by ${info.id} at ${info.endpoint})`;
  const rows: string[][] = [['ID', 'ROLE', 'SUFFRAGE', 'TERM', 'MATCH', 'COMMIT', 'APPLIED', 'LAG', 'LAST CONTACT', 'HEALTH']];
  for (const n of [...info.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    rows.push([
      n.id === leaderId ? `${n.id} *` : n.id,
      n.role ?? '-',
      n.suffrage,
      show(n.term),
      show(n.matchIndex),
      show(n.commitIndex),
      show(n.appliedIndex),
      show(n.lag),
      formatAgo(n.lastContactMs),
      n.health,
    ]);
  }
  return `${head}\n${table(rows)}`;
}

/** Parses an interval such as `500ms`, `2s` or `1` (seconds) into milliseconds; null when invalid. */
export function parseInterval(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!m) return null;
  const ms = m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
  return ms >= 100 && ms <= 3_600_000 ? ms : null;
}
