/**
 * The RocksDB writer thread (src/storage/rocksdb/writer.ts): which writes are synced, when a write
 * resolves, and that a failure of the writer rejects writes and never acknowledges them.
 * White-box where it must be: the stores' shared RocksDatabase and its Worker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { openStorage } from '../../../src/storage/index.js';
import { INLINE_WRITE_MAX_OPS, SYNC_READ_MAX_KEYS, type RocksDatabase } from '../../../src/storage/rocksdb/index.js';
import type { NodeStorage } from '../../../src/storage/types.js';
import { BatchWriter, loadRocksLevel, type BatchOp } from '../../../src/storage/rocksdb/binding.js';
import type { WriterReply } from '../../../src/storage/rocksdb/writer.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import { applyOps } from './contract.js';

interface Opened {
  s: NodeStorage;
  db: RocksDatabase;
  writer: Worker;
  dir: string;
}

async function open(): Promise<Opened> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-writer-'));
  const s = await openStorage(dir, 'n1');
  const db = (s.log as unknown as { db: RocksDatabase }).db;
  const writer = (db as unknown as { writer: Worker }).writer;
  return { s, db, writer, dir };
}

async function close(o: Opened): Promise<void> {
  await o.s.log.close();
  await o.s.kv.close();
  fs.rmSync(o.dir, { recursive: true, force: true });
}

/** Settles to 'resolved', 'rejected: <message>' or 'pending' (still pending after `ms`). */
async function outcome(p: Promise<unknown>, ms = 0): Promise<string> {
  const timeout = new Promise<string>((r) => setTimeout(() => r('pending'), ms));
  return Promise.race([p.then(() => 'resolved', (err: Error) => `rejected: ${err.message}`), timeout]);
}

