/**
 * Linearizability checker for a key-value store history (the model: kv-model.ts).
 *
 * Approach
 * --------
 * Linearizability is local (Herlihy & Wing): a history is linearizable iff the sub-history of every
 * object is. The objects here are groups of keys: keys touched together by one operation (a
 * multi-key set, a create-only batch, a transaction) are one group, checked on their joint state,
 * so such an operation is one atomic step and a reader seeing half of it is caught. A group is
 * checked with the Wing & Gong backtracking search plus Lowe's memoization (a configuration =
 * (bitset of linearized ops, state) is explored at most once). A group of one key with only plain
 * set / get / delete and no index takes the register fast path (value only).
 *
 * Rules / simplifications (documented caveats):
 *  - Definitely failed ops (`ok === false`) are dropped: they took no effect.
 *  - Unknown-outcome ops (`completeMs === null`) complete at +Infinity and are optional: a write may
 *    be linearized anywhere after its invoke, or never. Unknown-outcome reads carry no information
 *    and are dropped; so are unknown-outcome writes nothing could have observed.
 *  - A plain `delete` is a write of `null`; deleting an absent key is still a successful effect.
 *  - A 412 is an answered read: the precondition failed against the state it reports.
 *  - Indexes (group search): a write's index is the one its answer reported, else the one a read of
 *    its (unique) value reported, else unknown; a key's index must grow with each write; a read's
 *    ETag must be its value's write index; an unknown index may equal any index no known write has
 *    (every write is its own log entry), and range compares on it may go either way (lenient).
 *  - Real-time order: op A precedes op B iff A.completeMs < B.invokeMs
 *    (strictly); equal timestamps are treated as concurrent (lenient).
 *  - A successful `get` with `result` undefined is treated as reading null.
 */
import { comparesHold, keysOf, preconditionHolds, type HistoryOp, type IsTakenIndex, type KeyState, type TxnOp, type Truth } from './kv-model.js';

export type { HistoryOp, TxnCompare, TxnOp, TxnOpResult, TxnRequest, TxnResult } from './kv-model.js';

export type KvOpKind = 'set' | 'get' | 'delete';

export interface LinearizabilityResult {
  /** 'unknown' when the search budget ran out before an answer */
  linearizable: boolean | 'unknown';
  /** first key (in sorted order) of the group whose sub-history is not linearizable */
  badKey?: string;
  /** every key of that group (keys touched together by multi-key operations are checked together) */
  badKeys?: string[];
  /** number of search configurations visited, summed over keys */
  explored: number;
  /** with a committed log: how many unknown-outcome writes it resolved (resolveUnknownWrites) */
  resolved?: { neverApplied: number; applied: number };
}

/** One operation on a single register (one key). */
export interface RegOp {
  isWrite: boolean;
  /** write: value written (null = delete); read: value observed */
  value: string | null;
  invoke: number;
  complete: number; // +Infinity when unknown
  optional: boolean;
}

function pushOp<T>(map: Map<string, T[]>, key: string, op: T): void {
  let list = map.get(key);
  if (!list) {
    list = [];
    map.set(key, list);
  }
  list.push(op);
}

/** Split a history into per-key register histories (see module doc). */
export function splitByKey(history: HistoryOp[]): Map<string, RegOp[]> {
  const byKey = new Map<string, RegOp[]>();
  for (const h of history) {
    if (!h.ok) continue; // definitely failed: no effect
    const unknown = h.completeMs === null;
    const complete = unknown ? Number.POSITIVE_INFINITY : (h.completeMs as number);
    const base = { invoke: h.invokeMs, complete, optional: unknown };
    switch (h.kind) {
      case 'get':
        if (unknown || h.key === undefined) break; // unknown reads say nothing
        pushOp(byKey, h.key, { ...base, isWrite: false, value: h.result ?? null });
        break;
      case 'set':
        if (h.key === undefined) break;
        pushOp(byKey, h.key, { ...base, isWrite: true, value: h.value ?? '' });
        break;
      case 'delete':
        if (h.key === undefined) break;
        pushOp(byKey, h.key, { ...base, isWrite: true, value: null });
        break;
      case 'setMany':
        for (const [k, v] of Object.entries(h.pairs ?? {})) {
          pushOp(byKey, k, { ...base, isWrite: true, value: v });
        }
        break;
    }
  }
  return byKey;
}

function stateKey(words: Uint32Array, state: string | null): string {
  return `${words.join(',')}|${state === null ? '\u0000' : 's' + state}`;
}

/**
 * Drops unknown-outcome writes whose value no read observed: with unique written values such a
 * write can always be linearized "never" without changing any read, so keeping it only widens the
 * search. Unknown deletes are kept when some read saw the key absent.
 */
export function pruneUnobserved(ops: RegOp[]): RegOp[] {
  const seenValues = new Set<string | null>();
  for (const o of ops) if (!o.isWrite) seenValues.add(o.value);
  return ops.filter((o) => !(o.isWrite && o.optional && !seenValues.has(o.value)));
}

interface Frame {
  state: string | null;
  requiredDone: number;
  start: number;
  minComplete: number;
  /** the state was just set by an unknown-outcome write: only a read of it may follow */
  mustRead: boolean;
  /** a pending read that may and therefore must go next (-1: none); it is the only candidate */
  forced: number;
  /** next candidate position to try */
  next: number;
  /** op linearized for the child being explored, -1 when none */
  chosen: number;
}

