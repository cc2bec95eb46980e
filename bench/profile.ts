/**
 * Where a write's CPU goes: starts a 3-node raftkv cluster (RocksDB, fsync on) with `node --cpu-prof`
 * on every node, loads the leader with PROFILE_CONNS (default 64) connections of POST /key for
 * PROFILE_SECONDS (default 8) with wrk, and prints per node and per thread the CPU time from
 * /proc/PID/task/TID/stat (user+sys) per acknowledged write, then the top self-time functions of the
 * main thread's profile for the leader and a follower. Profiles are kept in PROFILE_DIR (default a
 * temporary directory, printed). Needs `make build` and wrk. Run under the heavy-run lock:
 *
 *   flock /tmp/raftkv-heavy.lock npx tsx bench/profile.ts
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { waitFor } from './procs.js';

const root = join(import.meta.dirname, '..');
const seconds = Number(process.env.PROFILE_SECONDS ?? '8');
const conns = Number(process.env.PROFILE_CONNS ?? '64');
const profDir = process.env.PROFILE_DIR ?? mkdtempSync(join(tmpdir(), 'raftkv-prof-'));
const extraEnv = JSON.parse(process.env.BENCH_RAFTKV_ENV ?? '{}') as Record<string, string>;
const nodeFlags = (process.env.PROFILE_NODE_FLAGS ?? '').split(' ').filter((x) => x !== '');
const ticksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const procs: ChildProcess[] = [];
const dataDir = mkdtempSync(join(tmpdir(), 'raftkv-prof-data-'));
process.on('exit', () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

async function get(url: string): Promise<{ status: number; json: unknown }> {
  const res = await request(url, { reset: true, headers: { connection: 'close' } });
  const text = await res.body.text();
  let json: unknown = text;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.statusCode, json };
}

/** user+sys ticks of every thread of `pid`, by thread name and id. */
function threadTicks(pid: number): Map<string, { name: string; ticks: number }> {
  const out = new Map<string, { name: string; ticks: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name, ticks: Number(f[11]) + Number(f[12]) });
    } catch { /* the thread ended */ }
  }
  return out;
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** A coarse category for a profile frame's self time (what part of the write path it belongs to). */
function category(n: ProfileNode): string {
  const { functionName: f, url } = n.callFrame;
  if (f === '(idle)') return 'idle';
  if (f === '(garbage collector)') return 'gc';
  if (f === '(program)') return 'program (native, unattributed)';
  if (url.includes('rocksdb') || url.includes('/storage/')) return 'storage (rocksdb binding, log, kv store)';
  if (url.includes('/raft/core/')) return 'raft core';
  if (url.includes('/raft/node/')) return 'raft driver';
  if (url.includes('/transport/')) return 'peer transport';
  if (url.includes('/kv/')) return 'kv (commands, apply)';
  if (url.includes('/api/') || url.includes('/http/') || url.includes('/security/') || url.includes('/metrics/')) return 'api (our handlers, metrics)';
  if (/node_modules\/(koa|@koa|koa-compose|delegates|statuses|http-errors|on-finished|type-is|mime|content-type|cookies|accepts|vary|encodeurl|escape-html|fresh|depd|only|path-to-regexp)/.test(url) || url.includes('mimeScore')) return 'koa and its deps';
  if (url.includes('prom-client')) return 'prom-client';
  if (url.includes('undici')) return 'undici';
  if (f === 'writev' || f === 'writeUtf8String' || f === 'writeBuffer' || url.startsWith('node:net') || url.startsWith('node:internal/stream') || url.includes('stream_base_commons')) return 'sockets (writev, streams)';
  if (url.startsWith('node:_http') || url.startsWith('node:internal/http') || f === 'parserOnIncoming' || f === 'execute') return 'node http';
  if (f === 'postMessage' || url.includes('worker')) return 'worker postMessage';
  if (f === 'parse' || f === 'stringify' || f.startsWith('JSON')) return 'JSON';
  if (url.includes('loader') || url.includes('modules/') || url.includes('realm') || f === 'compileSourceTextModule') return 'module loading (start-up)';
  return 'other node internals';
}

/** Self time per category (ms). */
function categories(p: CpuProfile): [string, number][] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    if (!n) return;
    const c = category(n);
    ms.set(c, (ms.get(c) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  return [...ms.entries()].sort((a, b) => b[1] - a[1]);
}

/** Self time per function (ms), from the samples of a .cpuprofile. */
function selfTimes(p: CpuProfile): { total: number; rows: [string, number][] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const n = byId.get(id);
    if (!n) return;
    const url = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, (m) => (m.includes('node_modules') ? 'nm/' : ''));
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    ms.set(key, (ms.get(key) ?? 0) + dt);
    total += dt;
  });
  return { total, rows: [...ms.entries()].sort((a, b) => b[1] - a[1]) };
}

