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
import { httpMetrics, registerTlsCertExpiry } from '../metrics.js';
import { fullClusterView, localClusterView } from './cluster-view.js';
import { STATUS_PAGE_HTML } from './status-page.js';
import { backupRoute } from './backup.js';
import { BadRequestError, ForbiddenError, KeyNotFoundError, NoLeaderError, NotLeaderError, PayloadTooLargeError, RaftKvError, RequestTimeoutError, TimeoutError, errorBody } from '../errors.js';
import { FORWARDED_SUBJECT_HEADER, authorizeKeys, requireAccess, verifyJoin, type ApiSecurity, type RouteAccess } from '../security/auth.js';
import { concurrencyLimit } from '../security/limits.js';
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
}

const FORWARDED = 'x-raftkv-forwarded';

/**
 * Reads the request body up to `limit` bytes; a larger body is a 413 and is not buffered, a body
 * that has not fully arrived after `timeoutMs` is a 408, and an aborted one a 400.
 */
async function readBody(ctx: Koa.Context, limit: number, timeoutMs = 10_000): Promise<string> {
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > limit) throw new PayloadTooLargeError(`request body over ${limit} bytes`);
  const req = ctx.req;
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | null, text?: string): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err) {
        // The rest of the body is not read: close the connection once the error is sent.
        ctx.set('Connection', 'close');
        reject(err);
      } else resolve(text ?? '');
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) done(new PayloadTooLargeError(`request body over ${limit} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = (): void => done(null, Buffer.concat(chunks).toString('utf8'));
    const onError = (): void => done(new BadRequestError('the request body was not received completely'));
    const onAborted = onError;
    const timer = setTimeout(() => done(new RequestTimeoutError(`request body not received within ${timeoutMs} ms`)), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
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
    if (typeof v !== 'string') throw new BadRequestError(`value of "${k.slice(0, 64)}" must be a string`);
    if (Buffer.byteLength(v, 'utf8') > limits.maxValueBytes) throw new BadRequestError(`value of "${k.slice(0, 64)}" is over ${limits.maxValueBytes} bytes`);
    out[k] = v;
  }
  return out;
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
  const route = (method: 'get' | 'post' | 'delete', path: string, access: RouteAccess, handler: Koa.Middleware): void => {
    router[method](path, requireAccess(access, deps.security, isMember), handler);
  };

  app.use(async (ctx, next) => {
    const started = logger.isLevelEnabled('debug') ? performance.now() : 0;
    try {
      await next();
    } catch (err) {
      if (err instanceof RaftKvError) {
        ctx.status = err.status;
        ctx.body = errorBody(err);
        if (err.headers) for (const [h, v] of Object.entries(err.headers)) ctx.set(h, v);
      } else {
        logger.error({ err }, 'unhandled error in request');
        ctx.status = 500;
        ctx.body = { error: { code: 'INTERNAL', message: 'internal error' } };
      }
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
      for (const h of ['authorization', TIMESTAMP_HEADER, SIGNATURE_HEADER]) if (ctx.get(h)) passed[h] = ctx.get(h);
      // A client that authenticated by certificate: this member (its own certificate) vouches for it.
      if (typeof ctx.state.certSubject === 'string') passed[FORWARDED_SUBJECT_HEADER] = ctx.state.certSubject;
      res = await request(`${deps.forward?.scheme ?? 'http'}://${addr}${ctx.originalUrl}`, {
        method: ctx.method as 'POST' | 'DELETE',
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
    authorizeKeys(ctx, Object.keys(pairs));
    await onLeader(ctx, raw, async () => {
      const ops: KvOp[] = Object.entries(pairs).map(([key, value]) => ({ op: 'set', key, value }));
      // A write with no pairs would commit an empty entry; parseSetBody refuses such bodies, this keeps it so.
      if (ops.length === 0) throw new BadRequestError('body must contain at least one pair');
      const index = await node.write(ops);
      ctx.set('X-Raft-Index', String(index));
      ctx.body = pairs;
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
    await onLeader(ctx, null, async () => {
      // Whether the key was there is decided when the delete is applied, not by an earlier read.
      const { index, existed } = await node.deleteKey(key);
      ctx.set('X-Raft-Index', String(index));
      if (!existed) throw new KeyNotFoundError(key);
      ctx.body = { deleted: key };
    });
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
    if (typeof id !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new BadRequestError('id must be 1-64 characters of [A-Za-z0-9_.-]');
    if (typeof raftAddr !== 'string' || !/^[^\s/]+:\d{1,5}$/.test(raftAddr)) throw new BadRequestError('raftAddr must be host:port');
    if (typeof apiAddr !== 'string' || !/^[^\s/]+:\d{1,5}$/.test(apiAddr)) throw new BadRequestError('apiAddr must be host:port');
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
      if (!node.members().some((m) => m.id === id)) throw new KeyNotFoundError(id);
      await node.changeMembership({ op: 'remove', id });
      ctx.body = { removed: id, nodes: node.members() };
    });
  });

  // Per node, like SIGHUP: `raftkv reload` calls it on every member.
  route('post', '/admin/reload', 'admin', (ctx) => {
    const r = deps.security?.reload?.() ?? { isOk: true, errors: [] };
    if (!r.isOk) throw new RaftKvError('RELOAD_FAILED', 422, `node ${deps.nodeId} kept its old files for: ${r.errors.join('; ')}`);
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
    if (ctx.status === 501 || ctx.status === 405) {
      ctx.status = 405;
      ctx.body = { error: { code: 'METHOD_NOT_ALLOWED', message: `${ctx.method} is not allowed on ${ctx.path}` } };
    }
  });
  app.use(router.allowedMethods());
  app.use((ctx) => {
    ctx.status = 404;
    ctx.body = { error: { code: 'NOT_FOUND', message: `no route for ${ctx.method} ${ctx.path}` } };
  });
  return app;
}
