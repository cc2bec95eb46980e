import { expect } from 'chai';
import {
  checkLinearizable,
  countLostAcked,
  countStaleReads,
  type HistoryOp,
} from '../faults/linearizability.js';
import { classifyWrite } from '../faults/workload.js';
import { makeRng } from '../sim/rng.js';

const set = (client: number, key: string, value: string, invokeMs: number, completeMs: number | null, ok = true): HistoryOp => ({
  client, kind: 'set', key, value, invokeMs, completeMs, ok,
});
const get = (client: number, key: string, result: string | null, invokeMs: number, completeMs: number | null, ok = true): HistoryOp => ({
  client, kind: 'get', key, result, invokeMs, completeMs, ok,
});
const del = (client: number, key: string, invokeMs: number, completeMs: number | null, ok = true): HistoryOp => ({
  client, kind: 'delete', key, invokeMs, completeMs, ok,
});

const rng = makeRng;

/**
 * Generate a legal history: each of `clients` clients issues ops sequentially;
 * each op gets a random linearization point inside [invoke, complete]; the
 * ops are applied to a model in linearization-point order to fill results.
 */
function generateHistory(seed: number, total: number, clients = 5): HistoryOp[] {
  const r = rng(seed);
  const keys = ['a', 'b', 'c'];
  const clientFree = new Array<number>(clients).fill(0);
  const items: { op: HistoryOp; lp: number }[] = [];
  let counter = 0;
  for (let i = 0; i < total; i++) {
    const client = Math.floor(r() * clients);
    const invokeMs = clientFree[client] + Math.floor(r() * 5);
    const lp = invokeMs + Math.floor(r() * 10);
    const completeMs = lp + Math.floor(r() * 10);
    clientFree[client] = completeMs + 1;
    const key = keys[Math.floor(r() * keys.length)];
    const x = r();
    let op: HistoryOp;
    if (x < 0.4) op = set(client, key, `v${counter++}`, invokeMs, completeMs);
    else if (x < 0.5) op = del(client, key, invokeMs, completeMs);
    else if (x < 0.55) {
      op = { client, kind: 'setMany', pairs: { a: `v${counter++}`, b: `v${counter++}` }, invokeMs, completeMs, ok: true };
    } else op = get(client, key, null, invokeMs, completeMs);
    items.push({ op, lp });
  }
  items.sort((p, q) => p.lp - q.lp);
  const model = new Map<string, string>();
  for (const { op } of items) {
    if (op.kind === 'set' && op.key !== undefined && op.value !== undefined) model.set(op.key, op.value);
    else if (op.kind === 'delete' && op.key !== undefined) model.delete(op.key);
    else if (op.kind === 'setMany') for (const [k, v] of Object.entries(op.pairs ?? {})) model.set(k, v);
    else if (op.kind === 'get' && op.key !== undefined) op.result = model.get(op.key) ?? null;
  }
  return items.map((it) => it.op).sort((p, q) => p.invokeMs - q.invokeMs);
}

