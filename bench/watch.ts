/**
 * `BENCH_ONLY=watch make bench` / `BENCH_ONLY=lease make bench` (or `npx tsx bench/watch.ts watch,lease`
 * after `make build`): watch fan-out and lease keepalive throughput, raftkv beside etcd (issue 17 §8).
 *
 * watch  BENCH_WATCHERS (default 100) streams on the prefix `w/`, spread round-robin over the 3
 *        members (raftkv: GET /watch?prefix=w/ as SSE; etcd 3.4: POST /v3/watch through the JSON
 *        gateway, which streams one JSON object per line), while one client writes single keys under
 *        `w/` to the leader, first at a steady BENCH_WATCH_RATE writes/s (default 200, open loop),
 *        then at full speed from BENCH_WATCH_WRITERS connections (default 16, closed loop), each for
 *        BENCH_WATCH_SECONDS (default 5). The writer runs in a child process (its own event loop, so
 *        100 busy streams do not delay its acknowledgements), the watchers in this one; both stamp
 *        times with the host's monotonic clock (process.hrtime, CLOCK_MONOTONIC).
 *        Per phase: writes/s acknowledged; events/s delivered in total (events received by all
 *        watchers / time from the first write sent to the last event received); latency from the
 *        write's acknowledgement reaching the writer to the event reaching a watcher, p50/p99 over all
 *        deliveries and the spread of the per-watcher p50/p99 (min/median/max over watchers); missing
 *        events (a watcher that did not get every acknowledged write within 15 s of the end).
 *        A negative latency is possible and kept: the leader may push the event before the writer's
 *        HTTP answer is processed.
 * lease  BENCH_LEASE_CONNS (default 64) connections renewing 64 leases with wrk for BENCH_SECONDS
 *        (default 10) against the leader: raftkv POST /leases/:id/keepalive; etcd POST
 *        /v3/lease/keepalive {"ID":...} (the gateway opens one keepalive stream per request and
 *        answers once when the request body ends). Skipped for raftkv when it has no /leases route.
 *
 * BENCH_WATCH_TARGETS=raftkv,etcd picks the systems. The watchers and the writer share this
 * process's event loop and the machine's cores with the servers, so the figures are those of the
 * whole setup on this host, the same for both systems.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { cleanup, dirs, etcdLeader, httpJson, procs, root, spawnProc, startEtcd, waitFor } from './procs.js';

const wrkDir = join(root, 'bench/wrk');
const parts = (process.argv[2] ?? 'watch,lease').split(',');
const targets = (process.env.BENCH_WATCH_TARGETS ?? 'raftkv,etcd').split(',');
const watcherCount = Number(process.env.BENCH_WATCHERS ?? '100');
const phaseSeconds = Number(process.env.BENCH_WATCH_SECONDS ?? '5');
const steadyRate = Number(process.env.BENCH_WATCH_RATE ?? '200');
const fullWriters = Number(process.env.BENCH_WATCH_WRITERS ?? '16');
const leaseConns = Number(process.env.BENCH_LEASE_CONNS ?? '64');
const leaseCount = 64;
const wrkSeconds = Number(process.env.BENCH_SECONDS ?? '10');
const raftkvExtraEnv = JSON.parse(process.env.BENCH_RAFTKV_ENV ?? '{}') as Record<string, string>;
const prefix = 'w/';
const value = 'v'.repeat(100);
const drainMs = 15_000;

const isWriter = process.argv[2] === '--writer';
if (!isWriter) {
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
}

/** The host's monotonic clock (CLOCK_MONOTONIC) in ms: the same in the writer's process and the watchers'. */
const hr = (): number => Number(process.hrtime.bigint()) / 1e6;

async function stopAll(): Promise<void> {
  const live = procs.filter((p) => p.exitCode === null && p.signalCode === null);
  for (const p of live) p.kill('SIGTERM');
  await Promise.all(live.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));
  procs.length = 0;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.length = 0;
}


const b64 = (s: string): string => Buffer.from(s).toString('base64');

// ------------------------------------------------------------------------------------------------
// Clusters
// ------------------------------------------------------------------------------------------------

interface Cluster { name: string; apis: string[]; leader: string }