/**
 * Wing & Gong search with Lowe's memoization on one register history, with an explicit stack so
 * long histories cannot overflow the call stack. `ok` is 'unknown' when `maxExplored`
 * configurations did not settle the question.
 *
 * Three prunings keep histories with many unknown-outcome writes tractable; each only discards
 * linearizations that have an equivalent one still searched:
 *  - a read that may go next and matches the state goes next (reads change nothing, and every
 *    pending op completes after its invocation, so moving it earlier breaks no real-time order);
 *  - an unknown-outcome write must be followed by a read of its value, else dropping it from the
 *    linearization changes nothing;
 *  - an unknown-outcome write of the value the register already holds is never useful.
 */
function checkRegister(opsIn: RegOp[], maxExplored: number): { ok: boolean | 'unknown'; explored: number } {
  const ops = pruneUnobserved(opsIn).sort((a, b) => a.invoke - b.invoke || a.complete - b.complete);
  const n = ops.length;
  const required = ops.filter((o) => !o.optional).length;
  if (required === 0) return { ok: true, explored: 0 };
  const words = new Uint32Array(Math.max(1, Math.ceil(n / 32)));
  const seen = new Set<string>();
  let explored = 0;

  const isDone = (i: number): boolean => (words[i >>> 5] & (1 << (i & 31))) !== 0;
  const setBit = (i: number): void => {
    words[i >>> 5] |= 1 << (i & 31);
  };
  const clearBit = (i: number): void => {
    words[i >>> 5] &= ~(1 << (i & 31));
  };

  const frame = (state: string | null, requiredDone: number, firstOpen: number, mustRead: boolean): Frame => {
    // Advance past the prefix of already-linearized ops.
    let start = firstOpen;
    while (start < n && isDone(start)) start++;
    // Earliest completion among pending ops: no op invoked after it may go next.
    let minComplete = Number.POSITIVE_INFINITY;
    for (let i = start; i < n; i++) {
      if (ops[i].invoke > minComplete) break; // sorted by invoke
      if (!isDone(i) && ops[i].complete < minComplete) minComplete = ops[i].complete;
    }
    let forced = -1;
    for (let i = start; i < n && ops[i].invoke <= minComplete; i++) {
      if (!isDone(i) && !ops[i].isWrite && ops[i].value === state) {
        forced = i;
        break;
      }
    }
    return { state, requiredDone, start, minComplete, mustRead, forced, next: start, chosen: -1 };
  };

  const key = (state: string | null, mustRead: boolean) => `${stateKey(words, state)}|${mustRead ? 1 : 0}`;
  seen.add(key(null, false));
  explored++;
  const stack: Frame[] = [frame(null, 0, 0, false)];
  while (stack.length > 0) {
    const f = stack[stack.length - 1];
    if (f.chosen >= 0) {
      clearBit(f.chosen); // the child explored with this op linearized failed
      f.chosen = -1;
    }
    let pick = -1;
    if (f.forced >= 0) {
      if (f.next <= f.forced) pick = f.forced;
    } else if (!f.mustRead) {
      for (let i = f.next; i < n; i++) {
        const op = ops[i];
        if (op.invoke > f.minComplete) break;
        if (isDone(i) || !op.isWrite) continue; // no read matches the state here (else it was forced)
        if (op.optional && op.value === f.state) continue;
        pick = i;
        break;
      }
    }
    if (pick < 0) {
      stack.pop();
      continue;
    }
    f.next = pick + 1;
    const op = ops[pick];
    setBit(pick);
    f.chosen = pick;
    const nextState = op.isWrite ? op.value : f.state;
    const requiredDone = f.requiredDone + (op.optional ? 0 : 1);
    if (requiredDone === required) return { ok: true, explored };
    const mustRead = op.isWrite && op.optional;
    const k = key(nextState, mustRead);
    if (seen.has(k)) continue;
    seen.add(k);
    explored++;
    if (explored > maxExplored) return { ok: 'unknown', explored };
    stack.push(frame(nextState, requiredDone, f.start, mustRead));
  }
  return { ok: false, explored };
}

/** Whether `h` is a plain single-key operation without an index, which the register fast path can check. */
function isPlain(h: HistoryOp): boolean {
  if (h.index !== undefined) return false;
  if (h.ifMatch !== undefined || h.ifNoneMatch || h.conflict !== undefined) return false;
  if (h.kind === 'txn') return false;
  return keysOf(h).length <= 1;
}

/** Union-find over keys: keys an operation touches together end in one group. */
function groupKeys(history: HistoryOp[]): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r) as string;
    let x = k;
    while (x !== r) {
      const next = parent.get(x) as string;
      parent.set(x, r);
      x = next;
    }
    return r;
  };
  for (const h of history) {
    const ks = keysOf(h);
    for (const k of ks) if (!parent.has(k)) parent.set(k, k);
    for (let i = 1; i < ks.length; i++) {
      const a = find(ks[0]);
      const b = find(ks[i]);
      if (a !== b) parent.set(b, a);
    }
  }
  const root = new Map<string, string>();
  for (const k of parent.keys()) root.set(k, find(k));
  return root;
}

/** One operation of a group's joint history, compiled against the group's key slots. */
export interface GroupOp {
  invoke: number;
  complete: number; // +Infinity when unknown
  optional: boolean;
  /** slots the operation reads or writes */
  slots: number[];
  /** answered and changes nothing (a read, a 412, a txn whose branch wrote nothing): may be moved first when consistent */
  isPure: boolean;
  /** an unconditional set / delete that observes nothing: overwrites its slots blindly */
  isBlind: boolean;
  /** the states it may lead to from `s`; empty when its recorded answer is impossible in `s` */
  step(s: KeyState[]): KeyState[][];
}

const stateKeyOf = (s: KeyState): string => `${s.v === null ? '\u0000' : 's' + s.v}\u0001${s.i ?? '?'}\u0001${s.f}`;
const sameState = (a: KeyState, b: KeyState): boolean => a.v === b.v && a.i === b.i && a.f === b.f;

