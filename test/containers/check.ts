/**
 * The checks of `make test-containers`, run by test/containers/run.sh inside the test's network
 * namespace (so every request below goes to that namespace's loopback, where the compose ports are
 * published). docker-compose reaches the podman service through DOCKER_HOST; `podman` itself is used
 * only to inspect images and containers. Prints one line per point and `containers: N passed, N failed`;
 * exits 1 when any point failed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { parse } from 'yaml';
import type { LocalClusterView } from '../../src/api/cluster-types.js';
import { http, waitFor, type HttpResult } from '../support/procs.js';

const root = join(import.meta.dirname, '../..');
const APPS = ['app1', 'app2', 'app3', 'app4'];
const IMAGE = 'raftkv:local';
const buildSeconds = process.argv.includes('--build-seconds') ? Number(process.argv[process.argv.indexOf('--build-seconds') + 1]) : null;
const project = process.env.COMPOSE_PROJECT_NAME ?? 'raftkv-ct';
const SECURE_FILES = 'docker-compose.yml:docker-compose.secure.yml';

/** How requests reach the cluster: plain HTTP, or HTTPS with the dev CA and a Bearer token. */
let scheme = 'http';
let dispatcher: Dispatcher | undefined;
let headers: Record<string, string> = {};

/** Every write a node acknowledged (200), key -> value; point 4 reads them all back. */
const acked = new Map<string, string>();

const port = (app: string) => 8080 + Number(app.slice(3));
const url = (app: string, path: string) => `${scheme}://127.0.0.1:${port(app)}${path}`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function interrupted(sig: string): never {
  console.log(`containers: interrupted (${sig})`);
  process.exit(130);
}

