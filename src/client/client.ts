/**
 * RaftKvClient: the TypeScript client of the raftkv HTTP API, on axios, for Node and browsers.
 * It remembers the leader (from `X-Raft-Leader`, mapped to one of its endpoints through
 * `/cluster`'s `apiAddr`), fails over across endpoints on connection errors and 503, and retries
 * with jittered exponential backoff only where that is safe: reads always, writes only when the
 * request certainly never reached a server or the server says it applied nothing. Everything else
 * that may have applied a write surfaces as OutcomeUnknownError.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import {
  BadRequestError,
  ClusterUnavailableError,
  ConflictError,
  ContinueExpiredError,
  KeyNotFoundError,
  type KeyVersion,
  NoLeaderError,
  NodeNotFoundError,
  NotLeaderError,
  OutcomeUnknownError,
  PayloadTooLargeError,
  PreconditionFailedError,
  RaftKvClientError,
  ServerError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { endpointHostPort } from '../net/address.js';
import type { ClusterInfo, ClusterNode, DeleteResult, GetOptions, GetResult, ListItem, ListOptions, ListPage, Member, NodeHealth, RaftKvClientOptions, RemoveNodeResult, TxnOpResult, TxnRequest, TxnResult, WriteConditions, WriteResult } from './types.js';

type Kind = 'read' | 'write';

/** Network error codes that prove the request never left this machine (no connection was made). */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

const DEFAULTS = { timeoutMs: 10_000, retries: 6, backoffBaseMs: 100, backoffMaxMs: 2000 };

/** What one attempt produced. */
type Outcome =
  | { kind: 'ok'; res: AxiosResponse<string>; endpoint: string }
  /** Failed; `retry` says whether another attempt is safe; `answered` whether a server answered. */
  | { kind: 'failed'; error: RaftKvClientError; retry: boolean; answered: boolean; endpoint: string };

