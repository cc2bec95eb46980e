/**
 * The client HTTP API (Koa): /key, /cluster, /health, /ready, /metrics, and the status page at /.
 * One error middleware turns RaftKvError into `{"error":{"code","message"}}`; anything else is a
 * logged 500. Writes reaching a follower are forwarded to the leader. Built by main.ts and by tests.
 */
import Koa from 'koa';
import Router from '@koa/router';
import { request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RaftNode } from '../raft/node/node.js';
import type { KvOp } from '../kv/types.js';
import { httpMetrics, registerTlsCertExpiry } from '../metrics/index.js';
import { fullClusterView, localClusterView } from './cluster-view.js';
import { STATUS_PAGE_HTML } from './status-page.js';
import { preconditionFromHeaders, PreconditionSyntaxError, type Precondition } from '../kv/conditions.js';
import { DEFAULT_MAX_TXN_OPS, evaluateTxn, isReadOnlyTxn, parseTxn, txnKeys } from '../kv/txn.js';
import { DEFAULT_MAX_LIST_LIMIT, encodeContinue, isWellFormed, parseListQuery } from '../kv/listing.js';
import type { FailedCondition, StoredValue } from '../kv/types.js';
import { isLeaseId, MAX_LEASE_TTL_MS } from '../kv/leases.js';
import { BadRequestError, ContinueExpiredError, ForbiddenError, InternalError, InvalidTtlError, KeyNotFoundError, LeaseNotFoundError, MethodNotAllowedError, NodeNotFoundError, PreconditionFailedError, NoLeaderError, NotLeaderError, RaftKvError, ReloadFailedError, RouteNotFoundError, TimeoutError, UnavailableError, errorBody } from '../errors.js';
import { FORWARDED_SUBJECT_HEADER, authorizeKeys, authorizeRange, requireRole, requireAccess, verifyJoin, type ApiSecurity, type RouteAccess } from '../security/auth.js';
import { concurrencyLimit } from './limits.js';
import { readBody as readRequestBody } from '../http/body.js';
import { NODE_ID_RULE, isHostPort, isNodeId } from '../net/address.js';
import { backupRoute } from './backup.js';
import { DEFAULT_MAX_WATCHERS, DEFAULT_WATCH_PROGRESS_INTERVAL_MS, watchRoute, type WatchOptions } from './watch.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../security/hmac.js';

/** Limits applied to client input. */
export interface ApiLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxBodyBytes: number;
  /** Most pairs in one POST /key (default 1000). */
  maxKeysPerRequest?: number;
  /** How long a request body may take to arrive before a 408 (default 10 s). */
  bodyTimeoutMs?: number;
  /** Most compares plus operations in one transaction (default 128). */
  maxTxnOps?: number;
  /** Largest `limit` of one GET /keys page (default 1000). */
  maxListLimit?: number;
}

export interface ApiDeps {
  node: RaftNode;
  nodeId: string;
  limits: ApiLimits;
  logger: Logger;
  registry: Registry;
  requestTimeoutMs: number;
  /** Raft tick length, to report last contact in milliseconds on /cluster (ticks only when absent). */
  tickMs?: number;
  /** Tokens and cluster secret; absent means the API is open (zero-config start). */
  security?: ApiSecurity;
  /** Most requests in progress at once (429 beyond); default unlimited. */
  maxConcurrentRequests?: number;
  /** How to reach other members' APIs when forwarding (HTTPS and its trust when TLS is on). */
  forward?: { scheme: 'http' | 'https'; dispatcher: () => Dispatcher | undefined };
  /** Checks a joiner's peer endpoint before it is added (mutual TLS with the cluster CA). */
  verifyJoiner?: (raftAddr: string) => Promise<boolean>;
  /** GET /watch: MAX_WATCHERS and WATCH_PROGRESS_INTERVAL_MS (defaults 1000 and 5 s), when to end streams without a leader, the shutdown signal. */
  watch?: Partial<Omit<WatchOptions, 'maxKeyBytes'>>;
}

