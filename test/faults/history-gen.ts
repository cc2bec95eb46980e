/**
 * Histories for testing the linearizability checker (test/unit/linearizability.test.ts): legal ones
 * generated from the sequential reference with random concurrency, an injected anomaly, and an
 * exhaustive search to compare the checker with on small ones.
 */
import { compileGroup } from './linearizability.js';
import { KvReference, keysOf, type HistoryOp, type KeyState, type TxnCompare, type TxnOp } from './kv-model.js';
import { makeRng } from '../sim/rng.js';
import { expectedEffects } from './watch-check.js';

const rng = makeRng;

/**
 * A legal history with the extended operations: ops get a random linearization point inside
 * [invoke, complete] and are decided in that order by the sequential reference (KvReference), which
 * fills in every answer; requests are built from the reference's state at that point, so CAS and
 * compares succeed often. Some ops fail (never applied), some lose their answer (applied or not).
 */
export function generateExtended(seed: number, total: number, opts: { clients?: number; keys?: string[]; unknownRate?: number; failRate?: number; isPlain?: boolean; committed?: Map<number, { type: 'put' | 'delete'; key: string; value?: string }[]> } = {}): HistoryOp[] {
  const r = rng(seed);
  const clients = opts.clients ?? 5;
  const keys = opts.keys ?? ['a', 'b', 'c', 'd'];
  const unknownRate = opts.unknownRate ?? 0.05;
  const failRate = opts.failRate ?? 0.03;
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const distinct = (n: number): string[] => keys.slice().sort(() => r() - 0.5).slice(0, n);
  const clientFree = new Array<number>(clients).fill(0);
  const slots: { client: number; invokeMs: number; lp: number; completeMs: number }[] = [];
  for (let i = 0; i < total; i++) {
    const client = Math.floor(r() * clients);
    const invokeMs = clientFree[client] + Math.floor(r() * 5);
    const lp = invokeMs + Math.floor(r() * 10) + r() * 0.5;
    const completeMs = Math.ceil(lp) + Math.floor(r() * 10);
    clientFree[client] = completeMs + 1;
    slots.push({ client, invokeMs, lp, completeMs });
  }
  slots.sort((p, q) => p.lp - q.lp);
  const ref = new KvReference();
  const seenIndexes: number[] = [0];
  let counter = 0;
  const value = () => `v${counter++}`;
  const someIndex = (k: string): number => {
    const s = ref.state(k);
    return s.v !== null && r() < 0.6 ? (s.i as number) : pick(seenIndexes);
  };
  const out: HistoryOp[] = [];
  for (const s of slots) {
    const base = { client: s.client, invokeMs: s.invokeMs, completeMs: s.completeMs as number | null, ok: true };
    const key = pick(keys);
    const x = opts.isPlain ? r() * 0.53 : r(); // plain: get / set / setMany / delete only
    let h: HistoryOp;
    if (x < 0.25) h = { ...base, kind: 'get', key };
    else if (x < 0.4) h = { ...base, kind: 'set', key, value: value() };
    else if (x < 0.47) h = { ...base, kind: 'setMany', pairs: Object.fromEntries(distinct(2 + Math.floor(r() * 2)).map((k) => [k, value()])) };
    else if (x < 0.53) h = ref.state(key).v === null ? { ...base, kind: 'get', key } : { ...base, kind: 'delete', key }; // 404 is recorded as a read
    else if (x < 0.65) h = { ...base, kind: 'set', key, value: value(), ifMatch: r() < 0.1 ? '*' : [someIndex(key)] };
    else if (x < 0.7) h = { ...base, kind: 'delete', key, ifMatch: [someIndex(key)] };
    else if (x < 0.78) h = { ...base, kind: 'set', key, value: value(), ifNoneMatch: true };
    else if (x < 0.83) h = { ...base, kind: 'setMany', ifNoneMatch: true, pairs: Object.fromEntries(distinct(2).map((k) => [k, value()])) };
    else {
      const compare: TxnCompare[] = distinct(1 + Math.floor(r() * 2)).map((k): TxnCompare => {
        const y = r();
        const st = ref.state(k);
        if (y < 0.4) return { key: k, index: someIndex(k) };
        if (y < 0.6) return { key: k, exists: r() < 0.5 };
        if (y < 0.8) return { key: k, value: st.v !== null && r() < 0.7 ? st.v : 'nope' };
        return { key: k, index: r() < 0.5 ? { lt: (st.i ?? 0) + 1 } : { gt: st.i ?? 0 } };
      });
      const branch = (n: number): TxnOp[] =>
        distinct(n).map((k): TxnOp => {
          const y = r();
          return y < 0.4 ? { op: 'set', key: k, value: value() } : y < 0.6 ? { op: 'delete', key: k } : { op: 'get', key: k };
        });
      h = { ...base, kind: 'txn', txn: { compare, success: branch(1 + Math.floor(r() * 3)), failure: branch(Math.floor(r() * 3)) } };
    }
    const isWrite = h.kind !== 'get';
    if (isWrite && r() < failRate) {
      out.push({ ...h, ok: false, error: '503:NOT_LEADER' }); // refused: never applied
      continue;
    }
    const isApplied = !(isWrite && r() < unknownRate / 2); // lost before the log
    if (isApplied) {
      ref.apply(h);
      // Its effects as the members' history records them, at the index the reference gave it.
      const at = opts.committed ? expectedEffects(h) : null;
      if (at && at.effects.length > 0) opts.committed?.set(at.index, at.effects);
    }
    if (h.index !== undefined) seenIndexes.push(h.index);
    if (!isApplied || (isWrite && r() < unknownRate)) {
      // No answer: the client knows nothing of what happened.
      h.completeMs = null;
      delete h.index;
      delete h.conflict;
      delete h.txnResult;
      h.error = '0:none';
    }
    out.push(h);
  }
  return out.sort((p, q) => p.invokeMs - q.invokeMs);
}