async function startRaftkv(): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-watch-'));
  dirs.push(dir);
  const apis: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const env: Record<string, string> = { NODE_ID: `w${i}`, LOG_LEVEL: 'warn', ...raftkvExtraEnv, PORT: String(18480 + i), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${17400 + i}`, RAFT_DIR: dir };
    if (i > 1) env.RAFT_JOIN_ADDR = '127.0.0.1:18481';
    spawnProc(process.execPath, [join(root, 'dist/src/main.js')], env, 'bench-watch');
    apis.push(`http://127.0.0.1:${18480 + i}`);
    if (i === 1) await waitFor('raftkv node 1', async () => (await httpJson('GET', `${apis[0]}/ready`)).status === 200, undefined, 'bench-watch');
  }
  await waitFor('three raftkv voters', async () => {
    const { json } = await httpJson('GET', `${apis[0]}/cluster`);
    return (json as { nodes: { suffrage: string }[] }).nodes.filter((m) => m.suffrage === 'voter').length === 3;
  }, undefined, 'bench-watch');
  for (const api of apis) await waitFor(`${api} ready`, async () => (await httpJson('GET', `${api}/ready`)).status === 200, undefined, 'bench-watch');
  const { json } = await httpJson('GET', `${apis[0]}/cluster`);
  const leader = (json as { leader: { apiAddr: string } | null }).leader;
  if (!leader) throw new Error('bench-watch: raftkv has no leader');
  return { name: 'raftkv', apis, leader: `http://${leader.apiAddr}` };
}

async function startEtcdCluster(): Promise<Cluster> {
  const apis = await startEtcd({ size: 3, clientBase: 24790, peerBase: 24800, token: 'raftkv-bench-watch', dirPrefix: 'etcd-bench-watch-', label: 'bench-watch' });
  return { name: 'etcd', apis, leader: await etcdLeader(apis, 'bench-watch') };
}

// ------------------------------------------------------------------------------------------------
// Watchers: each records (index, arrival time) of every event it receives.
// ------------------------------------------------------------------------------------------------

interface Watcher { indexes: number[]; times: number[]; ready: boolean; closed: boolean; req: http.ClientRequest }

/** raftkv: SSE frames; a `change` frame's id is the entry's index (one write under w/ = one frame). */
function openRaftkvWatcher(api: string): Watcher {
  const url = new URL(`${api}/watch?prefix=${encodeURIComponent(prefix)}`);
  const req = http.request(url, { method: 'GET', agent: false, headers: { accept: 'text/event-stream' } });
  const w: Watcher = { indexes: [], times: [], ready: false, closed: false, req };
  let buf = '';
  req.on('response', (res) => {
    if (res.statusCode !== 200) { w.closed = true; res.resume(); process.stderr.write(`bench-watch: raftkv watch answered ${res.statusCode}\n`); return; }
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const t = hr();
      buf += chunk;
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        if (frame.includes('event: progress')) w.ready = true;
        else if (frame.includes('event: change')) {
          const m = /^id: (\d+)$/m.exec(frame);
          if (m) { w.indexes.push(Number(m[1])); w.times.push(t); }
        } else if (frame.includes('event: error')) process.stderr.write(`bench-watch: raftkv watch error: ${frame}\n`);
      }
    });
    res.on('close', () => { w.closed = true; });
  });
  req.on('error', () => { w.closed = true; });
  req.end();
  return w;
}

/** etcd: the gateway streams one JSON WatchResponse per line; a response may carry several events. */
function openEtcdWatcher(api: string): Watcher {
  const url = new URL(`${api}/v3/watch`);
  const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)) } });
  const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
  const w: Watcher = { indexes: [], times: [], ready: false, closed: false, req };
  let buf = '';
  req.on('response', (res) => {
    if (res.statusCode !== 200) { w.closed = true; res.resume(); process.stderr.write(`bench-watch: etcd watch answered ${res.statusCode}\n`); return; }
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const t = hr();
      buf += chunk;
      let end: number;
      while ((end = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, end);
        buf = buf.slice(end + 1);
        if (line.includes('"created":true')) w.ready = true;
        for (const m of line.matchAll(/"mod_revision":"(\d+)"/g)) { w.indexes.push(Number(m[1])); w.times.push(t); }
      }
    });
    res.on('close', () => { w.closed = true; });
  });
  req.on('error', () => { w.closed = true; });
  req.end(body);
  return w;
}

