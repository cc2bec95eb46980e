/**
 * The one authentication middleware of the client API, plus the checks routes call once they know
 * the keys or the body: Bearer tokens with roles (AUTH_TOKENS_FILE) and the cluster-secret proof
 * on join (RAFT_CLUSTER_SECRET). With neither configured every check passes, as before.
 */
import type Koa from 'koa';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { verifyRequest } from './hmac.js';
import { bearerToken, hasRole, mayTouchKey, type Principal, type Role, type TokenStore } from './tokens.js';

/** What the API needs to authenticate requests; built by main.ts. */
export interface ApiSecurity {
  /** The current tokens (re-read on SIGHUP); null disables client authentication. */
  tokens: () => TokenStore | null;
  /** RAFT_CLUSTER_SECRET; when set, a join must carry a valid signature. */
  clusterSecret: string | null;
  /** METRICS_AUTH: /metrics needs a token too. */
  isMetricsAuthRequired: boolean;
}

const JOIN_PATH = '/cluster/join';

/** The role a route needs, or null for an open route. */
function neededRole(method: string, path: string, sec: ApiSecurity): Role | null {
  if (path === '/health' || path === '/ready') return null;
  if (path === '/metrics') return sec.isMetricsAuthRequired ? 'read' : null;
  if (path === '/key' || path.startsWith('/key/')) return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
  if (path === '/cluster' || path.startsWith('/cluster/')) return 'admin';
  return 'read';
}

/** Builds the auth middleware: 401 without a valid token, 403 without the role the route needs. */
export function authMiddleware(sec: ApiSecurity): Koa.Middleware {
  return async (ctx, next) => {
    const tokens = sec.tokens();
    if (tokens === null) return next();
    // A join proven with the cluster secret is a peer, not a client; the route checks the proof.
    if (sec.clusterSecret !== null && ctx.path === JOIN_PATH && ctx.method === 'POST') return next();
    const need = neededRole(ctx.method, ctx.path, sec);
    if (need === null) return next();
    const token = bearerToken(ctx.get('authorization') || undefined);
    if (token === null) throw new UnauthorizedError('a Bearer token is required');
    const principal = tokens.lookup(token);
    if (principal === null) throw new UnauthorizedError('the token is not valid');
    if (!hasRole(principal, need)) throw new ForbiddenError(`this token's role (${principal.role}) may not do this; ${need} is needed`);
    ctx.state.principal = principal;
    return next();
  };
}

/** Refuses with 403 unless the authenticated client may touch every key; a no-op without tokens. */
export function authorizeKeys(ctx: Koa.Context, keys: Iterable<string>): void {
  const principal = ctx.state.principal as Principal | undefined;
  if (principal === undefined) return;
  for (const k of keys) if (!mayTouchKey(principal, k)) throw new ForbiddenError(`this token may only touch keys starting with "${principal.prefix ?? ''}"`);
}

/** Refuses a join with 401 unless it carries a valid cluster-secret signature over `rawBody`; a no-op without a secret. */
export function verifyJoin(ctx: Koa.Context, rawBody: string, sec: ApiSecurity | undefined): void {
  if (!sec || sec.clusterSecret === null) return;
  const res = verifyRequest(sec.clusterSecret, { method: ctx.method, path: ctx.originalUrl, body: rawBody, headers: ctx.headers });
  if (!res.ok) throw new UnauthorizedError(`join refused: ${res.reason}`);
}
