/**
 * Concurrent clients for the fault suite: each issues random set / get / delete / multi-key set on
 * a small key set against a random live node, and records invocation time, completion time and
 * outcome as a HistoryOp (with the index the server reported: ETag / X-Raft-Index). With
 * `ops: 'extended'` they also issue CAS on a read index, conditional deletes, create-only writes
 * (single and multi-key) and transactions, exactly as ../../../shared/design/api-depth.md
 * sections 1–2 define the requests. Run by scenario.ts inside the namespace.
 */
import { Agent } from 'undici';
import { http } from '../support/procs.js';
import type { HistoryOp } from './linearizability.js';
import type { TxnCompare, TxnOp, TxnOpResult, TxnRequest, TxnResult } from './kv-model.js';

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
  /** 'extended' adds conditional writes and transactions (issue 16); off by default until the server answers them. */
  ops?: 'default' | 'extended';
}

/** The operation mixes `--ops` selects. */
export const OP_MIXES = ['default', 'extended'] as const;

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

function errorOf(body: unknown): { code: string | null; message: string; details: Record<string, unknown> } {
  if (typeof body === 'object' && body !== null && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (typeof e === 'object' && e !== null) {
      const { code, message, details } = e as { code?: unknown; message?: unknown; details?: unknown };
      return {
        code: typeof code === 'string' ? code : null,
        message: typeof message === 'string' ? message : '',
        details: typeof details === 'object' && details !== null ? (details as Record<string, unknown>) : {},
      };
    }
  }
  return { code: null, message: '', details: {} };
}

/** An index header (`ETag: "17"` or `X-Raft-Index: 17`) as a number; undefined when absent or malformed. */
export function indexFromHeader(v: string | undefined): number | undefined {
  const m = v === undefined ? null : /^"?([0-9]{1,15})"?$/.exec(v.trim());
  return m ? Number(m[1]) : undefined;
}

const isIndexed = (x: unknown): x is { key: string; index: number } =>
  typeof x === 'object' && x !== null && typeof (x as { key?: unknown }).key === 'string' && Number.isSafeInteger((x as { index?: unknown }).index);

/** The `conflict` of a 412 answer: `details.current` ({key,index} or null) or `details.existing` ([{key,index}]). */
export function conflictOf(body: unknown): NonNullable<HistoryOp['conflict']> | null {
  const { code, details } = errorOf(body);
  if (code !== 'PRECONDITION_FAILED') return null;
  if (Array.isArray(details.existing)) return details.existing.every(isIndexed) ? { existing: details.existing.map((e) => ({ key: e.key, index: e.index })) } : null;
  if (details.current === null) return { current: null };
  if (isIndexed(details.current)) return { current: { index: details.current.index } };
  return null;
}