describe('linearizability checker', () => {
  it('accepts a sequential legal history', () => {
    const h = [set(1, 'k', 'a', 0, 1), get(1, 'k', 'a', 2, 3), set(2, 'k', 'b', 4, 5), get(3, 'k', 'b', 6, 7)];
    expect(checkLinearizable(h).linearizable).to.equal(true);
    expect(countStaleReads(h)).to.equal(0);
  });

  it('accepts concurrent overlapping writes read in either order', () => {
    const base = [set(1, 'k', 'a', 0, 10), set(2, 'k', 'b', 1, 9)];
    expect(checkLinearizable([...base, get(3, 'k', 'a', 11, 12)]).linearizable).to.equal(true);
    expect(checkLinearizable([...base, get(3, 'k', 'b', 11, 12)]).linearizable).to.equal(true);
    // a read overlapping both writes may see either, or the initial absence
    expect(checkLinearizable([...base, get(3, 'k', null, 2, 3)]).linearizable).to.equal(true);
  });

  it('rejects a stale read after an acknowledged write', () => {
    const h = [set(1, 'k', 'a', 0, 1), set(1, 'k', 'b', 2, 3), get(2, 'k', 'a', 4, 5)];
    const r = checkLinearizable(h);
    expect(r.linearizable).to.equal(false);
    expect(r.badKey).to.equal('k');
    expect(countStaleReads(h)).to.equal(1);
  });

  it('rejects a read of a value never written', () => {
    const h = [set(1, 'k', 'a', 0, 1), get(2, 'k', 'zzz', 2, 3)];
    expect(checkLinearizable(h).linearizable).to.equal(false);
  });

  it('accepts an unknown-outcome write that later becomes visible', () => {
    const h = [set(1, 'k', 'a', 0, 1), set(2, 'k', 'b', 2, null), get(3, 'k', 'a', 10, 11), get(3, 'k', 'b', 20, 21)];
    expect(checkLinearizable(h).linearizable).to.equal(true);
  });

  it('accepts an unknown-outcome write that is never visible', () => {
    const h = [set(1, 'k', 'a', 0, 1), set(2, 'k', 'b', 2, null), get(3, 'k', 'a', 10, 11), get(3, 'k', 'a', 20, 21)];
    expect(checkLinearizable(h).linearizable).to.equal(true);
  });

  it('rejects an unknown-outcome write visible then reverted', () => {
    const h = [set(1, 'k', 'a', 0, 1), set(2, 'k', 'b', 2, null), get(3, 'k', 'b', 10, 11), get(3, 'k', 'a', 20, 21)];
    expect(checkLinearizable(h).linearizable).to.equal(false);
  });

  it('rejects a definitely-failed write that is read', () => {
    const h = [set(1, 'k', 'a', 0, 1), set(2, 'k', 'b', 2, 3, false), get(3, 'k', 'b', 4, 5)];
    expect(checkLinearizable(h).linearizable).to.equal(false);
  });

  it('accepts delete then get null, including delete of an absent key', () => {
    const h = [del(1, 'k', 0, 1), set(1, 'k', 'a', 2, 3), del(2, 'k', 4, 5), get(3, 'k', null, 6, 7)];
    expect(checkLinearizable(h).linearizable).to.equal(true);
    expect(checkLinearizable([...h, get(3, 'k', 'a', 8, 9)]).linearizable).to.equal(false);
  });

  it('splits setMany per key', () => {
    const h: HistoryOp[] = [
      { client: 1, kind: 'setMany', pairs: { x: '1', y: '2' }, invokeMs: 0, completeMs: 1, ok: true },
      get(2, 'x', '1', 2, 3),
      get(2, 'y', '2', 2, 3),
    ];
    expect(checkLinearizable(h).linearizable).to.equal(true);
    expect(checkLinearizable([...h, get(3, 'y', null, 4, 5)]).linearizable).to.equal(false);
  });

  it('accepts a generated ~200-op, 5-client history quickly', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const h = generateHistory(seed, 200);
      const t0 = Date.now();
      const r = checkLinearizable(h);
      const dt = Date.now() - t0;
      expect(r.linearizable, `seed ${seed}`).to.equal(true);
      expect(dt, `seed ${seed} took ${dt}ms`).to.be.below(2000);
      expect(countStaleReads(h)).to.equal(0);
    }
  });

  it('rejects the generated history with one read value corrupted', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const h = generateHistory(seed, 200);
      const reads = h.filter((o) => o.kind === 'get');
      expect(reads.length).to.be.greaterThan(0);
      const victim = reads[Math.floor(reads.length / 2)];
      victim.result = 'corrupted-value';
      const r = checkLinearizable(h);
      expect(r.linearizable, `seed ${seed}`).to.equal(false);
      expect(r.badKey).to.equal(victim.key);
    }
  });

  it('accepts the generated history with some writes turned unknown-outcome or failed-unseen', () => {
    for (const seed of [6, 7, 8]) {
      const h = generateHistory(seed, 200);
      const readValues = new Set(h.filter((o) => o.kind === 'get').map((o) => o.result));
      h.forEach((o, i) => {
        if (o.kind === 'set' && i % 5 === 0) o.completeMs = null; // outcome lost
        if (o.kind === 'get' && i % 7 === 0) o.completeMs = null; // unknown read: dropped
        if (o.kind === 'set' && i % 11 === 1 && !readValues.has(o.value ?? null)) o.ok = false;
      });
      const r = checkLinearizable(h);
      expect(r.linearizable, `seed ${seed}`).to.equal(true);
      expect(r.explored).to.be.greaterThan(0);
    }
  });

  it('agrees with a brute-force search on 600 random small single-key histories (legal and illegal)', () => {
    // Brute force: every subset of unknown-outcome writes, every order respecting real time.
    const brute = (h: HistoryOp[]): boolean => {
      const ops = h.filter((o) => o.ok && !(o.kind === 'get' && o.completeMs === null));
      const n = ops.length;
      const done = new Array<boolean>(n).fill(false);
      const end = (o: HistoryOp) => o.completeMs ?? Number.POSITIVE_INFINITY;
      const go = (state: string | null, left: number): boolean => {
        if (ops.every((o, i) => done[i] || o.completeMs === null)) return true;
        if (left === 0) return false;
        for (let i = 0; i < n; i++) {
          if (done[i]) continue;
          const o = ops[i];
          // o may go next only if no other pending op completed before o was invoked
          if (ops.some((p, j) => !done[j] && j !== i && end(p) < o.invokeMs)) continue;
          if (o.kind === 'get' && (o.result ?? null) !== state) continue;
          done[i] = true;
          const next = o.kind === 'set' ? (o.value ?? '') : o.kind === 'delete' ? null : state;
          if (go(next, left - 1)) {
            done[i] = false;
            return true;
          }
          done[i] = false;
        }
        return false;
      };
      return go(null, n);
    };
    const r = rng(99);
    let legal = 0;
    let illegal = 0;
    for (let t = 0; t < 600; t++) {
      const h: HistoryOp[] = [];
      const n = 2 + Math.floor(r() * 6);
      let written = 0;
      for (let i = 0; i < n; i++) {
        const invokeMs = Math.floor(r() * 20);
        const completeMs = r() < 0.25 ? null : invokeMs + Math.floor(r() * 8);
        const x = r();
        if (x < 0.35) h.push(set(i, 'k', `v${written++}`, invokeMs, completeMs));
        else if (x < 0.5) h.push(del(i, 'k', invokeMs, completeMs));
        else {
          const pickV = Math.floor(r() * (written + 1));
          h.push(get(i, 'k', pickV === written ? null : `v${pickV}`, invokeMs, completeMs ?? invokeMs + 3));
        }
      }
      const want = brute(h);
      if (want) legal++;
      else illegal++;
      expect(checkLinearizable(h).linearizable, JSON.stringify(h)).to.equal(want);
    }
    expect(legal).to.be.greaterThan(50);
    expect(illegal).to.be.greaterThan(50);
  });

  it('settles a 3000-op history with many unknown-outcome writes and deletes in near-linear search', () => {
    const h = generateHistory(11, 3000, 8);
    h.forEach((o, i) => {
      if ((o.kind === 'set' || o.kind === 'delete' || o.kind === 'setMany') && i % 4 === 0) o.completeMs = null;
    });
    const res = checkLinearizable(h, 200_000);
    expect(res.linearizable).to.equal(true); // 'unknown' would mean the search budget ran out
    expect(res.explored).to.be.below(3 * h.length); // near-linear: the prunings keep it off the exponential path
  });

  it('counts an acknowledged write missing from the final state as lost, unless a later write may explain it', () => {
    const h = [set(1, 'k', 'a', 0, 1), set(2, 'k', 'b', 2, 3)];
    expect(countLostAcked(h, new Map([['k', 'b']]))).to.equal(0);
    expect(countLostAcked(h, new Map([['k', 'a']]))).to.equal(1); // b was acked last and is gone
    expect(countLostAcked(h, new Map())).to.equal(1);
    // an unknown-outcome delete after b may have removed it
    expect(countLostAcked([...h, del(3, 'k', 4, null)], new Map())).to.equal(0);
    // a definitely failed delete may not
    expect(countLostAcked([...h, del(3, 'k', 4, 5, false)], new Map())).to.equal(1);
    // concurrent writes: either may be last
    const c = [set(1, 'k', 'a', 0, 10), set(2, 'k', 'b', 1, 9)];
    expect(countLostAcked(c, new Map([['k', 'a']]))).to.equal(0);
    expect(countLostAcked(c, new Map([['k', 'b']]))).to.equal(0);
  });

  it('classifies write answers: only proofs of no effect are failures', () => {
    expect(classifyWrite(200, null, '')).to.equal('ok');
    expect(classifyWrite(503, 'NOT_LEADER', 'not the leader')).to.equal('fail');
    expect(classifyWrite(503, 'NO_LEADER', 'no leader is available to take the write')).to.equal('fail');
    expect(classifyWrite(503, 'NO_LEADER', 'leadership changed before the write committed; it was not applied')).to.equal('fail');
    expect(classifyWrite(503, 'NO_LEADER', 'the leader could not be reached')).to.equal('unknown');
    expect(classifyWrite(503, 'UNAVAILABLE', 'node is shutting down')).to.equal('unknown');
    expect(classifyWrite(504, 'TIMEOUT', 'outcome unknown')).to.equal('unknown');
    expect(classifyWrite(500, 'INTERNAL', 'internal error')).to.equal('unknown');
  });
});