/** The index `h` wrote at, from its answer or learned from a read of a value only it wrote; null when unknown. */
function writeIndexOf(h: HistoryOp, learned: Map<string, Map<string, number>>): number | null {
  if (h.kind === 'get') return null;
  if (h.completeMs !== null && h.conflict === undefined) {
    if (h.kind === 'txn' && h.txnResult) {
      const isWriting = h.txnResult.results.some((r) => r.op === 'set' || (r.op === 'delete' && r.deleted));
      return isWriting ? h.txnResult.index : null; // a txn that wrote nothing reports an applied index, not its own
    }
    if (h.kind !== 'txn' && h.index !== undefined) return h.index;
  }
  const writes: [string, string][] =
    h.kind === 'set' && h.key !== undefined && h.value !== undefined
      ? [[h.key, h.value]]
      : h.kind === 'setMany'
        ? Object.entries(h.pairs ?? {})
        : h.kind === 'txn' && h.txn
          ? [...h.txn.success, ...h.txn.failure].flatMap((o): [string, string][] => (o.op === 'set' ? [[o.key, o.value]] : []))
          : [];
  for (const [k, v] of writes) {
    const i = learned.get(k)?.get(v);
    if (i !== undefined) return i;
  }
  return null;
}

/** Values each key was written with (value → count), to tell which reads name their write unambiguously. */
function writtenValues(history: HistoryOp[]): Map<string, Map<string, number>> {
  const m = new Map<string, Map<string, number>>();
  const add = (k: string, v: string) => {
    let mm = m.get(k);
    if (!mm) m.set(k, (mm = new Map()));
    mm.set(v, (mm.get(v) ?? 0) + 1);
  };
  for (const h of history) {
    if (h.kind === 'set' && h.key !== undefined) add(h.key, h.value ?? '');
    else if (h.kind === 'setMany') for (const [k, v] of Object.entries(h.pairs ?? {})) add(k, v);
    else if (h.kind === 'txn' && h.txn) for (const o of [...h.txn.success, ...h.txn.failure]) if (o.op === 'set') add(o.key, o.value);
  }
  return m;
}

/** Per key and value, the index some answered read reported for a value written exactly once. */
function learnIndexes(history: HistoryOp[]): Map<string, Map<string, number>> {
  const counts = writtenValues(history);
  const learned = new Map<string, Map<string, number>>();
  const see = (k: string, v: string | null | undefined, i: number | undefined) => {
    if (v === null || v === undefined || i === undefined || counts.get(k)?.get(v) !== 1) return;
    let mm = learned.get(k);
    if (!mm) learned.set(k, (mm = new Map()));
    if (!mm.has(v)) mm.set(v, i);
  };
  for (const h of history) {
    if (!h.ok || h.completeMs === null) continue;
    if (h.kind === 'get' && h.key !== undefined) see(h.key, h.result, h.index);
    if (h.kind === 'txn' && h.txnResult) for (const r of h.txnResult.results) if (r.op === 'get') see(r.key, r.value, r.index);
  }
  return learned;
}

/**
 * What the answered operations of a group observe, per key, for the pruning of unknown-outcome
 * writes: a write may be left out of every linearization when nothing could have seen it.
 */
interface Observed {
  values: Map<string, Set<string>>;
  /** some observation depends on the key's index or existence in a way no known write may explain */
  isIndexSensitive: Set<string>;
  /** some observation depends on the key being absent */
  isAbsenceSeen: Set<string>;
}

/** Every write index known from an answer or learned from a read. */
function knownIndexes(history: HistoryOp[], learned: Map<string, Map<string, number>>): Set<number> {
  const known = new Set<number>();
  for (const h of history) {
    const i = writeIndexOf(h, learned);
    if (i !== null) known.add(i);
  }
  return known;
}

function observe(history: HistoryOp[], known: Set<number>): Observed {
  const values = new Map<string, Set<string>>();
  const indexSeen: [string, number][] = [];
  const isIndexSensitive = new Set<string>();
  const isAbsenceSeen = new Set<string>();
  const addValue = (k: string, v: string) => {
    let s = values.get(k);
    if (!s) values.set(k, (s = new Set()));
    s.add(v);
  };
  for (const h of history) {
    const isAnswered = h.completeMs !== null;
    const conditional = h.ifMatch !== undefined || h.ifNoneMatch || h.conflict !== undefined || h.kind === 'txn';
    if (conditional) for (const k of keysOf(h)) isAbsenceSeen.add(k);
    if (h.ifMatch === '*' && h.key !== undefined) isIndexSensitive.add(h.key);
    if (Array.isArray(h.ifMatch) && h.key !== undefined) for (const x of h.ifMatch) indexSeen.push([h.key, x]);
    if (h.conflict?.current && h.key !== undefined) indexSeen.push([h.key, h.conflict.current.index]);
    for (const e of h.conflict?.existing ?? []) indexSeen.push([e.key, e.index]);
    if (h.kind === 'get' && h.key !== undefined && isAnswered) {
      if (h.result === null || h.result === undefined) isAbsenceSeen.add(h.key);
      else addValue(h.key, h.result);
      if (h.index !== undefined) indexSeen.push([h.key, h.index]);
    }
    if (h.kind === 'txn' && h.txn) {
      // A compare that failed says "not this": an unknown write may be why.
      if (h.txnResult && !h.txnResult.succeeded) for (const c of h.txn.compare) isIndexSensitive.add(c.key);
      for (const c of h.txn.compare) {
        if ('value' in c) addValue(c.key, c.value);
        else if ('exists' in c) isIndexSensitive.add(c.key);
        else if (typeof c.index === 'number') indexSeen.push([c.key, c.index]);
        else isIndexSensitive.add(c.key);
      }
      for (const r of h.txnResult?.results ?? []) {
        if (r.op === 'delete') (r.deleted ? isIndexSensitive : isAbsenceSeen).add(r.key); // it existed / it did not
        if (r.op !== 'get') continue;
        if (r.value === null) isAbsenceSeen.add(r.key);
        else addValue(r.key, r.value);
        if (r.index !== undefined) indexSeen.push([r.key, r.index]);
      }
    }
  }
  for (const [k, x] of indexSeen) if (x > 0 && !known.has(x)) isIndexSensitive.add(k); // an index only an unknown write may have
  return { values, isIndexSensitive, isAbsenceSeen };
}

