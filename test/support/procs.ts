/** Starts and stops real raftkv processes on loopback for integration tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Dispatcher } from 'undici';
import type { LocalClusterView } from '../../src/api/cluster-types.js';

const root = join(import.meta.dirname, '../..');

export interface NodeProc {
  id: string;
  env: Record<string, string>;
  apiPort: number;
  api: string;
  proc: ChildProcess | null;
  output: string[];
}

/** A free-ish port range per test run, so parallel runs on one machine rarely collide. */
export function basePort(): number {
  // Below Linux's ephemeral range (32768-60999), so an outgoing socket never holds a port a node wants.
  return 10000 + Math.floor(Math.random() * 220) * 100;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Environment of node `i` (1-based) of a loopback cluster whose ports start at `port`: NODE_ID
 * `${name}${i}` (name `app` by default), API on `port`+i, Raft on `port`+10+i, RAFT_JOIN_ADDR `join`
 * when given; `extra` is added last.
 */
export function nodeEnv(port: number, i: number, opts: { name?: string; join?: string | null; extra?: Record<string, string> } = {}): Record<string, string> {
  return {
    NODE_ID: `${opts.name ?? 'app'}${i}`,
    PORT: String(port + i),
    HOST: '127.0.0.1',
    RAFT_BIND_ADDR: `127.0.0.1:${port + 10 + i}`,
    ...(opts.join ? { RAFT_JOIN_ADDR: opts.join } : {}),
    ...opts.extra,
  };
}

/** Spawns one node with `env` (plus fast timings); dist build when present, else tsx. */
export function startNode(id: string, env: Record<string, string>): NodeProc {
  const apiPort = Number(env.PORT);
  const n: NodeProc = { id, env, apiPort, api: `http://127.0.0.1:${apiPort}`, proc: null, output: [] };
  restartNode(n);
  return n;
}

/** Node's arguments to run raftkv: the dist build when present, else the sources through tsx. */
export function mainArgs(): string[] {
  const main = join(root, 'dist/src/main.js');
  return existsSync(main) ? [main] : ['--import', 'tsx', join(root, 'src/main.ts')];
}

/** Starts `n` again (same env and ports) after it stopped, keeping its output so far. */
export function restartNode(n: NodeProc): void {
  const child = spawn(process.execPath, mainArgs(), {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', TICK_MS: '20', ELECTION_TIMEOUT_TICKS: '15', ...n.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    n.output.push(b.toString());
    if (n.output.length > 400) n.output.splice(0, 100);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  n.proc = child;
}

/** Sends `signal` and waits for the process to exit; returns its exit code. */
export async function stopNode(n: NodeProc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const p = n.proc;
  if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  p.kill(signal);
  const code = await exited;
  n.proc = null;
  return code;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  /** The parsed JSON, or the text when it is not JSON. */
  body: unknown;
  text: string;
  /** When no answer came (status 0): the error's code, e.g. `ECONNREFUSED` (the request never left). */
  errorCode?: string;
}

/** How http() sends: through which dispatcher, and with which deadline. */
export interface HttpOptions {
  /** An undici dispatcher (TLS trust, a client certificate, connection limits); the global one by default. */
  dispatcher?: Dispatcher;
  /** Aborts the whole request after this many milliseconds; without it, 8 s header and body timeouts apply. */
  timeoutMs?: number;
}

/** One HTTP request (a string body is sent as is, anything else as JSON); network errors come back as status 0. */
export async function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}, opts: HttpOptions = {}): Promise<HttpResult> {
  const ac = new AbortController();
  const timer = opts.timeoutMs === undefined ? null : setTimeout(() => ac.abort(), opts.timeoutMs);
  try {
    const res = await request(url, {
      method: method as 'GET',
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
      dispatcher: opts.dispatcher,
      ...(timer === null ? { headersTimeout: 8000, bodyTimeout: 8000 } : { signal: ac.signal }),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    const hs: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') hs[k] = v;
    return { status: res.statusCode, headers: hs, body: parsed, text };
  } catch (err) {
    const e = err as Error & { cause?: Error; code?: unknown };
    const code = typeof e.code === 'string' ? e.code : undefined;
    return { status: 0, headers: {}, body: null, text: `${code ?? ''} ${e.message} ${e.cause?.message ?? ''}`, errorCode: code };
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/**
 * Polls `fn` every `everyMs` until it returns a truthy value or `timeoutMs` passes. An exception from
 * `fn` counts as "not yet" (the last one is reported on timeout) unless `isRetryingErrors` is false,
 * when it fails the wait at once.
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 100,
  isRetryingErrors = true,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (!isRetryingErrors) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** GET /cluster of one node; null unless it answers 200. */
export async function clusterView(n: NodeProc): Promise<LocalClusterView | null> {
  const r = await http('GET', `${n.api}/cluster`);
  return r.status === 200 ? (r.body as LocalClusterView) : null;
}

/** Waits until some node reports itself leader and returns it. */
export async function waitForLeader(nodes: NodeProc[], timeoutMs = 30_000): Promise<NodeProc> {
  return waitFor('a leader', async () => {
    for (const n of nodes) {
      if (!n.proc) continue;
      const v = await clusterView(n);
      if (v && v.role === 'leader') return n;
    }
    return null;
  }, timeoutMs);
}
