/**
 * The log bound (src/storage/log-bound.ts): a durable lower bound of the synced log, checked at load,
 * so that a log RocksDB shortened (damaged WAL, point-in-time recovery) is refused. Over the
 * in-memory LogStore, whose content the tests replace to play "what RocksDB recovered".
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Entry } from '../../../src/raft/core/types.js';
import { MemoryLogStore } from '../../../src/storage/memory/index.js';
import { BoundedLogStore, LOG_BOUND_FILE, decodeSlot, encodeSlot, readLogBound } from '../../../src/storage/log-bound.js';
import type { LogStore, RaftWrite } from '../../../src/storage/types.js';

const noop = (index: number, term: number): Entry => ({ index, term, type: 'noop' });
const range = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => noop(from + i, term));

describe('storage: log bound', () => {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-bound-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A MemoryLogStore holding `w` (what RocksDB would recover). */
  async function recovered(...writes: RaftWrite[]): Promise<MemoryLogStore> {
    const m = new MemoryLogStore();
    for (const w of writes) await m.write(w);
    return m;
  }

  async function loadError(inner: LogStore): Promise<string | null> {
    const s = new BoundedLogStore(inner, dir);
    try {
      await s.load();
      await s.close();
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  it('refuses a log shorter than what was synced, and accepts the full one', async () => {
    const inner = new MemoryLogStore();
    const s = new BoundedLogStore(inner, dir);
    await s.load();
    await s.write({ hardState: { term: 1, votedFor: 'a' }, entries: range(1, 10, 1) });
    await s.close();
    expect(await loadError(inner)).to.equal(null);
    // RocksDB dropped the WAL after index 5:
    const short = await recovered({ hardState: { term: 1, votedFor: 'a' }, entries: range(1, 5, 1) });
    expect(await loadError(short)).to.match(/the log ends at index 5, but this node had synced entries up to index 10/);
  });

  it('refuses an older term or a lost vote', async () => {
    const inner = new MemoryLogStore();
    const s = new BoundedLogStore(inner, dir);
    await s.load();
    await s.write({ hardState: { term: 3, votedFor: 'b' }, entries: [] });
    await s.close();
    expect(await loadError(await recovered({ hardState: { term: 2, votedFor: 'b' }, entries: [] }))).to.match(/stored term is 2, but this node had synced term 3/);
    expect(await loadError(await recovered({ hardState: { term: 3, votedFor: null }, entries: [] }))).to.match(/vote in term 3 is none, but this node had synced a vote for b/);
    expect(await loadError(await recovered({ hardState: { term: 4, votedFor: null }, entries: [] }))).to.equal(null);
  });

  it('a suffix replaced by a new leader lowers the bound durably before the write is issued', async () => {
    const inner = new MemoryLogStore();
    const s = new BoundedLogStore(inner, dir);
    await s.load();
    await s.write({ hardState: { term: 1, votedFor: null }, entries: range(1, 10, 1) });
    // The truncating write fails (crash): the bound on disk is already at most index 5.
    const failing: LogStore = Object.assign(Object.create(inner) as LogStore, { write: () => Promise.reject(new Error('crash')) });
    const s2 = new BoundedLogStore(failing, dir);
    await s2.load();
    await s2.write({ hardState: null, entries: range(6, 8, 2) }).catch(() => undefined);
    expect((await readLogBound(path.join(dir, LOG_BOUND_FILE)))?.bound).to.include({ index: 5, term: null });
    // Recovered with the shorter log (indices 6..8 of term 2 lost with the crash, 6..10 of term 1 deleted): accepted.
    expect(await loadError(await recovered({ hardState: { term: 1, votedFor: null }, entries: range(1, 5, 1) }))).to.equal(null);
  });

  it('after a replaced suffix, recovering the old entries instead of the new ones is refused (term check)', async () => {
    const inner = new MemoryLogStore();
    const s = new BoundedLogStore(inner, dir);
    await s.load();
    await s.write({ hardState: { term: 2, votedFor: null }, entries: range(1, 10, 1) });
    await s.write({ hardState: null, entries: range(6, 10, 2) });
    await s.close();
    expect(await loadError(inner)).to.equal(null);
    const old = await recovered({ hardState: { term: 2, votedFor: null }, entries: range(1, 10, 1) });
    expect(await loadError(old)).to.match(/entry at index 10 has term 1, but this node had synced term 2 there/);
  });

  it('a snapshot from the leader that ends below the log lowers the bound; one above raises it', async () => {
    const inner = new MemoryLogStore();
    const s = new BoundedLogStore(inner, dir);
    await s.load();
    await s.write({ hardState: { term: 1, votedFor: null }, entries: range(1, 10, 1) });
    const meta = (lastIndex: number, lastTerm: number) => ({ lastIndex, lastTerm, config: { members: [] } });
    await s.saveSnapshot({ meta: meta(7, 2), data: '[]' }, true);
    expect((await readLogBound(path.join(dir, LOG_BOUND_FILE)))?.bound).to.include({ index: 7, term: 2 });
    await s.saveSnapshot({ meta: meta(20, 3), data: '[]' }, true);
    await s.close();
    expect((await readLogBound(path.join(dir, LOG_BOUND_FILE)))?.bound).to.include({ index: 20, term: 3 });
    expect(await loadError(inner)).to.equal(null);
  });

  it('a missing file (first start, or data from a version without it) is created from the loaded state', async () => {
    const inner = await recovered({ hardState: { term: 2, votedFor: 'x' }, entries: range(1, 4, 2) });
    expect(await loadError(inner)).to.equal(null);
    expect((await readLogBound(path.join(dir, LOG_BOUND_FILE)))?.bound).to.deep.equal({ index: 4, term: 2, hardTerm: 2, vote: 'x' });
  });

  it('a torn slot falls back to the other one; a file with no valid slot is damage', async () => {
    const file = path.join(dir, LOG_BOUND_FILE);
    const a = encodeSlot(7, { index: 3, term: 1, hardTerm: 1, vote: null });
    const b = encodeSlot(8, { index: 4, term: 1, hardTerm: 1, vote: null });
    expect(decodeSlot(a)?.seq).to.equal(7);
    b.write('garbage', 40);
    fs.writeFileSync(file, Buffer.concat([a, Buffer.alloc(4096 - a.length), b]));
    expect((await readLogBound(file))?.bound.index).to.equal(3);
    a.write('garbage', 40);
    fs.writeFileSync(file, Buffer.concat([a, Buffer.alloc(4096 - a.length), b]));
    let err: Error | null = null;
    await readLogBound(file).catch((e: Error) => (err = e));
    expect(err).to.match(/damaged/);
  });
});

describe('storage: log bound file layout', () => {
  it('writes alternate between the two slots, so the newest record never overwrites the one before it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-bound-'));
    try {
      const s = new BoundedLogStore(new MemoryLogStore(), dir);
      await s.load();
      for (let i = 1; i <= 5; i++) {
        await s.write({ hardState: { term: 1, votedFor: null }, entries: [noop(i, 1)] });
        const data = fs.readFileSync(path.join(dir, LOG_BOUND_FILE));
        const seqs = [decodeSlot(data.subarray(0, 4096))?.seq, decodeSlot(data.subarray(4096, 8192))?.seq].sort();
        expect(seqs[1]! - seqs[0]!, `slots after write ${i}: ${seqs.join(',')}`).to.equal(1);
        expect((await readLogBound(path.join(dir, LOG_BOUND_FILE)))?.bound.index).to.equal(i);
      }
      await s.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
