/** Shared helpers of the security integration tests: certificates, HTTPS requests, cluster views. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import type { LocalClusterView } from '../../../src/api/cluster-types.js';
import { http, nodeEnv as loopbackEnv, startNode, waitFor, type HttpResult, type NodeProc } from '../../support/procs.js';

const root = join(import.meta.dirname, '../../..');

/** Whether 127.0.0.1:`port` can be bound right now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A random port base whose 20 ports (base..base+19) are free now, below Linux's ephemeral range
 * (32768-60999): test/support/procs.ts basePort() reaches up to 59900, where a node's listen can
 * collide with an outgoing connection, and six helpers' test clusters share this machine.
 */
export async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 127) * 100;
    const checks = await Promise.all(Array.from({ length: 20 }, (_, i) => isFree(base + i)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error('no free port range found');
}

/**
 * Makes a CA and certificates for `nodes` in `dir` with scripts/gen-certs.sh (the CA is reused if
 * present). The CA key goes to `dir`/ca-private, not the script's default sibling `dir`-ca, so
 * removing `dir` removes everything the test created (the sibling was left behind in /tmp).
 */
export function makeCerts(dir: string, nodes: string[], caName = 'raftkv test CA', env: Record<string, string> = {}): void {
  execFileSync(join(root, 'scripts/gen-certs.sh'), [dir, ...nodes], { env: { ...process.env, CA_NAME: caName, CA_DIR: join(dir, 'ca-private'), ...env }, stdio: 'ignore' });
}

/** An undici Agent that trusts `caFile` and, when given, presents `certName`'s certificate from `dir`. */
export function agent(caFile: string | null, client?: { dir: string; name: string }, extra: Record<string, unknown> = {}): Agent {
  return new Agent({
    connect: {
      ...(caFile ? { ca: readFileSync(caFile) } : {}),
      ...(client ? { cert: readFileSync(join(client.dir, `${client.name}.pem`)), key: readFileSync(join(client.dir, `${client.name}-key.pem`)) } : {}),
      ...extra,
    },
  });
}

/** The result of call(): test/support/procs.ts's HttpResult. */
export type Res = HttpResult;

/** One request through procs.ts's http(); a network or TLS failure comes back as status 0 with the error's code and message as text. */
export function call(method: string, url: string, opts: { body?: string | object; headers?: Record<string, string>; dispatcher?: Dispatcher } = {}): Promise<Res> {
  return http(method, url, opts.body, opts.headers, { dispatcher: opts.dispatcher });
}

/** What GET /cluster answers. */
export type View = LocalClusterView;

/** GET /cluster through `base` (with optional dispatcher and headers); null unless 200. */
export async function view(base: string, opts: { headers?: Record<string, string>; dispatcher?: Dispatcher } = {}): Promise<View | null> {
  const r = await call('GET', `${base}/cluster`, opts);
  return r.status === 200 ? (r.body as View) : null;
}

/** Waits until one of `bases` reports itself leader; returns its index. */
export async function waitLeader(bases: string[], opts: { headers?: Record<string, string>; dispatcher?: Dispatcher } = {}, timeoutMs = 60_000): Promise<number> {
  return waitFor('a leader', async () => {
    for (let i = 0; i < bases.length; i++) {
      const v = await view(bases[i], opts);
      if (v?.role === 'leader') return i + 1;
    }
    return null;
  }, timeoutMs).then((i) => i - 1);
}

/**
 * Waits until `base` reports `n` voters. Every poll also writes a throwaway key: the core promotes a
 * learner only when its matchIndex advances, so a learner that caught up while its own addLearner
 * entry was still uncommitted stays a learner in an idle cluster until the next write (a core bug
 * reported to the lead; these tests are not about promotion).
 */
export async function waitVoters(base: string, n: number, opts: { headers?: Record<string, string>; dispatcher?: Dispatcher } = {}, timeoutMs = 90_000): Promise<void> {
  await waitFor(`${n} voters`, async () => {
    const v = await view(base, opts);
    if (v !== null && v.nodes.filter((m) => m.suffrage === 'voter').length === n) return true;
    await call('POST', `${base}/key`, { ...opts, body: { 'promotion-nudge': String(Date.now()) } });
    return false;
  }, timeoutMs, 250);
}

/**
 * The environment of security-test node `app<i>`: API on `port`+i, Raft on `port`+10+i, slower ticks
 * for the shared machine, nodes 2 and up joining node 1; `extra` is added last.
 */
export function nodeEnv(port: number, i: number, extra: Record<string, string> = {}): Record<string, string> {
  return loopbackEnv(port, i, { join: i > 1 ? `127.0.0.1:${port + 1}` : null, extra: { TICK_MS: '50', ELECTION_TIMEOUT_TICKS: '20', ...extra } });
}

/**
 * Starts app1 with `env(1)` and waits until it leads at `api1`, then adds app2 and app3 one at a time,
 * each until it is a voter (two learners catching up together can leave the second unpromoted until
 * the next write); on failure prints the nodes' recent output. `nodes` receives every process started.
 */
export async function startThreeVoters(nodes: NodeProc[], env: (i: number) => Record<string, string>, api1: string, opts: { headers?: Record<string, string>; dispatcher?: Dispatcher } = {}): Promise<void> {
  await dumpOnFailure(nodes, async () => {
    nodes.push(startNode('app1', env(1)));
    await waitLeader([api1], opts);
    for (const i of [2, 3]) {
      nodes.push(startNode(`app${i}`, env(i)));
      await waitVoters(api1, i, opts);
    }
  });
}

/** A forged AppendEntries from a leader that does not exist, with a term well above `term`. */
export function forgedAppend(to: string, term: number, lastIndex: number): string {
  const data = JSON.stringify({ ops: [{ op: 'set', key: 'forged', value: 'evil' }] });
  return JSON.stringify({
    from: 'mallory',
    fromAddr: '127.0.0.1:1',
    messages: [{ type: 'AppendEntries', from: 'mallory', to, term: term + 100, prevLogIndex: lastIndex, prevLogTerm: term, entries: [{ index: lastIndex + 1, term: term + 100, type: 'normal', data }], leaderCommit: lastIndex + 1 }],
  });
}

/** Runs `fn`; on failure prints each node's recent non-debug output (start-up errors), then rethrows. */
export async function dumpOnFailure<T>(nodes: { id: string; output: string[]; proc: { exitCode: number | null } | null }[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    for (const n of nodes) {
      const lines = n.output.join('').split('\n').filter((l) => !l.includes('"level":20'));
      console.log(`--- ${n.id} (exit ${String(n.proc?.exitCode ?? 'none')}):\n${lines.join('\n').slice(-3000)}`);
    }
    throw err;
  }
}

/**
 * Sends one request on a raw socket with `path` exactly as given (undici's URL parsing would resolve
 * `..` and `.` segments first); returns the status, the error code of a JSON error body, and the text.
 */
export function rawRequest(port: number, method: string, path: string, headers: Record<string, string> = {}, body = ''): Promise<{ status: number; code: string | null; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    const head = Object.entries({ host: '127.0.0.1', connection: 'close', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const s = createConnection(port, '127.0.0.1', () => s.end(`${method} ${path} HTTP/1.1\r\n${head}\r\n${body}`));
    const timer = setTimeout(() => s.destroy(), 15_000);
    s.on('data', (b: Buffer) => (text += b.toString('utf8')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const c = /"code":"([A-Z_]+)"/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, code: c ? c[1] : null, text });
    });
  });
}
