/** Text rendering for the `raftkv` command: the cluster table and small value formatters. */
import type { ClusterInfo, WatchMessage } from '../client/index.js';

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

/** A key or value for a tab-separated line: as is, or JSON-quoted when it holds a control character (tab, newline, ...). */
function field(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s) || s.startsWith('"') ? JSON.stringify(s) : s;
}

/**
 * The `raftkv watch` lines of one message: one per event (`INDEX<TAB>put<TAB>KEY<TAB>VALUE`, or
 * `INDEX<TAB>delete<TAB>KEY[<TAB>(reason lease)]`); with `isJson` one NDJSON object per event, and
 * one `{"index","type":"progress"}` per progress message (human output leaves progress out).
 */
export function formatWatchMessage(m: WatchMessage, isJson: boolean): string[] {
  if (m.type === 'progress') return isJson ? [JSON.stringify({ index: m.index, type: 'progress' })] : [];
  return m.events.map((e) => {
    if (isJson) return JSON.stringify({ index: m.index, ...e });
    const why = e.reason !== undefined ? `\t(${e.reason}${e.lease !== undefined ? ` ${e.lease}` : ''})` : '';
    return e.type === 'put' ? `${m.index}\tput\t${field(e.key)}\t${field(e.value)}${why}` : `${m.index}\tdelete\t${field(e.key)}${why}`;
  });
}
