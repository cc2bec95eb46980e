/**
 * What a hand-off to another thread costs on this machine, against doing the work on the calling
 * thread (docs/performance.md, "Thread hand-offs"):
 *
 *   worker   a postMessage round trip to a worker thread and back, back to back and with a pause
 *            of 2 and 10 ms between them (a sleeping thread must be woken): wall time, CPU of the
 *            whole process per round trip, and the time inside the postMessage call itself
 *   read     a RocksDB point lookup of 2 keys in 1,000 (memtable) through the binding's thread-pool
 *            getMany and through its synchronous lookup on the calling thread
 *   cold     random single-key lookups over 1,000,000 keys after a reopen (block cache cold, files
 *            in the OS page cache): the distribution of the synchronous lookup, which holds the event
 *            loop, against the thread-pool one
 *
 * Run: flock /tmp/raftkv-heavy.lock npx tsx bench/handoff.ts [worker|read|cold ...] (RocksDB under os.tmpdir())
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadRocksLevel, type RawDb } from '../src/storage/rocksdb/binding.js';

const parts = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['worker', 'read', 'cold'];
const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function workerRoundTrips(n: number, gapMs: number): Promise<void> {
  const w = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m.id));`, { eval: true });
  await new Promise<void>((r) => w.once('online', () => r()));
  let inPost = 0n;
  const c0 = cpuUs();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const answered = new Promise<void>((r) => w.once('message', () => r()));
    const a = process.hrtime.bigint();
    w.postMessage({ id: i, ops: [{ type: 'put', key: `k${i}`, value: 'v'.repeat(100) }] });
    inPost += process.hrtime.bigint() - a;
    await answered;
    if (gapMs > 0) await sleep(gapMs);
  }
  const cpu = cpuUs() - c0;
  const wall = performance.now() - t0 - (gapMs > 0 ? n * gapMs : 0);
  await w.terminate();
  console.log(`handoff: worker round trip, pause ${gapMs} ms: ${((wall * 1000) / n).toFixed(0)} us wall (pauses excluded), ${(cpu / n).toFixed(0)} us process CPU, ${(Number(inPost) / n / 1000).toFixed(1)} us inside postMessage (${n} round trips)`);
}

async function openDb(dir: string): Promise<RawDb> {
  const RocksLevel = loadRocksLevel();
  const db = new RocksLevel(dir);
  await db.open({ createIfMissing: true });
  return db;
}

async function reads(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-handoff-'));
  try {
    const db = await openDb(dir);
    await db.batch(Array.from({ length: 1000 }, (_, i) => ({ type: 'put' as const, key: `k${i}`, value: 'v'.repeat(100) })), { sync: false });
    const n = 3000;
    let c0 = cpuUs();
    let t0 = performance.now();
    for (let i = 0; i < n; i++) await db.getMany([`k${i % 1000}`, `x${i}`], { valueEncoding: 'utf8' });
    console.log(`handoff: read of 2 keys through the thread pool: ${(((performance.now() - t0) * 1000) / n).toFixed(1)} us wall, ${((cpuUs() - c0) / n).toFixed(1)} us process CPU`);
    c0 = cpuUs();
    t0 = performance.now();
    for (let i = 0; i < n; i++) db._getManySync([`k${i % 1000}`, `x${i}`], { valueEncoding: 'utf8' });
    console.log(`handoff: read of 2 keys on the calling thread: ${(((performance.now() - t0) * 1000) / n).toFixed(1)} us wall, ${((cpuUs() - c0) / n).toFixed(1)} us process CPU`);
    await db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function coldReads(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-handoff-cold-'));
  try {
    let db = await openDb(dir);
    const value = JSON.stringify({ value: 'v'.repeat(100), index: 1 });
    for (let b = 0; b < 1000; b++) await db.batch(Array.from({ length: 1000 }, (_, i) => ({ type: 'put' as const, key: `k/${b}-${i}`, value })), { sync: false });
    await db.close();
    db = await openDb(dir);
    const key = () => `k/${Math.floor(Math.random() * 1000)}-${Math.floor(Math.random() * 1000)}`;
    const pct = (xs: number[]) => {
      xs.sort((a, b) => a - b);
      return `p50 ${xs[Math.floor(xs.length / 2)].toFixed(1)} us, p99 ${xs[Math.floor(xs.length * 0.99)].toFixed(1)} us, max ${xs[xs.length - 1].toFixed(0)} us`;
    };
    const sync: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const t = process.hrtime.bigint();
      db._getManySync([key()], { valueEncoding: 'utf8' });
      sync.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    const pool: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const t = process.hrtime.bigint();
      await db.getMany([key()], { valueEncoding: 'utf8' });
      pool.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    console.log(`handoff: random 1-key reads over 1M keys after a reopen, on the calling thread: ${pct(sync)} (20,000 reads)`);
    console.log(`handoff: the same through the thread pool: ${pct(pool)} (5,000 reads)`);
    await db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const part of parts) {
  if (part === 'worker') {
    await workerRoundTrips(3000, 0);
    await workerRoundTrips(300, 2);
    await workerRoundTrips(200, 10);
  } else if (part === 'read') await reads();
  else if (part === 'cold') await coldReads();
  else throw new Error(`handoff: unknown part ${part} (worker, read, cold)`);
}