// ------------------------------------------------------------------------------------------------
// Writers: each acknowledged write's index (raftkv) / revision (etcd) and acknowledgement time.
// ------------------------------------------------------------------------------------------------

interface Acks { acked: Map<number, number>; errors: number; firstSent: number; lastAck: number }

function makeWriter(c: Cluster, pool: Pool, acks: Acks): (seq: number) => Promise<void> {
  const origin = new URL(c.leader);
  return async (seq: number) => {
    const key = `${prefix}${String(seq).padStart(12, '0')}`;
    try {
      if (c.name === 'raftkv') {
        const res = await pool.request({ origin, method: 'POST', path: '/key', body: JSON.stringify({ [key]: value }), headers: { 'content-type': 'application/json' } });
        await res.body.text();
        const t = hr();
        const idx = Number(res.headers['x-raft-index']);
        if (res.statusCode === 200 && Number.isFinite(idx)) { acks.acked.set(idx, t); acks.lastAck = t; } else acks.errors++;
      } else {
        const res = await pool.request({ origin, method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64(key), value: b64(value) }), headers: { 'content-type': 'application/json' } });
        const text = await res.body.text();
        const t = hr();
        const rev = Number(/"revision":"(\d+)"/.exec(text)?.[1]);
        if (res.statusCode === 200 && Number.isFinite(rev)) { acks.acked.set(rev, t); acks.lastAck = t; } else acks.errors++;
      }
    } catch {
      acks.errors++;
    }
  };
}

async function steadyWrites(write: (seq: number) => Promise<void>, acks: Acks, seqBase: number): Promise<void> {
  const t0 = hr();
  acks.firstSent = t0;
  const inflight = new Set<Promise<void>>();
  let issued = 0;
  const total = Math.round(steadyRate * phaseSeconds);
  while (issued < total) {
    const due = Math.min(total, Math.floor(((hr() - t0) / 1000) * steadyRate) + 1);
    while (issued < due) {
      const p = write(seqBase + issued++);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inflight);
}

async function fullSpeedWrites(write: (seq: number) => Promise<void>, acks: Acks, seqBase: number): Promise<void> {
  const t0 = hr();
  acks.firstSent = t0;
  const stopAt = t0 + phaseSeconds * 1000;
  let next = seqBase;
  await Promise.all(Array.from({ length: fullWriters }, async () => {
    while (hr() < stopAt) await write(next++);
  }));
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const f = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

interface WriterJob { leader: string; name: string; mode: 'steady' | 'full'; seqBase: number }
interface WriterResult { indexes: number[]; times: number[]; errors: number; firstSent: number; lastAck: number }

/** Runs one phase's writes in a child process (this file with `--writer JOB`) and returns its acknowledgements. */
function runWriter(job: WriterJob): Promise<WriterResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--writer', JSON.stringify(job)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { out += d; });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) { reject(new Error(`bench-watch: writer process exited ${code}`)); return; }
      try { resolve(JSON.parse(out) as WriterResult); } catch (err) { reject(err as Error); }
    });
  });
}

async function writerProcess(job: WriterJob): Promise<void> {
  const c: Cluster = { name: job.name, apis: [], leader: job.leader };
  const pool = new Pool(c.leader, { connections: job.mode === 'full' ? fullWriters : 64 });
  const acks: Acks = { acked: new Map(), errors: 0, firstSent: 0, lastAck: 0 };
  const write = makeWriter(c, pool, acks);
  if (job.mode === 'steady') await steadyWrites(write, acks, job.seqBase); else await fullSpeedWrites(write, acks, job.seqBase);
  await pool.close();
  const r: WriterResult = { indexes: [...acks.acked.keys()], times: [...acks.acked.values()], errors: acks.errors, firstSent: acks.firstSent, lastAck: acks.lastAck };
  process.stdout.write(JSON.stringify(r));
}

