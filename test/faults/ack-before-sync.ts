/**
 * NEGATIVE CONTROL for the power-loss scenarios; never part of raftkv. The fault harness loads it
 * into the node processes of `power-loss-control` only (NODE_OPTIONS=--import, set by scenario.ts):
 * it makes every RocksDB write resolve without waiting for the sync, so log entries are acknowledged
 * before they are durable. `power-loss-all` must then see acknowledged writes lost after a cut.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');
// Patch the same module instance main runs: the dist build when present (as test/support/procs.ts chooses).
const dist = join(root, 'dist/src/storage/rocksdb/index.js');
const mod = (await import(existsSync(join(root, 'dist/src/main.js')) ? dist : join(root, 'src/storage/rocksdb/index.ts'))) as typeof import('../../src/storage/rocksdb/index.js');
const proto = mod.RocksDatabase.prototype as unknown as { batch: (ops: unknown[], sync?: boolean) => Promise<void> };
const original = proto.batch;
if (typeof original !== 'function') throw new Error('ack-before-sync: RocksDatabase.prototype.batch is gone; retarget this control to the new storage code');
proto.batch = function (ops: unknown[]) {
  return original.call(this, ops, false);
};
process.stderr.write('NEGATIVE CONTROL: RocksDB writes are acknowledged without fsync (test/faults/ack-before-sync.ts)\n');
