/**
 * Event-loop delay under a synced-write load, for the ways of writing RocksDB through
 * @nxtedition/rocksdb (whose batch write runs on the calling thread, fsync included):
 *
 *   main     every write on the main thread (synced log writes and unsynced KV applies)
 *   hybrid   synced writes on a writer thread, unsynced KV applies on the main thread
 *   worker   every write on the writer thread, in issue order (what RocksDatabase does)
 *
 * Load, the same for each: one loop of synced writes (a Raft log append: one ~150-byte entry and
 * the hard state), back to back (yielding to the event loop between writes), and one loop of unsynced writes (a KV apply of one 100-byte value)
 * that yields to the event loop between writes; both for BENCH_SECONDS (default 5). Reports
 * perf_hooks.monitorEventLoopDelay (1 ms resolution), the event-loop utilisation (the share of the
 * time the main thread was busy, a write on it included, so not free to serve requests) and the
 * writes done.
 * Run: npx tsx bench/storage-eventloop.ts [main|hybrid|worker ...]   (RocksDB under os.tmpdir())
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { RocksDatabase } from '../src/storage/rocksdb/index.js';
import type { BatchOp, RawDb } from '../src/storage/rocksdb/binding.js';

type Mode = 'main' | 'hybrid' | 'worker';
const seconds = Number(process.env.BENCH_SECONDS ?? '5');
const modes = (process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['main', 'hybrid', 'worker']) as Mode[];

interface Result {
  mode: Mode;
  syncedWrites: number;
  unsyncedWrites: number;
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
  /** Share of the time the main thread was busy (0..1). */
  utilization: number;
}

async function run(mode: Mode): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-eventloop-'));
  const db = await RocksDatabase.open(dir);
  db.retain();
  // The main thread's own handle (white-box), for the modes that write on the main thread.
  const raw = (db as unknown as { db: RawDb }).db;
  const synced = (ops: BatchOp[]) => (mode === 'main' ? raw.batch(ops, { sync: true }) : db.batch(ops, true));
  const unsynced = (ops: BatchOp[]) => (mode === 'worker' ? db.batch(ops, false) : raw.batch(ops, { sync: false }));
  const value = 'v'.repeat(100);
  let isRunning = true;
  let syncedWrites = 0;
  let unsyncedWrites = 0;
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const elu = performance.eventLoopUtilization();
  const logLoop = (async () => {
    for (let i = 1; isRunning; i++) {
      const entry = JSON.stringify({ index: i, term: 1, type: 'normal', data: `{"set":{"key${i}":"${value}"}}` });
      await synced([{ type: 'put', key: 'l/' + String(i).padStart(16, '0'), value: entry }, { type: 'put', key: 'h', value: '{"term":1,"votedFor":"n1"}' }]);
      syncedWrites++;
      await yieldToLoop(); // on the main thread the write resolves in a tick: never starve the timers
    }
  })();
  const applyLoop = (async () => {
    for (let i = 1; isRunning; i++) {
      await unsynced([{ type: 'put', key: `k/key${i}`, value: JSON.stringify({ value, index: i }) }, { type: 'put', key: 'a', value: String(i) }]);
      unsyncedWrites++;
      await yieldToLoop();
    }
  })();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  isRunning = false;
  await Promise.all([logLoop, applyLoop]);
  h.disable();
  const utilization = performance.eventLoopUtilization(elu).utilization;
  await db.release();
  fs.rmSync(dir, { recursive: true, force: true });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  return { mode, syncedWrites, unsyncedWrites, delayP50Ms: ms(h.percentile(50)), delayP99Ms: ms(h.percentile(99)), delayMaxMs: ms(h.max), utilization };
}

console.log(`node ${process.version}, ${seconds} s per mode, RocksDB under ${os.tmpdir()}`);
console.log('mode     synced/s  unsynced/s  loop delay p50 ms  p99 ms  max ms  busy');
for (const mode of modes) {
  const r = await run(mode);
  console.log(
    `${r.mode.padEnd(8)} ${String(Math.round(r.syncedWrites / seconds)).padStart(8)}  ${String(Math.round(r.unsyncedWrites / seconds)).padStart(10)}  ${String(r.delayP50Ms).padStart(17)}  ${String(r.delayP99Ms).padStart(6)}  ${String(r.delayMaxMs).padStart(6)}  ${(r.utilization * 100).toFixed(0).padStart(3)}%`,
  );
}
