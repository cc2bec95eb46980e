/**
 * `make bench`: measures raftkv against two references under the same load on this machine and
 * prints one table and the ratios the performance issue asks for.
 *
 *   raftkv  3 nodes on loopback, RAFT_DIR on disk (RocksDB, fsync on), default timings
 *   koa     a bare Koa app with the same routes over a Map (the ceiling of any Koa service here)
 *   etcd    3 etcd 3.4 members on loopback through the JSON gateway (/v3/kv/put, /v3/kv/range)
 *
 * Load: wrk (Debian) with Lua scripts in bench/wrk, for BENCH_SECONDS (default 10) at each of
 * BENCH_CONNS (default 1,16,64): POST of distinct 16-byte keys with 100-byte values, linearizable
 * GET and stale GET of 1000 prepopulated keys. Requests go to the leader of each cluster. Then a
 * stress check writes STRESS_KEYS (default 1,000,000) keys in batches and restarts the cluster:
 * time to ready, RSS, V8 heap and external memory per node, and disk use (STRESS_HEAP_CAP_MB=0 skips the
 * heap-capped repeat, STRESS_CHECKOUT=<built checkout> runs the stress on another build). Growth
 * (reduced points, BENCH_GROWTH_* below; BENCH_GROWTH=0 skips it). BENCH_ONLY=raftkv,koa,etcd,stress,growth picks parts (catchup,
 * not in the default set, runs bench/catchup.ts: a follower's snapshot catch-up under steady writes;
 * watch and lease, not in the default set either, run bench/watch.ts: 100 watchers fed by a writer and
 * lease keepalives, raftkv beside etcd),
 * BENCH_OPS=put,get-linearizable,get-stale picks measurements, and BENCH_RAFTKV_ENV='{"K":"V"}' adds
 * environment variables to every raftkv node (for experiments; the recorded table uses defaults).
 *
 * Issue 16 measurements (in BENCH_OPS by default; each at BENCH_CAS_CONNS, default 64, connections):
 *   cas            uncontended compare-and-set: each connection its own key, PUT /key/:key with
 *                  If-Match "<index from the last answer>"; etcd: POST /v3/kv/txn comparing mod_revision
 *   cas-contended  all connections on BENCH_CAS_KEYS (default 4) shared keys: successes/s and 412/s
 *   list           a 1,000-key prefix page: GET /keys?prefix=list/&limit=1000 (linearizable);
 *                  etcd: POST /v3/kv/range with range_end = prefix end, limit 1000
 * BENCH_BASELINE_DIR=<a built checkout of an older commit> adds the target `base` (its dist/src/main.js),
 * run with the same ops; BENCH_ONLY keeps its order and repeats, so
 * BENCH_ONLY=raftkv,base,raftkv,base interleaves two rounds of each (the ratio uses the mean).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup, dirs, etcdLeader, httpJson, procs, root, spawnProc, startEtcd, waitFor } from './procs.js';

const wrkDir = join(root, 'bench/wrk');
const seconds = Number(process.env.BENCH_SECONDS ?? '8');
const connsList = (process.env.BENCH_CONNS ?? '1,16,64').split(',').map(Number);
const parts = (process.env.BENCH_ONLY ?? 'raftkv,etcd,koa,stress,growth').split(',');
const only = new Set(parts);
/** Parts run after the table by their own scripts (none is in the default set). */
const standalone = new Set(['stress', 'catchup', 'growth', 'watch', 'lease']);
const stressKeys = Number(process.env.STRESS_KEYS ?? '1000000');
const ops = new Set((process.env.BENCH_OPS ?? 'put,get-linearizable,get-stale,cas,cas-contended,list').split(','));
const casConns = Number(process.env.BENCH_CAS_CONNS ?? '64');
const casSharedKeys = Number(process.env.BENCH_CAS_KEYS ?? '4');
const baselineDir = process.env.BENCH_BASELINE_DIR;
const listKeys = 1000;
const listPrefix = 'list/';
const raftkvExtraEnv = JSON.parse(process.env.BENCH_RAFTKV_ENV ?? '{}') as Record<string, string>;
const readKeys = 1000;
const value = 'v'.repeat(100);
/** Rounds of every measured part (raftkv, etcd, koa interleaved round by round); each figure is their median with min-max. */
const repeat = Math.max(1, Number(process.env.BENCH_REPEAT ?? '3'));
/** Cluster size for raftkv and etcd (3 by default; the growth series adds 5 nodes). */
const defaultNodes = Number(process.env.BENCH_NODES ?? '3');
const chartPath = process.env.BENCH_CHART ?? join(root, 'docs/bench.svg');
const clockTicksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

type Op = 'put' | 'get-linearizable' | 'get-stale' | 'cas' | 'cas-contended' | 'list';
interface Row {
  target: string;
  op: Op;
  conns: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU time (user+sys, every server process of the cluster, from /proc) per acknowledged (2xx) request, in microseconds. */
  cpuUsPerOp?: number;
  /** Which round of BENCH_REPEAT this row comes from (1-based). */
  round?: number;
  cas?: { okPerSec: number; pfPerSec: number; other: number };
}

process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function toMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** The server processes whose CPU the current measurement charges (set by each part before it loads its cluster). */
let serverPids: number[] = [];

/** user+sys CPU seconds of `pids` so far (all their threads: /proc/PID/stat fields 14 and 15). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / clockTicksPerSec;
}

/** Runs wrk against `url` with one of our Lua scripts and parses throughput, p50, p99, errors and the servers' CPU per answered request. */
function runWrk(url: string, script: string, conns: number, args: string[], env: Record<string, string> = {}, secs = seconds): Omit<Row, 'target' | 'op' | 'conns'> {
  const cpu0 = cpuSeconds(serverPids);
  const r = runWrkOnce(url, script, conns, args, env, secs);
  const cpu = cpuSeconds(serverPids) - cpu0;
  const acked = r.requests - r.non2xx;
  const { requests: _n, non2xx: _e, ...row } = r;
  return { ...row, cpuUsPerOp: acked > 0 ? (cpu * 1e6) / acked : NaN };
}