async function watchPhase(c: Cluster, watchers: Watcher[], mode: 'steady' | 'full', seqBase: number): Promise<string> {
  const mark = watchers.map((w) => w.indexes.length);
  const r = await runWriter({ leader: c.leader, name: c.name, mode, seqBase });
  const acks: Acks = { acked: new Map(r.indexes.map((idx, i) => [idx, r.times[i]])), errors: r.errors, firstSent: r.firstSent, lastAck: r.lastAck };
  const writeSecs = (acks.lastAck - acks.firstSent) / 1000;
  // Drain: until every watcher has every acknowledged write, or drainMs.
  const wanted = acks.acked.size;
  const got = (w: Watcher, i: number): number => { let n = 0; for (let j = mark[i]; j < w.indexes.length; j++) if (acks.acked.has(w.indexes[j])) n++; return n; };
  const drainDeadline = Date.now() + drainMs;
  while (Date.now() < drainDeadline && watchers.some((w, i) => !w.closed && got(w, i) < wanted)) await new Promise((res) => setTimeout(res, 50));
  let delivered = 0;
  let lastDelivery = 0;
  let missing = 0;
  const all: number[] = [];
  const perP50: number[] = [];
  const perP99: number[] = [];
  watchers.forEach((w, i) => {
    const lat: number[] = [];
    for (let j = mark[i]; j < w.indexes.length; j++) {
      const a = acks.acked.get(w.indexes[j]);
      if (a === undefined) continue;
      lat.push(w.times[j] - a);
      lastDelivery = Math.max(lastDelivery, w.times[j]);
    }
    delivered += lat.length;
    missing += wanted - lat.length;
    lat.sort((x, y) => x - y);
    perP50.push(pct(lat, 50));
    perP99.push(pct(lat, 99));
    for (const x of lat) all.push(x);
  });
  all.sort((x, y) => x - y);
  perP50.sort((x, y) => x - y);
  perP99.sort((x, y) => x - y);
  const spanSecs = (lastDelivery - acks.firstSent) / 1000;
  const spread = (xs: number[]): string => `${f(xs[0], 2)}/${f(pct(xs, 50), 2)}/${f(xs[xs.length - 1], 2)}`;
  return `watch: target=${c.name} mode=${mode}${mode === 'steady' ? `@${steadyRate}/s` : `@${fullWriters}conns`} watchers=${watchers.length} ` +
    `writes=${wanted} writes_per_sec=${f(wanted / writeSecs, 0)} write_errors=${acks.errors} ` +
    `events_delivered=${delivered} events_per_sec=${f(delivered / spanSecs, 0)} missing=${missing} ` +
    `latency_ms p50=${f(pct(all, 50), 2)} p99=${f(pct(all, 99), 2)} max=${f(all[all.length - 1], 2)} ` +
    `per_watcher_p50_ms(min/med/max)=${spread(perP50)} per_watcher_p99_ms(min/med/max)=${spread(perP99)}`;
}

async function benchWatch(c: Cluster): Promise<string[]> {
  const watchers = Array.from({ length: watcherCount }, (_, i) => (c.name === 'raftkv' ? openRaftkvWatcher : openEtcdWatcher)(c.apis[i % c.apis.length]));
  await waitFor(`${watcherCount} ${c.name} watchers`, async () => watchers.every((w) => w.ready), 30_000, 'bench-watch');
  if (watchers.some((w) => w.closed)) throw new Error(`bench-watch: a ${c.name} watcher closed before the writes`);
  const lines = [
    `bench-watch: ${c.name} steady started at load=${loadavg()[0].toFixed(2)}`,
    await watchPhase(c, watchers, 'steady', 0),
    `bench-watch: ${c.name} full started at load=${loadavg()[0].toFixed(2)}`,
    await watchPhase(c, watchers, 'full', 1_000_000),
  ];
  for (const w of watchers) w.req.destroy();
  return lines;
}

// ------------------------------------------------------------------------------------------------
// Lease keepalive
// ------------------------------------------------------------------------------------------------

