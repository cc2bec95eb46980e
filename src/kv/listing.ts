/**
 * Listing (`GET /keys`): the query parameters, the key range in UTF-8 byte order and the opaque
 * continuation token. Pure; the stores iterate the range (RocksDB's bytewise comparator is UTF-8 byte
 * order; the in-memory store sorts with `compareKeys`).
 */
import { createHash } from 'node:crypto';
import { BadRequestError } from '../errors.js';

/** Default and ceiling of `limit` (MAX_LIST_LIMIT): never unlimited. */
export const DEFAULT_LIST_LIMIT = 100;
export const DEFAULT_MAX_LIST_LIMIT = 1000;

/** A half-open key range `[start, end)` in UTF-8 byte order; `end` null = to the last key. */
export interface KeyRange {
  start: Buffer;
  end: Buffer | null;
}

export interface ListQuery {
  range: KeyRange;
  /** The parameters as given, for the token's fingerprint and the answer. */
  prefix: string | null;
  limit: number;
  keysOnly: boolean;
  count: boolean;
  consistency: 'linearizable' | 'stale';
  /** Resume strictly after this key (from `continue`), or null for the first page. */
  after: string | null;
  /** The index the first page was read at (from `continue`), or null for the first page. */
  firstIndex: number | null;
}

/** Orders keys by their UTF-8 bytes (not by UTF-16 code units, which differ above U+E000). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The first byte string after every string that starts with `prefix` (null when none: all 0xff). */
export function prefixEnd(prefix: Buffer): Buffer | null {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return null;
}

/** Whether `key` lies in `range`. */
export function inRange(key: string | Buffer, range: KeyRange): boolean {
  const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return Buffer.compare(k, range.start) >= 0 && (range.end === null || Buffer.compare(k, range.end) < 0);
}

const TOKEN_VERSION = 1;

interface TokenBody {
  v: number;
  /** Fingerprint of the range parameters. */
  f: string;
  after: string;
  index: number;
}

function fingerprint(range: KeyRange): string {
  return createHash('sha256')
    .update(range.start)
    .update(range.end === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), range.end]))
    .digest('base64url')
    .slice(0, 16);
}

/** The opaque token that resumes a listing after `after`, read first at `index`. */
export function encodeContinue(range: KeyRange, after: string, index: number): string {
  const body: TokenBody = { v: TOKEN_VERSION, f: fingerprint(range), after, index };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

function decodeContinue(token: string, range: KeyRange): { after: string; index: number } {
  let body: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error('alphabet');
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestError('continue: not a token this server issued');
  }
  const b = body as Partial<TokenBody> | null;
  if (typeof b !== 'object' || b === null || b.v !== TOKEN_VERSION || typeof b.f !== 'string' || typeof b.after !== 'string' || !Number.isSafeInteger(b.index) || (b.index as number) < 0) {
    throw new BadRequestError('continue: not a token this server issued');
  }
  if (b.f !== fingerprint(range)) throw new BadRequestError('continue: the token belongs to a listing with other prefix/start/end');
  return { after: b.after, index: b.index as number };
}

function flag(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  if (v === 'true' || v === '1' || v === '') return true;
  if (v === 'false' || v === '0') return false;
  throw new BadRequestError(`${name} must be true or false`);
}

const KNOWN = new Set(['prefix', 'start', 'end', 'limit', 'continue', 'keysOnly', 'count', 'consistency']);

/** Parses `GET /keys` parameters; throws 400s for bad or conflicting ones. */
export function parseListQuery(q: URLSearchParams, opts: { maxLimit: number; maxKeyBytes: number }): ListQuery {
  for (const name of q.keys()) if (!KNOWN.has(name)) throw new BadRequestError(`unknown parameter ${JSON.stringify(name)}`);
  for (const name of KNOWN) if (q.getAll(name).length > 1) throw new BadRequestError(`parameter ${name} given more than once`);
  const prefix = q.get('prefix');
  const start = q.get('start');
  const end = q.get('end');
  for (const [name, v] of [['prefix', prefix], ['start', start], ['end', end]] as const) {
    if (v !== null && Buffer.byteLength(v) > opts.maxKeyBytes) throw new BadRequestError(`${name} over ${opts.maxKeyBytes} bytes`);
  }
  let range: KeyRange;
  if (prefix !== null) {
    if (start !== null || end !== null) throw new BadRequestError('use prefix, or start/end, not both');
    const p = Buffer.from(prefix, 'utf8');
    range = { start: p, end: prefixEnd(p) };
  } else {
    range = { start: Buffer.from(start ?? '', 'utf8'), end: end === null ? null : Buffer.from(end, 'utf8') };
    if (range.end !== null && Buffer.compare(range.start, range.end) > 0) throw new BadRequestError('start is after end');
  }
  let limit = DEFAULT_LIST_LIMIT;
  const rawLimit = q.get('limit');
  if (rawLimit !== null) {
    if (!/^[0-9]{1,9}$/.test(rawLimit)) throw new BadRequestError('limit must be a positive integer');
    limit = Number(rawLimit);
    if (limit < 1 || limit > opts.maxLimit) throw new BadRequestError(`limit must be between 1 and ${opts.maxLimit}`);
  }
  const consistency = q.get('consistency') ?? 'linearizable';
  if (consistency !== 'linearizable' && consistency !== 'stale') throw new BadRequestError('consistency must be linearizable or stale');
  const token = q.get('continue');
  const resumed = token === null ? null : decodeContinue(token, range);
  return {
    range,
    prefix,
    limit,
    keysOnly: flag(q, 'keysOnly'),
    count: flag(q, 'count'),
    consistency,
    after: resumed?.after ?? null,
    firstIndex: resumed?.index ?? null,
  };
}