/** A `POST /txn` 200 body as a TxnResult; null when it does not have that shape. */
export function txnResultOf(body: unknown, t: TxnRequest): TxnResult | null {
  if (typeof body !== 'object' || body === null) return null;
  const b = body as { succeeded?: unknown; index?: unknown; results?: unknown };
  if (typeof b.succeeded !== 'boolean' || !Number.isSafeInteger(b.index) || !Array.isArray(b.results)) return null;
  const branch = b.succeeded ? t.success : t.failure;
  if (b.results.length !== branch.length) return null;
  const results: TxnOpResult[] = [];
  for (const [j, raw] of (b.results as unknown[]).entries()) {
    const r = raw as { op?: unknown; key?: unknown; index?: unknown; deleted?: unknown; value?: unknown };
    const o = branch[j];
    if (typeof r !== 'object' || r === null || r.op !== o.op || r.key !== o.key) return null;
    if (o.op === 'set' && Number.isSafeInteger(r.index)) results.push({ op: 'set', key: o.key, index: r.index as number });
    else if (o.op === 'delete' && typeof r.deleted === 'boolean') results.push({ op: 'delete', key: o.key, deleted: r.deleted });
    else if (o.op === 'get' && (r.value === null || typeof r.value === 'string')) {
      results.push({ op: 'get', key: o.key, value: r.value, ...(r.value !== null && Number.isSafeInteger(r.index) ? { index: r.index as number } : {}) });
    } else return null;
  }
  return { succeeded: b.succeeded, index: b.index as number, results };
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
  private async call(method: string, url: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: Record<string, string> }> {
    const r = await http(method, url, body, headers, { dispatcher: this.agent, timeoutMs: this.opts.timeoutMs });
    if (r.status === 0) return { status: r.errorCode === 'ECONNREFUSED' || r.errorCode === 'UND_ERR_CONNECT_TIMEOUT' ? -1 : 0, body: null, headers: {} }; // 0: outcome unknown
    // http() gives back the text when it is not JSON; a body that is not JSON counts as none here.
    return { status: r.status, body: typeof r.body === 'string' && r.body === r.text ? null : r.body, headers: r.headers };
  }

  /** GET /key/:key recorded as a read; returns what it saw (undefined when it saw nothing). */
  private async read(client: number, base: string, key: string): Promise<{ value: string | null; index?: number } | undefined> {
    const invokeMs = this.now();
    const r = await this.call('GET', `${base}/key/${key}${this.opts.readConsistency === 'stale' ? '?consistency=stale' : ''}`);
    const completeMs = this.now();
    if (r.status === 200) {
      const v = (r.body as Record<string, unknown> | null)?.[key];
      const index = indexFromHeader(r.headers.etag);
      const value = typeof v === 'string' ? v : null;
      this.history.push({ client, kind: 'get', key, result: value, ...(index === undefined ? {} : { index }), invokeMs, completeMs, ok: true });
      return { value, index };
    }
    if (r.status === 404) {
      this.history.push({ client, kind: 'get', key, result: null, invokeMs, completeMs, ok: true });
      return { value: null };
    }
    const why = `${r.status}:${r.status === -1 ? 'ECONNREFUSED' : (errorOf(r.body).code ?? 'none')}`;
    this.history.push({ client, kind: 'get', key, invokeMs, completeMs: r.status === 0 ? null : completeMs, ok: r.status === 0, error: why });
    await new Promise((res) => setTimeout(res, 20)); // no busy loop against a dead node
    return undefined;
  }

  private async one(client: number, base: string): Promise<void> {
    const x = this.opts.rng();
    const key = this.pick(this.opts.keys);
    const isExtended = this.opts.ops === 'extended';
    if (x < (isExtended ? 0.35 : 0.45)) {
      await this.read(client, base, key);
      return;
    }
    if (isExtended && x >= 0.7) {
      await this.extended(client, base, key, (x - 0.7) / 0.3);
      return;
    }
    const value = this.value(client);
    const invokeMs = this.now();
    let op: HistoryOp;
    let r: { status: number; body: unknown; headers: Record<string, string> };
    if (x < (isExtended ? 0.55 : 0.75)) {
      const v = value();
      op = { client, kind: 'set', key, value: v, invokeMs, completeMs: null, ok: true };
      r = await this.call('POST', `${base}/key`, JSON.stringify({ [key]: v }));
    } else if (x < (isExtended ? 0.63 : 0.87)) {
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
        // The key was absent when the delete was applied: a read of "absent", no write.
        this.history.push({ client, kind: 'get', key, result: null, invokeMs, completeMs: this.now(), ok: true });
        return;
      }
    }
    await this.finish(op, r);
  }

  /** A unique value for a write of `client`. */
  private value(client: number): () => string {
    return () => `c${client}-${++this.seq}`;
  }

  /** Records a write's answer: 200 with its index, 412 as a conflict, else by classifyWrite. */
  private async finish(op: HistoryOp, r: { status: number; body: unknown; headers: Record<string, string> }): Promise<void> {
    const completeMs = this.now();
    const e = errorOf(r.body);
    const conflict = r.status === 412 ? conflictOf(r.body) : null;
    if (conflict) {
      op.conflict = conflict;
      op.completeMs = completeMs;
      this.history.push(op);
      return;
    }
    let outcome = r.status === 0 ? 'unknown' : r.status === -1 ? 'fail' : r.status === 412 ? 'unknown' : classifyWrite(r.status, e.code, e.message);
    if (outcome === 'ok') {
      if (op.kind === 'txn') {
        const res = op.txn ? txnResultOf(r.body, op.txn) : null;
        if (res) op.txnResult = res;
        else outcome = 'unknown'; // an answer we cannot read tells nothing
      } else {
        const index = indexFromHeader(op.kind === 'set' && op.ifMatch === undefined && !op.ifNoneMatch ? r.headers['x-raft-index'] : (r.headers.etag ?? r.headers['x-raft-index']));
        if (index !== undefined) op.index = index;
      }
    }
    op.completeMs = outcome === 'unknown' ? null : completeMs;
    op.ok = outcome !== 'fail';
    if (outcome !== 'ok') op.error = `${r.status}:${r.status === -1 ? 'ECONNREFUSED' : (e.code ?? 'none')}`;
    this.history.push(op);
    if (outcome !== 'ok') await new Promise((res) => setTimeout(res, 20)); // no busy loop against a dead node
  }

  /**
   * One of the issue-16 operations (`y` in [0, 1) picks which): CAS on a freshly read index,
   * conditional delete, create-only single / multi-key, transaction.
   */
  private async extended(client: number, base: string, key: string, y: number): Promise<void> {
    const value = this.value(client);
    if (y < 0.4) {
      // CAS: read the key, then PUT with If-Match on the index read (If-None-Match: * when absent).
      const seen = await this.read(client, base, key);
      if (!seen) return;
      const v = value();
      const invokeMs = this.now();
      const cond: Partial<HistoryOp> = seen.index !== undefined ? { ifMatch: [seen.index] } : { ifNoneMatch: true };
      const op: HistoryOp = { client, kind: 'set', key, value: v, ...cond, invokeMs, completeMs: null, ok: true };
      const headers: Record<string, string> = seen.index !== undefined ? { 'if-match': `"${seen.index}"` } : { 'if-none-match': '*' };
      await this.finish(op, await this.call('PUT', `${base}/key/${key}`, JSON.stringify({ value: v }), headers));
      return;
    }
    if (y < 0.55) {
      // Conditional delete on the index read; when absent, on an index no key has (412 expected).
      const seen = await this.read(client, base, key);
      if (!seen) return;
      const index = seen.index ?? 1;
      const invokeMs = this.now();
      const op: HistoryOp = { client, kind: 'delete', key, ifMatch: [index], invokeMs, completeMs: null, ok: true };
      await this.finish(op, await this.call('DELETE', `${base}/key/${key}`, undefined, { 'if-match': `"${index}"` }));
      return;
    }
    if (y < 0.7) {
      const v = value();
      const invokeMs = this.now();
      const op: HistoryOp = { client, kind: 'set', key, value: v, ifNoneMatch: true, invokeMs, completeMs: null, ok: true };
      await this.finish(op, await this.call('PUT', `${base}/key/${key}`, JSON.stringify({ value: v }), { 'if-none-match': '*' }));
      return;
    }
    if (y < 0.8) {
      const pairs: Record<string, string> = {};
      for (const k of this.distinctKeys(2)) pairs[k] = value();
      const invokeMs = this.now();
      const op: HistoryOp = { client, kind: 'setMany', pairs, ifNoneMatch: true, invokeMs, completeMs: null, ok: true };
      await this.finish(op, await this.call('POST', `${base}/key`, JSON.stringify(pairs), { 'if-none-match': '*' }));
      return;
    }
    // Transaction: compare one or two keys on what this client last saw, write or read in each branch.
    const t = this.txnRequest(value);
    const invokeMs = this.now();
    const op: HistoryOp = { client, kind: 'txn', txn: t, invokeMs, completeMs: null, ok: true };
    await this.finish(op, await this.call('POST', `${base}/txn`, JSON.stringify(t)));
  }

  private distinctKeys(n: number): string[] {
    const ks = [...this.opts.keys];
    const out: string[] = [];
    while (out.length < n && ks.length > 0) out.push(ks.splice(Math.floor(this.opts.rng() * ks.length), 1)[0]);
    return out;
  }

  /** A random txn whose compares use the latest index and value in this workload's history. */
  private txnRequest(value: () => string): TxnRequest {
    const rng = this.opts.rng;
    const last = (k: string) => {
      for (let i = this.history.length - 1; i >= 0; i--) {
        const h = this.history[i];
        if (h.kind === 'get' && h.key === k && h.ok && h.completeMs !== null) return h;
      }
      return undefined;
    };
    const compare = this.distinctKeys(1 + Math.floor(rng() * 2)).map((k): TxnCompare => {
      const seen = last(k);
      const z = rng();
      if (z < 0.6 && seen?.index !== undefined) return { key: k, index: seen.index };
      if (z < 0.85 && typeof seen?.result === 'string') return { key: k, value: seen.result };
      return { key: k, exists: seen?.result !== null && seen?.result !== undefined };
    });
    const branch = (n: number, isWriting: boolean): TxnOp[] =>
      this.distinctKeys(n).map((k): TxnOp => {
        const z = rng();
        if (!isWriting || z >= 0.75) return { op: 'get', key: k };
        return z < 0.6 ? { op: 'set', key: k, value: value() } : { op: 'delete', key: k };
      });
    return { compare, success: branch(1 + Math.floor(rng() * 3), true), failure: branch(Math.floor(rng() * 2), rng() < 0.3) };
  }
}