async function main(): Promise<void> {
  const apis: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const dir = join(profDir, `p${i}`);
    mkdirSync(dir, { recursive: true });
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', NODE_ID: `p${i}`, LOG_LEVEL: 'warn', PORT: String(18280 + i), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${17200 + i}`, RAFT_DIR: dataDir, ...extraEnv };
    if (i > 1) env.RAFT_JOIN_ADDR = '127.0.0.1:18281';
    procs.push(spawn(process.execPath, [...nodeFlags, '--cpu-prof', `--cpu-prof-dir=${dir}`, join(root, 'dist/src/main.js')], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] }));
    apis.push(`http://127.0.0.1:${18280 + i}`);
    if (i === 1) await waitFor('node 1', async () => (await get(`${apis[0]}/ready`)).status === 200, undefined, 'profile');
  }
  await waitFor('3 voters', async () => ((await get(`${apis[0]}/cluster`)).json as { nodes: { suffrage: string }[] }).nodes.filter((m) => m.suffrage === 'voter').length === 3, undefined, 'profile');
  for (const a of apis) await waitFor(`${a} ready`, async () => (await get(`${a}/ready`)).status === 200, undefined, 'profile');
  const leaderApi = ((await get(`${apis[0]}/cluster`)).json as { leader: { id: string; apiAddr: string } }).leader;
  const leaderIdx = Number(leaderApi.id.slice(1)) - 1;
  const before = procs.map((p) => threadTicks(p.pid ?? 0));
  const out = execFileSync('wrk', ['-t', String(Math.min(2, conns)), '-c', String(conns), '-d', `${seconds}s`, '--latency', '-s', join(root, 'bench/wrk/raftkv-put.lua'), `http://${leaderApi.apiAddr}`, '--', 'p', '1000'], {
    env: { ...process.env, BENCH_WRK_DIR: join(root, 'bench/wrk') }, encoding: 'utf8',
  });
  const after = procs.map((p) => threadTicks(p.pid ?? 0));
  const requests = Number(/(\d+) requests in /.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? '0');
  const acked = requests - non2xx;
  console.log(`profile: put@${conns} ${seconds}s acked=${acked} req/s=${/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]} p99=${/\s99%\s+(\S+)/.exec(out)?.[1]} leader=p${leaderIdx + 1} flags=${nodeFlags.join(' ') || '(none)'}`);
  let clusterUs = 0;
  procs.forEach((_, i) => {
    const byName = new Map<string, number>();
    for (const [tid, a] of after[i]) {
      const d = a.ticks - (before[i].get(tid)?.ticks ?? 0);
      // Every thread of node is called "node": name the main thread (tid = pid) and number the rest.
      const name = tid === String(procs[i].pid) ? 'main' : `${a.name}#${tid}`;
      byName.set(name, (byName.get(name) ?? 0) + d);
    }
    const total = [...byName.values()].reduce((x, y) => x + y, 0);
    clusterUs += (total / ticksPerSec) * 1e6 / acked;
    const threads = [...byName.entries()].filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1]).map(([n, d]) => `${n}=${((d / ticksPerSec) * 1e6 / acked).toFixed(0)}`).join(' ');
    console.log(`profile: node p${i + 1}${i === leaderIdx ? ' (leader)' : ''} cpu_us/write=${((total / ticksPerSec) * 1e6 / acked).toFixed(0)} threads(us/write): ${threads}`);
  });
  console.log(`profile: cluster cpu_us/write=${clusterUs.toFixed(0)}`);
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)))));
  const follower = leaderIdx === 0 ? 1 : 0;
  for (const [i, role] of [[leaderIdx, 'leader'], [follower, 'follower']] as const) {
    const dir = join(profDir, `p${i + 1}`);
    // The main thread's profile is the largest (a worker thread writes its own, smaller file).
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => ({ f, n: readFileSync(join(dir, f)).length })).sort((a, b) => b.n - a.n);
    if (files.length === 0) continue;
    const prof = JSON.parse(readFileSync(join(dir, files[0].f), 'utf8')) as CpuProfile;
    const { total, rows } = selfTimes(prof);
    const busy = total - (categories(prof).find(([c]) => c === 'idle')?.[1] ?? 0);
    console.log(`profile: ${role} p${i + 1} main thread self time by category (% of busy ${busy.toFixed(0)} ms, us per acked write):`);
    for (const [c, v] of categories(prof)) if (c !== 'idle') console.log(`  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${((v * 1000) / acked).toFixed(0).padStart(5)} us  ${c}`);
    console.log(`profile: ${role} p${i + 1} main thread ${total.toFixed(0)} ms sampled (${files[0].f}); top self time:`);
    for (const [k, v] of rows.slice(0, Number(process.env.PROFILE_TOP ?? '30'))) console.log(`  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${v.toFixed(0).padStart(6)} ms  ${k}`);
  }
  console.log(`profile: files in ${profDir}`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
