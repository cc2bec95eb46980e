/**
 * Listing (`GET /keys`): the query parameters, the key range in UTF-8 byte order, the opaque
 * continuation token and the page a store answers. Pure; the stores iterate the range (RocksDB's
 * bytewise comparator is UTF-8 byte order; the in-memory store sorts with `compareKeys`).
 */
import { createHash } from 'node:crypto';
import { BadRequestError } from '../errors.js';
import type { HistoryEntry, StoredValue } from './types.js';

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
  /**
   * The listing's index I0 (its first page's), or null/absent for the state at the point read: the
   * store then undoes, from the watch history read at the same point, every change after I0.
   */
  atIndex?: number | null;
}

/** One listed key. */
export interface ListedKey {
  key: string;
  value?: string;
  index: number;
}

/**
 * One page, read at one consistent point of the store: `index` is the index whose state it shows
 * (the query's `atIndex`, else the applied index of that point). With `unavailable` set the page is
 * empty: `atIndex` is below the history floor ('expired'), or above this node's applied index
 * ('behind'); `floor` and `appliedIndex` are the store's at the point read.
 */
export interface RangePage {
  index: number;
  items: ListedKey[];
  more: boolean;
  count?: number;
  unavailable?: { reason: 'expired' | 'behind'; floor: number; appliedIndex: number };
}

/** The empty page that says why a listing at `atIndex` cannot be served at this point of the store. */
export function unavailablePage(reason: 'expired' | 'behind', atIndex: number, floor: number, appliedIndex: number): RangePage {
  return { index: atIndex, items: [], more: false, unavailable: { reason, floor, appliedIndex } };
}

/**
 * Whether a page at `atIndex` needs no history (null), or cannot be served here ('behind': the store
 * has not applied it yet; 'expired': the history no longer holds every record after it). Records are
 * kept for every entry with effects in (floor, applied], so undoing back to I0 needs I0 >= floor
 * (the same rule as a watch from I0 + 1, which is COMPACTED when I0 + 1 <= floor).
 */
export function historyNeed(atIndex: number, floor: number, appliedIndex: number): 'behind' | 'expired' | null {
  if (atIndex > appliedIndex) return 'behind';
  if (atIndex < floor) return 'expired';
  return null;
}

/** A key of the range changed after the listing's index I0: its state at I0 (null: absent) and whether it exists now. */
export interface UndoneKey {
  at: StoredValue | null;
  isPresentNow: boolean;
}

/**
 * The keys of `range` changed in `entries` (every history record after I0 up to the point read, in
 * index order), each with its state at I0 and whether it exists at the point read. A key's state at
 * I0 is what its FIRST change after I0 replaced: nothing for a put with prevIndex null, else
 * `{value: prevValue, index: prevIndex}`. Null when such a change lacks `prevValue` (a record written
 * before the history kept it): the listing cannot be undone, and is answered as expired.
 */
export function undoChanges(range: KeyRange, entries: readonly HistoryEntry[]): Map<string, UndoneKey> | null {
  const undo = new Map<string, UndoneKey>();
  for (const { effects } of entries) {
    for (const e of effects) {
      if (!inRange(e.key, range)) continue;
      let u = undo.get(e.key);
      if (u === undefined) {
        let at: StoredValue | null = null;
        if (e.prevIndex !== null) {
          if (e.prevValue === undefined) return null;
          at = { value: e.prevValue, index: e.prevIndex };
        }
        u = { at, isPresentNow: false };
        undo.set(e.key, u);
      }
      u.isPresentNow = e.type === 'put';
    }
  }
  return undo;
}

/** The number of keys of the range at I0, from their number at the point read and the changes undone. */
export function countAt(countNow: number, undo: ReadonlyMap<string, UndoneKey> | null): number {
  let n = countNow;
  if (undo !== null) for (const u of undo.values()) n += (u.at !== null ? 1 : 0) - (u.isPresentNow ? 1 : 0);
  return n;
}

/**
 * Builds one page at I0 from the rows of the range as they are at the point read (offered in byte
 * order, strictly after `q.after`) and the changes undone (`undo`, null: none): a changed key shows
 * its I0 state or not at all, and the keys that existed at I0 but are gone now are merged in at
 * their place. Used by both stores inside their one consistent read.
 */
export class PageBuilder {
  private readonly items: ListedKey[] = [];
  private more = false;
  /** The keys of the page's part of the range that existed at I0 and are gone now, in byte order, merged from `next` on. */
  private readonly gone: string[];
  private next = 0;

  constructor(
    private readonly q: RangeQuery,
    private readonly undo: ReadonlyMap<string, UndoneKey> | null,
  ) {
    const gone: string[] = [];
    if (undo !== null) {
      for (const [key, u] of undo) if (u.at !== null && !u.isPresentNow && (q.after === null || compareKeys(key, q.after) > 0)) gone.push(key);
    }
    this.gone = gone.sort(compareKeys);
  }

  /** Adds an item, or notes that there is more once the page is full; false when full. */
  private emit(key: string, v: StoredValue): boolean {
    if (this.items.length === this.q.limit) {
      this.more = true;
      return false;
    }
    this.items.push(this.q.keysOnly ? { key, index: v.index } : { key, value: v.value, index: v.index });
    return true;
  }

  /** Merges the gone keys before `key` (all of them when null); false once the page is full. */
  private mergeGone(key: string | null): boolean {
    while (this.next < this.gone.length && (key === null || compareKeys(this.gone[this.next], key) < 0)) {
      const k = this.gone[this.next];
      if (!this.emit(k, this.undo!.get(k)!.at!)) return false;
      this.next++;
    }
    return true;
  }

  /** Offers the next row of the range (in byte order, after `q.after`) as it is now; false once the page is complete (read no further). */
  offer(key: string, v: StoredValue): boolean {
    if (!this.mergeGone(key)) return false;
    const u = this.undo?.get(key);
    if (u === undefined) return this.emit(key, v);
    return u.at === null ? true : this.emit(key, u.at);
  }

  /** The page once the rows ran out or the page is complete; `index` is the index it shows. */
  finish(index: number, count?: number): RangePage {
    if (!this.more) this.mergeGone(null);
    const page: RangePage = { index, items: this.items, more: this.more };
    if (count !== undefined) page.count = count;
    return page;
  }
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
