/**
 * What the bench scripts (run.ts, watch.ts) share: the child processes and temporary directories
 * they own (killed and removed at exit), polling, one JSON request, and a local etcd cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

export const root = join(import.meta.dirname, '..');
export const procs: ChildProcess[] = [];
export const dirs: string[] = [];

/** Kills every child still running and removes every directory (installed as an exit handler by each script). */
export function cleanup(): void {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Starts `cmd` in the repository with only PATH and `env`; its exit with an error is told on stderr, with its stderr's tail. */
export function spawnProc(cmd: string, args: string[], env: Record<string, string>, label = 'bench'): ChildProcess {
  const child = spawn(cmd, args, { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr?.on('data', (b: Buffer) => { tail = (tail + b.toString()).slice(-4000); });
  child.on('exit', (code, sig) => { if (code && code !== 0 && sig === null) process.stderr.write(`${label}: ${cmd} exited ${code}: ${tail}\n`); });
  procs.push(child);
  return child;
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000, label = 'bench'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try { if (await check()) return; } catch { /* not up yet; poll again */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label}: timed out waiting for ${what}`);
}

export async function httpJson(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  // A fresh connection each time: a pooled one left idle during a 10 s wrk run may be closed by the
  // server's keep-alive timeout just as it is reused ("other side closed").
  const res = await request(url, { method, reset: true, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json', connection: 'close' } });
  const text = await res.body.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.statusCode, json };
}

export interface EtcdOptions {
  size: number;
  /** Member i listens for clients on clientBase + i and for peers on peerBase + i. */
  clientBase: number;
  peerBase: number;
  token: string;
  /** Prefix of the temporary data directory's name. */
  dirPrefix: string;
  extraArgs?: string[];
  label?: string;
}

/** Starts a fresh etcd cluster on 127.0.0.1 and waits until every member is healthy; resolves with the client URLs. */
export async function startEtcd(o: EtcdOptions): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), o.dirPrefix));
  dirs.push(dir);
  const ids = Array.from({ length: o.size }, (_, i) => i + 1);
  const initial = ids.map((i) => `e${i}=http://127.0.0.1:${o.peerBase + i}`).join(',');
  const clients: string[] = [];
  for (const i of ids) {
    const client = `http://127.0.0.1:${o.clientBase + i}`;
    clients.push(client);
    spawnProc('etcd', [
      '--name', `e${i}`, '--data-dir', join(dir, `e${i}`),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', `http://127.0.0.1:${o.peerBase + i}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${o.peerBase + i}`,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', o.token,
      '--log-level', 'error', ...(o.extraArgs ?? []),
    ], {}, o.label);
  }
  for (const c of clients) await waitFor(`${c} health`, async () => (await httpJson('GET', `${c}/health`)).status === 200, undefined, o.label);
  return clients;
}

/** The client URL of the etcd member that leads. */
export async function etcdLeader(clients: string[], label = 'bench'): Promise<string> {
  for (const c of clients) {
    const { json } = await httpJson('POST', `${c}/v3/maintenance/status`, {});
    const s = json as { header: { member_id: string }; leader: string };
    if (s.leader === s.header.member_id) return c;
  }
  throw new Error(`${label}: etcd has no leader`);
}