function runWrkOnce(url: string, script: string, conns: number, args: string[], env: Record<string, string>, secs: number): Omit<Row, 'target' | 'op' | 'conns'> & { requests: number; non2xx: number } {
  const threads = Math.min(conns, 2);
  const out = execFileSync('wrk', ['-t', String(threads), '-c', String(conns), '-d', `${secs}s`, '--latency', '--timeout', '10s', '-s', join(wrkDir, script), url, '--', ...args], {
    env: { ...process.env, BENCH_WRK_DIR: wrkDir, ...env },
    encoding: 'utf8',
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const requests = Number(/(\d+) requests in /.exec(out)?.[1] ?? 'NaN');
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0');
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const casLine = /CAS ok=(\d+) precondition_failed=(\d+) other=(\d+)/.exec(out);
  if (casLine) {
    // 412 is an answer here, not an error: errors are the other statuses and socket errors.
    const [okN, pfN, otherN] = casLine.slice(1).map(Number);
    // A 412 is an answer the servers worked for: CPU per op counts it (only the other statuses are not answers).
    return { rps, p50Ms: p50, p99Ms: p99, errors: otherN + sockErrors, requests, non2xx: otherN, cas: { okPerSec: okN / secs, pfPerSec: pfN / secs, other: otherN } };
  }
  const errors = non2xx + sockErrors;
  return { rps, p50Ms: p50, p99Ms: p99, errors, requests, non2xx };
}

// ------------------------------------------------------------------------------------------------
// raftkv
// ------------------------------------------------------------------------------------------------

interface RaftkvCluster { dir: string; apis: string[]; nodes: { id: string; env: Record<string, string>; proc: ChildProcess }[] }

function startRaftkvNode(id: string, env: Record<string, string>, nodeArgs: string[] = [], checkout = root): ChildProcess {
  return spawnProc(process.execPath, [...nodeArgs, join(checkout, 'dist/src/main.js')], { NODE_ID: id, LOG_LEVEL: 'warn', ...raftkvExtraEnv, ...env });
}

async function stopRaftkv(c: RaftkvCluster): Promise<void> {
  for (const n of c.nodes) n.proc.kill('SIGTERM');
  await Promise.all(c.nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null || n.proc.signalCode !== null ? r(null) : n.proc.once('exit', r)))));
}

async function startRaftkv(nodeArgs: string[] = [], checkout = root, size = defaultNodes): Promise<RaftkvCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-'));
  dirs.push(dir);
  const apis: string[] = [];
  const nodes: RaftkvCluster['nodes'] = [];
  for (let i = 1; i <= size; i++) {
    const env: Record<string, string> = { PORT: String(18180 + i), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${17160 + i}`, RAFT_DIR: dir };
    if (i > 1) env.RAFT_JOIN_ADDR = '127.0.0.1:18181';
    nodes.push({ id: `b${i}`, env, proc: startRaftkvNode(`b${i}`, env, nodeArgs, checkout) });
    apis.push(`http://127.0.0.1:${18180 + i}`);
    if (i === 1) await waitFor('raftkv node 1', async () => (await httpJson('GET', `${apis[0]}/ready`)).status === 200);
  }
  await waitFor(`${size} raftkv voters`, async () => {
    const { json } = await httpJson('GET', `${apis[0]}/cluster`);
    const members = (json as { nodes: { suffrage: string }[] }).nodes;
    return members.filter((m) => m.suffrage === 'voter').length === size;
  });
  for (const api of apis) await waitFor(`${api} ready`, async () => (await httpJson('GET', `${api}/ready`)).status === 200);
  return { dir, apis, nodes };
}

async function raftkvLeader(c: RaftkvCluster): Promise<string> {
  const { json } = await httpJson('GET', `${c.apis[0]}/cluster`);
  const leader = (json as { leader: { apiAddr: string } | null }).leader;
  if (!leader) throw new Error('bench: raftkv has no leader');
  return `http://${leader.apiAddr}`;
}

function readKeyPairs(): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (let i = 1; i <= readKeys; i++) pairs[`r${String(i).padStart(15, '0')}`] = value;
  return pairs;
}

function listKeyPairs(): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (let i = 1; i <= listKeys; i++) pairs[`${listPrefix}${String(i).padStart(11, '0')}`] = value;
  return pairs;
}

/** The wrk args of the CAS scripts: tag, read keys, mode, keys (per thread when owned, +1 for wrk's check request). */
function casArgs(tag: string, contended: boolean): string[] {
  return contended ? [tag, String(readKeys), 'shared', String(casSharedKeys)] : [tag, String(readKeys), 'own', String(Math.ceil(casConns / Math.min(casConns, 2)) + 1)];
}

/** CAS (uncontended, contended) and the 1,000-key listing on raftkv; not on the Koa ceiling. */
async function benchRaftkvIssue16(rows: Row[], target: string, base: string): Promise<void> {
  if (ops.has('cas')) rows.push({ target, op: 'cas', conns: casConns, ...runWrk(base, 'raftkv-cas.lua', casConns, casArgs('u', false)) });
  if (ops.has('cas-contended')) {
    for (let i = 1; i <= casSharedKeys; i++) {
      const { status } = await httpJson('POST', `${base}/key`, { [`cas-wshared${String(i).padStart(3, '0')}`]: value });
      if (status !== 200) throw new Error(`bench: prepopulating ${target} shared CAS keys failed with ${status}`);
    }
    rows.push({ target, op: 'cas-contended', conns: casConns, ...runWrk(base, 'raftkv-cas.lua', casConns, casArgs('w', true)) });
  }
  if (ops.has('list')) {
    const { status } = await httpJson('POST', `${base}/key`, listKeyPairs());
    if (status !== 200) throw new Error(`bench: prepopulating ${target} list keys failed with ${status}`);
    const page = await httpJson('GET', `${base}/keys?prefix=${encodeURIComponent(listPrefix)}&limit=1000`);
    const n = (page.json as { items?: unknown[] }).items?.length;
    if (page.status !== 200 || n !== listKeys) throw new Error(`bench: ${target} listing answered ${page.status} with ${n} items, expected ${listKeys}`);
    rows.push({ target, op: 'list', conns: casConns, ...runWrk(base, 'raftkv-list.lua', casConns, ['l', String(readKeys), listPrefix]) });
  }
}