/** The (key, value) pairs an unknown-outcome operation may write (null = delete). */
function possibleWrites(h: HistoryOp): [string, string | null][] {
  switch (h.kind) {
    case 'get':
      return [];
    case 'set':
      return h.key === undefined ? [] : [[h.key, h.value ?? '']];
    case 'setMany':
      return Object.entries(h.pairs ?? {});
    case 'delete':
      return h.key === undefined ? [] : [[h.key, null]];
    case 'txn':
      return h.txn ? [...h.txn.success, ...h.txn.failure].flatMap((o): [string, string | null][] => (o.op === 'set' ? [[o.key, o.value]] : o.op === 'delete' ? [[o.key, null]] : [])) : [];
  }
}

/**
 * Compiles one group's history for the joint search (exported for the brute-force test, which
 * passes `isPruning` false): drops definitely failed operations, unknown
 * reads, and unknown-outcome writes nothing could have observed (see Observed).
 */
export function compileGroup(history: HistoryOp[], slotOf: Map<string, number>, isPruning = true): GroupOp[] {
  const learned = learnIndexes(history);
  const known = knownIndexes(history, learned);
  const isTaken: IsTakenIndex = (i) => known.has(i);
  const seen = observe(history, known);
  const out: GroupOp[] = [];
  for (const h of history) {
    if (!h.ok) continue;
    const unknown = h.completeMs === null;
    if (unknown && !isPruning) {
      if (h.kind === 'get') continue;
    } else if (unknown) {
      const ws = possibleWrites(h);
      if (ws.length === 0) continue; // an unknown read says nothing
      const isVisible = ws.some(([k, v]) =>
        v === null ? seen.isAbsenceSeen.has(k) : seen.isIndexSensitive.has(k) || (seen.values.get(k)?.has(v) ?? false),
      );
      if (!isVisible) continue;
    }
    const op = compileOp(h, slotOf, writeIndexOf(h, learned), isTaken);
    if (op) out.push(op);
  }
  return out;
}

/** Writes `value` at `index` into a copy of `s`; null when the key's index would not grow. */
function written(s: KeyState[], slot: number, value: string | null, index: number | null, into?: KeyState[]): KeyState[] | null {
  const cur = (into ?? s)[slot];
  if (index !== null && index <= cur.f) return null; // indexes only grow
  const next = into ?? s.slice();
  next[slot] = { v: value, i: index, f: index ?? cur.f };
  return next;
}

function conflictMatches(s: KeyState, current: { index: number } | null | undefined, isTaken: IsTakenIndex): boolean {
  if (current === undefined) return true;
  if (current === null) return s.v === null;
  return s.v !== null && (s.i === null ? !isTaken(current.index) : s.i === current.index);
}

