/**
 * Concurrent clients for the fault suite: each issues random set / get / delete / multi-key set on
 * a small key set against a random live node, and records invocation time, completion time and
 * outcome as a HistoryOp. Run by scenario.ts inside the namespace.
 */
import { Agent } from 'undici';
import { http } from '../support/procs.js';
import type { HistoryOp } from './linearizability.js';

/** How the clients behave. */
export interface WorkloadOptions {
  clients: number;
  keys: string[];
  /** Read consistency; `stale` is the negative control. */
  readConsistency: 'linearizable' | 'stale';
  /** Client-side deadline; a write without an answer by then has an unknown outcome. */
  timeoutMs: number;
  rng: () => number;
  /** The API base URLs to pick from, read before every operation (scenarios change it). */
  targets: () => string[];
}

type Outcome = 'ok' | 'fail' | 'unknown';

/**
 * Classifies a write's answer. Only answers that prove the write was never applied count as
 * failed; anything else (timeouts, lost connections, a forward that broke, shutdown) is unknown.
 */
export function classifyWrite(status: number, code: string | null, message: string): Outcome {
  if (status === 200) return 'ok';
  if (status === 400 || status === 413 || status === 409) return 'fail';
  if (code === 'NOT_LEADER') return 'fail';
  // Refused before proposing (no leader known, not the leader), or overwritten in the log (Raft §5.3).
  if (code === 'NO_LEADER' && /no leader is (available|elected)|before the write committed|read could not be confirmed/.test(message)) return 'fail';
  return 'unknown';
}

function errorOf(body: unknown): { code: string | null; message: string } {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (typeof e === 'object' && e !== null) {
      const { code, message } = e as { code?: unknown; message?: unknown };
      return { code: typeof code === 'string' ? code : null, message: typeof message === 'string' ? message : '' };
    }
  }
  return { code: null, message: '' };
}

/** Runs the clients until stop() is called; `history` grows as operations complete. */
export class Workload {
  readonly history: HistoryOp[] = [];
  private isStopping = false;
  private readonly agent = new Agent({ connect: { timeout: 1000 }, keepAliveTimeout: 5000, connections: 4 });
  private readonly runners: Promise<void>[] = [];
  private seq = 0;
  readonly t0 = performance.now();

  constructor(private readonly opts: WorkloadOptions) {}

  /** Milliseconds since the workload was created (the history's clock). */
  now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    for (let c = 0; c < this.opts.clients; c++) this.runners.push(this.client(c));
  }

  /** Stops issuing operations and waits for those in flight. */
  async stop(): Promise<void> {
    if (this.isStopping) return;
    this.isStopping = true;
    await Promise.all(this.runners);
    await this.agent.close();
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.opts.rng() * xs.length)];
  }

  private async client(c: number): Promise<void> {
    while (!this.isStopping) {
      const targets = this.opts.targets();
      if (targets.length === 0) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      await this.one(c, this.pick(targets));
    }
  }

  /**
   * One request. `status` -1: the connection was never made (refused or connect timeout), so the
   * request never left; 0: no answer after it may have been sent (outcome unknown).
   */
  private async call(method: string, url: string, body?: string): Promise<{ status: number; body: unknown }> {
    const r = await http(method, url, body, {}, { dispatcher: this.agent, timeoutMs: this.opts.timeoutMs });
    if (r.status === 0) return { status: r.errorCode === 'ECONNREFUSED' || r.errorCode === 'UND_ERR_CONNECT_TIMEOUT' ? -1 : 0, body: null }; // 0: outcome unknown
    // http() gives back the text when it is not JSON; a body that is not JSON counts as none here.
    return { status: r.status, body: typeof r.body === 'string' && r.body === r.text ? null : r.body };
  }

  private async one(client: number, base: string): Promise<void> {
    const x = this.opts.rng();
    const key = this.pick(this.opts.keys);
    const value = () => `c${client}-${++this.seq}`;
    const invokeMs = this.now();
    if (x < 0.45) {
      const r = await this.call('GET', `${base}/key/${key}${this.opts.readConsistency === 'stale' ? '?consistency=stale' : ''}`);
      const completeMs = this.now();
      if (r.status === 200) {
        const v = (r.body as Record<string, unknown> | null)?.[key];
        this.history.push({ client, kind: 'get', key, result: typeof v === 'string' ? v : null, invokeMs, completeMs, ok: true });
      } else if (r.status === 404) {
        this.history.push({ client, kind: 'get', key, result: null, invokeMs, completeMs, ok: true });
      } else {
        const why = `${r.status}:${r.status === -1 ? 'ECONNREFUSED' : (errorOf(r.body).code ?? 'none')}`;
        this.history.push({ client, kind: 'get', key, invokeMs, completeMs: r.status === 0 ? null : completeMs, ok: r.status === 0, error: why });
        await new Promise((res) => setTimeout(res, 20)); // no busy loop against a dead node
      }
      return;
    }
    let op: HistoryOp;
    let r: { status: number; body: unknown };
    if (x < 0.75) {
      const v = value();
      op = { client, kind: 'set', key, value: v, invokeMs, completeMs: null, ok: true };
      r = await this.call('POST', `${base}/key`, JSON.stringify({ [key]: v }));
    } else if (x < 0.87) {
      op = { client, kind: 'setMany', pairs: {}, invokeMs, completeMs: null, ok: true };
      const pairs: Record<string, string> = {};
      const count = 2 + Math.floor(this.opts.rng() * 2);
      for (let i = 0; i < count; i++) pairs[this.pick(this.opts.keys)] = value();
      op.pairs = pairs;
      r = await this.call('POST', `${base}/key`, JSON.stringify(pairs));
    } else {
      op = { client, kind: 'delete', key, invokeMs, completeMs: null, ok: true };
      r = await this.call('DELETE', `${base}/key/${key}`);
      if (r.status === 404) {
        // The leader found the key absent after a ReadIndex barrier: a read of "absent", no write.
        this.history.push({ client, kind: 'get', key, result: null, invokeMs, completeMs: this.now(), ok: true });
        return;
      }
    }
    const completeMs = this.now();
    const e = errorOf(r.body);
    const outcome = r.status === 0 ? 'unknown' : r.status === -1 ? 'fail' : classifyWrite(r.status, e.code, e.message);
    op.completeMs = outcome === 'unknown' ? null : completeMs;
    op.ok = outcome !== 'fail';
    if (outcome !== 'ok') op.error = `${r.status}:${r.status === -1 ? 'ECONNREFUSED' : (e.code ?? 'none')}`;
    this.history.push(op);
    if (outcome !== 'ok') await new Promise((res) => setTimeout(res, 20)); // no busy loop against a dead node
  }
}
