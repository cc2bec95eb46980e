/**
 * Data directories written by raftkv's earlier binding (rocksdb@5.2.1, RocksDB 6.17): state still in
 * the WAL opens and reads back; Snappy-compressed tables, which this build cannot read, are refused
 * with a message saying why and what to do, and the directory is left as it was. The fixtures were
 * made with the old package once (fixtures/README.md); nothing old is needed here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { openStorage } from '../../../src/storage/index.js';
import { applyOps } from './contract.js';

const fixtures = path.join(import.meta.dirname, 'fixtures');

/** A copy of fixture `name` as the node directory `n1` of a fresh RAFT_DIR. */
function copyFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-upgrade-'));
  fs.cpSync(path.join(fixtures, name), path.join(dir, 'n1'), { recursive: true });
  return dir;
}

/** Every file of `dir` with its content, for before/after comparison. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f)).toString('base64')]));
}

describe('storage: data directories written by rocksdb@5.2.1 (RocksDB 6.17)', () => {
  it('state still in the WAL opens: hard state, snapshot record, log, keys, deletes and applied index come back, and it takes new writes', async () => {
    const dir = copyFixture('rocksdb-6.17-wal');
    try {
      let s = await openStorage(dir, 'n1');
      const st = await s.log.load();
      expect(st.hardState).to.deep.equal({ term: 2, votedFor: 'n1' });
      expect(st.snapshot?.meta.lastIndex).to.equal(8);
      expect(st.snapshot?.data).to.equal(null);
      expect(st.entries.map((e) => e.index)).to.deep.equal([9, 10, 11, 12]);
      expect(await s.kv.appliedIndex()).to.equal(12);
      expect(await s.kv.count()).to.equal(9);
      expect(await s.kv.get('key10')).to.deep.equal({ value: 'v'.repeat(200) + '10', index: 10 });
      expect(await s.kv.get('key3')).to.equal(undefined);
      // Written before the watch history existed: none is claimed below the applied index.
      expect(await s.kv.readHistory(1, 10)).to.deep.equal({ floor: 12, appliedIndex: 12, entries: [], upTo: 12 });
      await s.log.write({ hardState: { term: 3, votedFor: null }, entries: [{ index: 13, term: 3, type: 'noop' }] });
      await applyOps(s.kv, 13, [{ op: 'set', key: 'after', value: 'upgrade' }]);
      await s.log.close();
      await s.kv.close();
      s = await openStorage(dir, 'n1');
      expect((await s.log.load()).entries.at(-1)?.index).to.equal(13);
      expect(await s.kv.get('after')).to.deep.equal({ value: 'upgrade', index: 13 });
      // The floor found at the first open was stored with the first apply: it does not move at a reopen.
      expect(await s.kv.readHistory(1, 10)).to.deep.equal({ floor: 12, appliedIndex: 13, entries: [{ index: 13, effects: [{ type: 'put', key: 'after', value: 'upgrade', prevIndex: null }] }], upTo: 13 });
      await s.log.close();
      await s.kv.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Snappy-compressed tables are refused with a clear message, and the directory is left unchanged', async () => {
    const dir = copyFixture('rocksdb-6.17-snappy-tables');
    try {
      const before = contents(path.join(dir, 'n1'));
      let error: Error | null = null;
      await openStorage(dir, 'n1').then(
        () => undefined,
        (err: Error) => (error = err),
      );
      expect(error).to.be.instanceOf(Error);
      const message = (error as unknown as Error).message;
      expect(message).to.include('rocksdb@5.2.1');
      expect(message).to.include('Snappy');
      expect(message).to.include('docs/storage.md');
      expect(message).to.include('Nothing was changed');
      expect(contents(path.join(dir, 'n1'))).to.deep.equal(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
