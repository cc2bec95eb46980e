/**
 * Cost of the log bound (src/storage/log-bound.ts), two measurements:
 *   micro   encoding a record and its pwrite (what every synced log write adds on the main thread),
 *           and the same with an fsync of the file each time (the rejected "synced per write" variant);
 *   e2e     N sequential synced one-entry log writes through the RocksDB store: without the bound,
 *           with it, and with the bound fsynced after every write; 5 interleaved rounds, median.
 *
 *   npx tsx bench/log-bound.ts [N=1000]      (wrap in flock /tmp/raftkv-heavy.lock on a shared machine)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openRocksStorage } from '../src/storage/rocksdb/index.js';
import { BoundedLogStore, encodeSlot } from '../src/storage/log-bound.js';
import type { LogStore, RaftWrite } from '../src/storage/types.js';

const N = Number(process.argv[2] ?? '1000');
const us = (t0: bigint, n: number) => Number(process.hrtime.bigint() - t0) / 1000 / n;

function micro(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-bound-micro-'));
  const fd = fs.openSync(path.join(dir, 'log-bound'), 'w+');
  for (const [name, n, sync] of [['encode+pwrite', 20000, false], ['encode+pwrite+fsync', 500, true]] as const) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      fs.writeSync(fd, encodeSlot(i, { index: 1_000_000 + i, term: 7, hardTerm: 7, vote: 'node-3' }), 0, 256, (i % 2) * 4096);
      if (sync) fs.fsyncSync(fd);
    }
    console.log(`micro ${name}: ${us(t0, n).toFixed(1)} us per record (n=${n})`);
  }
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
}

type Mode = 'plain' | 'bound' | 'bound-fsync-each';
async function e2e(mode: Mode): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-bound-e2e-'));
  const st = await openRocksStorage(dir);
  let log: LogStore = st.log;
  if (mode !== 'plain') {
    const b = new BoundedLogStore(st.log, dir);
    log = b;
    if (mode === 'bound-fsync-each') {
      const sync = (b as unknown as { syncNow(): Promise<void> }).syncNow.bind(b);
      log = Object.assign(Object.create(b) as LogStore, { write: async (w: RaftWrite) => { await b.write(w); await sync(); } });
    }
  }
  await log.load();
  const data = 'x'.repeat(200);
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= N; i++) await log.write({ hardState: i === 1 ? { term: 1, votedFor: null } : null, entries: [{ index: i, term: 1, type: 'normal', data }] });
  const r = us(t0, N);
  await log.close();
  await st.kv.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

micro();
const res: Record<Mode, number[]> = { plain: [], bound: [], 'bound-fsync-each': [] };
for (let round = 0; round < 5; round++) for (const m of Object.keys(res) as Mode[]) res[m].push(await e2e(m));
for (const [m, xs] of Object.entries(res)) {
  xs.sort((a, b) => a - b);
  console.log(`e2e ${m}: median ${xs[2].toFixed(0)} us/write, all ${xs.map((x) => x.toFixed(0)).join(' ')} (N=${N} sequential synced log writes, 5 rounds)`);
}