function compileOp(h: HistoryOp, slotOf: Map<string, number>, index: number | null, isTaken: IsTakenIndex): GroupOp | null {
  const unknown = h.completeMs === null;
  const base = { invoke: h.invokeMs, complete: unknown ? Number.POSITIVE_INFINITY : (h.completeMs as number), optional: unknown };
  const slot = (k: string) => slotOf.get(k) as number;
  const slots = keysOf(h).map(slot);
  switch (h.kind) {
    case 'get': {
      const sl = slot(h.key as string);
      const want = h.result ?? null;
      const wantIndex = h.index;
      return {
        ...base, slots, isPure: true, isBlind: false,
        step: (s) => (s[sl].v === want && (want === null || wantIndex === undefined || s[sl].i === null || s[sl].i === wantIndex) ? [s] : []),
      };
    }
    case 'set':
    case 'setMany':
    case 'delete': {
      const writes: [number, string | null][] =
        h.kind === 'set' ? [[slot(h.key as string), h.value ?? '']] : h.kind === 'delete' ? [[slot(h.key as string), null]] : Object.entries(h.pairs ?? {}).map(([k, v]) => [slot(k), v]);
      const isConditional = h.ifMatch !== undefined || h.ifNoneMatch === true;
      const holds = (s: KeyState[]): Truth => {
        let t: Truth = 1;
        for (const [sl] of writes) {
          const x = preconditionHolds(h, s[sl], isTaken);
          if (x === 0) return 0;
          if (x === 2) t = 2;
        }
        return t;
      };
      if (h.conflict !== undefined) {
        // 412: the precondition failed at apply, nothing changed; the answer names the current state.
        const c = h.conflict;
        const existing = c.existing ? new Map(c.existing.map((e) => [slot(e.key), e.index])) : null;
        return {
          ...base, slots, isPure: true, isBlind: false,
          step: (s) => {
            if (holds(s) === 1) return [];
            if (h.key !== undefined && !conflictMatches(s[slot(h.key)], c.current, isTaken)) return [];
            if (existing) {
              for (const [sl] of writes) {
                const i = existing.get(sl);
                if (i === undefined ? s[sl].v !== null : !conflictMatches(s[sl], { index: i }, isTaken)) return [];
              }
            }
            return [s];
          },
        };
      }
      const apply = (s: KeyState[]): KeyState[] | null => {
        let next: KeyState[] | null = s.slice();
        for (const [sl, v] of writes) {
          next = written(s, sl, v, index, next);
          if (next === null) return null;
        }
        return next;
      };
      return {
        ...base, slots, isPure: false, isBlind: !isConditional,
        step: (s) => {
          if (isConditional && holds(s) === 0) return [];
          const next = apply(s);
          return next ? [next] : [];
        },
      };
    }
    case 'txn': {
      const t = h.txn;
      if (!t) return null;
      const res = h.txnResult;
      const runBranch = (s: KeyState[], ops: TxnOp[]): KeyState[] | null => {
        let next = s.slice();
        for (let j = 0; j < ops.length; j++) {
          const o = ops[j];
          const sl = slot(o.key);
          const r = res?.results[j];
          if (res && (!r || r.op !== o.op || r.key !== o.key)) return null;
          if (o.op === 'set') {
            const n = written(s, sl, o.value, index, next);
            if (n === null) return null;
            next = n;
          } else if (o.op === 'delete') {
            const exists = next[sl].v !== null;
            if (r && r.op === 'delete' && r.deleted !== exists) return null;
            if (exists) next[sl] = { v: null, i: index, f: index ?? next[sl].f };
          } else if (r && r.op === 'get') {
            const cur = next[sl];
            if (cur.v !== r.value) return null;
            if (r.value !== null && r.index !== undefined && cur.i !== null && cur.i !== r.index) return null;
          }
        }
        return next;
      };
      const isWriting = (ops: TxnOp[], s: KeyState[] | null) =>
        res ? res.results.some((r) => r.op === 'set' || (r.op === 'delete' && r.deleted)) : ops.some((o) => o.op === 'set' || (o.op === 'delete' && s !== null));
      const chosen = res ? (res.succeeded ? t.success : t.failure) : null;
      return {
        ...base, slots, isPure: chosen !== null && !isWriting(chosen, null), isBlind: false,
        step: (s) => {
          const holds = comparesHold(t, (k) => s[slot(k)], isTaken);
          const out: KeyState[][] = [];
          for (const succeeded of [true, false]) {
            if (res && res.succeeded !== succeeded) continue;
            if ((succeeded && holds === 0) || (!succeeded && holds === 1)) continue;
            const next = runBranch(s, succeeded ? t.success : t.failure);
            if (next) out.push(next);
          }
          return out;
        },
      };
    }
  }
}

interface GroupFrame {
  state: KeyState[];
  requiredDone: number;
  /** first required op not linearized (all before it are) */
  start: number;
  /** highest required op position linearized on this path */
  hi: number;
  /** the run of unknown-outcome ops just linearized, if any (see checkGroup) */
  run: Run | null;
  /** candidates: positions >= 0 are required ops, -1 - p the optional op at p */
  cands: { op: number; next: KeyState[] }[];
  ci: number;
  /** the op linearized for the child being explored, NONE when none */
  chosen: number;
}

const NONE = Number.MAX_SAFE_INTEGER;

/** One unknown-outcome op of a run: its id (-1 - position), the slots it touches and those it changed. */
interface RunOp {
  id: number;
  slots: number[];
  changed: number[];
}

/** A run of consecutive unknown-outcome ops: `open` = those no later op of the run touched yet. */
interface Run {
  open: RunOp[];
  prev: RunOp;
}

/**
 * Wing & Gong search with Lowe's memoization over the joint state of a group of keys, so an
 * operation on several keys is one atomic step. Required (answered) and optional (unknown-outcome)
 * ops are kept apart: required ones leave a done prefix behind, so a configuration is the prefix
 * position, the few done bits after it, the optional ops done, the state and the pending obligation.
 * Prunings (each keeps an equivalent linearization):
 *  - an answered operation that changes nothing and is consistent now goes next when it may;
 *  - an unknown-outcome operation that changes nothing is never linearized;
 *  - unknown-outcome operations come in runs, each followed by an answered one that touches (reads
 *    or writes) a key of every op of the run no later op of the run touched, and overwrites blindly
 *    all that none of them changed: an op nothing after it looks at could move later (up to the end,
 *    where it is dropped), and one whose effect is overwritten unseen could be dropped; adjacent ops
 *    of a run on disjoint keys commute, so they go in position order.
 */
