/**
 * The watch checker of the fault suite (issue 17 point 6, design section 4 and pitfall 2): every
 * watcher's recorded SSE stream must equal the committed log filtered to its prefix — ordered, no
 * gap, no duplicate, one message per index with all of that entry's matching effects, progress never
 * ahead of a change not yet sent — or end with COMPACTED (then it restarts fresh and is checked from
 * there). Pure functions over recorded data; the live watchers are in watchers.ts, the unit tests
 * in test/unit/watch-check.test.ts.
 *
 * The reference log ("committed log") is built by buildReference from every member's own history,
 * read once after the run has converged, and must pass checkReference before any stream is compared
 * with it: the members agree index by index where their histories overlap, the prevIndex of every
 * effect names the key's previous effect, every acknowledged write is in it at the index its answer
 * reported with exactly its effects, no put carries a value no operation wrote (or one whose write
 * provably failed) or a value twice, and replaying it yields the converged state. docs/testing.md
 * ("The watch check") says why this, and not the clients' history alone, is the reference.
 */
import type { HistoryOp } from './kv-model.js';

/** One effect of a history record as GET /watch sends it (src/kv/types.ts KvEffect). */
export interface WatchEffect {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  prevIndex: number | null;
  reason?: string;
  lease?: string;
}

/** One record of a history: the effects of the entry at `index` (entries without effects have none). */
export interface LogRecord {
  index: number;
  effects: WatchEffect[];
}

/** One member's history, read after the run: every record in (floor, upTo]. */
export interface MemberLog {
  member: string;
  floor: number;
  upTo: number;
  records: LogRecord[];
  /** what went wrong reading it (it then takes no part in the reference) */
  error?: string;
}

/** What one watcher saw, in order. */
export type WatchItem =
  /** a request sent; `lastEventId` null = a fresh start (no from, no Last-Event-ID) */
  | { kind: 'open'; member: string; lastEventId: number | null; tMs: number }
  /** an answer other than 200 (status 0: no answer at all); COMPACTED carries its details */
  | { kind: 'refused'; status: number; code: string | null; compactedIndex?: number; tMs: number }
  | { kind: 'change'; id: number; index: unknown; events: unknown; tMs: number }
  | { kind: 'progress'; id: number; index: unknown; tMs: number }
  /** `event: error`; the stream ends after it */
  | { kind: 'error'; code: string | null; compactedIndex?: number; tMs: number }
  /** the connection ended (end of body, idle timeout, reset, stopped) */
  | { kind: 'end'; why: string; tMs: number }
  /** a message the client could not read */
  | { kind: 'bad'; what: string; tMs: number };

/** One watcher's whole recording, across every reconnection. */
export interface WatchStream {
  name: string;
  prefix: string;
  items: WatchItem[];
}

/** The committed log the streams are checked against. */
export interface Reference {
  /** every index in (floor, upTo] is known: its record, or none when the entry had no effects */
  floor: number;
  upTo: number;
  records: Map<number, WatchEffect[]>;
  /** sorted indexes of `records` */
  indexes: number[];
  problems: string[];
}

/** The result of checking every stream. */
export interface WatchCheck {
  ok: boolean;
  streams: number;
  /** change messages received, over all streams */
  events: number;
  /** connections opened, over all streams */
  connections: number;
  /** times a stream ended with COMPACTED (mid-stream or before streaming) */
  compacted: number;
  /** change messages at or below the reference's floor, which nothing could check */
  unchecked: number;
  problems: string[];
}

const canon = (e: WatchEffect): string => JSON.stringify([e.type, e.key, e.value ?? null, e.prevIndex ?? null, e.reason ?? null, e.lease ?? null]);
const sameEffects = (a: readonly WatchEffect[], b: readonly WatchEffect[]): boolean => a.length === b.length && a.every((e, i) => canon(e) === canon(b[i]));
const show = (es: readonly WatchEffect[]): string => es.map((e) => `${e.type} ${e.key}${e.type === 'put' ? `=${e.value ?? ''}` : ''}`).join(', ');

