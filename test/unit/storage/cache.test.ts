/** The RocksDB KV store's read cache: LRU within its byte bound, and never caching a value older than a write. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ReadCache } from '../../../src/storage/rocksdb/cache.js';
import { openStorage } from '../../../src/storage/index.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import { applyOps } from './contract.js';

describe('storage: RocksDB read cache', () => {
  it('answers cached values and known absence, and misses what it never saw', () => {
    const c = new ReadCache(1 << 20);
    c.afterWrite(new Map([['a', { value: '1', index: 3 }], ['gone', null]]));
    expect(c.lookup('a')).to.deep.equal({ value: '1', index: 3 });
    expect(c.lookup('gone')).to.equal(null);
    expect(c.lookup('never')).to.equal(undefined);
  });

  it('stays within its byte bound by evicting the least recently used keys', () => {
    const c = new ReadCache(1000);
    for (let i = 0; i < 5; i++) c.afterWrite(new Map([[`k${i}`, { value: 'x'.repeat(100), index: i }]]));
    // Each entry is about 64 + 4 + 200 bytes: at most three fit in 1000 bytes.
    c.lookup('k2'); // k2 becomes the most recently used
    c.afterWrite(new Map([['k5', { value: 'x'.repeat(100), index: 5 }]]));
    const present = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'].filter((k) => c.lookup(k) !== undefined);
    expect(present).to.include.members(['k2', 'k5']);
    expect(present.length).to.be.at.most(3);
    expect(present).to.not.include('k0');
  });

  it('under heavy churn it keeps evicting in least-recently-used order and stays within its bound', () => {
    const entryBytes = 64 + 2 * 'k0000'.length + 2 * 10;
    const c = new ReadCache(entryBytes * 10);
    for (let i = 0; i < 2000; i++) {
      c.afterWrite(new Map([[`k${String(i).padStart(4, '0')}`, { value: 'x'.repeat(10), index: i }]]));
      c.lookup('k0000'); // refreshed after every write, so never the least recently used
    }
    const present = Array.from({ length: 2000 }, (_, i) => `k${String(i).padStart(4, '0')}`).filter((k) => c.lookup(k) !== undefined);
    expect(present).to.have.length(10);
    expect(present).to.include('k0000');
    expect(present.filter((k) => k !== 'k0000')).to.deep.equal(Array.from({ length: 9 }, (_, i) => `k${1991 + i}`));
    c.clear();
    c.afterWrite(new Map([['after-clear', { value: 'v', index: 1 }]]));
    expect(c.lookup('after-clear')).to.deep.equal({ value: 'v', index: 1 });
  });

  it('a disk read that raced a write is not cached (the older value would be served forever)', () => {
    const c = new ReadCache(1 << 20);
    const before = c.generation;
    c.afterWrite(new Map([['k', { value: 'new', index: 9 }]]));
    c.fill('k', { value: 'old', index: 4 }, before);
    expect(c.lookup('k')).to.deep.equal({ value: 'new', index: 9 });
    const beforeClear = c.generation;
    c.clear();
    c.fill('k', { value: 'old', index: 4 }, beforeClear);
    expect(c.lookup('k')).to.equal(undefined);
  });

  it('the race guard is per key: a write of another key does not void a read in flight, and a read older than the remembered writes is refused', () => {
    const c = new ReadCache(1 << 20);
    const before = c.generation;
    c.afterWrite(new Map([['other', { value: 'x', index: 2 }]]));
    c.fill('k', null, before);
    expect(c.lookup('k'), 'a write of another key landed meanwhile').to.equal(null);
    const old = c.generation;
    for (let i = 0; i < 300; i++) c.afterWrite(new Map([[`w${i}`, { value: 'x', index: 3 + i }]]));
    c.fill('k2', null, old);
    expect(c.lookup('k2'), 'the writes since this read are no longer all remembered').to.equal(undefined);
  });

  it('through the store: a get issued just before a write does not leave the older value cached after it (writes go through the cache)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-cache-'));
    const s = await openStorage(dir, 'n1');
    try {
      for (let i = 0; i < 200; i++) {
        const key = `k${i}`;
        await applyOps(s.kv, 2 * i + 1, [{ op: 'set', key, value: 'old' }]);
        // Force a miss for this key: a snapshot import clears the cache (and keeps the value).
        await new KvStateMachine(s.kv).restoreSnapshot(await new KvStateMachine(s.kv).exportSnapshot(), 2 * i + 1);
        const racing = s.kv.get(key);
        await applyOps(s.kv, 2 * i + 2, [{ op: 'set', key, value: 'new' }]);
        await racing;
        expect(await s.kv.get(key), key).to.deep.equal({ value: 'new', index: 2 * i + 2 });
      }
    } finally {
      await s.log.close();
      await s.kv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('through the store: prefetch teaches the cache which keys exist, and a prefetch racing a write never leaves the older state cached', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-prefetch-'));
    const s = await openStorage(dir, 'n1');
    try {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'present', value: 'v' }]);
      await new KvStateMachine(s.kv).restoreSnapshot(await new KvStateMachine(s.kv).exportSnapshot(), 1); // empties the cache
      // White-box: the store's cache and db.
      const { cache, db } = s.kv as unknown as { cache: ReadCache; db: { getMany(keys: string[]): Promise<Array<string | undefined>> } };
      expect(cache.lookup('present'), 'the import emptied the cache').to.equal(undefined);
      s.kv.prefetch?.(['present', 'absent']);
      // The prefetch fills the cache on its own, before any apply asks (a no-op prefetch never does).
      const deadline = Date.now() + 5000;
      while ((cache.lookup('present') === undefined || cache.lookup('absent') === undefined) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(cache.lookup('present'), 'prefetched value').to.deep.equal({ value: 'v', index: 1 });
      expect(cache.lookup('absent'), 'prefetched absence').to.equal(null);
      // Existence as apply reports it, with nothing read from disk at apply time.
      const realGetMany = db.getMany.bind(db);
      const readAtApply: string[] = [];
      db.getMany = (keys) => {
        readAtApply.push(...keys);
        return realGetMany(keys);
      };
      expect((await applyOps(s.kv, 2, [{ op: 'delete', key: 'present' }, { op: 'delete', key: 'absent' }])).results.map((r) => r.prevIndex !== null)).to.deep.equal([true, false]);
      expect(readAtApply, 'keys read from disk by the apply').to.deep.equal([]);
      // Hold the prefetch's disk read until a write of the same key has landed.
      let release: () => void = () => undefined;
      const held = new Promise<void>((r) => (release = r));
      let heldRead: Promise<Array<string | undefined>> | null = null;
      db.getMany = (keys) => {
        const read = realGetMany(keys);
        if (heldRead !== null) return read;
        // The first read (the prefetch's) is answered only once released.
        heldRead = read.then(async (out) => {
          await held;
          return out;
        });
        return heldRead;
      };
      s.kv.prefetch?.(['raced']); // reads "absent" from disk, answered only after the write below
      await applyOps(s.kv, 3, [{ op: 'set', key: 'raced', value: 'now' }]);
      release();
      await heldRead; // the prefetch's fill ran first: it was waiting on this read before we were
      expect(await s.kv.get('raced')).to.deep.equal({ value: 'now', index: 3 });
      expect((await applyOps(s.kv, 4, [{ op: 'delete', key: 'raced' }])).results.map((r) => r.prevIndex !== null)).to.deep.equal([true]);
    } finally {
      await s.log.close();
      await s.kv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