function checkGroup(opsIn: GroupOp[], slots: number, maxExplored: number, deadlineMs: number): { ok: boolean | 'unknown'; explored: number } {
  const byInvoke = (a: GroupOp, b: GroupOp) => a.invoke - b.invoke || a.complete - b.complete;
  const req = opsIn.filter((o) => !o.optional).sort(byInvoke);
  const opt = opsIn.filter((o) => o.optional).sort(byInvoke);
  const n = req.length;
  if (n === 0) return { ok: true, explored: 0 };
  const reqWords = new Uint32Array(Math.max(1, Math.ceil(n / 32)));
  const optWords = new Uint32Array(Math.max(1, Math.ceil(opt.length / 32)));
  const isReqDone = (i: number): boolean => (reqWords[i >>> 5] & (1 << (i & 31))) !== 0;
  const isOptDone = (i: number): boolean => (optWords[i >>> 5] & (1 << (i & 31))) !== 0;
  const seen = new Set<string>();
  let explored = 0;

  const touches = (op: GroupOp, ss: number[]) => op.slots.some((x) => ss.includes(x));
  const covers = (op: GroupOp, ss: number[]) => ss.every((x) => op.slots.includes(x));

  /**
   * The run after linearizing `op` (id) next, or 'prune' when an equivalent linearization is searched
   * elsewhere: an answered op must touch every open op of the run; an op may not blindly overwrite
   * all an open op changed; two unknown-outcome ops on disjoint keys go in position order.
   */
  const runAfter = (run: Run | null, op: GroupOp, id: number, changed: number[]): Run | null | 'prune' => {
    if (run !== null) {
      for (const w of run.open) if (op.isBlind && covers(op, w.changed)) return 'prune';
      if (!op.optional) return run.open.every((w) => touches(op, w.slots)) ? null : 'prune';
      if (!touches(op, run.prev.slots) && -1 - id < -1 - run.prev.id) return 'prune';
    }
    if (!op.optional) return null;
    const me: RunOp = { id, slots: op.slots, changed };
    return { open: [...(run?.open.filter((w) => !touches(op, w.slots)) ?? []), me], prev: me };
  };

  const frame = (state: KeyState[], requiredDone: number, firstOpen: number, hi: number, run: Run | null): GroupFrame => {
    let start = firstOpen;
    while (start < n && isReqDone(start)) start++;
    // Earliest completion among pending required ops: no op invoked after it may go next.
    let minComplete = Number.POSITIVE_INFINITY;
    for (let i = start; i < n; i++) {
      if (req[i].invoke > minComplete) break;
      if (!isReqDone(i) && req[i].complete < minComplete) minComplete = req[i].complete;
    }
    const f: GroupFrame = { state, requiredDone, start, hi, run, cands: [], ci: 0, chosen: NONE };
    for (let i = start; i < n && req[i].invoke <= minComplete; i++) {
      const op = req[i];
      if (isReqDone(i) || !op.isPure) continue;
      if (run && runAfter(run, op, i, []) === 'prune') continue;
      if (op.step(state).length > 0) {
        f.cands.push({ op: i, next: state });
        return f;
      }
    }
    const consider = (op: GroupOp, id: number) => {
      if (run && !op.optional && runAfter(run, op, id, []) === 'prune') return;
      for (const next of op.step(state)) {
        if (op.optional && next.every((x, j) => sameState(x, state[j]))) continue;
        f.cands.push({ op: id, next });
      }
    };
    for (let i = start; i < n && req[i].invoke <= minComplete; i++) if (!isReqDone(i) && !req[i].isPure) consider(req[i], i);
    for (let p = 0; p < opt.length && opt[p].invoke <= minComplete; p++) if (!isOptDone(p)) consider(opt[p], -1 - p);
    return f;
  };
  const memoKey = (start: number, hi: number, state: KeyState[], run: Run | null): string => {
    let k = `${start}`;
    for (let w = start >>> 5; w <= hi >>> 5; w++) k += `,${reqWords[w]}`;
    k += '/';
    for (let w = 0; w < optWords.length; w++) k += `${optWords[w]},`;
    const r = run ? `${run.open.map((w) => w.id).sort((a, b) => a - b).join('.')}/${run.prev.id}` : '';
    return `${k}|${state.map(stateKeyOf).join('\u0002')}|${r}`;
  };
  const flip = (id: number, on: boolean) => {
    const [words, i] = id >= 0 ? [reqWords, id] : [optWords, -1 - id];
    if (on) words[i >>> 5] |= 1 << (i & 31);
    else words[i >>> 5] &= ~(1 << (i & 31));
  };

  const init: KeyState[] = Array.from({ length: slots }, () => ({ v: null, i: 0, f: 0 }));
  const root = frame(init, 0, 0, 0, null);
  seen.add(memoKey(0, 0, init, null));
  explored++;
  const stack: GroupFrame[] = [root];
  while (stack.length > 0) {
    const f = stack[stack.length - 1];
    if (f.chosen !== NONE) flip(f.chosen, false); // the child explored with this op linearized failed
    f.chosen = NONE;
    if (f.ci >= f.cands.length) {
      stack.pop();
      continue;
    }
    const { op: id, next } = f.cands[f.ci++];
    const isOptional = id < 0;
    const op = isOptional ? opt[-1 - id] : req[id];
    flip(id, true);
    f.chosen = id;
    const requiredDone = f.requiredDone + (isOptional ? 0 : 1);
    if (requiredDone === n) return { ok: true, explored };
    const changed = isOptional ? next.flatMap((x, j) => (sameState(x, f.state[j]) ? [] : [j])) : [];
    const run = runAfter(f.run, op, id, changed);
    if (run === 'prune') continue;

    const hi = isOptional ? f.hi : Math.max(f.hi, id);
    const k = memoKey(f.start, hi, next, run);
    if (seen.has(k)) continue;
    seen.add(k);

    explored++;
    if (explored > maxExplored || ((explored & 1023) === 0 && performance.now() > deadlineMs)) return { ok: 'unknown', explored };
    stack.push(frame(next, requiredDone, f.start, hi, run));
  }
  return { ok: false, explored };
}

/** The cluster's committed log as the members recorded it: every index in (floor, ...] with its effects. */
export interface CommittedLog {
  floor: number;
  records: ReadonlyMap<number, readonly { type: 'put' | 'delete'; key: string; value?: string }[]>;
}

/** What the committed log says of the unknown-outcome writes (see resolveUnknownWrites). */
export interface Resolved {
  /** proven never applied */
  neverApplied: Set<HistoryOp>;
  /** applied at `index`; took effect no later than `byMs` (+Infinity when nothing bounds it) */
  applied: Map<HistoryOp, { index: number; byMs: number }>;
}