/** The effects under `prefix`, in the entry's order. */
export function matching(effects: readonly WatchEffect[], prefix: string): WatchEffect[] {
  return prefix === '' ? [...effects] : effects.filter((e) => e.key.startsWith(prefix));
}

/**
 * Merges the members' histories into one log and records where they disagree. Each member covers
 * (its floor, upTo]; `upTo` is the index every member had applied when the run converged. A member
 * whose read failed takes no part. The reference's floor is the lowest floor of the members read.
 */
export function buildReference(logs: readonly MemberLog[], upTo: number): Reference {
  const problems: string[] = [];
  const usable: MemberLog[] = [];
  for (const l of logs) {
    if (l.error !== undefined) {
      problems.push(`reference: ${l.member}'s history could not be read: ${l.error}`);
      continue;
    }
    let prev = l.floor;
    let isSound = true;
    for (const r of l.records) {
      if (r.index <= prev || r.index > upTo) {
        problems.push(`reference: ${l.member}'s history has record ${r.index} after ${prev} (floor ${l.floor}, converged at ${upTo})`);
        isSound = false;
        break;
      }
      if (r.effects.length === 0) problems.push(`reference: ${l.member}'s record ${r.index} has no effects`);
      prev = r.index;
    }
    if (l.upTo < upTo) {
      problems.push(`reference: ${l.member}'s history was read only to ${l.upTo}, not ${upTo}`);
      isSound = false;
    }
    if (isSound) usable.push(l);
  }
  const byMember = usable.map((l) => new Map(l.records.map((r) => [r.index, r.effects])));
  // Agreement: where two members both hold the history, they hold the same records.
  for (let a = 0; a < usable.length; a++) {
    for (let b = a + 1; b < usable.length; b++) {
      const lo = Math.max(usable[a].floor, usable[b].floor);
      const idx = new Set([...byMember[a].keys(), ...byMember[b].keys()].filter((i) => i > lo));
      let reported = 0;
      for (const i of [...idx].sort((x, y) => x - y)) {
        const ea = byMember[a].get(i);
        const eb = byMember[b].get(i);
        if (ea && eb && sameEffects(ea, eb)) continue;
        if (reported++ < 3) problems.push(`reference: ${usable[a].member} and ${usable[b].member} disagree at index ${i}: [${ea ? show(ea) : 'no record'}] vs [${eb ? show(eb) : 'no record'}]`);
      }
    }
  }
  const floor = usable.length === 0 ? upTo : Math.min(...usable.map((l) => l.floor));
  const records = new Map<number, WatchEffect[]>();
  for (const [j, l] of usable.entries()) for (const [i, e] of byMember[j]) if (i > l.floor && !records.has(i)) records.set(i, e);
  return { floor, upTo, records, indexes: [...records.keys()].sort((x, y) => x - y), problems };
}

/** The expected effects of an acknowledged write at its index, or null when the answer did not tell. */
export function expectedEffects(o: HistoryOp): { index: number; effects: { type: 'put' | 'delete'; key: string; value?: string }[] } | null {
  if (!o.ok || o.completeMs === null || o.conflict) return null;
  if (o.kind === 'set' && o.key !== undefined && o.index !== undefined) return { index: o.index, effects: [{ type: 'put', key: o.key, value: o.value ?? '' }] };
  if (o.kind === 'setMany' && o.pairs && o.index !== undefined) return { index: o.index, effects: Object.entries(o.pairs).map(([key, value]) => ({ type: 'put' as const, key, value })) };
  if (o.kind === 'delete' && o.key !== undefined && o.index !== undefined) return { index: o.index, effects: [{ type: 'delete', key: o.key }] };
  if (o.kind === 'txn' && o.txn && o.txnResult) {
    const branch = o.txnResult.succeeded ? o.txn.success : o.txn.failure;
    if (!branch.some((t) => t.op !== 'get')) return null; // nothing was written (a read-only txn has no entry at all)
    const effects: { type: 'put' | 'delete'; key: string; value?: string }[] = [];
    branch.forEach((t, j) => {
      const r = o.txnResult?.results[j];
      if (t.op === 'set') effects.push({ type: 'put', key: t.key, value: t.value });
      else if (t.op === 'delete' && r?.op === 'delete' && r.deleted) effects.push({ type: 'delete', key: t.key });
    });
    return { index: o.txnResult.index, effects };
  }
  return null;
}

