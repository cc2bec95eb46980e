import { expect } from 'chai';
import {
  checkLinearizable,
  countStaleReads,
  type HistoryOp,
} from '../faults/linearizability.js';
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
});
