/**
 * Linearizability checker for a key-value store history.
 *
 * Approach
 * --------
 * Linearizability is local (Herlihy & Wing): a history is linearizable iff the
 * sub-history of every object is. We therefore split the history per key and
 * check each key as an independent register (state = string | null, null =
 * absent) with the Wing & Gong backtracking search plus Lowe's memoization
 * (a configuration = (bitset of linearized ops, register state) is explored at
 * most once).
 *
 * Splitting rules / simplifications (documented caveats):
 *  - `setMany` with several pairs becomes one independent write per key. This
 *    drops the cross-key atomicity requirement, so the check is sound (it never
 *    reports a violation that isn't one) but may miss atomicity violations of
 *    multi-key writes (e.g. a reader seeing half of a setMany).
 *  - Definitely failed ops (`ok === false`) are dropped: they took no effect.
 *  - Unknown-outcome ops (`completeMs === null`) complete at +Infinity and are
 *    optional: a write may be linearized anywhere after its invoke, or never.
 *    Unknown-outcome reads carry no information and are dropped.
 *  - `delete` is a write of `null`; deleting an absent key is still a
 *    successful effect.
 *  - Real-time order: op A precedes op B iff A.completeMs < B.invokeMs
 *    (strictly); equal timestamps are treated as concurrent (lenient).
 *  - A successful `get` with `result` undefined is treated as reading null.
 */

export type KvOpKind = 'set' | 'get' | 'delete';

export interface HistoryOp {
  client: number;
  kind: 'set' | 'get' | 'delete' | 'setMany';
  key?: string;
  value?: string;
  pairs?: Record<string, string>;
  invokeMs: number;
  /** null = unknown outcome, may or may not have taken effect */
  completeMs: number | null;
  /** false = definitely failed, did not take effect */
  ok: boolean;
  /** for get: value read, null = not found */
  result?: string | null;
  /** why it failed or is unknown (HTTP status and error code), for diagnostics only */
  error?: string;
}

export interface LinearizabilityResult {
  /** 'unknown' when the search budget ran out before an answer */
  linearizable: boolean | 'unknown';
  /** first key (in sorted order) whose sub-history is not linearizable */
  badKey?: string;
  /** number of search configurations visited, summed over keys */
  explored: number;
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

/** Check a KV history for linearizability, key by key; gives up with 'unknown' past `maxExplored` configurations per key. */
export function checkLinearizable(history: HistoryOp[], maxExplored = 2_000_000): LinearizabilityResult {
  const byKey = splitByKey(history);
  let explored = 0;
  let isUnknown = false;
  for (const key of [...byKey.keys()].sort()) {
    const r = checkRegister(byKey.get(key) ?? [], maxExplored);
    explored += r.explored;
    if (r.ok === false) return { linearizable: false, badKey: key, explored };
    if (r.ok === 'unknown') isUnknown = true;
  }
  return { linearizable: isUnknown ? 'unknown' : true, explored };
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

/** The writes of `history` per key, in history order; a setMany is one write to each of its keys. */
function writesByKey(history: HistoryOp[]): Map<string, KeyWrite[]> {
  const writes = new Map<string, KeyWrite[]>();
  for (const h of history) {
    const base = { invoke: h.invokeMs, complete: h.completeMs, ok: h.ok };
    if (h.kind === 'set' && h.key !== undefined) pushOp(writes, h.key, { ...base, value: h.value ?? '' });
    else if (h.kind === 'delete' && h.key !== undefined) pushOp(writes, h.key, { ...base, value: null });
    else if (h.kind === 'setMany') for (const [k, v] of Object.entries(h.pairs ?? {})) pushOp(writes, k, { ...base, value: v });
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