/** The values each operation tried to write to each key (`isFailed`: only those proven not applied). */
function writtenValues(history: readonly HistoryOp[], isFailed: boolean): Map<string, string> {
  const out = new Map<string, string>(); // `${key}\0${value}` -> who
  const add = (k: string, v: string, o: HistoryOp) => out.set(`${k}\0${v}`, `client ${o.client} ${o.kind} at ${o.invokeMs.toFixed(0)} ms`);
  for (const o of history) {
    if (o.ok === isFailed) continue;
    if (o.kind === 'set' && o.key !== undefined && o.value !== undefined) add(o.key, o.value, o);
    else if (o.kind === 'setMany' && o.pairs) for (const [k, v] of Object.entries(o.pairs)) add(k, v, o);
    else if (o.kind === 'txn' && o.txn) for (const t of [...o.txn.success, ...o.txn.failure]) if (t.op === 'set') add(t.key, t.value, o);
  }
  return out;
}

/**
 * Anchors the reference to what the clients were told, independently of any watch stream:
 *  - prevIndex chain: each effect's prevIndex is the index of the key's previous put (null for a put
 *    on an absent key); below a floor above 0 the chain starts at each key's first effect;
 *  - every acknowledged write (answer with its index) above the floor is the record at that index,
 *    with exactly its effects;
 *  - on `checkedKeys` (whose values are unique per write), every put's value was written by an
 *    operation that did not provably fail, and no value is put twice;
 *  - from a floor of 0, replaying the log gives `finalState` (the converged state read from the members).
 * Returns the problems found (also appended to `ref.problems`).
 */
export function checkReference(ref: Reference, history: readonly HistoryOp[], finalState: ReadonlyMap<string, string | null>, checkedKeys: readonly string[]): string[] {
  const problems: string[] = [];
  const state = new Map<string, { present: boolean; index: number }>(); // known state per key
  const isFromEmpty = ref.floor === 0;
  const values = new Map<string, number>(); // `${key}\0${value}` -> index it was put at
  const tried = writtenValues(history, false);
  const failed = writtenValues(history, true);
  const checked = new Set(checkedKeys);
  for (const i of ref.indexes) {
    for (const e of ref.records.get(i) ?? []) {
      const known = state.get(e.key) ?? (isFromEmpty ? { present: false, index: 0 } : undefined);
      if (known) {
        const want = known.present ? known.index : null;
        if (e.type === 'delete' && !known.present) problems.push(`reference: index ${i} deletes ${e.key}, which was absent`);
        else if ((e.prevIndex ?? null) !== want) problems.push(`reference: index ${i} ${e.type} ${e.key} has prevIndex ${String(e.prevIndex)}, but the key's previous put is ${String(want)}`);
      }
      state.set(e.key, e.type === 'put' ? { present: true, index: i } : { present: false, index: 0 });
      if (e.type === 'put' && checked.has(e.key)) {
        const id = `${e.key}\0${e.value ?? ''}`;
        const twice = values.get(id);
        if (twice !== undefined) problems.push(`reference: ${e.key}=${e.value ?? ''} is put at ${twice} and again at ${i}`);
        values.set(id, i);
        if (failed.has(id)) problems.push(`reference: index ${i} puts ${e.key}=${e.value ?? ''}, whose write was answered as failed (${failed.get(id) ?? ''})`);
        else if (!tried.has(id)) problems.push(`reference: index ${i} puts ${e.key}=${e.value ?? ''}, which no operation wrote`);
      }
    }
  }
  for (const o of history) {
    const x = expectedEffects(o);
    if (!x || x.index <= ref.floor) continue;
    if (x.index > ref.upTo) {
      problems.push(`reference: an acknowledged ${o.kind} reported index ${x.index}, after the converged index ${ref.upTo}`);
      continue;
    }
    const got = ref.records.get(x.index) ?? [];
    const key = (e: { type: string; key: string; value?: string }) => `${e.type} ${e.key}=${e.value ?? ''}`;
    const want = x.effects.map(key).sort();
    const have = got.map(key).sort();
    if (want.join('|') !== have.join('|')) problems.push(`reference: the acknowledged ${o.kind} of client ${o.client} at index ${x.index} wrote [${want.join(', ')}] but the log has [${have.join(', ')}]`);
  }
  if (isFromEmpty) {
    const replayed = new Map<string, string | null>();
    for (const i of ref.indexes) for (const e of ref.records.get(i) ?? []) replayed.set(e.key, e.type === 'put' ? (e.value ?? '') : null);
    for (const [k, v] of finalState) {
      if ((replayed.get(k) ?? null) !== v) problems.push(`reference: replaying the log gives ${k}=${String(replayed.get(k) ?? null)}, the converged state has ${String(v)}`);
    }
  }
  const capped = problems.length > 10 ? [...problems.slice(0, 10), `reference: ${problems.length - 10} more problems`] : problems;
  ref.problems.push(...capped);
  return capped;
}

