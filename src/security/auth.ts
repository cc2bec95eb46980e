/**
 * The one authentication middleware of the client API, plus the checks routes call once they know
 * the keys or the body: Bearer tokens with roles (AUTH_TOKENS_FILE) and the cluster-secret proof
 * on join (RAFT_CLUSTER_SECRET). With neither configured every check passes, as before.
 */
import type Koa from 'koa';
import type { TLSSocket } from 'node:tls';
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
  /** Re-reads tokens and certificates on this node (what SIGHUP does); POST /admin/reload calls it. */
  reload?: () => { isOk: boolean; errors: string[] };
  /** When the certificates in use expire (seconds since the epoch), for the expiry metric. */
  certExpirySeconds?: () => Partial<Record<'api' | 'peer', number>>;
}

/**
 * Who may call a route, declared next to the route in app.ts: `open` (anyone), a token role, `metrics`
 * (read when METRICS_AUTH, else open) or `join` (the cluster-secret proof, checked by the route, when a
 * secret is set; else an admin token).
 */
export type RouteAccess = 'open' | 'metrics' | 'join' | Role;

/** The role `access` needs under `sec`, or null when the route is open. */
export function neededRole(access: RouteAccess, sec: ApiSecurity): Role | null {
  switch (access) {
    case 'open':
      return null;
    case 'metrics':
      return sec.isMetricsAuthRequired ? 'read' : null;
    case 'join':
      // A join proven with the cluster secret is a peer, not a client; the route checks the proof.
      return sec.clusterSecret !== null ? null : 'admin';
    default:
      return access;
  }
}

/** Header a follower adds when it forwards a request whose client authenticated by certificate. */
export const FORWARDED_SUBJECT_HEADER = 'x-raftkv-forwarded-subject';

/** The names of the client certificate verified on this connection (CN, then DNS and IP SANs); none without one. */
export function certNames(ctx: Koa.Context): string[] {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return [];
  const cert = socket.getPeerCertificate();
  const names: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  if (typeof cn === 'string') names.push(cn);
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*(DNS|IP Address):(.+)$/.exec(part);
    if (m) names.push(m[2].trim());
  }
  return names;
}

/**
 * Builds the guard mounted in front of one route's handler: 401 without a valid token (or, with
 * CLIENT_CERT_AUTH, a certificate named in the tokens file), 403 without the role the route declares.
 * Because it runs only once the router matched the route, a request that matches no route reaches
 * no handler at all (404/405): there is no path-based default. `isMember` tells a forwarding member's
 * certificate from a client's: only a member may vouch for the certificate subject of the client it
 * forwards for.
 */
export function requireAccess(access: RouteAccess, sec: ApiSecurity | undefined, isMember: (name: string) => boolean = () => false): Koa.Middleware {
  return async (ctx, next) => {
    const tokens = sec?.tokens() ?? null;
    if (sec === undefined || tokens === null) return next();
    const need = neededRole(access, sec);
    if (need === null) return next();
    const token = bearerToken(ctx.get('authorization') || undefined);
    let principal: Principal | null;
    if (token !== null) {
      principal = tokens.lookup(token);
      if (principal === null) throw new UnauthorizedError('the token is not valid');
    } else {
      const names = certNames(ctx);
      if (names.length === 0) throw new UnauthorizedError('a Bearer token is required');
      const vouched = ctx.get(FORWARDED_SUBJECT_HEADER);
      const subjects = vouched && names.some(isMember) ? [vouched] : names;
      principal = tokens.lookupSubject(subjects);
      if (principal === null) throw new UnauthorizedError('the client certificate is not named in AUTH_TOKENS_FILE and no Bearer token was given');
      ctx.state.certSubject = principal.name.slice('cert:'.length);
    }
    if (!hasRole(principal, need)) throw new ForbiddenError(`this ${token !== null ? 'token' : 'certificate'}'s role (${principal.role}) may not do this; ${need} is needed`);
    ctx.state.principal = principal;
    return next();
  };
}

/**
 * Refuses with 403 unless the authenticated client has `role` (for a route whose declared access is
 * lower but whose body asks for more, e.g. a transaction that writes); a no-op without tokens.
 */
export function requireRole(ctx: Koa.Context, role: Role): void {
  const principal = ctx.state.principal as Principal | undefined;
  if (principal === undefined) return;
  if (!hasRole(principal, role)) throw new ForbiddenError(`this token's role (${principal.role}) may not do this; ${role} is needed`);
}

/**
 * Refuses with 403 unless every key a listing of `range` could return lies under the client's key
 * prefix: a prefix listing inside it, or a start/end range whose both ends lie inside it.
 */
export function authorizeRange(ctx: Koa.Context, range: { start: string; end: string | null; prefix: string | null }): void {
  const principal = ctx.state.principal as Principal | undefined;
  if (principal === undefined || !principal.prefix) return;
  const p = principal.prefix;
  const isInside = range.prefix !== null ? range.prefix.startsWith(p) : range.start.startsWith(p) && range.end !== null && (range.end.startsWith(p) || range.end === prefixSuccessor(p));
  if (!isInside) throw new ForbiddenError(`this token may only list keys starting with "${p}": use prefix=${p}…`);
}

/** The smallest string after every string that starts with `p` (p with its last code unit raised), for range checks. */
function prefixSuccessor(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
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