interface Request {
  kind: Kind;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Turns a 404 KEY_NOT_FOUND or NODE_NOT_FOUND answer into the right typed error. */
  notFound?: (message: string, endpoint: string) => RaftKvClientError;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function numOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function strOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function header(res: AxiosResponse, name: string): string | null {
  const v: unknown = res.headers[name];
  return typeof v === 'string' ? v : null;
}

function keyVersion(v: unknown): KeyVersion | null {
  return isRecord(v) && typeof v.key === 'string' && typeof v.index === 'number' ? { key: v.key, index: v.index } : null;
}

/** The `If-Match` / `If-None-Match` headers of a conditional write. */
export function conditionHeaders(c: WriteConditions | undefined): Record<string, string> {
  if (!c) return {};
  if (c.ifMatch !== undefined && c.ifNoneMatch !== undefined) throw new BadRequestError('use ifMatch or ifNoneMatch, not both');
  if (c.ifNoneMatch !== undefined) {
    if (c.ifNoneMatch !== '*') throw new BadRequestError("ifNoneMatch must be '*'");
    return { 'If-None-Match': '*' };
  }
  if (c.ifMatch === undefined) return {};
  if (c.ifMatch === '*') return { 'If-Match': '*' };
  const list = Array.isArray(c.ifMatch) ? c.ifMatch : [c.ifMatch];
  if (list.length === 0 || !list.every((i) => Number.isSafeInteger(i) && i > 0)) throw new BadRequestError('ifMatch must be a positive index, a list of them, or *');
  return { 'If-Match': list.map((i) => `"${i}"`).join(', ') };
}

function indexHeader(res: AxiosResponse, name: string): number | null {
  const v = header(res, name);
  if (v === null) return null;
  const n = Number(v.replace(/"/g, ''));
  return Number.isInteger(n) ? n : null;
}

/** Whether a member's `apiAddr` (`host:port`) names the same server as `endpoint`. */
export function sameServer(apiAddr: string, endpoint: string): boolean {
  const e = endpointHostPort(endpoint);
  const a = endpointHostPort(`http://${apiAddr}`);
  if (!e || !a || e.port !== a.port) return false;
  return e.host === a.host || (LOOPBACK.has(e.host) && LOOPBACK.has(a.host));
}

const HEALTHS: NodeHealth[] = ['ok', 'lagging', 'no-contact', 'unreachable', 'unknown'];

/** Validates a `/cluster` answer (`?view=all`, or a plain one from an older server). */
export function parseClusterInfo(body: unknown, endpoint: string): ClusterInfo | null {
  if (!isRecord(body) || typeof body.id !== 'string' || !Array.isArray(body.nodes)) return null;
  const isFull = body.view === 'all';
  const nodes: ClusterNode[] = [];
  for (const n of body.nodes) {
    if (!isRecord(n) || typeof n.id !== 'string') return null;
    const isSelf = n.id === body.id;
    const health = typeof n.health === 'string' && (HEALTHS as string[]).includes(n.health) ? (n.health as NodeHealth) : 'unknown';
    nodes.push({
      id: n.id,
      raftAddr: strOrNull(n.raftAddr) ?? '',
      apiAddr: strOrNull(n.apiAddr) ?? '',
      suffrage: strOrNull(n.suffrage) ?? 'unknown',
      role: strOrNull(n.role) ?? (isSelf ? strOrNull(body.role) : null),
      reachable: typeof n.reachable === 'boolean' ? n.reachable : isSelf,
      term: isFull ? numOrNull(n.term) : isSelf ? numOrNull(body.term) : null,
      commitIndex: isFull ? numOrNull(n.commitIndex) : isSelf ? numOrNull(body.commitIndex) : null,
      appliedIndex: isFull ? numOrNull(n.appliedIndex) : isSelf ? numOrNull(body.appliedIndex) : null,
      lastIndex: isFull ? numOrNull(n.lastIndex) : isSelf ? numOrNull(body.lastIndex) : null,
      matchIndex: numOrNull(n.matchIndex),
      lag: numOrNull(n.lag),
      lastContactMs: numOrNull(n.lastContactMs),
      health,
      error: strOrNull(n.error),
    });
  }
  const term = numOrNull(body.term);
  const commitIndex = numOrNull(body.commitIndex);
  const appliedIndex = numOrNull(body.appliedIndex);
  const lastIndex = numOrNull(body.lastIndex);
  if (typeof body.role !== 'string' || term === null || commitIndex === null || appliedIndex === null || lastIndex === null) return null;
  const leader = isRecord(body.leader) && typeof body.leader.id === 'string' ? { id: body.leader.id, apiAddr: strOrNull(body.leader.apiAddr) } : null;
  return { id: body.id, role: body.role, leader, term, commitIndex, appliedIndex, lastIndex, nodes, endpoint };
}

function parseMembers(v: unknown): Member[] {
  if (!Array.isArray(v)) return [];
  return v.filter(isRecord).map((m) => ({ id: String(m.id), raftAddr: String(m.raftAddr ?? ''), apiAddr: String(m.apiAddr ?? ''), suffrage: String(m.suffrage ?? '') }));
}

/** Client of a raftkv cluster; construct once and share (it remembers the leader). */
export class RaftKvClient {
  private readonly endpoints: string[];
  private readonly http: AxiosInstance;
  private readonly retries: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  /** Which configured endpoint serves which node id, learned from `/cluster`. */
  private readonly endpointById = new Map<string, string>();
  private leaderId: string | null = null;
  /** The endpoint to try first: the leader's when known. */
  private preferred: string | null = null;
  /** Set when the leader changed to one whose endpoint we have not mapped yet. */
  private isLookupNeeded = false;
  /** The endpoint that last named an unmapped leader; asked for `/cluster` to map it. */
  private lookupVia: string | null = null;
  /** Round-robin position for endpoints other than the preferred one. */
  private cursor = 0;

  constructor(options: RaftKvClientOptions) {
    const endpoints = options.endpoints.map((e) => e.trim().replace(/\/+$/, '')).filter((e) => e.length > 0);
    if (endpoints.length === 0) throw new BadRequestError('RaftKvClient needs at least one endpoint');
    for (const e of endpoints) if (!endpointHostPort(e)) throw new BadRequestError(`not a URL: ${e}`);
    this.endpoints = [...new Set(endpoints)];
    this.retries = Math.max(0, options.retries ?? DEFAULTS.retries);
    this.backoffBaseMs = Math.max(1, options.backoffBaseMs ?? DEFAULTS.backoffBaseMs);
    this.backoffMaxMs = Math.max(this.backoffBaseMs, options.backoffMaxMs ?? DEFAULTS.backoffMaxMs);
    this.http = axios.create({
      timeout: options.timeoutMs ?? DEFAULTS.timeoutMs,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      validateStatus: () => true,
      maxRedirects: 0,
      headers: { Accept: 'application/json', ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}) },
    });
  }

  /** The leader id last reported by any node, or null. */
  get knownLeader(): string | null {
    return this.leaderId;
  }

  /** Reads `key`; throws KeyNotFoundError when it does not exist. Retried on any transient failure. */
  async get(key: string, options: GetOptions = {}): Promise<GetResult> {
    if (key.length === 0) throw new BadRequestError('key must not be empty');
    const consistency = options.consistency ?? 'linearizable';
    const { res, endpoint } = await this.call({
      kind: 'read',
      method: 'GET',
      path: `/key/${encodeURIComponent(key)}${consistency === 'linearizable' ? '' : `?consistency=${encodeURIComponent(consistency)}`}`,
      notFound: (message, ep) => new KeyNotFoundError(key, message, ep),
    });
    const body = parseJson(res.data);
    if (!isRecord(body) || typeof body[key] !== 'string') throw new ServerError('BAD_RESPONSE', `unexpected answer to get from ${endpoint}`, res.status, endpoint);
    return { key, value: body[key], index: indexHeader(res, 'etag') };
  }

  /**
   * Sets one key; resolves once a majority committed it. With `conditions` the write is decided at
   * apply: PreconditionFailedError (with the key's current index) when the condition does not hold.
   */
  async set(key: string, value: string, conditions?: WriteConditions): Promise<WriteResult> {
    if (!conditions) return this.setMany({ [key]: value });
    if (key.length === 0) throw new BadRequestError('key must not be empty');
    if (typeof value !== 'string') throw new BadRequestError('value must be a string');
    const { res } = await this.call({ kind: 'write', method: 'PUT', path: `/key/${encodeURIComponent(key)}`, body: JSON.stringify({ value }), headers: conditionHeaders(conditions) });
    return { index: indexHeader(res, 'x-raft-index'), leaderId: header(res, 'x-raft-leader') };
  }

  /**
   * Sets several keys atomically in one log entry; resolves once a majority committed it. With
   * `{ifNoneMatch: '*'}` every key must be absent (an atomic create-only batch).
   */
  async setMany(pairs: Record<string, string>, conditions?: Pick<WriteConditions, 'ifNoneMatch'>): Promise<WriteResult> {
    const entries = Object.entries(pairs);
    if (entries.length === 0) throw new BadRequestError('setMany needs at least one pair');
    for (const [k, v] of entries) if (typeof v !== 'string') throw new BadRequestError(`value of "${k.slice(0, 64)}" must be a string`);
    const { res } = await this.call({ kind: 'write', method: 'POST', path: '/key', body: JSON.stringify(pairs), headers: conditionHeaders(conditions) });
    return { index: indexHeader(res, 'x-raft-index'), leaderId: header(res, 'x-raft-leader') };
  }

  /**
   * Deletes `key`; throws KeyNotFoundError when it does not exist. With `{ifMatch}` it deletes only
   * when the key exists at that index: PreconditionFailedError otherwise (also when it is absent).
   */
  async delete(key: string, conditions?: Pick<WriteConditions, 'ifMatch'>): Promise<DeleteResult> {
    if (key.length === 0) throw new BadRequestError('key must not be empty');
    const { res } = await this.call({
      kind: 'write',
      method: 'DELETE',
      path: `/key/${encodeURIComponent(key)}`,
      headers: conditionHeaders(conditions),
      notFound: (message, ep) => new KeyNotFoundError(key, message, ep),
    });
    return { deleted: key, index: indexHeader(res, 'x-raft-index'), leaderId: header(res, 'x-raft-leader') };
  }

  /**
   * Runs a transaction: its compares decide, at apply, whether the success or the failure branch
   * runs; all its writes land atomically at one index. A transaction without writes is served by
   * ReadIndex (no log entry) and retried like a read.
   */
  async txn(request: TxnRequest): Promise<TxnResult> {
    const isReadOnly = [...(request.success ?? []), ...(request.failure ?? [])].every((o) => o.op === 'get');
    const { res, endpoint } = await this.call({ kind: isReadOnly ? 'read' : 'write', method: 'POST', path: '/txn', body: JSON.stringify(request) });
    const body = parseJson(res.data);
    if (!isRecord(body) || typeof body.succeeded !== 'boolean' || typeof body.index !== 'number' || !Array.isArray(body.results)) {
      throw new ServerError('BAD_RESPONSE', `unexpected answer to txn from ${endpoint}`, res.status, endpoint);
    }
    return { succeeded: body.succeeded, index: body.index, results: body.results as TxnOpResult[] };
  }

  /**
   * One page of the keys under `prefix` (or after `continueToken`). Every page of one listing shows
   * the state at the first page's `index`; a token older than the server's history throws
   * ContinueExpiredError (with a fresh token that resumes at a newer index).
   */
  async listPage(prefix: string, options: ListOptions & { continueToken?: string; count?: boolean } = {}): Promise<ListPage> {
    const q = new URLSearchParams({ prefix });
    if (options.pageSize !== undefined) q.set('limit', String(options.pageSize));
    if (options.keysOnly) q.set('keysOnly', 'true');
    if (options.count) q.set('count', 'true');
    if (options.consistency && options.consistency !== 'linearizable') q.set('consistency', options.consistency);
    if (options.continueToken) q.set('continue', options.continueToken);
    const { res, endpoint } = await this.call({ kind: 'read', method: 'GET', path: `/keys?${q.toString()}` });
    const body = parseJson(res.data);
    if (!isRecord(body) || typeof body.index !== 'number' || !Array.isArray(body.items)) {
      throw new ServerError('BAD_RESPONSE', `unexpected answer to list from ${endpoint}`, res.status, endpoint);
    }
    return {
      index: body.index,
      items: body.items as ListItem[],
      continue: body.more === true && typeof body.continue === 'string' ? body.continue : null,
      ...(typeof body.count === 'number' ? { count: body.count } : {}),
    };
  }

  /**
   * Every key under `prefix` in UTF-8 byte order, page by page, all as they were at the first page's
   * index (docs/api.md, "Listing"). Throws ContinueExpiredError, without restarting, when the listing
   * outlives the server's history: items already yielded would come again, so the caller decides
   * (list again, or resume with listPage and the error's continueToken).
   */
  async *list(prefix: string, options: ListOptions = {}): AsyncGenerator<ListItem> {
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, { ...options, continueToken: token });
      yield* page.items;
      token = page.continue ?? undefined;
    } while (token !== undefined);
  }

  /** The whole-cluster view: every member's role, term, indexes, and the leader's lag and last contact for it. */
  async cluster(): Promise<ClusterInfo> {
    const { res, endpoint } = await this.call({ kind: 'read', method: 'GET', path: '/cluster?view=all' });
    const info = parseClusterInfo(parseJson(res.data), endpoint);
    if (!info) throw new ServerError('BAD_RESPONSE', `unexpected answer to /cluster from ${endpoint}`, res.status, endpoint);
    this.learnTopology(info, endpoint);
    return info;
  }

  /** Removes member `id` from the cluster; throws NodeNotFoundError when there is no such member. */
  async removeNode(id: string): Promise<RemoveNodeResult> {
    const { res, endpoint } = await this.call({ kind: 'write', method: 'DELETE', path: `/cluster/nodes/${encodeURIComponent(id)}`, notFound: (_m, ep) => new NodeNotFoundError(id, ep) });
    const body = parseJson(res.data);
    if (!isRecord(body)) throw new ServerError('BAD_RESPONSE', `unexpected answer to remove from ${endpoint}`, res.status, endpoint);
    return { removed: id, nodes: parseMembers(body.nodes) };
  }

  /** Runs one request with failover and retries; throws a typed error when it cannot succeed. */
  private async call(req: Request): Promise<{ res: AxiosResponse<string>; endpoint: string }> {
    const failures: { endpoint: string; error: string }[] = [];
    const triedThisRound = new Set<string>();
    let lastAnswered: RaftKvClientError | null = null;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await this.sleep(this.backoffMs(attempt - 1));
      if (this.isLookupNeeded) await this.lookupLeader();
      if (triedThisRound.size >= this.endpoints.length) triedThisRound.clear();
      const endpoint = this.pick(triedThisRound);
      triedThisRound.add(endpoint);
      const outcome = await this.attempt(req, endpoint);
      if (outcome.kind === 'ok') return { res: outcome.res, endpoint };
      failures.push({ endpoint, error: outcome.error.message });
      if (!outcome.retry) throw outcome.error;
      if (outcome.answered) lastAnswered = outcome.error;
      if (!outcome.answered || outcome.error instanceof UnavailableError) this.forget(endpoint);
    }
    if (lastAnswered) throw lastAnswered;
    const seen = new Map<string, number>();
    for (const f of failures) seen.set(`${f.endpoint} (${f.error})`, (seen.get(`${f.endpoint} (${f.error})`) ?? 0) + 1);
    const summary = [...seen].map(([what, n]) => (n > 1 ? `${what} ×${n}` : what)).join('; ');
    throw new ClusterUnavailableError(`no endpoint answered after ${failures.length} attempt(s): ${summary}`, failures);
  }

  /** One HTTP exchange, classified into success, a safe retry, or a final error. */
  private async attempt(req: Request, endpoint: string): Promise<Outcome> {
    let res: AxiosResponse<string>;
    try {
      res = await this.http.request<string>({
        method: req.method,
        url: endpoint + req.path,
        data: req.body,
        headers: { ...(req.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...req.headers },
      });
    } catch (err) {
      return this.networkFailure(req, endpoint, err);
    }
    this.learnLeader(header(res, 'x-raft-leader'), endpoint);
    if (res.status >= 200 && res.status < 300) return { kind: 'ok', res, endpoint };
    const body = parseJson(res.data);
    const e = isRecord(body) && isRecord(body.error) ? body.error : {};
    const code = typeof e.code === 'string' ? e.code : `HTTP_${res.status}`;
    const message = typeof e.message === 'string' ? e.message : `HTTP ${res.status} from ${endpoint}`;
    const failed = (error: RaftKvClientError, retry: boolean): Outcome => ({ kind: 'failed', error, retry, answered: true, endpoint });
    switch (code) {
      case 'BAD_REQUEST':
      case 'TOO_MANY_OPS':
      case 'DUPLICATE_KEY':
        return failed(code === 'BAD_REQUEST' ? new BadRequestError(message, endpoint) : new ServerError(code, message, res.status, endpoint), false);
      case 'PRECONDITION_FAILED': {
        const details = isRecord(e.details) ? e.details : {};
        return failed(new PreconditionFailedError(message, keyVersion(details.current), Array.isArray(details.existing) ? details.existing.map(keyVersion).filter((v): v is KeyVersion => v !== null) : [], endpoint), false);
      }
      case 'PAYLOAD_TOO_LARGE':
        return failed(new PayloadTooLargeError(message, endpoint), false);
      case 'CONTINUE_EXPIRED': {
        const d = isRecord(e.details) ? e.details : {};
        const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
        return failed(new ContinueExpiredError(message, typeof d.continue === 'string' ? d.continue : null, num(d.listIndex), num(d.compactedIndex), num(d.currentIndex), endpoint), false);
      }
      case 'KEY_NOT_FOUND':
      case 'NODE_NOT_FOUND':
        return failed(req.notFound ? req.notFound(message, endpoint) : new ServerError(code, message, res.status, endpoint), false);
      case 'CONFLICT':
        return failed(new ConflictError(message, endpoint), false);
      case 'NO_LEADER':
      case 'NOT_LEADER': {
        // The server promises it applied nothing, so a write may go again too.
        const error = code === 'NO_LEADER' ? new NoLeaderError(message, endpoint) : new NotLeaderError(message, header(res, 'x-raft-leader'), endpoint);
        return failed(error, true);
      }
      case 'TIMEOUT': {
        const error = new TimeoutError(message, endpoint);
        if (req.kind === 'read') return failed(error, true);
        // A 504 on a write means it was proposed and may still commit (README: "outcome unknown").
        return failed(new OutcomeUnknownError(`the write may or may not have been applied: ${endpoint} answered 504 TIMEOUT (${message})`, error, 504, endpoint), false);
      }
      default: {
        const error = code === 'UNAVAILABLE' ? new UnavailableError(message, endpoint) : new ServerError(code, message, res.status, endpoint);
        if (res.status < 500) return failed(error, false);
        if (req.kind === 'read') return failed(error, true);
        return failed(new OutcomeUnknownError(`the write may or may not have been applied: ${endpoint} answered ${res.status} ${code} (${message})`, error, res.status, endpoint), false);
      }
    }
  }

  private networkFailure(req: Request, endpoint: string, err: unknown): Outcome {
    const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
    const code = typeof e.cause?.code === 'string' ? e.cause.code : typeof e.code === 'string' ? e.code : 'NETWORK_ERROR';
    const detail = typeof e.message === 'string' && e.message ? e.message : code;
    const message = `${endpoint}: ${detail}`;
    const cause = new RaftKvClientError(code, req.kind === 'read' || NOT_SENT_CODES.has(code) ? detail : message, null, endpoint);
    if (req.kind === 'read' || NOT_SENT_CODES.has(code)) return { kind: 'failed', error: cause, retry: true, answered: false, endpoint };
    // The request may have reached the server (timeout, reset, unknown): never resend a write then.
    return {
      kind: 'failed',
      error: new OutcomeUnknownError(`the write may or may not have been applied: ${message}`, cause, null, endpoint),
      retry: false,
      answered: false,
      endpoint,
    };
  }

  /** The endpoint for the next attempt: the leader's when known and not tried yet, else round-robin. */
  private pick(tried: Set<string>): string {
    if (this.preferred && !tried.has(this.preferred)) return this.preferred;
    for (let i = 0; i < this.endpoints.length; i++) {
      const e = this.endpoints[(this.cursor + i) % this.endpoints.length];
      if (!tried.has(e)) {
        this.cursor = (this.cursor + i + 1) % this.endpoints.length;
        return e;
      }
    }
    return this.endpoints[0];
  }

  /** Stops preferring an endpoint that failed. */
  private forget(endpoint: string): void {
    if (this.preferred === endpoint) this.preferred = null;
  }

  private learnLeader(leaderId: string | null, answeredBy: string): void {
    if (leaderId === null || leaderId === this.leaderId) return;
    this.leaderId = leaderId;
    const known = this.endpointById.get(leaderId);
    this.preferred = known ?? null;
    this.isLookupNeeded = known === undefined;
    if (this.isLookupNeeded) this.lookupVia = answeredBy;
  }

  /** Maps the new leader's id to one of our endpoints with one cheap `/cluster` call. */
  private async lookupLeader(): Promise<void> {
    this.isLookupNeeded = false;
    const via = this.lookupVia ?? this.endpoints[0];
    try {
      const res = await this.http.get<string>(`${via}/cluster`);
      if (res.status !== 200) return;
      const info = parseClusterInfo(parseJson(res.data), via);
      if (info) this.learnTopology(info, via);
    } catch (err) {
      // Only an optimisation: without the mapping requests still work through any node (followers forward).
      void err;
    }
  }

  private learnTopology(info: ClusterInfo, answeredBy: string): void {
    this.endpointById.set(info.id, answeredBy);
    for (const n of info.nodes) {
      const e = this.endpoints.find((ep) => sameServer(n.apiAddr, ep));
      if (e) this.endpointById.set(n.id, e);
    }
    if (info.leader) {
      this.leaderId = info.leader.id;
      this.preferred = this.endpointById.get(info.leader.id) ?? null;
    }
  }

  /** Full-jitter exponential backoff: a random wait in [0, min(max, base·2^n)]. */
  private backoffMs(n: number): number {
    return Math.random() * Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** n);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