function run(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): string {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs });
  // Ctrl-C reaches the whole process group: stop here, run.sh cleans up.
  if (r.signal === 'SIGINT' || r.signal === 'SIGTERM') interrupted(r.signal);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-8).join(' | ')}`);
  return r.stdout.trim();
}

/** docker-compose on the plain file, or on the plain + secure files when COMPOSE_FILE says so. */
let composeFile = 'docker-compose.yml';
const compose = (...args: string[]) => run('docker-compose', args, { COMPOSE_FILE: composeFile });
/** The exact command `make docker` runs (docker compose / docker-compose up -d --build app1..app4). */
const makeDocker = () => run('make', ['-s', 'docker'], { COMPOSE_FILE: composeFile });
const containerId = (app: string) => compose('ps', '-q', app);
const inspect = (id: string, format: string) => run('podman', ['inspect', '--format', format, id]);
const imageInfo = () => (JSON.parse(run('podman', ['image', 'inspect', IMAGE])) as Array<{ Size: number; Config: { User?: string }; Healthcheck?: { Test?: string[] } }>)[0];

async function req(method: string, app: string, path: string, body?: unknown): Promise<HttpResult> {
  return http(method, url(app, path), body, headers, { dispatcher, timeoutMs: 10_000 });
}

async function view(app: string): Promise<LocalClusterView | null> {
  const r = await req('GET', app, '/cluster');
  return r.status === 200 ? (r.body as LocalClusterView) : null;
}

/**
 * Waits until every node in `apps` answers and names the same leader (one of `apps`), and the
 * leader lists exactly app1..app4, all voters. Returns the leader's view.
 */
async function waitCluster(apps: string[], timeoutMs = 120_000): Promise<LocalClusterView> {
  let last = '';
  return waitFor('one leader and four voters', async () => {
    const views = await Promise.all(apps.map(view));
    last = views.map((v, i) => `${apps[i]}:${v ? `${v.role}/${v.leader?.id ?? '-'}` : 'no answer'}`).join(' ');
    if (views.some((v) => !v || !v.leader)) return null;
    const leader = views[0]!.leader!.id;
    if (!apps.includes(leader) || views.some((v) => v!.leader!.id !== leader)) return null;
    const lv = views[apps.indexOf(leader)]!;
    const members = lv.nodes.map((n) => `${n.id}:${n.suffrage}`).sort();
    return members.join(',') === APPS.map((a) => `${a}:voter`).join(',') ? lv : null;
  }, timeoutMs, 250).catch((err: Error) => {
    throw new Error(`${err.message} (last seen: ${last})`);
  });
}

/** Writes `key=value` through `app`, retrying while there is no leader; records it once acknowledged. */
async function write(app: string, key: string, value: string, timeoutMs = 30_000): Promise<void> {
  let last = '';
  await waitFor(`write ${key} through ${app}`, async () => {
    const r = await req('POST', app, '/key', { [key]: value });
    last = `${r.status} ${r.text.slice(0, 120)}`;
    return r.status === 200;
  }, timeoutMs, 250).catch(() => {
    throw new Error(`write ${key} through ${app} not acknowledged: ${last}`);
  });
  acked.set(key, value);
}

async function read(app: string, key: string, consistency: 'linearizable' | 'stale' = 'linearizable'): Promise<string | null> {
  const r = await req('GET', app, `/key/${encodeURIComponent(key)}${consistency === 'stale' ? '?consistency=stale' : ''}`);
  return r.status === 200 ? ((r.body as Record<string, string>)[key] ?? null) : null;
}

function graceSeconds(): number {
  const doc = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { stop_grace_period?: string }> };
  const g = doc.services.app1.stop_grace_period ?? '10s';
  const m = /^(\d+)s$/.exec(g);
  if (!m) throw new Error(`unexpected stop_grace_period ${g}`);
  return Number(m[1]);
}

const points: Array<[number, string, () => Promise<string>]> = [];
const point = (n: number, title: string, fn: () => Promise<string>) => points.push([n, title, fn]);

point(1, 'the image builds from the unchanged Dockerfile, runs as non-root, its HEALTHCHECK turns healthy', async () => {
  const info = imageInfo();
  const user = info.Config.User ?? '';
  if (!(info.Healthcheck?.Test ?? []).join(' ').includes('/health')) throw new Error('the image has no HEALTHCHECK on /health');
  const name = `${project}-probe`;
  run('podman', ['run', '-d', '--name', name, '--network', 'none', '-e', 'NODE_ID=probe', '-e', 'RAFT_ADVERTISE_ADDR=probe:7000', IMAGE]);
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(run('podman', ['exec', name, 'cat', '/proc/1/status']))?.[1];
    if (uid === undefined || uid === '0') throw new Error(`PID 1 runs as uid ${uid}`);
    // podman schedules healthchecks with systemd timers; there is no systemd here, so the check
    // runs the image's HEALTHCHECK command itself until it passes, as the timer would.
    const t0 = Date.now();
    await waitFor('healthy', () => spawnSync('podman', ['healthcheck', 'run', name]).status === 0 && inspect(name, '{{.State.Health.Status}}') === 'healthy', 60_000, 500);
    return `size ${(info.Size / 1e6).toFixed(0)} MB${buildSeconds === null ? '' : `, built in ${buildSeconds} s`}; user ${user}, PID 1 uid ${uid}; healthy after ${secs(Date.now() - t0)}`;
  } finally {
    spawnSync('podman', ['rm', '-f', '-v', name]);
  }
});

point(2, '`make docker` brings up app1..app4 at once, no start-up race; a write through app2 reads back through app4', async () => {
  const t0 = Date.now();
  makeDocker();
  const upMs = Date.now() - t0;
  const lv = await waitCluster(APPS);
  const formedMs = Date.now() - t0;
  for (const app of APPS) {
    const id = containerId(app);
    const [status, restarts] = inspect(id, '{{.State.Status}} {{.RestartCount}}').split(' ');
    if (status !== 'running' || restarts !== '0') throw new Error(`${app}: ${status}, restarted ${restarts} times`);
  }
  await write('app2', 'compose-k1', 'v1');
  const got = await read('app4', 'compose-k1');
  if (got !== 'v1') throw new Error(`app4 read ${got} for compose-k1`);
  return `up (with --build) in ${secs(upMs)}, one leader (${lv.id}) and four voters after ${secs(formedMs)}, no restarts; app2 -> app4 read back`;
});

point(3, 'stopping app1: the rest elect a leader and take writes; started again, app1 rejoins with its volume and catches up', async () => {
  const before = await waitCluster(APPS);
  const wasLeader = before.id === 'app1';
  const t0 = Date.now();
  compose('stop', 'app1');
  const rest = APPS.slice(1);
  const lv = await waitCluster(rest, 60_000);
  const electedMs = Date.now() - t0;
  for (let i = 0; i < 12; i++) await write(rest[i % 3], `down-k${i}`, `v${i}`);
  const t1 = Date.now();
  compose('start', 'app1');
  const last = `down-k11`;
  await waitFor('app1 to catch up', async () => {
    const v = await view('app1');
    if (!v || v.role !== 'follower' || v.leader?.id !== lv.id) return false;
    return (await read('app1', last, 'stale')) === 'v11' && (await read('app1', 'compose-k1', 'stale')) === 'v1';
  }, 90_000, 250);
  const after = await waitCluster(APPS);
  return `app1 was ${wasLeader ? 'the leader' : `a follower (leader ${before.id})`}; without it ${lv.id} leads (${secs(electedMs)}), 12 writes acknowledged; app1 back as a voter with its old and the new keys after ${secs(Date.now() - t1)} (term ${after.term})`;
});

let stopResult = '';
point(4, '`down` keeping volumes, then `up`: every acknowledged write is still there', async () => {
  // Point 5 is measured on the stop that precedes `down`.
  const grace = graceSeconds();
  const t0 = Date.now();
  compose('stop');
  const stopMs = Date.now() - t0;
  // Per container: its exit code, and when its process exited (FinishedAt) counted from the stop request.
  const exits = APPS.map((app) => {
    const st = (JSON.parse(run('podman', ['inspect', containerId(app)])) as Array<{ State: { ExitCode: number; FinishedAt: string } }>)[0].State;
    const finished = Date.parse(st.FinishedAt.replace(/(\.\d{3})\d+/, '$1'));
    return { app, code: st.ExitCode, ms: finished - t0 };
  });
  const ok = exits.every((e) => e.code === 0 && e.ms < grace * 1000);
  stopResult = `${ok ? 'ok' : 'FAIL'}: ${exits.map((e) => `${e.app} exit ${e.code} after ${secs(e.ms)}`).join(', ')} (stop_grace_period ${grace} s; docker-compose stop returned after ${secs(stopMs)})`;
  compose('down');
  const volumes = run('podman', ['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`]).split('\n').filter(Boolean);
  if (volumes.length !== 4) throw new Error(`expected 4 volumes after down, found ${volumes.join(',')}`);
  const t1 = Date.now();
  makeDocker();
  await waitCluster(APPS);
  const missing: string[] = [];
  let i = 0;
  for (const [k, v] of acked) if ((await read(APPS[i++ % 4], k)) !== v) missing.push(k);
  if (missing.length) throw new Error(`${missing.length}/${acked.size} acknowledged writes missing: ${missing.join(',')}`);
  return `4 volumes kept; cluster back after ${secs(Date.now() - t1)}; all ${acked.size} acknowledged writes read back`;
});

