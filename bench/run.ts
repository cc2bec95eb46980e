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
 * time to ready, RSS per node and disk use. BENCH_ONLY=raftkv,koa,etcd,stress picks parts (catchup,
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
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

const root = join(import.meta.dirname, '..');
const wrkDir = join(root, 'bench/wrk');
const seconds = Number(process.env.BENCH_SECONDS ?? '10');
const connsList = (process.env.BENCH_CONNS ?? '1,16,64').split(',').map(Number);
const parts = (process.env.BENCH_ONLY ?? 'raftkv,koa,etcd,stress').split(',');
const only = new Set(parts);
/** Parts run after the table by their own scripts (none is in the default set). */
const standalone = new Set(['stress', 'catchup', 'watch', 'lease']);
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

type Op = 'put' | 'get-linearizable' | 'get-stale' | 'cas' | 'cas-contended' | 'list';
interface Row { target: string; op: Op; conns: number; rps: number; p50Ms: number; p99Ms: number; errors: number; cas?: { okPerSec: number; pfPerSec: number; other: number } }

const procs: ChildProcess[] = [];
const dirs: string[] = [];

function cleanup(): void {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function spawnProc(cmd: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(cmd, args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (b: Buffer) => { tail = (tail + b.toString()).slice(-4000); });
  child.on('exit', (code, sig) => { if (code && code !== 0 && sig === null) process.stderr.write(`bench: ${cmd} exited ${code}: ${tail}\n`); });
  procs.push(child);
  return child;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try { if (await check()) return; } catch { /* not up yet; poll again */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`bench: timed out waiting for ${what}`);
}

async function httpJson(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  // A fresh connection each time: a pooled one left idle during a 10 s wrk run may be closed by the
  // server's keep-alive timeout just as it is reused ("other side closed").
  const res = await request(url, { method, reset: true, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json', connection: 'close' } });
  const text = await res.body.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.statusCode, json };
}

function toMs(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** Runs wrk against `url` with one of our Lua scripts and parses throughput, p50, p99 and errors. */
function runWrk(url: string, script: string, conns: number, args: string[], env: Record<string, string> = {}): Omit<Row, 'target' | 'op' | 'conns'> {
  const threads = Math.min(conns, 2);
  const out = execFileSync('wrk', ['-t', String(threads), '-c', String(conns), '-d', `${seconds}s`, '--latency', '--timeout', '10s', '-s', join(wrkDir, script), url, '--', ...args], {
    env: { ...process.env, BENCH_WRK_DIR: wrkDir, ...env },
    encoding: 'utf8',
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 'NaN');
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0');
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const casLine = /CAS ok=(\d+) precondition_failed=(\d+) other=(\d+)/.exec(out);
  if (casLine) {
    // 412 is an answer here, not an error: errors are the other statuses and socket errors.
    const [okN, pfN, otherN] = casLine.slice(1).map(Number);
    return { rps, p50Ms: p50, p99Ms: p99, errors: otherN + sockErrors, cas: { okPerSec: okN / seconds, pfPerSec: pfN / seconds, other: otherN } };
  }
  const errors = non2xx + sockErrors;
  return { rps, p50Ms: p50, p99Ms: p99, errors };
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

async function startRaftkv(nodeArgs: string[] = [], checkout = root): Promise<RaftkvCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-bench-'));
  dirs.push(dir);
  const apis: string[] = [];
  const nodes: RaftkvCluster['nodes'] = [];
  for (let i = 1; i <= 3; i++) {
    const env: Record<string, string> = { PORT: String(18180 + i), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${17100 + i}`, RAFT_DIR: dir };
    if (i > 1) env.RAFT_JOIN_ADDR = '127.0.0.1:18181';
    nodes.push({ id: `b${i}`, env, proc: startRaftkvNode(`b${i}`, env, nodeArgs, checkout) });
    apis.push(`http://127.0.0.1:${18180 + i}`);
    if (i === 1) await waitFor('raftkv node 1', async () => (await httpJson('GET', `${apis[0]}/ready`)).status === 200);
  }
  await waitFor('three raftkv voters', async () => {
    const { json } = await httpJson('GET', `${apis[0]}/cluster`);
    const members = (json as { nodes: { suffrage: string }[] }).nodes;
    return members.filter((m) => m.suffrage === 'voter').length === 3;
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

async function startEtcd(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-bench-'));
  dirs.push(dir);
  const initial = [1, 2, 3].map((i) => `e${i}=http://127.0.0.1:${23800 + i}`).join(',');
  const clients: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const client = `http://127.0.0.1:${23790 + i}`;
    clients.push(client);
    spawnProc('etcd', [
      '--name', `e${i}`, '--data-dir', join(dir, `e${i}`),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', `http://127.0.0.1:${23800 + i}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${23800 + i}`,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', 'raftkv-bench',
      '--log-level', 'error',
    ], {});
  }
  for (const c of clients) await waitFor(`${c} health`, async () => (await httpJson('GET', `${c}/health`)).status === 200);
  return clients;
}

async function etcdLeader(clients: string[]): Promise<string> {
  for (const c of clients) {
    const { json } = await httpJson('POST', `${c}/v3/maintenance/status`, {});
    const s = json as { header: { member_id: string }; leader: string };
    if (s.leader === s.header.member_id) return c;
  }
  throw new Error('bench: etcd has no leader');
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
  const c = await startRaftkv([`--max-old-space-size=${capMb}`]);
  const writeSecs = await writeStressKeys(c);
  const alive = c.nodes.every((n) => n.proc.exitCode === null && n.proc.signalCode === null);
  const rss = c.nodes.map((n) => rssMb(n.proc.pid));
  for (const n of c.nodes) n.proc.kill('SIGTERM');
  if (!alive) throw new Error('bench: a heap-capped node died during the stress writes');
  return `stress: heap_cap_mb=${capMb} keys=${stressKeys} write_secs=${writeSecs.toFixed(1)} nodes_alive=3/3 rss_mb_after_writes=${rss.join('/')}`;
}

async function stress(): Promise<string[]> {
  const c = await startRaftkv();
  const batches = Math.ceil(stressKeys / 1000);
  const batch = 1000;
  const writeSecs = await writeStressKeys(c);
  const rssBefore = c.nodes.map((n) => rssMb(n.proc.pid));
  await new Promise((r) => setTimeout(r, 1000));
  for (const n of c.nodes) n.proc.kill('SIGTERM');
  await Promise.all(c.nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null ? r(null) : n.proc.once('exit', r)))));
  const disk = duMb(c.dir);
  const t1 = Date.now();
  for (const n of c.nodes) n.proc = startRaftkvNode(n.id, n.env);
  for (const api of c.apis) await waitFor(`${api} ready after restart`, async () => (await httpJson('GET', `${api}/ready`)).status === 200, 300_000);
  const readySecs = (Date.now() - t1) / 1000;
  const probe = await httpJson('GET', `${c.apis[2]}/key/s${String(stressKeys - 1).padStart(15, '0')}?consistency=linearizable`);
  const rssAfter = c.nodes.map((n) => rssMb(n.proc.pid));
  for (const n of c.nodes) n.proc.kill('SIGTERM');
  await Promise.all(c.nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null || n.proc.signalCode !== null ? r(null) : n.proc.once('exit', r)))));
  return [
    `stress: keys=${stressKeys} batches=${batches}x${batch} write_secs=${writeSecs.toFixed(1)} keys_per_sec=${Math.round(stressKeys / writeSecs)}`,
    `stress: rss_mb_after_writes=${rssBefore.join('/')} disk_mb=${disk} restart_to_ready_secs=${readySecs.toFixed(1)} rss_mb_after_restart=${rssAfter.join('/')} last_key_status=${probe.status}`,
    await stressCapped(),
  ];
}

// ------------------------------------------------------------------------------------------------

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function find(rows: Row[], target: string, op: Op, conns: number): Row | undefined {
  return rows.find((r) => r.target === target && r.op === op && r.conns === conns);
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a';
}

async function main(): Promise<void> {
  if (!existsSync(join(root, 'dist/src/main.js'))) throw new Error('bench: run `make build` first');
  const lines: string[] = [];
  lines.push(`bench: cores=${cpus().length} load_at_start=${loadavg().map((x) => x.toFixed(2)).join(',')} seconds=${seconds} conns=${connsList.join(',')} node=${process.version}`);
  const rows: Row[] = [];
  const seen = new Set<string>();
  for (const part of parts) {
    const load = `load=${loadavg()[0].toFixed(2)}`;
    if (part === 'raftkv' || part === 'base') {
      if (part === 'base' && !baselineDir) throw new Error('bench: BENCH_ONLY=base needs BENCH_BASELINE_DIR (a built checkout)');
      const c = await startRaftkv([], part === 'base' ? baselineDir : root);
      const leader = await raftkvLeader(c);
      await benchRaftkv(rows, part, leader);
      if (part === 'raftkv') await benchRaftkvIssue16(rows, part, leader);
      await stopRaftkv(c);
    } else if (part === 'koa') {
      const koa = spawnProc(process.execPath, ['--import', 'tsx', join(root, 'bench/koa-ceiling.ts'), '18090'], {});
      await waitFor('koa ceiling', async () => (await httpJson('GET', 'http://127.0.0.1:18090/key/x')).status === 404);
      await benchRaftkv(rows, 'koa', 'http://127.0.0.1:18090');
      koa.kill('SIGTERM');
      await new Promise((r) => (koa.exitCode !== null || koa.signalCode !== null ? r(null) : koa.once('exit', r)));
    } else if (part === 'etcd') {
      const clients = await startEtcd();
      await benchEtcd(rows, await etcdLeader(clients));
      const etcds = procs.filter((p) => p.spawnargs[0] === 'etcd' && p.exitCode === null && p.signalCode === null);
      for (const p of etcds) p.kill('SIGTERM');
      await Promise.all(etcds.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));
      for (const d of dirs.filter((x) => x.includes('etcd-bench-'))) rmSync(d, { recursive: true, force: true });
    } else if (!standalone.has(part)) {
      throw new Error(`bench: unknown BENCH_ONLY part ${part}`);
    }
    if (!standalone.has(part)) lines.push(`bench: ${seen.has(part) ? 'again ' : ''}${part} started at ${load}, ended at load=${loadavg()[0].toFixed(2)}`);
    seen.add(part);
  }
  lines.push('target  op                conns     req/s   p50 ms   p99 ms  errors');
  for (const r of rows) {
    const cas = r.cas ? `  ok/s=${fmt(r.cas.okPerSec, 0)} 412/s=${fmt(r.cas.pfPerSec, 0)}` : '';
    lines.push(`${r.target.padEnd(7)} ${r.op.padEnd(17)} ${String(r.conns).padStart(5)} ${fmt(r.rps, 0).padStart(9)} ${fmt(r.p50Ms, 2).padStart(8)} ${fmt(r.p99Ms, 2).padStart(8)} ${String(r.errors).padStart(7)}${cas}`);
  }
  const top = Math.max(...connsList);
  const rk = (op: Op, c = top) => find(rows, 'raftkv', op, c);
  const et = (op: Op, c = top) => find(rows, 'etcd', op, c);
  lines.push(`ratio: put@${top} raftkv/etcd throughput=${ratio(rk('put')?.rps, et('put')?.rps)} (target >=1.0x) p99=${ratio(rk('put')?.p99Ms, et('put')?.p99Ms)} (target <=2.0x)`);
  lines.push(`ratio: get-linearizable@${top} raftkv/etcd throughput=${ratio(rk('get-linearizable')?.rps, et('get-linearizable')?.rps)} (target >=1.5x)`);
  lines.push(`ratio: get-stale@${top} raftkv/koa throughput=${ratio(rk('get-stale')?.rps, find(rows, 'koa', 'get-stale', top)?.rps)} (target >=0.7x)`);
  lines.push(`ratio: put@1 raftkv/etcd p50=${ratio(rk('put', 1)?.p50Ms, et('put', 1)?.p50Ms)} (target <=1.5x)`);
  const rc = rk('cas', casConns)?.cas;
  const ec = et('cas', casConns)?.cas;
  if (rc || ec) lines.push(`ratio: cas@${casConns} uncontended raftkv/etcd successes/s=${ratio(rc?.okPerSec, ec?.okPerSec)} p99=${ratio(rk('cas', casConns)?.p99Ms, et('cas', casConns)?.p99Ms)}`);
  const rcc = rk('cas-contended', casConns)?.cas;
  const ecc = et('cas-contended', casConns)?.cas;
  if (rcc || ecc) lines.push(`ratio: cas-contended@${casConns} keys=${casSharedKeys} raftkv/etcd successes/s=${ratio(rcc?.okPerSec, ecc?.okPerSec)} 412/s=${ratio(rcc?.pfPerSec, ecc?.pfPerSec)}`);
  if (rk('list', casConns) || et('list', casConns)) lines.push(`ratio: list@${casConns} 1000 keys raftkv/etcd pages/s=${ratio(rk('list', casConns)?.rps, et('list', casConns)?.rps)} p99=${ratio(rk('list', casConns)?.p99Ms, et('list', casConns)?.p99Ms)}`);
  if (only.has('base')) {
    for (const c of connsList) {
      const mean = (t: string) => { const xs = rows.filter((r) => r.target === t && r.op === 'put' && r.conns === c).map((r) => r.rps); return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined; };
      const all = (t: string) => rows.filter((r) => r.target === t && r.op === 'put' && r.conns === c).map((r) => fmt(r.rps, 0)).join('/');
      if (ops.has('put')) lines.push(`ratio: put@${c} raftkv/base throughput=${ratio(mean('raftkv'), mean('base'))} (raftkv ${all('raftkv')} req/s, base ${all('base')} req/s)`);
    }
  }
  if (only.has('stress')) lines.push(...(await stress()));
  // Watch fan-out and lease keepalive beside etcd (bench/watch.ts; only when asked for by name).
  const watchParts = ['watch', 'lease'].filter((p) => only.has(p));
  if (watchParts.length > 0) {
    lines.push(execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench/watch.ts'), watchParts.join(',')], { cwd: root, encoding: 'utf8', env: process.env }).trim());
  }
  // Snapshot catch-up of a follower under steady writes (bench/catchup.ts; only when asked for by name).
  if (process.env.BENCH_ONLY?.split(',').includes('catchup')) {
    lines.push(execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench/catchup.ts')], { cwd: root, encoding: 'utf8', env: process.env }).trim());
  }
  lines.push(`bench: load_at_end=${loadavg().map((x) => x.toFixed(2)).join(',')}`);
  console.log(lines.join('\n'));
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
