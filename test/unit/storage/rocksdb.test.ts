import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { openStorage } from '../../../src/storage/index.js';
import { applyOps, storageContract } from './contract.js';

storageContract('rocksdb', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-storage-'));
  return {
    open: (historyLimits) => openStorage(dir, 'n1', historyLimits),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

describe('openStorage', () => {
  it('opens memory storage when no directory is given', async () => {
    const s = await openStorage(undefined, 'n1');
    expect(s.durable).to.equal(false);
    await s.log.close();
    await s.kv.close();
  });

  it('opens RocksDB under dir/nodeId, creating the directories', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-storage-'));
    try {
      const s = await openStorage(path.join(dir, 'nested'), 'n7');
      expect(s.durable).to.equal(true);
      await applyOps(s.kv, 1, [{ op: 'set', key: 'k', value: 'v' }]);
      expect(fs.existsSync(path.join(dir, 'nested', 'n7', 'CURRENT'))).to.equal(true);
      expect(await s.log.sizeBytes()).to.be.greaterThan(0);
      await s.log.close();
      await s.kv.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a watch history over smaller limits at reopen is trimmed by the next apply, floor with it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-storage-'));
    try {
      let s = await openStorage(dir, 'n1');
      for (let i = 1; i <= 5; i++) await applyOps(s.kv, i, [{ op: 'set', key: `k${i}`, value: 'v' }]);
      await s.log.close();
      await s.kv.close();
      s = await openStorage(dir, 'n1', { maxEntries: 2, maxBytes: 1 << 20 });
      await applyOps(s.kv, 6, [{ op: 'set', key: 'k6', value: 'v' }]);
      const h = await s.kv.readHistory(1, 100);
      expect(h.floor).to.equal(4);
      expect(h.entries.map((e) => e.index)).to.deep.equal([5, 6]);
      await s.log.close();
      await s.kv.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