point(5, 'each container exits 0 on stop within stop_grace_period', async () => {
  if (!stopResult) throw new Error('not measured (point 4 failed before stopping)');
  if (!stopResult.startsWith('ok')) throw new Error(stopResult);
  return stopResult.slice(4);
});

point(6, 'docker-compose.secure.yml (after `make certs`) forms a cluster over TLS', async () => {
  compose('down', '-v');
  composeFile = SECURE_FILES;
  const tokens = JSON.parse(readFileSync(process.env.RAFTKV_TOKENS_FILE!, 'utf8')) as Record<string, { role: string }>;
  const admin = Object.keys(tokens).find((t) => tokens[t].role === 'admin')!;
  scheme = 'https';
  dispatcher = new Agent({ connect: { ca: readFileSync(join(root, 'deploy/certs/ca.pem')) } });
  headers = { authorization: `Bearer ${admin}` };
  const t0 = Date.now();
  makeDocker();
  const lv = await waitCluster(APPS);
  const formedMs = Date.now() - t0;
  await write('app2', 'tls-k1', 'v1');
  if ((await read('app4', 'tls-k1')) !== 'v1') throw new Error('app4 did not read back tls-k1');
  const plain = await http('GET', `http://127.0.0.1:${port('app1')}/cluster`, undefined, {}, { timeoutMs: 5000 });
  if (plain.status >= 200 && plain.status < 400) throw new Error(`plain HTTP answered ${plain.status}`);
  const anon = await http('GET', url('app1', '/key/tls-k1'), undefined, {}, { dispatcher, timeoutMs: 5000 });
  if (anon.status !== 401) throw new Error(`a request without a token got ${anon.status}`);
  return `HTTPS with the dev CA, peers over mutual TLS: leader ${lv.id} and four voters after ${secs(formedMs)}; app2 -> app4 read back; plain HTTP and token-less requests refused`;
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => interrupted(sig));

let passed = 0;
let failed = 0;
for (const [n, title, fn] of points) {
  const t0 = Date.now();
  try {
    const detail = await fn();
    passed++;
    console.log(`containers: ${n} ok   ${title}: ${detail} [${secs(Date.now() - t0)}]`);
  } catch (err) {
    failed++;
    console.log(`containers: ${n} FAIL ${title}: ${(err as Error).message} [${secs(Date.now() - t0)}]`);
  }
  await new Promise((r) => setImmediate(r)); // lets a pending SIGINT/SIGTERM handler run
}
await dispatcher?.close();
console.log(`containers: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