function runWrk(url: string, script: string, conns: number, args: string[]): string {
  const out = execFileSync('wrk', ['-t', String(Math.min(conns, 2)), '-c', String(conns), '-d', `${wrkSeconds}s`, '--latency', '--timeout', '10s', '-s', join(wrkDir, script), url, '--', ...args], {
    env: { ...process.env, BENCH_WRK_DIR: wrkDir },
    encoding: 'utf8',
  });
  const toMs = (s: string): number => {
    const m = /^([\d.]+)(us|ms|s)$/.exec(s.trim());
    return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0');
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const bad = Number(/KEEPALIVE bad=(\d+)/.exec(out)?.[1] ?? '0');
  return `keepalives_per_sec=${f(rps, 0)} p50_ms=${f(p50, 2)} p99_ms=${f(p99, 2)} errors=${non2xx + sockErrors} bad_answers=${bad}`;
}

async function benchLease(c: Cluster): Promise<string> {
  const ids: string[] = [];
  if (c.name === 'raftkv') {
    const probe = await httpJson('POST', `${c.leader}/leases`, { ttlMs: 60_000 });
    if (probe.status === 404 || probe.status === 405) return `lease: target=raftkv skipped: POST /leases answered ${probe.status} (no lease API in this build)`;
    if (probe.status !== 201) throw new Error(`bench-watch: raftkv lease grant answered ${probe.status} ${JSON.stringify(probe.json)}`);
    ids.push((probe.json as { id: string }).id);
    while (ids.length < leaseCount) {
      const r = await httpJson('POST', `${c.leader}/leases`, { ttlMs: 60_000 });
      if (r.status !== 201) throw new Error(`bench-watch: raftkv lease grant answered ${r.status}`);
      ids.push((r.json as { id: string }).id);
    }
    const k = await httpJson('POST', `${c.leader}/leases/${ids[0]}/keepalive`);
    if (k.status !== 200) throw new Error(`bench-watch: raftkv keepalive answered ${k.status} ${JSON.stringify(k.json)}`);
    return `lease: target=raftkv conns=${leaseConns} leases=${leaseCount} ${runWrk(c.leader, 'raftkv-keepalive.lua', leaseConns, [ids.join(',')])}`;
  }
  while (ids.length < leaseCount) {
    const r = await httpJson('POST', `${c.leader}/v3/lease/grant`, { TTL: 60 });
    const id = (r.json as { ID?: string }).ID;
    if (r.status !== 200 || !id) throw new Error(`bench-watch: etcd lease grant answered ${r.status}`);
    ids.push(id);
  }
  const k = await httpJson('POST', `${c.leader}/v3/lease/keepalive`, { ID: ids[0] });
  if (k.status !== 200 || !/"TTL":"60"/.test(JSON.stringify(k.json))) throw new Error(`bench-watch: etcd keepalive answered ${k.status} ${JSON.stringify(k.json)}`);
  return `lease: target=etcd conns=${leaseConns} leases=${leaseCount} ${runWrk(c.leader, 'etcd-keepalive.lua', leaseConns, [ids.join(',')])}`;
}

async function main(): Promise<void> {
  if (!existsSync(join(root, 'dist/src/main.js'))) throw new Error('bench-watch: run `make build` first');
  const lines = [`bench-watch: cores=${cpus().length} load_at_start=${loadavg().map((x) => x.toFixed(2)).join(',')} parts=${parts.join(',')} watchers=${watcherCount} phase_seconds=${phaseSeconds} rate=${steadyRate} writers=${fullWriters} lease_conns=${leaseConns} wrk_seconds=${wrkSeconds} node=${process.version}`];
  for (const t of targets) {
    const c = t === 'raftkv' ? await startRaftkv() : t === 'etcd' ? await startEtcdCluster() : null;
    if (!c) throw new Error(`bench-watch: unknown target ${t}`);
    if (parts.includes('watch')) lines.push(...(await benchWatch(c)));
    if (parts.includes('lease')) lines.push(await benchLease(c));
    await stopAll();
  }
  lines.push(`bench-watch: load_at_end=${loadavg().map((x) => x.toFixed(2)).join(',')}`);
  console.log(lines.join('\n'));
}

if (!isWriter) {
  main().then(() => process.exit(0), (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
} else {
  writerProcess(JSON.parse(process.argv[3]) as WriterJob).then(() => process.exit(0), (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