/** The model's answer by exhaustive search over every real-time-respecting order (no memo, no pruning). */
export function bruteForce(h: HistoryOp[]): boolean {
  const keys = [...new Set(h.filter((o) => o.ok).flatMap(keysOf))].sort();
  const slotOf = new Map(keys.map((k, j) => [k, j]));
  const ops = compileGroup(h, slotOf, false);
  const done = new Array<boolean>(ops.length).fill(false);
  const go = (state: KeyState[]): boolean => {
    if (ops.every((o, i) => done[i] || o.optional)) return true;
    for (let i = 0; i < ops.length; i++) {
      if (done[i]) continue;
      if (ops.some((p, j) => !done[j] && j !== i && p.complete < ops[i].invoke)) continue;
      for (const next of ops[i].step(state)) {
        done[i] = true;
        const found = go(next);
        done[i] = false;
        if (found) return true;
      }
    }
    return false;
  };
  return go(keys.map(() => ({ v: null, i: 0, f: 0 })));
}

/** Turns one answered read of a value into a read of an older value that a later answered write overwrote before the read began. */
export function injectStaleRead(h: HistoryOp[], r: () => number): boolean {
  type W = { op: HistoryOp; key: string; value: string | null; index: number | undefined };
  const writes: W[] = [];
  for (const o of h) {
    if (!o.ok || o.completeMs === null || o.conflict) continue;
    if (o.kind === 'set') writes.push({ op: o, key: o.key as string, value: o.value as string, index: o.index });
    else if (o.kind === 'delete') writes.push({ op: o, key: o.key as string, value: null, index: o.index });
    else if (o.kind === 'setMany') for (const [k, v] of Object.entries(o.pairs ?? {})) writes.push({ op: o, key: k, value: v, index: o.index });
    else if (o.kind === 'txn' && o.txnResult && o.txn) {
      const ops = o.txnResult.succeeded ? o.txn.success : o.txn.failure;
      ops.forEach((t, j) => {
        const res = o.txnResult?.results[j];
        if (t.op === 'set') writes.push({ op: o, key: t.key, value: t.value, index: o.txnResult?.index });
        else if (t.op === 'delete' && res?.op === 'delete' && res.deleted) writes.push({ op: o, key: t.key, value: null, index: o.txnResult?.index });
      });
    }
  }
  const reads = h.filter((o) => o.kind === 'get' && o.ok && o.completeMs !== null);
  for (let tries = 0; tries < 200; tries++) {
    const g = reads[Math.floor(r() * reads.length)];
    const candidates = writes.filter(
      (w1) =>
        w1.key === g.key && w1.value !== null && w1.value !== g.result &&
        writes.some((w2) => w2.key === g.key && w2.op !== w1.op && (w1.op.completeMs as number) < w2.op.invokeMs && (w2.op.completeMs as number) < g.invokeMs),
    );
    if (candidates.length === 0) continue;
    const w1 = candidates[Math.floor(r() * candidates.length)];
    g.result = w1.value;
    if (w1.index !== undefined) g.index = w1.index;
    return true;
  }
  return false;
}

