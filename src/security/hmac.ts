/**
 * Proof of the shared cluster secret (RAFT_CLUSTER_SECRET) for peer RPC and join requests: an
 * HMAC-SHA256 over the method, path, a timestamp and the body's SHA-256, sent in two headers. The
 * secret itself never travels; a stale or future timestamp is refused to limit replay.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Header carrying the signing time in Unix milliseconds. */
export const TIMESTAMP_HEADER = 'x-raftkv-timestamp';
/** Header carrying the hex HMAC-SHA256 signature. */
export const SIGNATURE_HEADER = 'x-raftkv-signature';
/** How far a request's timestamp may be from the receiver's clock (covers clock skew and queueing). */
export const DEFAULT_MAX_SKEW_MS = 30_000;

function canonical(method: string, path: string, timestampMs: string, body: string | Buffer): string {
  const bodyHash = createHash('sha256').update(body).digest('hex');
  return `raftkv-v1\n${method.toUpperCase()}\n${path}\n${timestampMs}\n${bodyHash}`;
}

/** Signs one request; the caller adds the returned headers. Used by the peer client and the joiner. */
export function signRequest(secret: string, method: string, path: string, body: string | Buffer, nowMs: number = Date.now()): Record<string, string> {
  const ts = String(Math.floor(nowMs));
  const sig = createHmac('sha256', secret).update(canonical(method, path, ts, body)).digest('hex');
  return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: sig };
}

/** Why a signature was refused, for the 401 message (never echoes the secret or the signature). */
export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Checks a request's proof of the cluster secret; called by the peer server and the join route. */
export function verifyRequest(
  secret: string,
  req: { method: string; path: string; body: string | Buffer; headers: Record<string, string | string[] | undefined> },
  nowMs: number = Date.now(),
  maxSkewMs: number = DEFAULT_MAX_SKEW_MS,
): VerifyResult {
  const ts = req.headers[TIMESTAMP_HEADER];
  const sig = req.headers[SIGNATURE_HEADER];
  if (typeof ts !== 'string' || typeof sig !== 'string') return { ok: false, reason: 'missing cluster signature' };
  if (!/^\d{1,16}$/.test(ts)) return { ok: false, reason: 'malformed signature timestamp' };
  if (Math.abs(nowMs - Number(ts)) > maxSkewMs) return { ok: false, reason: 'stale signature timestamp' };
  if (!/^[0-9a-f]{64}$/.test(sig)) return { ok: false, reason: 'malformed cluster signature' };
  const expected = createHmac('sha256', secret).update(canonical(req.method, req.path, ts, req.body)).digest();
  const given = Buffer.from(sig, 'hex');
  if (!timingSafeEqual(expected, given)) return { ok: false, reason: 'bad cluster signature' };
  return { ok: true };
}
