/**
 * NEGATIVE CONTROL for the power-loss scenarios; never part of raftkv. The fault harness loads it
 * into the node processes of `power-loss-control` only (NODE_OPTIONS=--import, set by scenario.ts):
 * it makes every RocksDB write unsynced, so log entries are acknowledged before they are durable.
 * `power-loss-all` must then see acknowledged writes lost after a cut.
 *
 * Where it acts: RocksDatabase.batch on the main thread, which decides the `sync` flag of each
 * batch it posts to the writer thread (src/storage/rocksdb/writer.ts writes with exactly that flag).
 * The log bound (src/storage/log-bound.ts) trusts that a resolved write is synced, so after a cut it
 * would make such a node refuse to start (its log is shorter than the bound): a second line of
 * defence, but then the checker could not measure the loss. The control therefore also drops the
 * bound file before each load, so the nodes restart on whatever their disks kept.
 *
 * Plain JavaScript, not TypeScript: NODE_OPTIONS' --import runs in the writer thread too, where no
 * TypeScript loader is registered (a .ts file there made every node under the control fail to start).
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

// Node 22+ also runs NODE_OPTIONS' --import in worker threads: the writer thread is left alone.
if (isMainThread) {
  const root = join(import.meta.dirname, '../..');
  // Patch the same module instances main runs: the dist build when present (as test/support/procs.ts chooses).
  const load = async (rel) => import(existsSync(join(root, 'dist/src/main.js')) ? join(root, 'dist/src', `${rel}.js`) : join(root, 'src', `${rel}.ts`));
  const rocks = await load('storage/rocksdb/index');
  const bound = await load('storage/log-bound');
  const proto = rocks.RocksDatabase.prototype;
  const batch = proto.batch;
  const boundProto = bound.BoundedLogStore.prototype;
  const boundLoad = boundProto.load;
  if (typeof batch !== 'function' || typeof boundLoad !== 'function') {
    throw new Error('ack-before-sync: RocksDatabase.prototype.batch(ops, sync) or BoundedLogStore.prototype.load is gone; retarget this control to the new storage code');
  }
  proto.batch = function (ops) {
    return batch.call(this, ops, false);
  };
  boundProto.load = function () {
    rmSync(this.file, { force: true });
    return boundLoad.call(this);
  };
  process.stderr.write('NEGATIVE CONTROL: RocksDB writes are acknowledged without fsync (test/faults/ack-before-sync.mjs)\n');
}