async function benchRaftkv(rows: Row[], target: string, base: string): Promise<void> {
  const { status } = await httpJson('POST', `${base}/key`, readKeyPairs());
  if (status !== 200) throw new Error(`bench: prepopulating ${target} failed with ${status}`);
  let run = 0;
  for (const conns of connsList) {
    const tag = String.fromCharCode(97 + run++);
    if (ops.has('put')) rows.push({ target, op: 'put', conns, ...runWrk(base, 'raftkv-put.lua', conns, [tag, String(readKeys)]) });
    const isCeiling = target === 'koa';
    if (!isCeiling && ops.has('get-linearizable')) rows.push({ target, op: 'get-linearizable', conns, ...runWrk(base, 'raftkv-get.lua', conns, [tag, String(readKeys)]) });
    if (ops.has('get-stale')) rows.push({ target, op: 'get-stale', conns, ...runWrk(base, 'raftkv-get.lua', conns, [tag, String(readKeys)], isCeiling ? {} : { BENCH_QUERY: '?consistency=stale' }) });
  }
}

// ------------------------------------------------------------------------------------------------
// etcd
// ------------------------------------------------------------------------------------------------

function startEtcdCluster(size = defaultNodes): Promise<string[]> {
  return startEtcd({ size, clientBase: 23790, peerBase: 23800, token: 'raftkv-bench', dirPrefix: 'etcd-bench-', extraArgs: ['--max-request-bytes', String(4 << 20)] });
}

async function benchEtcd(rows: Row[], base: string): Promise<void> {
  for (const [k, v] of Object.entries(readKeyPairs())) {
    const { status } = await httpJson('POST', `${base}/v3/kv/put`, { key: Buffer.from(k).toString('base64'), value: Buffer.from(v).toString('base64') });
    if (status !== 200) throw new Error(`bench: prepopulating etcd failed with ${status}`);
  }
  let run = 0;
  for (const conns of connsList) {
    const tag = String.fromCharCode(97 + run++);
    if (ops.has('put')) rows.push({ target: 'etcd', op: 'put', conns, ...runWrk(base, 'etcd-put.lua', conns, [tag, String(readKeys)]) });
    if (ops.has('get-linearizable')) rows.push({ target: 'etcd', op: 'get-linearizable', conns, ...runWrk(base, 'etcd-range.lua', conns, [tag, String(readKeys)]) });
    if (ops.has('get-stale')) rows.push({ target: 'etcd', op: 'get-stale', conns, ...runWrk(base, 'etcd-range.lua', conns, [tag, String(readKeys)], { BENCH_SERIALIZABLE: '1' }) });
  }
  const putEtcd = async (k: string, v: string): Promise<void> => {
    const { status } = await httpJson('POST', `${base}/v3/kv/put`, { key: Buffer.from(k).toString('base64'), value: Buffer.from(v).toString('base64') });
    if (status !== 200) throw new Error(`bench: prepopulating etcd failed with ${status}`);
  };
  if (ops.has('cas')) rows.push({ target: 'etcd', op: 'cas', conns: casConns, ...runWrk(base, 'etcd-cas.lua', casConns, casArgs('u', false)) });
  if (ops.has('cas-contended')) {
    for (let i = 1; i <= casSharedKeys; i++) await putEtcd(`cas-wshared${String(i).padStart(3, '0')}`, value);
    rows.push({ target: 'etcd', op: 'cas-contended', conns: casConns, ...runWrk(base, 'etcd-cas.lua', casConns, casArgs('w', true)) });
  }
  if (ops.has('list')) {
    const pairs = Object.entries(listKeyPairs());
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => { while (next < pairs.length) { const [k, v] = pairs[next++]; await putEtcd(k, v); } }));
    const end = listPrefix.slice(0, -1) + String.fromCharCode(listPrefix.charCodeAt(listPrefix.length - 1) + 1);
    const page = await httpJson('POST', `${base}/v3/kv/range`, { key: Buffer.from(listPrefix).toString('base64'), range_end: Buffer.from(end).toString('base64'), limit: 1000 });
    const n = (page.json as { kvs?: unknown[] }).kvs?.length;
    if (page.status !== 200 || n !== listKeys) throw new Error(`bench: etcd range answered ${page.status} with ${n} kvs, expected ${listKeys}`);
    rows.push({ target: 'etcd', op: 'list', conns: casConns, ...runWrk(base, 'etcd-list.lua', casConns, ['l', String(readKeys), listPrefix]) });
  }
}

// ------------------------------------------------------------------------------------------------
// Stress: many keys, then a restart.
// ------------------------------------------------------------------------------------------------

function rssMb(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/** V8 heap in use / heap size / external (Buffers) in MB of a raftkv node (prom-client's default metrics on /metrics); the rest of RSS is native (RocksDB, malloc). */
async function heapMb(api: string): Promise<string> {
  const { json } = await httpJson('GET', `${api}/metrics`);
  const text = String(json);
  const metric = (name: string) => Math.round(Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? 'NaN') / (1024 * 1024));
  return `${metric('nodejs_heap_size_used_bytes')}/${metric('nodejs_heap_size_total_bytes')}/${metric('nodejs_external_memory_bytes')}`;
}

function duMb(dir: string): number {
  return Math.round(Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]) / (1024 * 1024));
}