/** What a create-only race ended with (raceCreateOnly). */
export interface RaceResult {
  /** values whose write answered 200 */
  winners: string[];
  /** answers 412 */
  conflicts: number;
  /** outcomes unknown after every retry */
  unknown: string[];
  /** the key's value read back at the end (null = absent, undefined = unreadable) */
  final: string | null | undefined;
  /** exactly one winner, and it is the value stored; or none answered 200 and the stored value is one whose answer was lost */
  isOneWinner: boolean;
}

/**
 * N clients race `PUT /key/:key` with `If-None-Match: *` on one key, each with its own value; a
 * client whose write provably did not apply (refused, not the leader) tries again on another node
 * until `deadlineMs`. Exactly one may win: the others get 412. Reads the key back to confirm.
 */
export async function raceCreateOnly(opts: { targets: string[]; key: string; clients: number; timeoutMs: number; deadlineMs: number }): Promise<RaceResult> {
  const agent = new Agent({ connect: { timeout: 1000 }, connections: opts.clients });
  const until = Date.now() + opts.deadlineMs;
  const result: RaceResult = { winners: [], conflicts: 0, unknown: [], final: undefined, isOneWinner: false };
  try {
    await Promise.all(
      Array.from({ length: opts.clients }, async (_, c) => {
        const value = `race-${c}-${Date.now()}`;
        for (let attempt = 0; Date.now() < until; attempt++) {
          const base = opts.targets[(c + attempt) % opts.targets.length];
          const r = await http('PUT', `${base}/key/${opts.key}`, { value }, { 'if-none-match': '*' }, { dispatcher: agent, timeoutMs: opts.timeoutMs });
          if (r.status === 200) return void result.winners.push(value);
          if (r.status === 412) return void result.conflicts++;
          const e = errorOf(r.body);
          const isRefused = r.status === 0 ? r.errorCode === 'ECONNREFUSED' || r.errorCode === 'UND_ERR_CONNECT_TIMEOUT' : classifyWrite(r.status, e.code, e.message) === 'fail';
          if (!isRefused) return void result.unknown.push(value);
          await new Promise((res) => setTimeout(res, 50));
        }
        result.unknown.push(value);
      }),
    );
    for (let attempt = 0; result.final === undefined && Date.now() < until + 10_000; attempt++) {
      const r = await http('GET', `${opts.targets[attempt % opts.targets.length]}/key/${opts.key}`, undefined, {}, { dispatcher: agent, timeoutMs: opts.timeoutMs });
      if (r.status === 200) result.final = String((r.body as Record<string, unknown>)[opts.key]);
      else if (r.status === 404) result.final = null;
      else await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await agent.close();
  }
  const f = result.final;
  result.isOneWinner =
    result.winners.length === 1 ? f === result.winners[0] : result.winners.length === 0 && typeof f === 'string' && result.unknown.includes(f);
  return result;
}