const FORWARDED = 'x-raftkv-forwarded';

/** Reads the request body (src/http/body.ts); after a refusal the connection closes with the answer. */
async function readBody(ctx: Koa.Context, limitBytes: number, timeoutMs = 10_000): Promise<string> {
  try {
    return await readRequestBody(ctx.req, limitBytes, timeoutMs);
  } catch (err) {
    ctx.set('Connection', 'close');
    throw err;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError('request body is not valid JSON');
  }
}

function checkKey(key: string, limits: ApiLimits): void {
  const n = Buffer.byteLength(key, 'utf8');
  if (n < 1 || n > limits.maxKeyBytes) throw new BadRequestError(`key must be 1 to ${limits.maxKeyBytes} bytes`);
  // A lone surrogate (only possible through a JSON escape) has no UTF-8 form: it would be stored altered.
  if (!isWellFormed(key)) throw new BadRequestError('key is not well-formed Unicode (a lone surrogate)');
}

function checkValue(key: string, value: unknown, limits: ApiLimits): string {
  if (typeof value !== 'string') throw new BadRequestError(`value of "${key.slice(0, 64)}" must be a string`);
  if (Buffer.byteLength(value, 'utf8') > limits.maxValueBytes) throw new BadRequestError(`value of "${key.slice(0, 64)}" is over ${limits.maxValueBytes} bytes`);
  if (!isWellFormed(value)) throw new BadRequestError(`value of "${key.slice(0, 64)}" is not well-formed Unicode (a lone surrogate)`);
  return value;
}

/** The precondition of a request's If-Match / If-None-Match headers (400 when malformed), or null. */
function requestPrecondition(ctx: Koa.Context): Precondition | null {
  try {
    return preconditionFromHeaders(ctx.get('if-match') || undefined, ctx.get('if-none-match') || undefined);
  } catch (err) {
    if (err instanceof PreconditionSyntaxError) throw new BadRequestError(err.message);
    throw err;
  }
}

/** Whether the request's token may read `key` (a prefix-limited token only inside its prefix). */
function canReadKey(ctx: Koa.Context, key: string): boolean {
  try {
    authorizeKeys(ctx, [key]);
    return true;
  } catch (err) {
    if (err instanceof ForbiddenError) return false;
    throw err;
  }
}

/** The lease a write attaches its keys to (`?lease=ID`), or undefined; 400 when malformed. */
function requestLease(ctx: Koa.Context): string | undefined {
  const raw = ctx.query.lease;
  if (raw === undefined) return undefined;
  if (!isLeaseId(raw)) throw new BadRequestError('lease must be a lease id such as "l-42" (from POST /leases)');
  return raw;
}

/** The lease id of a /leases/:id route; an id that cannot exist is simply not found. */
function routeLease(ctx: Koa.Context): string {
  const id = ctx.params.id;
  if (!isLeaseId(id)) throw new LeaseNotFoundError(String(id).slice(0, 64));
  return id;
}

/** The 412 for a write whose conditions did not hold at apply. */
function preconditionFailed(failed: FailedCondition[], isBatch: boolean): PreconditionFailedError {
  const version = (f: FailedCondition) => (f.current === null ? null : { key: f.key, index: f.current.index });
  if (isBatch) {
    const existing = failed.filter((f) => f.current !== null).map((f) => ({ key: f.key, index: (f.current as StoredValue).index }));
    return new PreconditionFailedError(`${existing.length} of the keys already exist${existing.length > 0 ? ` (e.g. ${JSON.stringify(existing[0].key)} at index ${existing[0].index})` : ''}; nothing was written`, { existing });
  }
  const f = failed[0];
  const message = f.current === null ? `precondition failed: key ${JSON.stringify(f.key)} does not exist` : `precondition failed: key ${JSON.stringify(f.key)} is at index ${f.current.index}`;
  return new PreconditionFailedError(message, { current: version(f) }, f.current?.index);
}

