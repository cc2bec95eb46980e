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
  AbortedError,
  BadRequestError,
  ClusterUnavailableError,
  ConflictError,
  ContinueExpiredError,
  InvalidTtlError,
  KeyNotFoundError,
  type KeyVersion,
  LeaseNotFoundError,
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
  WatchCompactedError,
} from './errors.js';
import { SseParser, errorOf, parseWatchMessage, readText, streamBody, type StreamBody } from './sse.js';
import { endpointHostPort } from '../net/address.js';
import { LeaseHandle } from './lease.js';
import type {
  ClusterInfo,
  ClusterNode,
  DeleteResult,
  GetOptions,
  GetResult,
  LeaseGrant,
  LeaseInfo,
  LeaseKeepAlive,
  LeaseList,
  LeaseOptions,
  LeaseRevoke,
  ListItem,
  ListOptions,
  ListPage,
  Member,
  NodeHealth,
  RaftKvClientOptions,
  RemoveNodeResult,
  TxnOpResult,
  TxnRequest,
  TxnResult,
  WatchMessage,
  WatchOptions,
  WriteConditions,
  WriteOptions,
  WriteResult,
} from './types.js';

/**
 * How a request may be retried: a `read` always; a `write` only when it certainly applied nothing;
 * an `idempotent` write (a lease grant, keepalive or revoke) always, as a read: repeating it is
 * harmless (a repeated grant leaves at worst an unused lease with no keys, which expires by itself).
 */
type Kind = 'read' | 'write' | 'idempotent';

/** Network error codes that prove the request never left this machine (no connection was made). */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

const DEFAULTS = { timeoutMs: 10_000, retries: 6, backoffBaseMs: 100, backoffMaxMs: 2000 };
const WATCH_DEFAULTS = { retries: 20, idleTimeoutMs: 30_000 };

