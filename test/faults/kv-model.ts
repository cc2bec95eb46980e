/**
 * The key-value model the linearizability checker (linearizability.ts) checks histories against,
 * and a sequential reference of it for tests: plain set / get / delete / multi-key set, conditional
 * writes (`If-Match`, `If-None-Match: *`) and transactions, as ../../../shared/design/api-depth.md
 * sections 1–2 define them. The server's answers are recorded in this shape by workload.ts.
 *
 * Index rules the model relies on (each is part of the contract):
 *  - every write lands at its Raft entry's index; a set's answer reports it (`ETag` / `X-Raft-Index`,
 *    a txn's `index` and each set result's `index`), a get reports the index of the key's last write;
 *  - a key's index only grows (each write is a later log entry);
 *  - a txn's compares and its `get` results see the state at apply, a `get` after a write of the same
 *    branch sees that write (etcd's order), and every write of a branch lands at the txn's index;
 *  - for txn index compares an absent key has index 0 (etcd's rule), so `{"index":{"lt":40}}` holds
 *    for it and `{"index":17}` does not; `If-Match` on an absent key never holds.
 */

/** One compare of a transaction; `index` as a number is equality, as an object a range (all given bounds must hold). */
export type TxnCompare =
  | { key: string; index: number | { lt?: number; lte?: number; gt?: number; gte?: number } }
  | { key: string; exists: boolean }
  | { key: string; value: string };

/** One operation of a transaction branch. */
export type TxnOp = { op: 'set'; key: string; value: string } | { op: 'delete'; key: string } | { op: 'get'; key: string };

/** The body of `POST /txn`. */
export interface TxnRequest {
  compare: TxnCompare[];
  success: TxnOp[];
  failure: TxnOp[];
}

/** One result of the chosen branch, in branch order. A get of an absent key has `value: null` and no index. */
export type TxnOpResult =
  | { op: 'set'; key: string; index: number }
  | { op: 'delete'; key: string; deleted: boolean }
  | { op: 'get'; key: string; value: string | null; index?: number };

/** The 200 answer of `POST /txn`. */
export interface TxnResult {
  succeeded: boolean;
  index: number;
  results: TxnOpResult[];
}

/**
 * One operation of a recorded history.
 *
 *  kind      request                                            fields
 *  get       GET /key/:key                                      key; result (null = 404); index = ETag
 *  set       POST /key {key:v} or PUT /key/:key                 key, value; ifMatch / ifNoneMatch; index = new index
 *  setMany   POST /key {k1:v1,...}                              pairs; ifNoneMatch (atomic create-only batch); index
 *  delete    DELETE /key/:key                                   key; ifMatch; index (a 404 of an unconditional delete is recorded as a get of null)
 *  txn       POST /txn                                          txn; txnResult when answered
 *
 * Outcomes: `ok: false` = proven not applied (no effect); `completeMs: null` = unknown (may or may not
 * have taken effect, nothing is known about its answer); otherwise answered. A 412 is answered
 * (`ok: true`) with `conflict` set: it changed nothing and reports the current state.
 */
export interface HistoryOp {
  client: number;
  kind: 'set' | 'get' | 'delete' | 'setMany' | 'txn';
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
  /** answered writes: the index the write landed at; answered gets of a present key: its ETag. Optional. */
  index?: number;
  /** set / delete with `If-Match`: '*' (the key must exist) or the accepted indexes */
  ifMatch?: '*' | number[];
  /** set / setMany with `If-None-Match: *`: every key must be absent */
  ifNoneMatch?: true;
  /** the answer was 412: single key `current` (null = absent), multi-key `existing` (every key that exists) */
  conflict?: { current?: { index: number } | null; existing?: { key: string; index: number }[] };
  /** kind txn: the request */
  txn?: TxnRequest;
  /** kind txn, answered: the response */
  txnResult?: TxnResult;
}

/** Every key an operation reads or writes. */
export function keysOf(h: HistoryOp): string[] {
  switch (h.kind) {
    case 'get':
    case 'set':
    case 'delete':
      return h.key === undefined ? [] : [h.key];
    case 'setMany':
      return Object.keys(h.pairs ?? {});
    case 'txn': {
      const t = h.txn;
      if (!t) return [];
      return [...new Set([...t.compare.map((c) => c.key), ...t.success.map((o) => o.key), ...t.failure.map((o) => o.key)])];
    }
  }
}

/** A key's state in the model: value (null = absent) and the index of its last write (null = unknown). */
export interface KeyState {
  v: string | null;
  i: number | null;
  /** the highest known index written to the key so far: the next write's index must exceed it */
  f: number;
}

/** Three-valued truth: a condition on a key whose index is unknown may hold or not. */
export type Truth = 0 | 1 | 2; // 0 false, 1 true, 2 unknown
const MAYBE: Truth = 2;

function and(a: Truth, b: Truth): Truth {
  if (a === 0 || b === 0) return 0;
  if (a === 1 && b === 1) return 1;
  return MAYBE;
}

/**
 * Tells whether an index is the known index of some write, which an unknown-index write therefore
 * cannot have (every write is its own log entry). Without it an unknown index may equal anything.
 */
export type IsTakenIndex = (index: number) => boolean;

const NOTHING_TAKEN: IsTakenIndex = () => false;

/** Whether a key of unknown index may have index `x`: never 0 or below, never another write's. */
function mayBe(x: number, isTaken: IsTakenIndex): Truth {
  return x <= 0 || isTaken(x) ? 0 : MAYBE;
}