/**
 * Resolves unknown-outcome writes with the committed log. Unresolved, such a write is optional in
 * the search, free to take effect anywhere up to the end of the history; a dozen of them behind
 * index-sensitive observations (failed compares, If-Match) can grow the search past any budget.
 *  - Never applied: whichever branch it took, it would have put a value no other operation writes to
 *    that key; none of those values is in the log; and the log covers every index the write could
 *    have had (the floor is 0, or an answer reported an index above the floor before the write was
 *    sent: an entry proposed later gets a higher index). It is dropped.
 *  - Applied at index j: one of its values (written by it alone) is in the log at j. It took effect,
 *    and no later than the first answer of a write at an index above j (entries commit in index
 *    order), so it is searched as an answered write completing then, at index j (a transaction's
 *    index stays unknown to the search).
 * Both only remove linearizations, so resolving never hides a violation: a log that wrongly omits
 * or misplaces a write makes the history fail the check, not pass it. A log that disagrees with an
 * acknowledged write's answer (its value is not at its index) resolves nothing.
 */
export function resolveUnknownWrites(history: readonly HistoryOp[], committed: CommittedLog): Resolved {
  const counts = writtenValues([...history]);
  const isUnique = (k: string, v: string) => counts.get(k)?.get(v) === 1;
  const indexOf = new Map<string, number>(); // `${key}\0${value}` -> log index
  for (const [i, effects] of committed.records) for (const e of effects) if (e.type === 'put') indexOf.set(`${e.key}\0${e.value ?? ''}`, i);
  // Answered writes by index, for "the first answer at an index above j", and the coverage of the floor.
  const answered: { index: number; completeMs: number }[] = [];
  let coveredFrom = committed.floor === 0 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const h of history) {
    if (!h.ok || h.completeMs === null || h.conflict !== undefined) continue;
    const isWriting = h.kind === 'txn' ? (h.txnResult?.results.some((r) => r.op === 'set' || (r.op === 'delete' && r.deleted)) ?? false) : h.kind !== 'get';
    const index = h.kind === 'txn' ? h.txnResult?.index : h.index;
    if (!isWriting || index === undefined) continue;
    answered.push({ index, completeMs: h.completeMs });
    if (index > committed.floor) coveredFrom = Math.min(coveredFrom, h.completeMs);
  }
  answered.sort((x, y) => y.index - x.index);
  const out: Resolved = { neverApplied: new Set(), applied: new Map() };
  // A log that disagrees with an answer (a write acknowledged at i whose value is not at i) resolves nothing.
  for (const h of history) {
    if (!h.ok || h.completeMs === null || h.conflict !== undefined || h.index === undefined || h.index <= committed.floor) continue;
    const puts = h.kind === 'set' && h.key !== undefined ? [[h.key, h.value ?? '']] : h.kind === 'setMany' ? Object.entries(h.pairs ?? {}) : [];
    if (puts.some(([k, v]) => !(committed.records.get(h.index as number) ?? []).some((e) => e.type === 'put' && e.key === k && (e.value ?? '') === v))) return out;
  }
  const firstAbove = (j: number): number => {
    let by = Number.POSITIVE_INFINITY;
    for (const a of answered) {
      if (a.index <= j) break;
      by = Math.min(by, a.completeMs);
    }
    return by;
  };
  for (const h of history) {
    if (!h.ok || h.completeMs !== null || h.kind === 'get' || h.kind === 'delete') continue;
    const branches: [string, string][][] =
      h.kind === 'set' && h.key !== undefined ? [[[h.key, h.value ?? '']]]
        : h.kind === 'setMany' ? [Object.entries(h.pairs ?? {})]
          : h.kind === 'txn' && h.txn ? [h.txn.success, h.txn.failure].map((b) => b.flatMap((o): [string, string][] => (o.op === 'set' ? [[o.key, o.value]] : [])))
            : [];
    const found = branches.flat().find(([k, v]) => isUnique(k, v) && indexOf.has(`${k}\0${v}`));
    if (found) {
      const index = indexOf.get(`${found[0]}\0${found[1]}`) as number;
      out.applied.set(h, { index, byMs: firstAbove(index) });
    } else if (h.invokeMs > coveredFrom && branches.length > 0 && branches.every((b) => b.some(([k, v]) => isUnique(k, v)))) {
      out.neverApplied.add(h);
    }
  }
  return out;
}

/**
 * Check a KV history for linearizability. Keys are grouped so that every operation on several keys
 * (a multi-key set, a create-only batch, a transaction) lies inside one group; a group is searched
 * on its joint state, so such an operation is one atomic step. A group of one key whose operations
 * are all plain set / get / delete without indexes takes the register fast path. Gives up with 'unknown' past
 * `maxExplored` configurations in one group, or when a group search runs past `maxMs` in all.
 * With `committed`, the cluster's committed log, unknown-outcome writes are resolved first
 * (resolveUnknownWrites).
 */