/** Error codes of a watch answer or `error` event that another attempt cannot fix. */
const WATCH_FATAL_CODES = new Set(['BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'METHOD_NOT_ALLOWED']);

/**
 * A streamed response: axios's http adapter in Node (the body is a Readable), its fetch adapter in
 * browsers (a ReadableStream; XHR cannot stream). axios takes the first one its build has: its
 * browser build maps the http adapter to null.
 */
const STREAM_ADAPTERS = ['http', 'fetch'] as const;

/** What the watch iterator keeps across streams. Invariant: every index yielded is > the one before. */
interface WatchState {
  /** The highest index delivered (or `from - 1` before the first message): nothing at or below it is yielded again. */
  floor: number | null;
  /** Whether a message was yielded, so a new stream resumes with `Last-Event-ID: floor`. */
  hasYielded: boolean;
}

/** How one watch stream ended. */
type StreamEnd =
  | { kind: 'aborted' }
  | { kind: 'fatal'; error: RaftKvClientError }
  /** Dropped or refused: resume elsewhere. `answered`: a server said why; `delivered`: it yielded something first. */
  | { kind: 'retry'; error: RaftKvClientError; answered: boolean; delivered: boolean };

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
  /** The lease the request names, for a LEASE_NOT_FOUND answer. */
  leaseId?: string;
  /** Per-attempt deadline instead of the client's timeoutMs. */
  timeoutMs?: number;
  /** Abandons the request (AbortedError) when aborted. */
  signal?: AbortSignal;
  /** Set by call() when an attempt failed in a way that may have applied it (an idempotent write retried after that). */
  trace?: { mayHaveApplied: boolean };
}

/** The shape of a lease id (`l-<index>`), as the server checks it. */
const LEASE_ID = /^l-[1-9][0-9]{0,15}$/;

function checkLeaseId(id: unknown): string {
  if (typeof id !== 'string' || !LEASE_ID.test(id)) throw new BadRequestError(`not a lease id: ${String(id).slice(0, 64)} (ids look like l-42)`);
  return id;
}

function checkLeaseOptions(options: LeaseOptions): void {
  const i = options.keepAliveIntervalMs;
  if (i !== undefined && !(Number.isFinite(i) && i > 0)) throw new BadRequestError('keepAliveIntervalMs must be a positive number');
}

/** `?lease=ID` for a write that attaches its keys, or ''. */
function leaseQuery(lease: string | undefined): string {
  return lease === undefined ? '' : `?lease=${encodeURIComponent(checkLeaseId(lease))}`;
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
  private readonly timeoutMs: number;
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
    this.timeoutMs = options.timeoutMs ?? DEFAULTS.timeoutMs;
    this.backoffBaseMs = Math.max(1, options.backoffBaseMs ?? DEFAULTS.backoffBaseMs);
    this.backoffMaxMs = Math.max(this.backoffBaseMs, options.backoffMaxMs ?? DEFAULTS.backoffMaxMs);
    this.http = axios.create({
      timeout: this.timeoutMs,
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
   * Sets one key; resolves once a majority committed it. With conditions the write is decided at
   * apply: PreconditionFailedError (with the key's current index) when the condition does not hold.
   * With `lease` the key is attached to that lease (LeaseNotFoundError, nothing written, when it is gone).
   */
  async set(key: string, value: string, options?: WriteOptions): Promise<WriteResult> {
    if (options?.ifMatch === undefined && options?.ifNoneMatch === undefined) return this.setMany({ [key]: value }, options?.lease === undefined ? undefined : { lease: options.lease });
    if (key.length === 0) throw new BadRequestError('key must not be empty');
    if (typeof value !== 'string') throw new BadRequestError('value must be a string');
    const { res } = await this.call({
      kind: 'write',
      method: 'PUT',
      path: `/key/${encodeURIComponent(key)}${leaseQuery(options.lease)}`,
      body: JSON.stringify({ value }),
      headers: conditionHeaders(options),
      ...(options.lease === undefined ? {} : { leaseId: options.lease }),
    });
    return { index: indexHeader(res, 'x-raft-index'), leaderId: header(res, 'x-raft-leader') };
  }

  /**
   * Sets several keys atomically in one log entry; resolves once a majority committed it. With
   * `{ifNoneMatch: '*'}` every key must be absent (an atomic create-only batch); with `lease` every
   * key is attached to that lease.
   */
  async setMany(pairs: Record<string, string>, options?: Pick<WriteOptions, 'ifNoneMatch' | 'lease'>): Promise<WriteResult> {
    const entries = Object.entries(pairs);
    if (entries.length === 0) throw new BadRequestError('setMany needs at least one pair');
    for (const [k, v] of entries) if (typeof v !== 'string') throw new BadRequestError(`value of "${k.slice(0, 64)}" must be a string`);
    const lease = options?.lease;
    const { res } = await this.call({
      kind: 'write',
      method: 'POST',
      path: `/key${leaseQuery(lease)}`,
      body: JSON.stringify(pairs),
      headers: conditionHeaders(options === undefined ? undefined : { ...(options.ifNoneMatch === undefined ? {} : { ifNoneMatch: options.ifNoneMatch }) }),
      ...(lease === undefined ? {} : { leaseId: lease }),
    });
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

  /**
   * Grants a lease of `ttlMs` (POST /leases) and returns a handle that keeps it alive every ttlMs / 3
   * through any endpoint until close() or revoke(); its `lost` promise and `signal` tell when the
   * lease can no longer be relied on. Attach keys with `set(key, value, {lease: handle.id})`.
   */
  async lease(ttlMs: number, options: LeaseOptions = {}): Promise<LeaseHandle> {
    checkLeaseOptions(options);
    const sentAt = performance.now();
    const grant = await this.grantLease(ttlMs);
    return new LeaseHandle(this, grant, sentAt, options);
  }

  /**
   * Adopts an existing lease (granted elsewhere, e.g. by an earlier run): one keepalive now
   * (LeaseNotFoundError when it is gone), then a handle that keeps it alive as lease() does.
   */
  async keepLeaseAlive(id: string, options: LeaseOptions = {}): Promise<LeaseHandle> {
    checkLeaseOptions(options);
    const sentAt = performance.now();
    const first = await this.keepAliveLease(id);
    options.onKeepAlive?.(first);
    return new LeaseHandle(this, { id, ttlMs: first.ttlMs, index: null }, sentAt, options);
  }

  /**
   * Grants a lease (POST /leases) without keeping it alive; InvalidTtlError outside the servers'
   * bounds. Retried like a read: a repeated grant leaves at worst an extra lease with no keys.
   */
  async grantLease(ttlMs: number): Promise<LeaseGrant> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new BadRequestError('ttlMs must be a positive integer (milliseconds)');
    const { res, endpoint } = await this.call({ kind: 'idempotent', method: 'POST', path: '/leases', body: JSON.stringify({ ttlMs }) });
    const body = parseJson(res.data);
    if (!isRecord(body) || typeof body.id !== 'string' || typeof body.ttlMs !== 'number' || typeof body.index !== 'number') {
      throw new ServerError('BAD_RESPONSE', `unexpected answer to a lease grant from ${endpoint}`, res.status, endpoint);
    }
    return { id: body.id, ttlMs: body.ttlMs, index: body.index };
  }

  /** Renews a lease once (POST /leases/:id/keepalive): LeaseNotFoundError when it is gone. */
  async keepAliveLease(id: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<LeaseKeepAlive> {
    checkLeaseId(id);
    const { res, endpoint } = await this.call({
      kind: 'idempotent',
      method: 'POST',
      path: `/leases/${encodeURIComponent(id)}/keepalive`,
      leaseId: id,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const body = parseJson(res.data);
    if (!isRecord(body) || body.id !== id || typeof body.ttlMs !== 'number') throw new ServerError('BAD_RESPONSE', `unexpected answer to a keepalive from ${endpoint}`, res.status, endpoint);
    return { id, ttlMs: body.ttlMs, remainingMs: numOrNull(body.remainingMs) };
  }

  /**
   * Revokes a lease (DELETE /leases/:id): it and its keys are deleted in one entry. LeaseNotFoundError
   * when it is gone, unless an earlier attempt of this call may have revoked it (then index and
   * deleted are null: the lease is gone either way).
   */
  async revokeLease(id: string): Promise<LeaseRevoke> {
    checkLeaseId(id);
    const trace = { mayHaveApplied: false };
    try {
      const { res, endpoint } = await this.call({ kind: 'idempotent', method: 'DELETE', path: `/leases/${encodeURIComponent(id)}`, leaseId: id, trace });
      const body = parseJson(res.data);
      if (!isRecord(body) || body.id !== id || typeof body.index !== 'number' || !Array.isArray(body.deleted)) {
        throw new ServerError('BAD_RESPONSE', `unexpected answer to a revoke from ${endpoint}`, res.status, endpoint);
      }
      return { id, revoked: true, index: body.index, deleted: body.deleted.filter((k): k is string => typeof k === 'string') };
    } catch (err) {
      if (err instanceof LeaseNotFoundError && trace.mayHaveApplied) return { id, revoked: true, index: null, deleted: null };
      throw err;
    }
  }

  /** One lease (GET /leases/:id), with its attached keys when `keys` is true; LeaseNotFoundError when it is gone. */
  async getLease(id: string, options: { keys?: boolean; consistency?: GetOptions['consistency'] } = {}): Promise<LeaseInfo> {
    checkLeaseId(id);
    const q = new URLSearchParams();
    if (options.keys) q.set('keys', 'true');
    if (options.consistency && options.consistency !== 'linearizable') q.set('consistency', options.consistency);
    const qs = q.toString();
    const { res, endpoint } = await this.call({ kind: 'read', method: 'GET', path: `/leases/${encodeURIComponent(id)}${qs ? `?${qs}` : ''}`, leaseId: id });
    const info = parseLeaseInfo(parseJson(res.data));
    if (!info) throw new ServerError('BAD_RESPONSE', `unexpected answer to a lease lookup from ${endpoint}`, res.status, endpoint);
    return info;
  }

  /** Every lease (GET /leases) at one index. */
  async listLeases(options: { consistency?: GetOptions['consistency'] } = {}): Promise<LeaseList> {
    const stale = options.consistency !== undefined && options.consistency !== 'linearizable';
    const { res, endpoint } = await this.call({ kind: 'read', method: 'GET', path: `/leases${stale ? `?consistency=${encodeURIComponent(options.consistency as string)}` : ''}` });
    const body = parseJson(res.data);
    const leases = isRecord(body) && Array.isArray(body.leases) ? body.leases.map(parseLeaseInfo) : null;
    if (!isRecord(body) || typeof body.index !== 'number' || !leases || leases.some((l) => l === null)) {
      throw new ServerError('BAD_RESPONSE', `unexpected answer to a lease listing from ${endpoint}`, res.status, endpoint);
    }
    return { index: body.index, leases: leases as LeaseInfo[] };
  }

  /**
   * Every change under `prefix` (`''`: all keys) from GET /watch, as an async iterator of `change`
   * and `progress` messages whose indexes strictly increase: never one twice, never a gap. A stream
   * that drops, times out, is refused, or ends with an `error` event (NO_LEADER, UNAVAILABLE) is
   * resumed on the next endpoint with `Last-Event-ID`; a history that no longer covers the resume
   * point throws WatchCompactedError. Ends quietly when `signal` aborts or the loop breaks.
   */
  async *watch(prefix: string, options: WatchOptions = {}): AsyncGenerator<WatchMessage, void, undefined> {
    const { from, signal } = options;
    if (typeof prefix !== 'string') throw new BadRequestError('prefix must be a string');
    if (from !== undefined && (!Number.isSafeInteger(from) || from < 1)) throw new BadRequestError('from must be a positive index');
    const retries = Math.max(0, options.retries ?? WATCH_DEFAULTS.retries);
    const idleTimeoutMs = Math.max(0, options.idleTimeoutMs ?? WATCH_DEFAULTS.idleTimeoutMs);
    const state: WatchState = { floor: from === undefined ? null : from - 1, hasYielded: false };
    const failures: { endpoint: string; error: string }[] = [];
    let lastAnswered: RaftKvClientError | null = null;
    let cursor = this.cursor;
    while (!isAborted(signal)) {
      if (failures.length > 0) {
        await abortableSleep(this.backoffMs(failures.length - 1), signal);
        if (isAborted(signal)) return;
      }
      const endpoint = this.endpoints[cursor % this.endpoints.length];
      const end = yield* this.watchStream(endpoint, prefix, from, state, idleTimeoutMs, signal, options.onConnect);
      if (end.kind === 'aborted') return;
      if (end.kind === 'fatal') throw end.error;
      // Resume on the next endpoint: the one that failed may be dead, partitioned or without a leader.
      cursor++;
      if (end.delivered) {
        failures.length = 0;
        lastAnswered = null;
      }
      failures.push({ endpoint, error: end.error.message });
      if (end.answered) lastAnswered = end.error;
      if (failures.length > retries) {
        if (lastAnswered) throw lastAnswered;
        throw new ClusterUnavailableError(`watch: no endpoint served the stream after ${failures.length} attempt(s): ${failures.map((f) => `${f.endpoint} (${f.error})`).join('; ')}`, failures);
      }
      options.onRetry?.({ endpoint, error: end.error, attempt: failures.length });
    }
  }

  /** One GET /watch stream on `endpoint`: yields its new messages, returns how it ended. */
  private async *watchStream(
    endpoint: string,
    prefix: string,
    from: number | undefined,
    state: WatchState,
    idleTimeoutMs: number,
    signal: AbortSignal | undefined,
    onConnect: ((endpoint: string) => void) | undefined,
  ): AsyncGenerator<WatchMessage, StreamEnd, undefined> {
    const q = new URLSearchParams({ prefix });
    if (from !== undefined) q.set('from', String(from));
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    // The standard SSE resume: the server starts at floor + 1 (and prefers it over `from`).
    if (state.hasYielded && state.floor !== null) headers['Last-Event-ID'] = String(state.floor);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let body: StreamBody | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let stalled: string | null = null;
    /** (Re)arms the deadline for the next byte: the connect timeout, then the idle timeout. */
    const arm = (ms: number, what: string): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      if (ms > 0) {
        timer = setTimeout(() => {
          stalled = `${what} after ${ms} ms`;
          body?.cancel();
          ac.abort();
        }, ms);
      }
    };
    let delivered = false;
    const dropped = (err: unknown): StreamEnd => {
      if (isAborted(signal)) return { kind: 'aborted' };
      const error =
        stalled !== null
          ? new RaftKvClientError('WATCH_STALLED', `${endpoint}: ${stalled}`, null, endpoint)
          : err === null
            ? new RaftKvClientError('STREAM_ENDED', `${endpoint} closed the watch stream`, null, endpoint)
            : this.networkFailure({ kind: 'read', method: 'GET', path: '/watch' }, endpoint, err).error;
      return { kind: 'retry', error, answered: false, delivered };
    };
    try {
      arm(this.timeoutMs, 'no answer');
      let res: AxiosResponse<unknown>;
      try {
        res = await this.http.request<unknown>({
          method: 'GET',
          url: `${endpoint}/watch?${q.toString()}`,
          headers,
          responseType: 'stream',
          timeout: 0,
          signal: ac.signal,
          adapter: [...STREAM_ADAPTERS],
        });
      } catch (err) {
        return dropped(err);
      }
      body = streamBody(res.data);
      if (res.status !== 200) {
        const text = await readText(body);
        return watchAnswerError(res.status, text, endpoint);
      }
      onConnect?.(endpoint);
      arm(idleTimeoutMs, 'no data');
      const parser = new SseParser();
      for await (const chunk of body.chunks()) {
        arm(idleTimeoutMs, 'no data');
        for (const m of parser.push(chunk)) {
          if (m.event === 'error') return watchEventError(m.data, endpoint, delivered);
          if (m.event !== 'change' && m.event !== 'progress') continue; // unknown event types are for newer clients
          const msg = parseWatchMessage(m);
          if (!msg) return { kind: 'fatal', error: new ServerError('BAD_RESPONSE', `malformed watch ${m.event} from ${endpoint}: ${m.data.slice(0, 200)}`, 200, endpoint) };
          // A resumed stream may repeat what was delivered (progress at the resume point): never twice.
          if (state.floor !== null && msg.index <= state.floor) continue;
          state.floor = msg.index;
          state.hasYielded = true;
          delivered = true;
          yield msg;
        }
      }
      return dropped(null);
    } catch (err) {
      return dropped(err);
    } finally {
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      body?.cancel();
      ac.abort();
    }
  }

  /** Runs one request with failover and retries; throws a typed error when it cannot succeed. */
  private async call(req: Request): Promise<{ res: AxiosResponse<string>; endpoint: string }> {
    const failures: { endpoint: string; error: string }[] = [];
    const triedThisRound = new Set<string>();
    let lastAnswered: RaftKvClientError | null = null;
    const aborted = (): AbortedError => new AbortedError(`${req.method} ${req.path.split('?')[0]} abandoned`);
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await abortableSleep(this.backoffMs(attempt - 1), req.signal);
      if (isAborted(req.signal)) throw aborted();
      if (this.isLookupNeeded) await this.lookupLeader();
      if (triedThisRound.size >= this.endpoints.length) triedThisRound.clear();
      const endpoint = this.pick(triedThisRound);
      triedThisRound.add(endpoint);
      const outcome = await this.attempt(req, endpoint);
      if (outcome.kind === 'ok') return { res: outcome.res, endpoint };
      if (isAborted(req.signal)) throw aborted();
      failures.push({ endpoint, error: outcome.error.message });
      // An idempotent write retried after an answer that did not say "nothing applied".
      if (req.trace && outcome.retry && !(outcome.error instanceof NoLeaderError || outcome.error instanceof NotLeaderError || NOT_SENT_CODES.has(outcome.error.code))) req.trace.mayHaveApplied = true;
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
        ...(req.timeoutMs === undefined ? {} : { timeout: req.timeoutMs }),
        ...(req.signal === undefined ? {} : { signal: req.signal }),
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
      case 'LEASE_NOT_FOUND':
        return failed(new LeaseNotFoundError(req.leaseId ?? leaseIdIn(message), message, endpoint), false);
      case 'INVALID_TTL':
        return failed(new InvalidTtlError(message, endpoint), false);
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
        if (req.kind !== 'write') return failed(error, true);
        // A 504 on a write means it was proposed and may still commit (README: "outcome unknown").
        return failed(new OutcomeUnknownError(`the write may or may not have been applied: ${endpoint} answered 504 TIMEOUT (${message})`, error, 504, endpoint), false);
      }
      default: {
        const error = code === 'UNAVAILABLE' ? new UnavailableError(message, endpoint) : new ServerError(code, message, res.status, endpoint);
        if (res.status < 500) return failed(error, false);
        if (req.kind !== 'write') return failed(error, true);
        return failed(new OutcomeUnknownError(`the write may or may not have been applied: ${endpoint} answered ${res.status} ${code} (${message})`, error, res.status, endpoint), false);
      }
    }
  }

  private networkFailure(req: Request, endpoint: string, err: unknown): Extract<Outcome, { kind: 'failed' }> {
    const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
    const code = typeof e.cause?.code === 'string' ? e.cause.code : typeof e.code === 'string' ? e.code : 'NETWORK_ERROR';
    const detail = typeof e.message === 'string' && e.message ? e.message : code;
    const message = `${endpoint}: ${detail}`;
    const cause = new RaftKvClientError(code, req.kind !== 'write' || NOT_SENT_CODES.has(code) ? detail : message, null, endpoint);
    if (req.kind !== 'write' || NOT_SENT_CODES.has(code)) return { kind: 'failed', error: cause, retry: true, answered: false, endpoint };
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
}

/** Whether `signal` was aborted (a function, so that a check after an await is not narrowed away). */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** Waits `ms`, or less when `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The lease id a LEASE_NOT_FOUND message names ("lease l-9 not found: ..."), or '' . */
function leaseIdIn(message: string): string {
  return /\b(l-[1-9][0-9]{0,15})\b/.exec(message)?.[1] ?? '';
}

/** Validates one lease of GET /leases or GET /leases/:id. */
function parseLeaseInfo(v: unknown): LeaseInfo | null {
  if (!isRecord(v) || typeof v.id !== 'string' || typeof v.ttlMs !== 'number') return null;
  const keys = Array.isArray(v.keys) ? v.keys.filter((k): k is string => typeof k === 'string') : undefined;
  return {
    id: v.id,
    ttlMs: v.ttlMs,
    ...(typeof v.grantedIndex === 'number' ? { grantedIndex: v.grantedIndex } : {}),
    remainingMs: numOrNull(v.remainingMs),
    ...(keys === undefined ? {} : { keys }),
  };
}

/** COMPACTED as its typed error, from an answer's or an error event's body. */
function compactedError(e: { message: string; details: Record<string, unknown> }, endpoint: string): WatchCompactedError {
  const n = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) ? v : -1);
  return new WatchCompactedError(e.message, n(e.details.compactedIndex), n(e.details.currentIndex), endpoint);
}

/** How a watch answered with something other than 200 ends: COMPACTED and client errors are final, the rest is retried elsewhere. */
function watchAnswerError(status: number, text: string, endpoint: string): StreamEnd {
  const e = errorOf(text);
  const code = e?.code ?? `HTTP_${status}`;
  const message = e?.message ?? `HTTP ${status} from ${endpoint}`;
  if (code === 'COMPACTED' && e) return { kind: 'fatal', error: compactedError(e, endpoint) };
  if (code === 'BAD_REQUEST') return { kind: 'fatal', error: new BadRequestError(message, endpoint) };
  if (status === 429 || status >= 500) {
    const error = code === 'NO_LEADER' ? new NoLeaderError(message, endpoint) : code === 'UNAVAILABLE' ? new UnavailableError(message, endpoint) : new ServerError(code, message, status, endpoint);
    return { kind: 'retry', error, answered: true, delivered: false };
  }
  return { kind: 'fatal', error: new ServerError(code, message, status, endpoint) };
}

/** How a stream ended by an `error` event ends: COMPACTED is final, NO_LEADER / UNAVAILABLE (and anything unexpected) resume elsewhere. */
function watchEventError(data: string, endpoint: string, delivered: boolean): StreamEnd {
  const e = errorOf(data);
  if (e?.code === 'COMPACTED') return { kind: 'fatal', error: compactedError(e, endpoint) };
  if (e && WATCH_FATAL_CODES.has(e.code)) return { kind: 'fatal', error: new ServerError(e.code, e.message, 200, endpoint) };
  const code = e?.code ?? 'BAD_RESPONSE';
  const message = e?.message ?? `unreadable error event from ${endpoint}: ${data.slice(0, 200)}`;
  const error = code === 'NO_LEADER' ? new NoLeaderError(message, endpoint) : code === 'UNAVAILABLE' ? new UnavailableError(message, endpoint) : new ServerError(code, message, 200, endpoint);
  return { kind: 'retry', error, answered: true, delivered };
}