/** The reference's records under `prefix` with index in (lo, hi], as [index, matching effects]. */
function changesBetween(ref: Reference, prefix: string, lo: number, hi: number): [number, WatchEffect[]][] {
  const out: [number, WatchEffect[]][] = [];
  // Binary search for the first index > lo.
  let a = 0;
  let b = ref.indexes.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (ref.indexes[m] <= lo) a = m + 1;
    else b = m;
  }
  for (let j = a; j < ref.indexes.length && ref.indexes[j] <= hi; j++) {
    const i = ref.indexes[j];
    const es = matching(ref.records.get(i) ?? [], prefix);
    if (es.length > 0) out.push([i, es]);
  }
  return out;
}

/**
 * Checks one stream against the reference. Per connection: a fresh start must begin with a
 * progress event (its start point); a resumed one starts after the Last-Event-ID sent. From its
 * start S to the highest id H it received, it must have received exactly the reference's changes
 * under its prefix in (S, H], each once, in order, each with all of its entry's matching effects;
 * a progress id P means every such change up to P was sent before it. The client resumes at H (or
 * fresh after COMPACTED, whose floor must really be past H). Changes at or below the reference's
 * floor are counted as unchecked.
 */
export function checkStream(s: WatchStream, ref: Reference): { problems: string[]; events: number; connections: number; compacted: number; unchecked: number } {
  const problems: string[] = [];
  const say = (what: string) => {
    if (problems.length < 5) problems.push(`stream ${s.name} (prefix ${JSON.stringify(s.prefix)}): ${what}`);
  };
  let events = 0;
  let connections = 0;
  let compacted = 0;
  let unchecked = 0;
  /** where the client must resume: the highest id seen, or null for a fresh start (undefined before the first connection) */
  let resume: number | null | undefined;
  /** the current connection's highest id (null before a fresh stream's first progress) */
  let high: number | null = null;
  let member = '';
  let isOpen = false;
  /** the part of (lo, hi] above the reference floor must hold no change under the prefix */
  const expectNone = (lo: number, hi: number, why: string) => {
    const missed = changesBetween(ref, s.prefix, Math.max(lo, ref.floor), Math.min(hi, ref.upTo));
    if (missed.length > 0) say(`on ${member}: ${why}: change at ${missed[0][0]} [${show(missed[0][1])}] never sent${missed.length > 1 ? ` (and ${missed.length - 1} more)` : ''}`);
  };
  for (const it of s.items) {
    switch (it.kind) {
      case 'open':
        connections++;
        if (resume !== undefined && it.lastEventId !== resume) say(`the client resumed with Last-Event-ID ${String(it.lastEventId)}, not ${String(resume)} (harness bookkeeping)`);
        member = it.member;
        high = it.lastEventId;
        isOpen = true;
        break;
      case 'refused':
        if (it.code === 'COMPACTED') {
          compacted++;
          if (high !== null && !(typeof it.compactedIndex === 'number' && it.compactedIndex >= high + 1)) say(`on ${member}: 410 COMPACTED (compactedIndex ${String(it.compactedIndex)}) for a resume at ${high + 1}, which is above that floor`);
          resume = null;
        }
        isOpen = false;
        break;
      case 'change': {
        events++;
        if (!isOpen) {
          say(`on ${member}: change ${it.id} outside a connection`);
          break;
        }
        if (high === null) {
          say(`on ${member}: fresh stream sent change ${it.id} before its start progress`);
          high = it.id;
          resume = high;
          break;
        }
        if (it.index !== it.id) say(`on ${member}: change id ${it.id} carries index ${String(it.index)}`);
        if (it.id <= high) {
          say(`on ${member}: change ${it.id} after ${high}: ${it.id === high ? 'duplicate' : 'out of order'}`);
          break;
        }
        expectNone(high, it.id - 1, `before change ${it.id}`);
        if (it.id <= ref.floor) unchecked++;
        else if (it.id > ref.upTo) say(`on ${member}: change ${it.id} is beyond the converged index ${ref.upTo}`);
        else {
          const want = matching(ref.records.get(it.id) ?? [], s.prefix);
          const got = Array.isArray(it.events) ? (it.events as WatchEffect[]) : [];
          if (want.length === 0) say(`on ${member}: change ${it.id} [${show(got)}] has no matching effect in the committed log`);
          else if (!sameEffects(want, got)) say(`on ${member}: change ${it.id} sent [${show(got)}], the committed entry has [${show(want)}] under the prefix`);
        }
        high = it.id;
        resume = high;
        break;
      }
      case 'progress':
        if (!isOpen) {
          say(`on ${member}: progress ${it.id} outside a connection`);
          break;
        }
        if (it.index !== it.id) say(`on ${member}: progress id ${it.id} carries index ${String(it.index)}`);
        if (high === null) {
          high = it.id; // a fresh stream's start point
          resume = high;
          break;
        }
        if (it.id < high) {
          say(`on ${member}: progress ${it.id} after ${high} goes backwards`);
          break;
        }
        if (it.id > ref.upTo) say(`on ${member}: progress ${it.id} is beyond the converged index ${ref.upTo}`);
        expectNone(high, it.id, `progress ${it.id} ahead of it`);
        high = it.id;
        resume = high;
        break;
      case 'error':
        if (it.code === 'COMPACTED') {
          compacted++;
          if (high !== null && !(typeof it.compactedIndex === 'number' && it.compactedIndex >= high + 1)) say(`on ${member}: COMPACTED error (compactedIndex ${String(it.compactedIndex)}) mid-stream at ${high}: the next change was still in the history`);
          resume = null;
        } else if (it.code !== 'NO_LEADER' && it.code !== 'UNAVAILABLE') {
          say(`on ${member}: error event ${String(it.code)}`);
        }
        isOpen = false;
        break;
      case 'end':
        isOpen = false;
        break;
      case 'bad':
        say(`on ${member}: unreadable message: ${it.what}`);
        break;
    }
  }
  return { problems, events, connections, compacted, unchecked };
}

/** Checks every stream; `ok` only when the reference itself passed checkReference too. */
export function checkStreams(streams: readonly WatchStream[], ref: Reference): WatchCheck {
  const out: WatchCheck = { ok: true, streams: streams.length, events: 0, connections: 0, compacted: 0, unchecked: 0, problems: [...ref.problems] };
  for (const s of streams) {
    const r = checkStream(s, ref);
    out.events += r.events;
    out.connections += r.connections;
    out.compacted += r.compacted;
    out.unchecked += r.unchecked;
    out.problems.push(...r.problems);
  }
  out.ok = out.problems.length === 0;
  return out;
}