export function checkLinearizable(history: HistoryOp[], maxExplored = 2_000_000, maxMs = Number.POSITIVE_INFINITY, committed?: CommittedLog): LinearizabilityResult {
  const deadlineMs = performance.now() + maxMs;
  const resolved = committed ? resolveUnknownWrites(history, committed) : null;
  const counts = resolved ? { resolved: { neverApplied: resolved.neverApplied.size, applied: resolved.applied.size } } : {};
  const live = history.flatMap((h): HistoryOp[] => {
    if (!h.ok || resolved?.neverApplied.has(h)) return [];
    const at = resolved?.applied.get(h);
    if (!at || at.byMs === Number.POSITIVE_INFINITY) return [h];
    return [{ ...h, completeMs: at.byMs, ...(h.kind === 'txn' ? {} : { index: at.index }) }];
  });
  const root = groupKeys(live);
  const groups = new Map<string, HistoryOp[]>();
  for (const h of live) {
    const ks = keysOf(h);
    if (ks.length === 0) continue;
    pushOp(groups, root.get(ks[0]) as string, h);
  }
  const members = new Map<string, string[]>();
  for (const [k, r] of root) pushOp(members, r, k);
  let explored = 0;
  let isUnknown = false;
  const order = [...members.entries()].map(([r, ks]) => ({ r, ks: ks.sort() })).sort((a, b) => (a.ks[0] < b.ks[0] ? -1 : 1));
  for (const { r, ks } of order) {
    const hs = groups.get(r) ?? [];
    let res: { ok: boolean | 'unknown'; explored: number };
    if (ks.length === 1 && hs.every(isPlain)) {
      res = checkRegister(splitByKey(hs).get(ks[0]) ?? [], maxExplored);
    } else {
      const slotOf = new Map(ks.map((k, j) => [k, j]));
      res = checkGroup(compileGroup(hs, slotOf), ks.length, maxExplored, deadlineMs);
    }
    explored += res.explored;
    if (res.ok === false) return { linearizable: false, badKey: ks[0], badKeys: ks, explored, ...counts };
    if (res.ok === 'unknown') isUnknown = true;
  }
  return { linearizable: isUnknown ? 'unknown' : true, explored, ...counts };
}

/**
 * Conservative direct count of stale reads.
 *
 * A successful, completed get of key K returning value v is counted as stale
 * when:
 *  - every set/setMany value written to K is unique (otherwise the key is
 *    skipped entirely: we cannot tell which write was read), and
 *  - the (unique) write W of v completed (acknowledged) at time c, and
 *  - another successful, acknowledged write W2 to K (set, setMany or delete)
 *    was invoked after c (so it definitely overwrote W) and completed before
 *    the get was invoked.
 * Since v can only have come from W, and W2 is ordered after W and before the
 * read in real time, no later-invoked write can explain the read. Reads of
 * values that were never written (or of failed / unknown writes) are not
 * counted here; `checkLinearizable` catches those.
 */
export function countStaleReads(history: HistoryOp[]): number {
  const writes = writesByKey(history);
  let stale = 0;
  for (const h of history) {
    if (h.kind !== 'get' || !h.ok || h.completeMs === null || h.key === undefined) continue;
    const v = h.result;
    if (v === null || v === undefined) continue;
    const ws = writes.get(h.key) ?? [];
    const valued = ws.filter((w) => w.value !== null).map((w) => w.value);
    if (new Set(valued).size !== valued.length) continue; // duplicate values: skip key
    const src = ws.find((w) => w.value === v);
    if (!src || !src.ok || src.complete === null) continue;
    const srcComplete = src.complete;
    const overwritten = ws.some(
      (w) =>
        w !== src &&
        w.ok &&
        w.complete !== null &&
        w.invoke > srcComplete &&
        w.complete < h.invokeMs,
    );
    if (overwritten) stale++;
  }
  return stale;
}

/** One write as countStaleReads and countLostAcked see it; `complete` is null when the outcome is unknown. */
interface KeyWrite {
  /** null = delete */
  value: string | null;
  invoke: number;
  complete: number | null;
  ok: boolean;
}

/**
 * The writes of `history` per key, in history order; a multi-key write is one write to each of its
 * keys, a 412 none, an answered txn those of its chosen branch, an unknown txn those of both.
 */
function writesByKey(history: HistoryOp[]): Map<string, KeyWrite[]> {
  const writes = new Map<string, KeyWrite[]>();
  for (const h of history) {
    if (h.conflict !== undefined) continue; // 412: nothing written
    const base = { invoke: h.invokeMs, complete: h.completeMs, ok: h.ok };
    if (h.kind === 'set' && h.key !== undefined) pushOp(writes, h.key, { ...base, value: h.value ?? '' });
    else if (h.kind === 'delete' && h.key !== undefined) pushOp(writes, h.key, { ...base, value: null });
    else if (h.kind === 'setMany') for (const [k, v] of Object.entries(h.pairs ?? {})) pushOp(writes, k, { ...base, value: v });
    else if (h.kind === 'txn' && h.txn) {
      const res = h.txnResult;
      const ops = res ? (res.succeeded ? h.txn.success : h.txn.failure) : [...h.txn.success, ...h.txn.failure];
      ops.forEach((o, j) => {
        const r = res?.results[j];
        if (o.op === 'set') pushOp(writes, o.key, { ...base, value: o.value });
        else if (o.op === 'delete' && !(r?.op === 'delete' && !r.deleted)) pushOp(writes, o.key, { ...base, value: null });
      });
    }
  }
  return writes;
}

/**
 * Direct count of acknowledged writes missing at the end: an acknowledged write W to key K is lost
 * when K's final value differs from W's and no other write to K that may have taken effect (acked
 * or unknown) could be ordered after W in real time (i.e. none completed at or after W's invoke).
 * `finalState` maps each key to its converged value (null = absent).
 */
export function countLostAcked(history: HistoryOp[], finalState: Map<string, string | null>): number {
  const writes = writesByKey(history.filter((h) => h.ok)); // a definitely failed write had no effect
  let lost = 0;
  for (const [key, ws] of writes) {
    const final = finalState.get(key) ?? null;
    for (const w of ws) {
      const isAcked = w.complete !== null;
      if (!isAcked || w.value === final) continue;
      const isSuperseded = ws.some((w2) => w2 !== w && (w2.complete === null || w2.complete >= w.invoke));
      if (!isSuperseded) lost++;
    }
  }
  return lost;
}