describe('storage: RocksDB writer thread', () => {
  it('log writes, snapshots and snapshot imports are synced (WAL fsync); KV applies (also those that only move the applied index) are not', async () => {
    const o = await open();
    try {
      const { db, s } = o;
      let before = db.walStats();
      const delta = () => {
        const now = db.walStats();
        const d = { writes: now.writes - before.writes, syncs: now.syncs - before.syncs };
        before = now;
        return d;
      };
      await s.log.write({ hardState: { term: 1, votedFor: 'n1' }, entries: [{ index: 1, term: 1, type: 'normal', data: 'x' }] });
      expect(delta()).to.deep.equal({ writes: 1, syncs: 1 });
      await s.log.write({ hardState: { term: 2, votedFor: null }, entries: [] });
      expect(delta()).to.deep.equal({ writes: 1, syncs: 1 });
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      expect(delta()).to.deep.equal({ writes: 1, syncs: 0 });
      await new KvStateMachine(s.kv).applyCommands([{ index: 2, ops: [{ op: 'set', key: 'b', value: '2' }] }, { index: 3, ops: [{ op: 'delete', key: 'a' }] }], 3);
      expect(delta()).to.deep.equal({ writes: 1, syncs: 0 });
      await s.kv.persist([], 4);
      expect(delta()).to.deep.equal({ writes: 1, syncs: 0 });
      await s.log.saveSnapshot({ meta: { lastIndex: 1, lastTerm: 1, config: { members: [] } }, data: null }, false);
      expect(delta()).to.deep.equal({ writes: 1, syncs: 1 });
      await new KvStateMachine(s.kv).restoreSnapshot(JSON.stringify([['c', '3', 3]]), 4);
      expect(delta()).to.deep.equal({ writes: 1, syncs: 1 });
    } finally {
      await close(o);
    }
  });

  it('an apply lands as one RocksDB write: the keys, the lease table, the watch history record and the applied index together', async () => {
    const o = await open();
    try {
      const { db, s } = o;
      const sm = new KvStateMachine(s.kv);
      await sm.applyEntries([{ index: 1, term: 1, type: 'normal', data: JSON.stringify({ kind: 'lease-grant', ttlMs: 5000 }) }]);
      const before = db.walStats().writes;
      await sm.applyEntries([{ index: 2, term: 1, type: 'normal', data: JSON.stringify({ ops: [{ op: 'set', key: 'a', value: '1', lease: 'l-1' }, { op: 'set', key: 'b', value: '2' }] }) }]);
      expect(db.walStats().writes - before, 'WAL writes for one applied entry').to.equal(1);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 2 });
      expect((await s.kv.loadLeases()).attached).to.deep.equal([['l-1', 'a']]);
      const h = await s.kv.readHistory(2, 10);
      expect(h.appliedIndex).to.equal(2);
      expect(h.entries.map((e) => [e.index, e.effects.map((x) => x.key)])).to.deep.equal([[2, ['a', 'b']]]);
    } finally {
      await close(o);
    }
  });

  it('a write resolves only after the writer acknowledged it, and is in RocksDB by then', async () => {
    const o = await open();
    try {
      const { db, s } = o;
      // Hold the writer's acknowledgements (white-box: RocksDatabase.onReply handles them).
      const target = db as unknown as { onReply(reply: WriterReply): void };
      const realOnReply = target.onReply.bind(db);
      const held: WriterReply[] = [];
      let onHeld: () => void = () => undefined;
      target.onReply = (reply) => {
        held.push(reply);
        onHeld();
      };
      const write = s.log.write({ hardState: { term: 7, votedFor: 'n1' }, entries: [] });
      await new Promise<void>((r) => (onHeld = r));
      // The writer has answered, but the answer has not been handed over: still pending.
      expect(await outcome(write, 100)).to.equal('pending');
      // The writer answers only after writing: the main thread already reads the new hard state.
      expect(await db.get('h')).to.equal(JSON.stringify({ term: 7, votedFor: 'n1' }));
      target.onReply = realOnReply;
      for (const r of held) realOnReply(r);
      expect(await outcome(write)).to.equal('resolved');
    } finally {
      await close(o);
    }
  });

  it('a write the writer fails is rejected, never resolved, and every later write is refused too', async () => {
    const o = await open();
    try {
      const { db, s } = o;
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      // An operation RocksDB refuses (a put without a value), as an injected failure inside the writer
      // (synced: an unsynced write to an idle writer is written on the calling thread, tested below).
      const bad = db.batch([{ type: 'put', key: 'x', value: null } as unknown as BatchOp], true);
      const later = s.log.write({ hardState: { term: 9, votedFor: null }, entries: [] });
      expect(await outcome(bad, 10_000)).to.match(/^rejected: rocksdb: write failed: .*value/i);
      // Issued after the failed one: not written, so no synced write lands on top of a failed one.
      expect(await outcome(later, 10_000)).to.match(/^rejected: rocksdb: write failed: an earlier write failed/);
      expect(await db.get('h')).to.equal(undefined);
      expect(await outcome(applyOps(s.kv, 2, [{ op: 'set', key: 'b', value: '2' }]), 10_000)).to.match(/^rejected: /);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
    } finally {
      await close(o);
    }
  });

  it('an unsynced write while no write is in flight is written on the calling thread, at once; one while a write is in flight, a big one, and one while RocksDB delays writes go to the writer', async () => {
    const o = await open();
    try {
      const { db, s } = o;
      const inline = db.inlineWrites;
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      expect(db.inlineWrites - inline, 'applies written on the calling thread').to.equal(1);
      expect(await db.get('k/a')).to.equal(JSON.stringify({ value: '1', index: 1 }));
      // Behind a synced write still in flight: posted to the writer, in order, never overtaking it.
      const synced = s.log.write({ hardState: { term: 5, votedFor: null }, entries: [] });
      const behind = db.batch([{ type: 'put', key: 'a', value: JSON.stringify(5) }], false);
      expect(db.inlineWrites - inline, 'a write behind one in flight goes to the writer').to.equal(1);
      await Promise.all([synced, behind]);
      expect(await db.get('a')).to.equal('5');
      // A big batch goes to the writer, and so does any batch while RocksDB delays writes.
      await db.batch(Array.from({ length: INLINE_WRITE_MAX_OPS + 1 }, (_, i) => ({ type: 'put' as const, key: `big/${i}`, value: 'v' })), false);
      expect(db.inlineWrites - inline, 'a batch of more than INLINE_WRITE_MAX_OPS').to.equal(1);
      const raw = (db as unknown as { db: { getProperty(p: string): string } }).db;
      const realGetProperty = raw.getProperty.bind(raw);
      raw.getProperty = (p: string) => (p === 'rocksdb.actual-delayed-write-rate' ? '16777216' : realGetProperty(p));
      await db.batch([{ type: 'put', key: 'stalled', value: '1' }], false);
      expect(db.inlineWrites - inline, 'a batch while writes are delayed').to.equal(1);
      raw.getProperty = realGetProperty;
      await db.batch([{ type: 'put', key: 'unstalled', value: '1' }], false);
      expect(db.inlineWrites - inline).to.equal(2);
    } finally {
      await close(o);
    }
  });

  it('an unsynced write that fails on the calling thread is rejected, and every later write is refused; close still works', async () => {
    const o = await open();
    try {
      const { db, s } = o;
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      const bad = db.batch([{ type: 'put', key: 'x', value: null } as unknown as BatchOp], false);
      expect(await outcome(bad)).to.match(/^rejected: rocksdb: write failed: .*value/i);
      expect(await outcome(s.log.write({ hardState: { term: 9, votedFor: null }, entries: [] }), 10_000)).to.match(/^rejected: rocksdb: write failed/);
      expect(await outcome(applyOps(s.kv, 2, [{ op: 'set', key: 'b', value: '2' }]), 10_000)).to.match(/^rejected: /);
      expect(await db.get('h')).to.equal(undefined);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
    } finally {
      await close(o); // hangs if the writer thread is never told to close
    }
  });

  it('after a write the writer failed, an unsynced write is refused too, not written on the calling thread', async () => {
    const o = await open();
    try {
      const { db } = o;
      const bad = db.batch([{ type: 'put', key: 'x', value: null } as unknown as BatchOp], true);
      expect(await outcome(bad, 10_000)).to.match(/^rejected: rocksdb: write failed/);
      const inline = db.inlineWrites;
      expect(await outcome(db.batch([{ type: 'put', key: 'late', value: '1' }], false), 10_000)).to.match(/^rejected: rocksdb: write failed/);
      expect(db.inlineWrites).to.equal(inline);
      expect(await db.get('late')).to.equal(undefined);
    } finally {
      await close(o);
    }
  });

  it('a writer thread that dies rejects the write in flight and every later write; close still works', async () => {
    const o = await open();
    try {
      const { s, writer } = o;
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      // Posted after the thread was told to stop: it is pending when the thread dies, never answered.
      const killed = writer.terminate();
      const inFlight = s.log.write({ hardState: { term: 3, votedFor: null }, entries: [] });
      expect(await outcome(inFlight, 10_000)).to.match(/^rejected: rocksdb: the writer thread exited/);
      await killed;
      expect(await outcome(s.log.write({ hardState: { term: 4, votedFor: null }, entries: [] }), 10_000)).to.match(/^rejected: rocksdb: the writer thread exited/);
      // Reads still work on the main thread's handle until the stores close.
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
    } finally {
      await close(o);
    }
  });

  it('a write after close is rejected; close waits for the writes posted to the writer before it', async () => {
    const o = await open();
    const { s, db } = o;
    const writes = Array.from({ length: 20 }, (_, i) => outcome(db.batch([{ type: 'put', key: `k/k${i}`, value: JSON.stringify({ value: 'v', index: i + 1 }) }], false), 10_000));
    await s.log.close();
    await s.kv.close();
    expect(await Promise.all(writes)).to.deep.equal(writes.map(() => 'resolved'));
    expect(await outcome(s.kv.persist([], 30), 10_000)).to.match(/^rejected: rocksdb: the database is closed/);
    // Everything issued before close is there after reopening.
    const again = await openStorage(o.dir, 'n1');
    try {
      expect(await again.kv.count()).to.equal(20);
    } finally {
      await again.log.close();
      await again.kv.close();
      fs.rmSync(o.dir, { recursive: true, force: true });
    }
  });

  it('reads of up to SYNC_READ_MAX_KEYS keys run on the calling thread, larger ones in the thread pool, with the same answers', async () => {
    const o = await open();
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `t/${i}`);
      await o.db.batch(keys.filter((_, i) => i % 3 !== 0).map((k) => ({ type: 'put', key: k, value: `v-${k}` })));
      const expected = keys.map((k, i) => (i % 3 === 0 ? undefined : `v-${k}`));
      // White-box: count the binding's thread-pool reads.
      const raw = (o.db as unknown as { db: { getMany: (...a: unknown[]) => Promise<unknown> } }).db;
      const realGetMany = raw.getMany.bind(raw);
      let poolReads = 0;
      raw.getMany = (...a: unknown[]) => {
        poolReads++;
        return realGetMany(...a);
      };
      expect(await o.db.getMany(keys.slice(0, SYNC_READ_MAX_KEYS))).to.deep.equal(expected.slice(0, SYNC_READ_MAX_KEYS));
      expect(await o.db.getMany(['t/1'])).to.deep.equal(['v-t/1']);
      expect(poolReads, 'thread-pool reads for small lookups').to.equal(0);
      expect(await o.db.getMany(keys)).to.deep.equal(expected);
      expect(poolReads, 'thread-pool reads for a large lookup').to.equal(1);
    } finally {
      await close(o);
    }
    // On a closed database a small read is a rejected promise, never a synchronous throw.
    const settled = await Promise.resolve()
      .then(() => o.db.getMany(['t/1']))
      .then(() => 'resolved', (err: Error) => `rejected: ${err.message}`);
    expect(settled).to.match(/^rejected: /);
  });

  it('memory stays flat under sustained writes: the native batch is reused, not one leaked per write', async function () {
    // Each write used to leave its native WriteBatch (a copy of every key and value) allocated:
    // RSS grew by about the size of every batch written (issue 18: 1.3 GB per node after 1M keys).
    // Here: warm up until RocksDB's memtables are at their steady size, then 1,000 more batches
    // (120 MB of keys and values) must not grow RSS by more than a fraction of that.
    this.timeout(120_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-batches-'));
    const db = new (loadRocksLevel())(dir);
    // Small memtables (4 MB), so their fill-and-flush cycle does not hide the growth being measured.
    await db.open({ createIfMissing: true, compaction: 'level', memtableMemoryBudget: 16 * 1024 * 1024 } as { createIfMissing: boolean });
    try {
      const writer = new BatchWriter(db);
      const value = 'v'.repeat(100);
      const write = (b: number) => writer.write(Array.from({ length: 1000 }, (_, i): BatchOp => ({ type: 'put', key: `k/${b}-${i}`, value })), false);
      for (let b = 0; b < 1500; b++) write(b);
      const before = process.memoryUsage().rss;
      for (let b = 1500; b < 2500; b++) write(b);
      const grownMb = (process.memoryUsage().rss - before) / 1048576;
      process.stdout.write(`      (RSS grew ${grownMb.toFixed(0)} MB over 1,000 batches of 120 KB)\n`);
      expect(grownMb).to.be.lessThan(60);
      expect(await db.getMany(['k/2499-999'], { valueEncoding: 'utf8' })).to.deep.equal([value]);
    } finally {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