/** Writes STRESS_KEYS keys in 1000-key batches from 8 clients; throws if a batch fails (e.g. a node died). */
async function writeStressKeys(c: RaftkvCluster): Promise<number> {
  const leader = await raftkvLeader(c);
  const batch = 1000;
  const batches = Math.ceil(stressKeys / batch);
  const t0 = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches) {
      const b = next++;
      const pairs: Record<string, string> = {};
      for (let i = 0; i < batch && b * batch + i < stressKeys; i++) pairs[`s${String(b * batch + i).padStart(15, '0')}`] = value;
      const { status } = await httpJson('POST', `${leader}/key`, pairs);
      if (status !== 200) throw new Error(`bench: stress batch ${b} failed with ${status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return (Date.now() - t0) / 1000;
}

/**
 * The same writes into a fresh cluster whose nodes run with a V8 heap cap of STRESS_HEAP_CAP_MB
 * (default 256): they survive only if what they keep in memory does not
 * grow with the number of keys. Without a cap V8 collects lazily, so RSS mostly shows garbage.
 */
async function stressCapped(): Promise<string> {
  const capMb = Number(process.env.STRESS_HEAP_CAP_MB ?? '256');
  if (capMb === 0) return 'stress: heap-capped run skipped (STRESS_HEAP_CAP_MB=0)';
  const c = await startRaftkv([`--max-old-space-size=${capMb}`]);
  const writeSecs = await writeStressKeys(c);
  const alive = c.nodes.every((n) => n.proc.exitCode === null && n.proc.signalCode === null);
  const rss = c.nodes.map((n) => rssMb(n.proc.pid));
  // Waits for the exits: the next part (growth) starts a cluster on the same ports.
  await stopRaftkv(c);
  if (!alive) throw new Error('bench: a heap-capped node died during the stress writes');
  return `stress: heap_cap_mb=${capMb} keys=${stressKeys} write_secs=${writeSecs.toFixed(1)} nodes_alive=3/3 rss_mb_after_writes=${rss.join('/')}`;
}

async function stress(koaStale: number | undefined): Promise<string[]> {
  // STRESS_CHECKOUT=<a built checkout>: the same stress on an older build (memory before/after).
  const c = await startRaftkv([], process.env.STRESS_CHECKOUT ?? root);
  const batches = Math.ceil(stressKeys / 1000);
  const batch = 1000;
  const leader = await raftkvLeader(c);
  const { status } = await httpJson('POST', `${leader}/key`, readKeyPairs());
  if (status !== 200) throw new Error(`bench: prepopulating the stress cluster failed with ${status}`);
  const writeSecs = await writeStressKeys(c);
  const rssBefore = c.nodes.map((n) => rssMb(n.proc.pid));
  const heapBefore = await Promise.all(c.apis.map(heapMb));
  // Stale reads after the many writes (the issue's target is the Koa ceiling here, not only on a fresh cluster).
  serverPids = c.nodes.map((n) => n.proc.pid ?? 0);
  const stale = runWrk(leader, 'raftkv-get.lua', 64, ['z', String(readKeys)], { BENCH_QUERY: '?consistency=stale' });
  const rssAfterReads = c.nodes.map((n) => rssMb(n.proc.pid));
  await new Promise((r) => setTimeout(r, 1000));
  for (const n of c.nodes) n.proc.kill('SIGTERM');
  await Promise.all(c.nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null ? r(null) : n.proc.once('exit', r)))));
  const disk = duMb(c.dir);
  const t1 = Date.now();
  for (const n of c.nodes) n.proc = startRaftkvNode(n.id, n.env, [], process.env.STRESS_CHECKOUT ?? root);
  for (const api of c.apis) await waitFor(`${api} ready after restart`, async () => (await httpJson('GET', `${api}/ready`)).status === 200, 300_000);
  const readySecs = (Date.now() - t1) / 1000;
  const probe = await httpJson('GET', `${c.apis[2]}/key/s${String(stressKeys - 1).padStart(15, '0')}?consistency=linearizable`);
  const rssAfter = c.nodes.map((n) => rssMb(n.proc.pid));
  for (const n of c.nodes) n.proc.kill('SIGTERM');
  await Promise.all(c.nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null || n.proc.signalCode !== null ? r(null) : n.proc.once('exit', r)))));
  return [
    `stress: keys=${stressKeys} batches=${batches}x${batch} write_secs=${writeSecs.toFixed(1)} keys_per_sec=${Math.round(stressKeys / writeSecs)}`,
    `stress: get-stale@64 after the writes: ${fmt(stale.rps, 0)} req/s p99=${fmt(stale.p99Ms, 2)} ms cpu_us/read=${fmt(stale.cpuUsPerOp ?? NaN, 0)}; raftkv/koa=${ratio(stale.rps, koaStale)} (target >=0.8x); rss_mb after the reads=${rssAfterReads.join('/')}`,
    `stress: rss_mb_after_writes=${rssBefore.join('/')} (target <=256) heap_used/total/external_mb_after_writes=${heapBefore.join(' ')} disk_mb=${disk} restart_to_ready_secs=${readySecs.toFixed(1)} rss_mb_after_restart=${rssAfter.join('/')} last_key_status=${probe.status}`,
    await stressCapped(),
  ];
}

// ------------------------------------------------------------------------------------------------

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a';
}

function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

/** One figure over the rounds: median, min and max. */
interface Spread { med: number; min: number; max: number; n: number }
function spread(xs: number[]): Spread {
  const v = xs.filter(Number.isFinite);
  return { med: median(v), min: v.length ? Math.min(...v) : NaN, max: v.length ? Math.max(...v) : NaN, n: v.length };
}

/** The rows of one target, op and connection count over every round. */
interface Agg { target: string; op: Op; conns: number; rps: Spread; p50: Spread; p99: Spread; cpu: Spread; errors: number; rows: Row[] }

function aggregate(rows: Row[]): Agg[] {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = `${r.target}\0${r.op}\0${r.conns}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  return [...groups.values()].map((g) => ({
    target: g[0].target, op: g[0].op, conns: g[0].conns, rows: g,
    rps: spread(g.map((r) => r.rps)), p50: spread(g.map((r) => r.p50Ms)), p99: spread(g.map((r) => r.p99Ms)), cpu: spread(g.map((r) => r.cpuUsPerOp ?? NaN)),
    errors: g.reduce((a, r) => a + r.errors, 0),
  }));
}

/** `median (min-max)`, or the single value when there was one round. */
function fmtSpread(s: Spread, digits: number, width: number): string {
  const text = s.n > 1 ? `${fmt(s.med, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})` : fmt(s.med, digits);
  return text.padStart(width);
}

// ------------------------------------------------------------------------------------------------
// Growth: key count, value size, cluster size (in the default run with reduced points; BENCH_GROWTH=0 skips it).
// ------------------------------------------------------------------------------------------------

/** One growth point: a put (and, for key counts, a stale get) measurement at a given key count, value size or cluster size. */
interface GrowthRow { series: 'keys' | 'value' | 'nodes'; x: number; target: string; op: Op; conns: number; row: Omit<Row, 'target' | 'op' | 'conns'>; rssMb?: number[] }

/** Fills raftkv up to `total` keys `g...` (1000-key batches, 8 clients), starting from `from`. */
async function fillRaftkv(leader: string, from: number, total: number): Promise<void> {
  let next = Math.floor(from / 1000);
  const batches = Math.ceil(total / 1000);
  const worker = async (): Promise<void> => {
    while (next < batches) {
      const b = next++;
      const pairs: Record<string, string> = {};
      for (let i = b * 1000; i < Math.min(total, (b + 1) * 1000); i++) pairs[`g${String(i).padStart(15, '0')}`] = value;
      const { status } = await httpJson('POST', `${leader}/key`, pairs);
      if (status !== 200) throw new Error(`bench: growth batch ${b} failed with ${status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** Fills etcd up to `total` keys with transactions of 128 puts (etcd's default --max-txn-ops), 8 clients. */
async function fillEtcd(base: string, from: number, total: number): Promise<void> {
  const per = 128;
  let next = from;
  const v64 = Buffer.from(value).toString('base64');
  const worker = async (): Promise<void> => {
    while (next < total) {
      const start = next;
      next = Math.min(total, next + per);
      const success = [];
      for (let i = start; i < next; i++) success.push({ request_put: { key: Buffer.from(`g${String(i).padStart(15, '0')}`).toString('base64'), value: v64 } });
      const { status } = await httpJson('POST', `${base}/v3/kv/txn`, { success });
      if (status !== 200) throw new Error(`bench: etcd growth txn failed with ${status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/**
 * Reduced by default so `make bench` stays short; the issue's full series is
 * BENCH_GROWTH_KEYS=10000,1000000,5000000 BENCH_GROWTH_VALUES=100,10240,102400,1048576 (filling 5M keys
 * takes minutes per system).
 */
const growthKeys = (process.env.BENCH_GROWTH_KEYS ?? '10000,200000').split(',').map(Number);
const growthValues = (process.env.BENCH_GROWTH_VALUES ?? '100,10240,102400').split(',').map(Number);
const growthConns = Number(process.env.BENCH_GROWTH_CONNS ?? '64');
/** Seconds of each growth point (shorter than BENCH_SECONDS: one round, many points). */
const growthSeconds = Number(process.env.BENCH_GROWTH_SECONDS ?? '4');

async function withCluster<T>(target: 'raftkv' | 'etcd', size: number, fn: (base: string, pids: number[]) => Promise<T>): Promise<T> {
  if (target === 'raftkv') {
    const c = await startRaftkv([], root, size);
    try {
      return await fn(await raftkvLeader(c), c.nodes.map((n) => n.proc.pid ?? 0));
    } finally {
      await stopRaftkv(c);
    }
  }
  const clients = await startEtcdCluster(size);
  try {
    const pids = procs.filter((p) => p.spawnargs[0] === 'etcd' && p.exitCode === null && p.signalCode === null).map((p) => p.pid ?? 0);
    return await fn(await etcdLeader(clients), pids);
  } finally {
    const etcds = procs.filter((p) => p.spawnargs[0] === 'etcd' && p.exitCode === null && p.signalCode === null);
    for (const p of etcds) p.kill('SIGTERM');
    await Promise.all(etcds.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));
    for (const d of dirs.filter((x) => x.includes('etcd-bench-'))) rmSync(d, { recursive: true, force: true });
  }
}

async function growth(): Promise<GrowthRow[]> {
  const out: GrowthRow[] = [];
  const putScript = (t: string) => (t === 'raftkv' ? 'raftkv-put.lua' : 'etcd-put.lua');
  for (const target of ['raftkv', 'etcd'] as const) {
    // Key count: fill, then write and read at that size.
    await withCluster(target, defaultNodes, async (base, pids) => {
      serverPids = pids;
      if (target === 'raftkv') {
        const { status } = await httpJson('POST', `${base}/key`, readKeyPairs());
        if (status !== 200) throw new Error(`bench: prepopulating ${target} failed with ${status}`);
      } else for (const [k, v] of Object.entries(readKeyPairs()).slice(0, readKeys)) await httpJson('POST', `${base}/v3/kv/put`, { key: Buffer.from(k).toString('base64'), value: Buffer.from(v).toString('base64') });
      let have = 0;
      let tag = 0;
      for (const k of growthKeys) {
        if (target === 'raftkv') await fillRaftkv(base, have, k);
        else await fillEtcd(base, have, k);
        have = k;
        const t = String.fromCharCode(65 + tag++);
        out.push({ series: 'keys', x: k, target, op: 'put', conns: growthConns, row: runWrk(base, putScript(target), growthConns, [t, String(readKeys)], {}, growthSeconds), rssMb: pids.map(rssMb) });
        const readScript = target === 'raftkv' ? 'raftkv-get.lua' : 'etcd-range.lua';
        const readEnv: Record<string, string> = target === 'raftkv' ? { BENCH_QUERY: '?consistency=stale' } : { BENCH_SERIALIZABLE: '1' };
        out.push({ series: 'keys', x: k, target, op: 'get-stale', conns: growthConns, row: runWrk(base, readScript, growthConns, [t, String(readKeys)], readEnv, growthSeconds), rssMb: pids.map(rssMb) });
      }
    });
    // Value size: one fresh cluster, puts of each size.
    await withCluster(target, defaultNodes, async (base, pids) => {
      serverPids = pids;
      let tag = 0;
      for (const bytes of growthValues) {
        const f = join(dirs[dirs.length - 1], `value-${bytes}.b64`);
        writeFileSync(f, Buffer.from('v'.repeat(bytes)).toString('base64'));
        const t = String.fromCharCode(75 + tag++);
        const conns = Math.min(growthConns, bytes >= 1 << 20 ? 16 : growthConns);
        out.push({ series: 'value', x: bytes, target, op: 'put', conns, row: runWrk(base, putScript(target), conns, [t, String(readKeys)], { BENCH_VALUE_BYTES: String(bytes), BENCH_VALUE_B64_FILE: f }, growthSeconds), rssMb: pids.map(rssMb) });
      }
    });
    // Cluster size: 5 nodes beside the default.
    for (const size of [3, 5]) {
      await withCluster(target, size, async (base, pids) => {
        serverPids = pids;
        out.push({ series: 'nodes', x: size, target, op: 'put', conns: growthConns, row: runWrk(base, putScript(target), growthConns, ['n', String(readKeys)], {}, growthSeconds) });
      });
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// The chart: req/s and p99 against connections (raftkv, etcd, Koa), and against key count when measured.
// ------------------------------------------------------------------------------------------------

const COLORS: Record<string, string> = { raftkv: '#1f77b4', etcd: '#d62728', koa: '#7f7f7f', base: '#2ca02c' };

interface Panel { title: string; xLabel: string; yLabel: string; xs: number[]; xTicks: string[]; series: { name: string; ys: number[]; lo?: number[]; hi?: number[] }[] }

function escapeXml(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number): string {
  const left = 56, right = 8, top = 22, bottom = 34;
  const pw = w - left - right, ph = h - top - bottom;
  const all = p.series.flatMap((s) => [...s.ys, ...(s.hi ?? [])]).filter(Number.isFinite);
  const yMax = all.length ? Math.max(...all) * 1.1 : 1;
  const n = p.xs.length;
  const xAt = (i: number) => x0 + left + (n === 1 ? pw / 2 : (i * pw) / (n - 1));
  const yAt = (v: number) => y0 + top + ph - (v / yMax) * ph;
  const parts: string[] = [];
  parts.push(`<text x="${x0 + left + pw / 2}" y="${y0 + 14}" text-anchor="middle" font-weight="bold">${escapeXml(p.title)}</text>`);
  parts.push(`<rect x="${x0 + left}" y="${y0 + top}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    const y = yAt(v);
    parts.push(`<line x1="${x0 + left}" x2="${x0 + left + pw}" y1="${y}" y2="${y}" stroke="#eee"/><text x="${x0 + left - 4}" y="${y + 4}" text-anchor="end">${v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : v.toFixed(v >= 10 ? 0 : 1)}</text>`);
  }
  p.xTicks.forEach((t, i) => parts.push(`<text x="${xAt(i)}" y="${y0 + top + ph + 14}" text-anchor="middle">${escapeXml(t)}</text>`));
  parts.push(`<text x="${x0 + left + pw / 2}" y="${y0 + h - 4}" text-anchor="middle">${escapeXml(p.xLabel)}</text>`);
  parts.push(`<text transform="translate(${x0 + 12},${y0 + top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(p.yLabel)}</text>`);
  for (const s of p.series) {
    const color = COLORS[s.name] ?? '#000';
    const pts = s.ys.map((v, i) => (Number.isFinite(v) ? `${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}` : null)).filter((x) => x !== null);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    s.ys.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      if (s.lo && s.hi && Number.isFinite(s.lo[i]) && Number.isFinite(s.hi[i])) parts.push(`<line x1="${xAt(i)}" x2="${xAt(i)}" y1="${yAt(s.lo[i])}" y2="${yAt(s.hi[i])}" stroke="${color}" stroke-width="1"/>`);
      parts.push(`<circle cx="${xAt(i)}" cy="${yAt(v)}" r="3" fill="${color}"><title>${s.name} ${p.xTicks[i]}: ${v.toFixed(2)}</title></circle>`);
    });
  }
  return parts.join('\n');
}

/** A hand-written SVG of the panels (3 per row) with a legend; no dependency. */
function chartSvg(title: string, subtitle: string, panels: Panel[]): string {
  const w = 330, h = 210, cols = 3;
  const rowsN = Math.ceil(panels.length / cols);
  const width = w * cols, height = 56 + rowsN * h;
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const legend = names.map((n, i) => `<rect x="${12 + i * 90}" y="36" width="12" height="4" fill="${COLORS[n] ?? '#000'}"/><text x="${28 + i * 90}" y="42">${escapeXml(n)}</text>`).join('');
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * w, 50 + Math.floor(i / cols) * h, w, h)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="12" y="16" font-size="14" font-weight="bold">${escapeXml(title)}</text>
<text x="12" y="30" fill="#555">${escapeXml(subtitle)}</text>
${legend}
${body}
</svg>
`;
}

function connPanels(aggs: Agg[]): Panel[] {
  const panels: Panel[] = [];
  const conns = [...new Set(aggs.map((a) => a.conns))].sort((a, b) => a - b);
  for (const op of ['put', 'get-linearizable', 'get-stale'] as Op[]) {
    const targets = [...new Set(aggs.filter((a) => a.op === op).map((a) => a.target))];
    if (targets.length === 0) continue;
    const cs = conns.filter((c) => aggs.some((a) => a.op === op && a.conns === c));
    const pick = (t: string, f: (a: Agg) => Spread) => cs.map((c) => aggs.find((a) => a.target === t && a.op === op && a.conns === c)).map((a) => (a ? f(a) : { med: NaN, min: NaN, max: NaN, n: 0 }));
    const series = (f: (a: Agg) => Spread) => targets.map((t) => { const sp = pick(t, f); return { name: t, ys: sp.map((x) => x.med), lo: sp.map((x) => x.min), hi: sp.map((x) => x.max) }; });
    panels.push({ title: `${op}: req/s`, xLabel: 'connections', yLabel: 'req/s', xs: cs, xTicks: cs.map(String), series: series((a) => a.rps) });
    panels.push({ title: `${op}: p99 ms`, xLabel: 'connections', yLabel: 'p99 ms', xs: cs, xTicks: cs.map(String), series: series((a) => a.p99) });
    panels.push({ title: `${op}: CPU us per op`, xLabel: 'connections', yLabel: 'CPU us/op', xs: cs, xTicks: cs.map(String), series: series((a) => a.cpu) });
  }
  return panels;
}

function growthPanels(g: GrowthRow[]): Panel[] {
  const panels: Panel[] = [];
  const label = (series: GrowthRow['series'], x: number) => (series === 'keys' ? (x >= 1e6 ? `${x / 1e6}M` : `${x / 1e3}k`) : series === 'value' ? (x >= 1 << 20 ? `${x / (1 << 20)}MB` : x >= 1024 ? `${x / 1024}KB` : `${x}B`) : `${x} nodes`);
  for (const [series, op, what] of [['keys', 'put', 'key count'], ['keys', 'get-stale', 'key count'], ['value', 'put', 'value size'], ['nodes', 'put', 'cluster size']] as const) {
    const rows = g.filter((r) => r.series === series && r.op === op);
    if (rows.length === 0) continue;
    const xs = [...new Set(rows.map((r) => r.x))].sort((a, b) => a - b);
    const targets = [...new Set(rows.map((r) => r.target))];
    const ys = (t: string, f: (r: GrowthRow) => number) => xs.map((x) => { const r = rows.find((q) => q.target === t && q.x === x); return r ? f(r) : NaN; });
    panels.push({ title: `${op} vs ${what}: req/s`, xLabel: what, yLabel: 'req/s', xs, xTicks: xs.map((x) => label(series, x)), series: targets.map((t) => ({ name: t, ys: ys(t, (r) => r.row.rps) })) });
    panels.push({ title: `${op} vs ${what}: p99 ms`, xLabel: what, yLabel: 'p99 ms', xs, xTicks: xs.map((x) => label(series, x)), series: targets.map((t) => ({ name: t, ys: ys(t, (r) => r.row.p99Ms) })) });
    panels.push({ title: `${op} vs ${what}: CPU us/op`, xLabel: what, yLabel: 'CPU us/op', xs, xTicks: xs.map((x) => label(series, x)), series: targets.map((t) => ({ name: t, ys: ys(t, (r) => r.row.cpuUsPerOp ?? NaN) })) });
  }
  return panels;
}

async function main(): Promise<void> {
  if (!existsSync(join(root, 'dist/src/main.js'))) throw new Error('bench: run `make build` first');
  const lines: string[] = [];
  const t0 = Date.now();
  lines.push(`bench: cores=${cpus().length} load_at_start=${loadavg().map((x) => x.toFixed(2)).join(',')} seconds=${seconds} conns=${connsList.join(',')} rounds=${repeat} nodes=${defaultNodes} node=${process.version}`);
  const rows: Row[] = [];
  const seen = new Set<string>();
  // Round by round, every measured part in BENCH_ONLY's order, so raftkv and etcd see the same noise.
  const measured = parts.filter((p) => !standalone.has(p));
  for (let round = 1; round <= repeat; round++) {
    for (const part of measured) {
      const load = `load=${loadavg()[0].toFixed(2)}`;
      const before = rows.length;
      // The issue 16 measurements (cas, list) run in the first round only.
      const saved = new Set(ops);
      if (round > 1) for (const o of ['cas', 'cas-contended', 'list'] as Op[]) ops.delete(o);
      if (part === 'raftkv' || part === 'base') {
        if (part === 'base' && !baselineDir) throw new Error('bench: BENCH_ONLY=base needs BENCH_BASELINE_DIR (a built checkout)');
        const c = await startRaftkv([], part === 'base' ? baselineDir : root);
        serverPids = c.nodes.map((n) => n.proc.pid ?? 0);
        const leader = await raftkvLeader(c);
        await benchRaftkv(rows, part, leader);
        if (part === 'raftkv') await benchRaftkvIssue16(rows, part, leader);
        await stopRaftkv(c);
      } else if (part === 'koa') {
        const koa = spawnProc(process.execPath, ['--import', 'tsx', join(root, 'bench/koa-ceiling.ts'), '18090'], {});
        serverPids = [koa.pid ?? 0];
        await waitFor('koa ceiling', async () => (await httpJson('GET', 'http://127.0.0.1:18090/key/x')).status === 404);
        await benchRaftkv(rows, 'koa', 'http://127.0.0.1:18090');
        koa.kill('SIGTERM');
        await new Promise((r) => (koa.exitCode !== null || koa.signalCode !== null ? r(null) : koa.once('exit', r)));
      } else if (part === 'etcd') {
        await withCluster('etcd', defaultNodes, async (base, pids) => {
          serverPids = pids;
          await benchEtcd(rows, base);
        });
      } else {
        throw new Error(`bench: unknown BENCH_ONLY part ${part}`);
      }
      for (const o of saved) ops.add(o);
      for (const r of rows.slice(before)) r.round = round;
      lines.push(`bench: round ${round} ${seen.has(part) ? 'again ' : ''}${part} started at ${load}, ended at load=${loadavg()[0].toFixed(2)}`);
      seen.add(part);
    }
  }
  const aggs = aggregate(rows);
  lines.push(`${'target'.padEnd(7)} ${'op'.padEnd(17)} ${'conns'.padStart(5)} ${'req/s'.padStart(22)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(26)} ${'cpu us/op'.padStart(18)}  errors`);
  for (const a of aggs) {
    const cas = a.rows[0].cas ? `  ok/s=${fmt(a.rows[0].cas.okPerSec, 0)} 412/s=${fmt(a.rows[0].cas.pfPerSec, 0)}` : '';
    lines.push(`${a.target.padEnd(7)} ${a.op.padEnd(17)} ${String(a.conns).padStart(5)} ${fmtSpread(a.rps, 0, 22)} ${fmt(a.p50.med, 2).padStart(8)} ${fmtSpread(a.p99, 2, 26)} ${fmtSpread(a.cpu, 0, 18)} ${String(a.errors).padStart(7)}${cas}`);
  }
  if (repeat > 1) lines.push(`(req/s, p99 and CPU per acknowledged request: median of ${repeat} rounds, min-max in brackets; CPU is user+sys of every server process of the cluster, from /proc)`);
  const top = Math.max(...connsList);
  const ag = (t: string, op: Op, c = top) => aggs.find((a) => a.target === t && a.op === op && a.conns === c);
  const rk = (op: Op, c = top) => ag('raftkv', op, c);
  const et = (op: Op, c = top) => ag('etcd', op, c);
  lines.push(`ratio: put@${top} raftkv/etcd throughput=${ratio(rk('put')?.rps.med, et('put')?.rps.med)} (target >=1.5x) p99=${ratio(rk('put')?.p99.med, et('put')?.p99.med)} (target <=1.5x) cpu/write=${ratio(rk('put')?.cpu.med, et('put')?.cpu.med)} (target <=1.0x)`);
  lines.push(`ratio: put@1 raftkv/etcd p50=${ratio(rk('put', 1)?.p50.med, et('put', 1)?.p50.med)} (target <=1.0x) cpu/write=${ratio(rk('put', 1)?.cpu.med, et('put', 1)?.cpu.med)}`);
  lines.push(`ratio: get-linearizable@${top} raftkv/etcd throughput=${ratio(rk('get-linearizable')?.rps.med, et('get-linearizable')?.rps.med)} (target >=3.0x) cpu/read=${ratio(rk('get-linearizable')?.cpu.med, et('get-linearizable')?.cpu.med)}`);
  lines.push(`ratio: get-stale@${top} raftkv/koa throughput=${ratio(rk('get-stale')?.rps.med, ag('koa', 'get-stale')?.rps.med)} (target >=0.8x) cpu/read raftkv/etcd=${ratio(rk('get-stale')?.cpu.med, et('get-stale')?.cpu.med)}`);
  const rc = rk('cas', casConns)?.rows[0].cas;
  const ec = et('cas', casConns)?.rows[0].cas;
  if (rc || ec) lines.push(`ratio: cas@${casConns} uncontended raftkv/etcd successes/s=${ratio(rc?.okPerSec, ec?.okPerSec)} p99=${ratio(rk('cas', casConns)?.p99.med, et('cas', casConns)?.p99.med)}`);
  const rcc = rk('cas-contended', casConns)?.rows[0].cas;
  const ecc = et('cas-contended', casConns)?.rows[0].cas;
  if (rcc || ecc) lines.push(`ratio: cas-contended@${casConns} keys=${casSharedKeys} raftkv/etcd successes/s=${ratio(rcc?.okPerSec, ecc?.okPerSec)} 412/s=${ratio(rcc?.pfPerSec, ecc?.pfPerSec)}`);
  if (rk('list', casConns) || et('list', casConns)) lines.push(`ratio: list@${casConns} 1000 keys raftkv/etcd pages/s=${ratio(rk('list', casConns)?.rps.med, et('list', casConns)?.rps.med)} p99=${ratio(rk('list', casConns)?.p99.med, et('list', casConns)?.p99.med)}`);
  if (only.has('base')) {
    for (const c of connsList) {
      const a = ag('raftkv', 'put', c), b = ag('base', 'put', c);
      const all = (x: Agg | undefined) => x?.rows.map((r) => `${fmt(r.rps, 0)}@${fmt(r.cpuUsPerOp ?? NaN, 0)}us`).join('/') ?? 'n/a';
      if (ops.has('put')) lines.push(`ratio: put@${c} raftkv/base throughput=${ratio(a?.rps.med, b?.rps.med)} cpu/write=${ratio(a?.cpu.med, b?.cpu.med)} (per round req/s@cpu/write: raftkv ${all(a)}, base ${all(b)})`);
    }
  }
  // A failure of the long parts is reported beside the table instead of losing it.
  const guarded = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try { await fn(); } catch (err) { lines.push(`bench: ${what} failed: ${err instanceof Error ? err.message : String(err)}`); }
  };
  if (only.has('stress')) await guarded('stress', async () => { lines.push(...(await stress(ag('koa', 'get-stale', 64)?.rps.med))); });
  let growthRows: GrowthRow[] = [];
  if ((only.has('growth') && process.env.BENCH_GROWTH !== '0') || process.env.BENCH_GROWTH === '1') {
    await guarded('growth', async () => { growthRows = await growth(); });
    lines.push('growth  series  x           target  op          conns     req/s   p99 ms  cpu us/op  rss MB');
    for (const g of growthRows) lines.push(`growth  ${g.series.padEnd(7)} ${String(g.x).padEnd(11)} ${g.target.padEnd(7)} ${g.op.padEnd(11)} ${String(g.conns).padStart(5)} ${fmt(g.row.rps, 0).padStart(9)} ${fmt(g.row.p99Ms, 2).padStart(8)} ${fmt(g.row.cpuUsPerOp ?? NaN, 0).padStart(10)}  ${g.rssMb?.join('/') ?? ''}`);
  }
  // Watch fan-out and lease keepalive beside etcd (bench/watch.ts; only when asked for by name).
  const watchParts = ['watch', 'lease'].filter((p) => only.has(p));
  if (watchParts.length > 0) {
    await guarded('watch', async () => {
      lines.push(execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench/watch.ts'), watchParts.join(',')], { cwd: root, encoding: 'utf8', env: process.env }).trim());
    });
  }
  // Snapshot catch-up of a follower under steady writes (bench/catchup.ts; only when asked for by name).
  if (process.env.BENCH_ONLY?.split(',').includes('catchup')) {
    lines.push(execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench/catchup.ts')], { cwd: root, encoding: 'utf8', env: process.env }).trim());
  }
  const panels = [...connPanels(aggs.filter((a) => ['put', 'get-linearizable', 'get-stale'].includes(a.op))), ...growthPanels(growthRows)];
  if (panels.length > 0 && chartPath !== '') {
    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    writeFileSync(chartPath, chartSvg('raftkv vs etcd 3.4 (JSON gateway) vs bare Koa: make bench', `${when} UTC, ${cpus().length} cores shared, ${defaultNodes} nodes, ${seconds} s per point, median of ${repeat} round(s) with min-max bars, node ${process.version}`, panels));
    lines.push(`bench: chart written to ${chartPath}`);
  }
  lines.push(`bench: load_at_end=${loadavg().map((x) => x.toFixed(2)).join(',')} took=${Math.round((Date.now() - t0) / 1000)}s`);
  console.log(lines.join('\n'));
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