function indexIs(s: KeyState, pred: (i: number) => boolean, equals: number | null, isTaken: IsTakenIndex): Truth {
  if (s.v === null) return pred(0) ? 1 : 0;
  if (s.i === null) return equals === null ? MAYBE : mayBe(equals, isTaken);
  return pred(s.i) ? 1 : 0;
}

/** Whether a txn compare holds on a key's state. */
export function compareHolds(c: TxnCompare, s: KeyState, isTaken: IsTakenIndex = NOTHING_TAKEN): Truth {
  if ('exists' in c) return (s.v !== null) === c.exists ? 1 : 0;
  if ('value' in c) return s.v === c.value ? 1 : 0;
  const want = c.index;
  if (typeof want === 'number') return indexIs(s, (i) => i === want, want, isTaken);
  return indexIs(
    s,
    (i) => (want.lt === undefined || i < want.lt) && (want.lte === undefined || i <= want.lte) && (want.gt === undefined || i > want.gt) && (want.gte === undefined || i >= want.gte),
    null,
    isTaken,
  );
}

/** Whether an `If-Match` / `If-None-Match: *` precondition holds on a key's state. */
export function preconditionHolds(h: Pick<HistoryOp, 'ifMatch' | 'ifNoneMatch'>, s: KeyState, isTaken: IsTakenIndex = NOTHING_TAKEN): Truth {
  if (h.ifNoneMatch) return s.v === null ? 1 : 0;
  const m = h.ifMatch;
  if (m === undefined) return 1;
  if (s.v === null) return 0;
  if (m === '*') return 1;
  if (s.i === null) return m.some((x) => mayBe(x, isTaken) !== 0) ? MAYBE : 0;
  return m.includes(s.i) ? 1 : 0;
}

/** Whether all compares of a txn hold on `get(key)`. */
export function comparesHold(t: TxnRequest, get: (key: string) => KeyState, isTaken: IsTakenIndex = NOTHING_TAKEN): Truth {
  let r: Truth = 1;
  for (const c of t.compare) r = and(r, compareHolds(c, get(c.key), isTaken));
  return r;
}

/**
 * The sequential reference: a store that applies requests one at a time at increasing indexes and
 * answers as the server must. Tests generate legal histories with it; it is the model's
 * specification in executable form.
 */
export class KvReference {
  private readonly data = new Map<string, { value: string; index: number }>();
  /** the last index handed out */
  lastIndex = 0;

  state(key: string): KeyState {
    const d = this.data.get(key);
    return d ? { v: d.value, i: d.index, f: d.index } : { v: null, i: 0, f: 0 };
  }

  private conflictOf(key: string): { index: number } | null {
    const d = this.data.get(key);
    return d ? { index: d.index } : null;
  }

  /**
   * Applies `h`'s request (key/value/pairs/ifMatch/ifNoneMatch/txn fields) and fills in its answer:
   * result and index, conflict on a failed precondition, txnResult. A write takes the next index
   * even when its precondition fails, as a log entry does.
   */
  apply(h: HistoryOp): void {
    switch (h.kind) {
      case 'get': {
        const d = this.data.get(h.key as string);
        h.result = d ? d.value : null;
        if (d) h.index = d.index;
        else delete h.index;
        return;
      }
      case 'set': {
        const key = h.key as string;
        const index = ++this.lastIndex;
        if (preconditionHolds(h, this.state(key)) !== 1) {
          h.conflict = { current: this.conflictOf(key) };
          return;
        }
        this.data.set(key, { value: h.value as string, index });
        h.index = index;
        return;
      }
      case 'setMany': {
        const index = ++this.lastIndex;
        const keys = Object.keys(h.pairs ?? {});
        if (h.ifNoneMatch) {
          const existing = keys.filter((k) => this.data.has(k)).map((k) => ({ key: k, index: this.data.get(k)?.index as number }));
          if (existing.length > 0) {
            h.conflict = { existing };
            return;
          }
        }
        for (const [k, v] of Object.entries(h.pairs ?? {})) this.data.set(k, { value: v, index });
        h.index = index;
        return;
      }
      case 'delete': {
        const key = h.key as string;
        const index = ++this.lastIndex;
        if (h.ifMatch !== undefined && preconditionHolds(h, this.state(key)) !== 1) {
          h.conflict = { current: this.conflictOf(key) };
          return;
        }
        this.data.delete(key);
        h.index = index;
        return;
      }
      case 'txn': {
        const t = h.txn as TxnRequest;
        const succeeded = comparesHold(t, (k) => this.state(k)) === 1;
        const branch = succeeded ? t.success : t.failure;
        const isWriting = branch.some((o) => o.op !== 'get');
        const index = isWriting ? ++this.lastIndex : this.lastIndex;
        const results: TxnOpResult[] = [];
        for (const o of branch) {
          if (o.op === 'set') {
            this.data.set(o.key, { value: o.value, index });
            results.push({ op: 'set', key: o.key, index });
          } else if (o.op === 'delete') {
            results.push({ op: 'delete', key: o.key, deleted: this.data.delete(o.key) });
          } else {
            const d = this.data.get(o.key);
            results.push(d ? { op: 'get', key: o.key, value: d.value, index: d.index } : { op: 'get', key: o.key, value: null });
          }
        }
        h.txnResult = { succeeded, index, results };
        return;
      }
    }
  }
}