/**
 * Validates a POST /key body into set operations. The result has no prototype, so a key named
 * `__proto__` (which JSON.parse keeps as an own property) is stored like any other key instead of
 * being swallowed by Object.prototype's setter.
 */
export function parseSetBody(body: unknown, limits: ApiLimits): Record<string, string> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('body must be a JSON object of string pairs');
  const entries = Object.entries(body as Record<string, unknown>);
  if (entries.length === 0) throw new BadRequestError('body must contain at least one pair');
  if (limits.maxKeysPerRequest !== undefined && entries.length > limits.maxKeysPerRequest) throw new BadRequestError(`at most ${limits.maxKeysPerRequest} pairs per request`);
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of entries) {
    checkKey(k, limits);
    out[k] = checkValue(k, v, limits);
  }
  return out;
}

/** Resolves once `node` has applied `index`, or after `timeoutMs` (the caller checks again). */
function waitForApplied(node: Pick<RaftNode, 'appliedIndex' | 'onAppliedIndex'>, index: number, timeoutMs: number): Promise<void> {
  if (node.appliedIndex() >= index) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    const unsubscribe = node.onAppliedIndex((applied) => {
      if (applied >= index) done();
    });
  });
}

/** Builds the Koa app. */
export function createApp(deps: ApiDeps): Koa {
  const { node, limits, logger } = deps;
  const app = new Koa();
  app.use(httpMetrics(deps.registry));
  if (deps.security?.certExpirySeconds) registerTlsCertExpiry(deps.registry, deps.security.certExpirySeconds);
  // Case-sensitive and strict: `/KEY`, `/key/` and `//key` are not `/key`. The role a request needs
  // comes from the route it matched (declared below with the route), never from the raw path.
  const router = new Router({ sensitive: true, strict: true });
  const isMember = (name: string): boolean => node.members().some((m) => m.id === name);
  const route = (method: 'get' | 'post' | 'put' | 'delete', path: string, access: RouteAccess, handler: Koa.Middleware): void => {
    router[method](path, requireAccess(access, deps.security, isMember), handler);
  };

  app.use(async (ctx, next) => {
    const started = logger.isLevelEnabled('debug') ? performance.now() : 0;
    try {
      await next();
    } catch (err) {
      if (!(err instanceof RaftKvError)) logger.error({ err }, 'unhandled error in request');
      const known = err instanceof RaftKvError ? err : new InternalError();
      ctx.status = known.status;
      ctx.body = errorBody(known);
      if (known.headers) for (const [h, v] of Object.entries(known.headers)) ctx.set(h, v);
    }
    const leader = node.leaderId();
    if (leader) ctx.set('X-Raft-Leader', leader);
    if (started !== 0) logger.debug({ method: ctx.method, path: ctx.path, status: ctx.status, ms: performance.now() - started }, 'request');
  });
  if (deps.maxConcurrentRequests !== undefined) app.use(concurrencyLimit(deps.maxConcurrentRequests));

  /** Runs `leaderAction` here if we lead, else forwards the request to the leader once. */
  async function onLeader(ctx: Koa.Context, rawBody: string | null, leaderAction: () => Promise<void>): Promise<void> {
    // The core names itself as leader exactly while it leads.
    const leaderId = node.leaderId();
    if (leaderId === deps.nodeId) return leaderAction();
    if (leaderId === null || ctx.get(FORWARDED)) throw new NoLeaderError('no leader is available to take the write');
    const addr = node.memberApiAddr(leaderId);
    if (!addr) throw new NotLeaderError(leaderId, null);
    let res;
    try {
      // The leader authenticates the client again: pass its token and, for a join, the joiner's signature.
      const passed: Record<string, string> = {};
      for (const h of ['authorization', 'if-match', 'if-none-match', TIMESTAMP_HEADER, SIGNATURE_HEADER]) if (ctx.get(h)) passed[h] = ctx.get(h);
      // A client that authenticated by certificate: this member (its own certificate) vouches for it.
      if (typeof ctx.state.certSubject === 'string') passed[FORWARDED_SUBJECT_HEADER] = ctx.state.certSubject;
      res = await request(`${deps.forward?.scheme ?? 'http'}://${addr}${ctx.originalUrl}`, {
        method: ctx.method as 'POST' | 'PUT' | 'DELETE',
        dispatcher: deps.forward?.dispatcher(),
        headers: { 'content-type': 'application/json', [FORWARDED]: '1', ...passed },
        body: rawBody ?? undefined,
        headersTimeout: deps.requestTimeoutMs + 1000,
        bodyTimeout: deps.requestTimeoutMs + 1000,
      });
    } catch (err) {
      // Only a refused connection proves the leader never saw the request; anything later (reset,
      // timeout) may follow a write it took, so the outcome is unknown (504), not a safe-to-retry 503.
      const code = (err as { code?: unknown }).code;
      if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT') throw new NoLeaderError('the leader could not be reached');
      throw new TimeoutError('the leader stopped answering the forwarded request; its outcome is unknown');
    }
    ctx.status = res.statusCode;
    for (const h of ['x-raft-index', 'etag', 'retry-after']) {
      const v = res.headers[h];
      if (typeof v === 'string') ctx.set(h, v);
    }
    ctx.type = 'application/json';
    ctx.body = await res.body.text();
  }

  route('post', '/key', 'write', async (ctx) => {
    const raw = await readBody(ctx, limits.maxBodyBytes, limits.bodyTimeoutMs);
    const pairs = parseSetBody(parseJson(raw), limits);
    const keys = Object.keys(pairs);
    authorizeKeys(ctx, keys);
    // If-None-Match: * = every key absent (an atomic create-only batch); If-Match names one key's index.
    const pre = requestPrecondition(ctx);
    if (pre !== null && pre.kind !== 'absent' && keys.length !== 1) throw new BadRequestError('If-Match applies to a single key; send one pair (or use PUT /key/:key or POST /txn)');
    const lease = requestLease(ctx);
    await onLeader(ctx, raw, async () => {
      const ops: KvOp[] = Object.entries(pairs).map(([key, value]) => (lease === undefined ? { op: 'set', key, value } : { op: 'set', key, value, lease }));
      // A write with no pairs would commit an empty entry; parseSetBody refuses such bodies, this keeps it so.
      if (ops.length === 0) throw new BadRequestError('body must contain at least one pair');
      if (pre === null && lease === undefined) {
        const index = await node.write(ops);
        ctx.set('X-Raft-Index', String(index));
        ctx.body = pairs;
        return;
      }
      const r = await node.writeCommand({ kind: 'ops', ops, conditions: pre === null ? [] : keys.map((key) => ({ key, pre })) });
      ctx.set('X-Raft-Index', String(r.index));
      if (r.leaseNotFound !== undefined) throw new LeaseNotFoundError(r.leaseNotFound);
      if (r.failed && pre !== null) throw preconditionFailed(r.failed, keys.length > 1 || pre.kind === 'absent');
      if (keys.length === 1) ctx.set('ETag', `"${r.index}"`);
      ctx.body = pairs;
    });
  });

  route('put', '/key/:key', 'write', async (ctx) => {
    const key = ctx.params.key;
    checkKey(key, limits);
    authorizeKeys(ctx, [key]);
    const raw = await readBody(ctx, limits.maxBodyBytes, limits.bodyTimeoutMs);
    const body = parseJson(raw) as { value?: unknown } | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'value')) throw new BadRequestError('body must be {"value": "..."}');
    const value = checkValue(key, body.value, limits);
    const pre = requestPrecondition(ctx);
    const lease = requestLease(ctx);
    await onLeader(ctx, raw, async () => {
      const r = await node.writeCommand({ kind: 'ops', ops: [lease === undefined ? { op: 'set', key, value } : { op: 'set', key, value, lease }], conditions: pre === null ? [] : [{ key, pre }] });
      ctx.set('X-Raft-Index', String(r.index));
      if (r.leaseNotFound !== undefined) throw new LeaseNotFoundError(r.leaseNotFound);
      if (r.failed) throw preconditionFailed(r.failed, false);
      ctx.set('ETag', `"${r.index}"`);
      ctx.body = { [key]: value };
    });
  });

  route('get', '/key/:key', 'read', async (ctx) => {
    const key = ctx.params.key;
    checkKey(key, limits);
    authorizeKeys(ctx, [key]);
    // The two common query strings skip the general parser.
    const qs = ctx.querystring;
    const consistency = qs === '' ? 'linearizable' : qs === 'consistency=stale' ? 'stale' : (ctx.query.consistency ?? 'linearizable');
    if (consistency !== 'linearizable' && consistency !== 'stale') throw new BadRequestError('consistency must be "linearizable" or "stale"');
    if (consistency === 'linearizable') await node.linearizableBarrier();
    const v = await node.get(key);
    if (!v) throw new KeyNotFoundError(key);
    ctx.set('ETag', `"${v.index}"`);
    ctx.body = { [key]: v.value };
  });

  route('delete', '/key/:key', 'write', async (ctx) => {
    const key = ctx.params.key;
    checkKey(key, limits);
    authorizeKeys(ctx, [key]);
    const pre = requestPrecondition(ctx);
    if (pre !== null && pre.kind === 'absent') throw new BadRequestError('If-None-Match does not apply to DELETE');
    await onLeader(ctx, null, async () => {
      if (pre !== null) {
        // Deleted only if the key exists at the index named (an absent key fails too: 412, not 404).
        const r = await node.writeCommand({ kind: 'ops', ops: [{ op: 'delete', key }], conditions: [{ key, pre }] });
        ctx.set('X-Raft-Index', String(r.index));
        if (r.failed) throw preconditionFailed(r.failed, false);
        ctx.body = { deleted: key };
        return;
      }
      // Whether the key was there is decided when the delete is applied, not by an earlier read.
      const { index, existed } = await node.deleteKey(key);
      ctx.set('X-Raft-Index', String(index));
      if (!existed) throw new KeyNotFoundError(key);
      ctx.body = { deleted: key };
    });
  });

  const txnLimits = { maxOps: limits.maxTxnOps ?? DEFAULT_MAX_TXN_OPS, maxKeyBytes: limits.maxKeyBytes, maxValueBytes: limits.maxValueBytes };

  route('post', '/txn', 'read', async (ctx) => {
    const raw = await readBody(ctx, limits.maxBodyBytes, limits.bodyTimeoutMs);
    const txn = parseTxn(parseJson(raw), txnLimits);
    const { read, written } = txnKeys(txn);
    authorizeKeys(ctx, [...read, ...written]);
    if (isReadOnlyTxn(txn)) {
      // No log entry: ReadIndex, then the compares and gets against one state between two applies.
      const consistency = ctx.query.consistency ?? 'linearizable';
      if (consistency !== 'linearizable' && consistency !== 'stale') throw new BadRequestError('consistency must be "linearizable" or "stale"');
      if (consistency === 'linearizable') await node.linearizableBarrier();
      const { index, values } = await node.readAtomically(read);
      const decision = evaluateTxn(txn, (k) => values.get(k), index);
      ctx.set('X-Raft-Index', String(index));
      ctx.body = { succeeded: decision.succeeded, index, results: decision.results };
      return;
    }
    // A transaction that writes needs the write role, whatever the route's read access let in.
    requireRole(ctx, 'write');
    await onLeader(ctx, raw, async () => {
      const r = await node.writeCommand({ kind: 'txn', txn });
      ctx.set('X-Raft-Index', String(r.index));
      if (r.leaseNotFound !== undefined) throw new LeaseNotFoundError(r.leaseNotFound);
      ctx.body = { succeeded: r.txn?.succeeded ?? false, index: r.index, results: r.txn?.results ?? [] };
    });
  });

  route('get', '/keys', 'read', async (ctx) => {
    const q = parseListQuery(new URLSearchParams(ctx.querystring), { maxLimit: limits.maxListLimit ?? DEFAULT_MAX_LIST_LIMIT, maxKeyBytes: limits.maxKeyBytes });
    authorizeRange(ctx, q.range);
    if (q.consistency === 'linearizable') await node.linearizableBarrier();
    // Every page of a listing shows the state at its first page's index I0 (from the token): the
    // store undoes the changes after I0 from the watch history, read at the same point as the rows.
    const rangeQuery = { ...q.range, after: q.after, limit: q.limit, keysOnly: q.keysOnly, count: q.count, atIndex: q.firstIndex };
    let page = await node.listRange(rangeQuery);
    if (page.unavailable?.reason === 'behind' && q.firstIndex !== null) {
      // A member that has not applied I0 yet (a stale read on a lagging follower): wait for it, bounded.
      await waitForApplied(node, q.firstIndex, deps.requestTimeoutMs);
      page = await node.listRange(rangeQuery);
    }
    if (page.unavailable !== undefined && q.firstIndex !== null && q.after !== null) {
      const { reason, floor, appliedIndex } = page.unavailable;
      if (reason === 'behind') throw new UnavailableError(`this member has not applied the listing's index ${q.firstIndex} yet (applied: ${appliedIndex}); try again or another member`);
      throw new ContinueExpiredError(q.firstIndex, floor, appliedIndex, encodeContinue(q.range, q.after, appliedIndex));
    }
    const last = page.items[page.items.length - 1];
    ctx.set('X-Raft-Index', String(page.index));
    ctx.body = {
      index: page.index,
      items: page.items,
      more: page.more,
      ...(page.more && last ? { continue: encodeContinue(q.range, last.key, page.index) } : {}),
      ...(page.count !== undefined ? { count: page.count } : {}),
    };
  });

  // --- Leases (docs/leases.md) ---
  route('post', '/leases', 'write', async (ctx) => {
    const raw = await readBody(ctx, 64 * 1024, limits.bodyTimeoutMs);
    const body = parseJson(raw) as { ttlMs?: unknown } | null;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'ttlMs')) throw new BadRequestError('body must be {"ttlMs": N}');
    const min = node.minLeaseTtlMs();
    const ttlMs = body.ttlMs;
    if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < min || ttlMs > MAX_LEASE_TTL_MS) {
      throw new InvalidTtlError(`ttlMs must be an integer from ${min} (2 × the maximum election timeout) to ${MAX_LEASE_TTL_MS} (24 h)`);
    }
    await onLeader(ctx, raw, async () => {
      const g = await node.grantLease(ttlMs);
      ctx.set('X-Raft-Index', String(g.index));
      ctx.status = 201;
      ctx.body = g;
    });
  });

  route('post', '/leases/:id/keepalive', 'write', async (ctx) => {
    const id = routeLease(ctx);
    await onLeader(ctx, null, async () => {
      const k = await node.keepaliveLease(id);
      ctx.set('X-Raft-Index', String(node.appliedIndex()));
      ctx.body = k;
    });
  });

  route('delete', '/leases/:id', 'write', async (ctx) => {
    const id = routeLease(ctx);
    await onLeader(ctx, null, async () => {
      // A prefix-limited token may only revoke a lease whose keys all lie inside its prefix (checked on the
      // leader against the applied table; a key attached between this check and the revoke is deleted too).
      if (ctx.state.principal !== undefined) {
        const found = await node.lease(id);
        if (found !== undefined) authorizeKeys(ctx, found.keys);
      }
      const r = await node.revokeLease(id);
      ctx.set('X-Raft-Index', String(r.index));
      ctx.body = { id, revoked: true, index: r.index, deleted: r.deleted };
    });
  });

  route('get', '/leases', 'read', async (ctx) => {
    const consistency = ctx.query.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'stale') throw new BadRequestError('consistency must be "linearizable" or "stale"');
    if (consistency === 'linearizable') await node.linearizableBarrier();
    const index = node.appliedIndex();
    const leases = await node.leases();
    ctx.set('X-Raft-Index', String(index));
    ctx.body = {
      index,
      leases: leases.map((l) => {
        const remainingMs = node.leaseRemainingMs(l.id);
        return remainingMs === undefined ? { id: l.id, ttlMs: l.ttlMs } : { id: l.id, ttlMs: l.ttlMs, remainingMs: Math.round(remainingMs) };
      }),
    };
  });

  route('get', '/leases/:id', 'read', async (ctx) => {
    const id = routeLease(ctx);
    const consistency = ctx.query.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'stale') throw new BadRequestError('consistency must be "linearizable" or "stale"');
    const withKeys = ctx.query.keys ?? 'false';
    if (withKeys !== 'true' && withKeys !== 'false') throw new BadRequestError('keys must be "true" or "false"');
    if (consistency === 'linearizable') await node.linearizableBarrier();
    const index = node.appliedIndex();
    const found = await node.lease(id);
    if (found === undefined) throw new LeaseNotFoundError(id);
    const remainingMs = node.leaseRemainingMs(id);
    // A prefix-limited token sees only the attached keys it may read.
    const keys = withKeys === 'true' ? found.keys.filter((k) => canReadKey(ctx, k)) : undefined;
    ctx.set('X-Raft-Index', String(index));
    ctx.body = {
      id,
      ttlMs: found.lease.ttlMs,
      grantedIndex: found.lease.grantedIndex,
      ...(remainingMs === undefined ? {} : { remainingMs: Math.round(remainingMs) }),
      ...(keys === undefined ? {} : { keys }),
    };
  });

  route('get', '/cluster', 'admin', async (ctx) => {
    // ?view=all asks every member for its own view (for the status page, the client and the CLI).
    if (ctx.query.view !== 'all') {
      ctx.body = localClusterView(node, deps.nodeId, deps.tickMs);
      return;
    }
    // Members are asked the way writes are forwarded (HTTPS when on), with the caller's own token.
    const authorization = ctx.get('authorization') || undefined;
    const headers = typeof ctx.state.certSubject === 'string' ? { [FORWARDED_SUBJECT_HEADER]: ctx.state.certSubject } : undefined;
    ctx.body = await fullClusterView(node, deps.nodeId, deps.tickMs, { scheme: deps.forward?.scheme ?? 'http', dispatcher: deps.forward?.dispatcher(), authorization, headers });
  });

  route('get', '/backup', 'admin', backupRoute(node, deps.nodeId));
  route('get', '/watch', 'read', watchRoute(node, { maxWatchers: DEFAULT_MAX_WATCHERS, progressIntervalMs: DEFAULT_WATCH_PROGRESS_INTERVAL_MS, ...deps.watch, maxKeyBytes: limits.maxKeyBytes }, logger));

  route('get', '/', 'open', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = STATUS_PAGE_HTML;
  });

  route('post', '/cluster/join', 'join', async (ctx) => {
    const raw = await readBody(ctx, 64 * 1024, limits.bodyTimeoutMs);
    verifyJoin(ctx, raw, deps.security);
    const body = parseJson(raw) as { id?: unknown; raftAddr?: unknown; apiAddr?: unknown; incarnation?: unknown };
    if (typeof body !== 'object' || body === null) throw new BadRequestError('body must be {"id","raftAddr","apiAddr","incarnation"}');
    const { id, raftAddr, apiAddr } = body;
    // The joiner's incarnation (docs/cluster-identity.md); '' for a joiner of an older version.
    const incarnation = body.incarnation ?? '';
    if (typeof incarnation !== 'string' || !/^[0-9A-Za-z_-]{0,64}$/.test(incarnation)) throw new BadRequestError('incarnation must be up to 64 characters of [0-9A-Za-z_-]');
    if (!isNodeId(id)) throw new BadRequestError(`id must be ${NODE_ID_RULE}`);
    // The same rules as the joiner's own RAFT_ADVERTISE_ADDR and API_ADVERTISE_ADDR (port 1-65535).
    if (!isHostPort(raftAddr)) throw new BadRequestError('raftAddr must be host:port');
    if (!isHostPort(apiAddr)) throw new BadRequestError('apiAddr must be host:port');
    await onLeader(ctx, raw, async () => {
      const existing = node.members().find((m) => m.id === id);
      if (existing && (existing.incarnation ?? '') === incarnation) {
        // The same incarnation joining again (a retried join) is harmless when the addresses are unchanged.
        if (existing.raftAddr !== raftAddr) throw new BadRequestError(`node ${id} is already a member with raftAddr ${existing.raftAddr}`);
      } else {
        // A new member, or a new incarnation of one (it lost its state): added, or put in place of the
        // old incarnation, as a learner; it is promoted to voter once caught up.
        if (deps.verifyJoiner && !(await deps.verifyJoiner(raftAddr))) throw new ForbiddenError(`the peer endpoint ${raftAddr} did not complete mutual TLS with the cluster CA`);
        await node.changeMembership({ op: 'addLearner', member: { id, raftAddr, apiAddr, suffrage: 'learner', incarnation } });
      }
      ctx.body = { joined: id, nodes: node.members(), clusterId: node.identity().clusterId };
    });
  });

  route('delete', '/cluster/nodes/:id', 'admin', async (ctx) => {
    const id = ctx.params.id;
    await onLeader(ctx, null, async () => {
      if (!node.members().some((m) => m.id === id)) throw new NodeNotFoundError(id);
      await node.changeMembership({ op: 'remove', id });
      ctx.body = { removed: id, nodes: node.members() };
    });
  });

  // Per node, like SIGHUP: `raftkv reload` calls it on every member.
  route('post', '/admin/reload', 'admin', (ctx) => {
    const r = deps.security?.reload?.() ?? { isOk: true, errors: [] };
    if (!r.isOk) throw new ReloadFailedError(`node ${deps.nodeId} kept its old files for: ${r.errors.join('; ')}`);
    ctx.body = { reloaded: deps.nodeId };
  });

  route('get', '/health', 'open', (ctx) => {
    ctx.status = node.isHealthy() ? 200 : 503;
    // Still live (reads work, a restart would not help) while writes are refused, but say why.
    const refusal = node.writeRefusal();
    ctx.body = !node.isHealthy() ? { status: 'failed' } : refusal ? { status: 'degraded', reason: refusal.message } : { status: 'ok' };
  });

  route('get', '/ready', 'open', (ctx) => {
    const ok = node.isReady();
    ctx.status = ok ? 200 : 503;
    ctx.body = { ready: ok };
  });

  route('get', '/metrics', 'metrics', async (ctx) => {
    ctx.type = deps.registry.contentType;
    ctx.body = await deps.registry.metrics();
  });

  app.use(router.routes());
  app.use(async (ctx, next) => {
    await next();
    // The router answers an unknown method with 501 and a wrong one with 405, both without a body:
    // a client's bad method is a 4xx with the error body like every other rejection.
    if (ctx.status === 501 || ctx.status === 405) throw new MethodNotAllowedError(`${ctx.method} is not allowed on ${ctx.path}`);
    // Nothing answered: no route has this path.
    if (ctx.status === 404 && ctx.body == null) throw new RouteNotFoundError(`no route for ${ctx.method} ${ctx.path}`);
  });
  app.use(router.allowedMethods());
  return app;
}
