/**
 * Listing (`GET /keys`): the query parameters, the key range in UTF-8 byte order, the opaque
 * continuation token and the page a store answers. Pure; the stores iterate the range (RocksDB's
 * bytewise comparator is UTF-8 byte order; the in-memory store sorts with `compareKeys`).
 */
import { createHash } from 'node:crypto';
import { BadRequestError } from '../errors.js';

/** Default and ceiling of `limit` (MAX_LIST_LIMIT): never unlimited. */
export const DEFAULT_LIST_LIMIT = 100;
export const DEFAULT_MAX_LIST_LIMIT = 1000;

/**
 * A half-open key range `[start, end)` in UTF-8 byte order (`end` null: to the last key), or with
 * `prefix` set, exactly the keys that start with it (then `start` = prefix and `end` = null; a prefix's
 * end bound need not be valid UTF-8, so stores stop at the first key without the prefix instead).
 */
export interface KeyRange {
  start: string;
  end: string | null;
  prefix: string | null;
}

/** What a store is asked for one page (KvStore.listRange). */
export interface RangeQuery extends KeyRange {
  /** Resume strictly after this key, or null from `start`. */
  after: string | null;
  limit: number;
  keysOnly: boolean;
  /** Count every key of the range (not only this page) at the page's index. */
  count: boolean;
}

/** One listed key. */
export interface ListedKey {
  key: string;
  value?: string;
  index: number;
}

/** One page, read at one consistent point of the store: `index` is its applied index. */
export interface RangePage {
  index: number;
  items: ListedKey[];
  more: boolean;
  count?: number;
}

/**
 * Orders keys by their UTF-8 bytes, which is Unicode code point order, without encoding them: UTF-16
 * code units order code points wrongly only where surrogates (U+10000 and above) meet U+E000..U+FFFF,
 * so those two bands are swapped before comparing. Keys are well-formed (the API refuses lone surrogates).
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

/** Whether `key` lies in `range`. */
export function inRange(key: string, range: KeyRange): boolean {
  if (range.prefix !== null) return key.startsWith(range.prefix);
  return compareKeys(key, range.start) >= 0 && (range.end === null || compareKeys(key, range.end) < 0);
}

/** Whether every key after `key` (in byte order) is outside `range`: a scan can stop there. */
export function isPastRange(key: string, range: KeyRange): boolean {
  if (range.prefix !== null) return compareKeys(key, range.prefix) > 0 && !key.startsWith(range.prefix);
  return range.end !== null && compareKeys(key, range.end) >= 0;
}

/** A parsed `GET /keys` request. */
export interface ListQuery {
  range: KeyRange;
  limit: number;
  keysOnly: boolean;
  count: boolean;
  consistency: 'linearizable' | 'stale';
  /** Resume strictly after this key (from `continue`), or null for the first page. */
  after: string | null;
  /** The index the first page was read at (from `continue`), or null for the first page. */
  firstIndex: number | null;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `s` is well-formed UTF-16 (no lone surrogate): only such strings have a UTF-8 form. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
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
  return createHash('sha256').update(JSON.stringify([range.prefix, range.start, range.end])).digest('base64url').slice(0, 16);
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
  for (const [name, v] of [['prefix', prefix], ['start', start], ['end', end]] as const) {
    if (v !== null && !isWellFormed(v)) throw new BadRequestError(`${name} is not well-formed Unicode (a lone surrogate)`);
  }
  let range: KeyRange;
  if (prefix !== null) {
    if (start !== null || end !== null) throw new BadRequestError('use prefix, or start/end, not both');
    range = { start: prefix, end: null, prefix };
  } else {
    range = { start: start ?? '', end, prefix: null };
    if (range.end !== null && compareKeys(range.start, range.end) > 0) throw new BadRequestError('start is after end');
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
    limit,
    keysOnly: flag(q, 'keysOnly'),
    count: flag(q, 'count'),
    consistency,
    after: resumed?.after ?? null,
    firstIndex: resumed?.index ?? null,
  };
}
