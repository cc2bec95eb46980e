/**
 * Transactions (`POST /txn`): compares on the current state, then one of two branches of set, delete
 * and get, all in one log entry and decided when the entry is applied (design: docs/api.md). The
 * parser turns client JSON into a TxnRequest (throwing the API's 400s); `evaluateTxn` is the pure
 * apply-time decision every replica makes identically.
 */
import { BadRequestError, DuplicateKeyError, TooManyOpsError } from '../errors.js';
import { isWellFormed } from './listing.js';
import { isLeaseId } from './leases.js';
import type { KvOp, StoredValue } from './types.js';

/** A bound on a key's index; an absent key compares as index 0 (so `{"lt":40}` holds for it). */
export interface IndexRange {
  lt?: number;
  le?: number;
  gt?: number;
  ge?: number;
}

/** One compare: `index` (exact: the key exists with that index; or a range), `exists`, or `value`. */
export type Compare =
  | { key: string; index: number }
  | { key: string; index: IndexRange }
  | { key: string; exists: boolean }
  | { key: string; value: string };

/** One operation of a branch. */
export type TxnOp = { op: 'set'; key: string; value: string; lease?: string } | { op: 'delete'; key: string } | { op: 'get'; key: string };

/** A validated transaction. */
export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
}

/** One result per operation of the chosen branch, in order. */
export type TxnResult =
  | { op: 'set'; key: string; index: number }
  | { op: 'delete'; key: string; deleted: boolean }
  | { op: 'get'; key: string; value: string | null; index: number | null };

/** The outcome of applying a transaction at `index`. */
export interface TxnOutcome {
  succeeded: boolean;
  /** The writes of the chosen branch, to apply atomically at the entry's index. */
  writes: KvOp[];
  results: TxnResult[];
}

export interface TxnLimits {
  maxOps: number;
  maxKeyBytes: number;
  maxValueBytes: number;
}

/** Default for MAX_TXN_OPS: compares plus both branches. */
export const DEFAULT_MAX_TXN_OPS = 128;

const RANGE_KEYS = ['lt', 'le', 'gt', 'ge'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKey(key: unknown, where: string, limits: TxnLimits): string {
  if (typeof key !== 'string' || key === '') throw new BadRequestError(`${where}: "key" must be a non-empty string`);
  if (Buffer.byteLength(key) > limits.maxKeyBytes) throw new BadRequestError(`${where}: key over ${limits.maxKeyBytes} bytes`);
  if (!isWellFormed(key)) throw new BadRequestError(`${where}: key is not well-formed Unicode (a lone surrogate)`);
  return key;
}

function checkIndex(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BadRequestError(`${where}: an index must be a non-negative integer`);
  return v;
}

function parseCompare(raw: unknown, i: number, limits: TxnLimits): Compare {
  const where = `compare[${i}]`;
  if (!isObject(raw)) throw new BadRequestError(`${where} must be an object`);
  const key = checkKey(raw.key, where, limits);
  const fields = Object.keys(raw).filter((k) => k !== 'key');
  if (fields.length !== 1) throw new BadRequestError(`${where} needs exactly one of "index", "exists", "value"`);
  const field = fields[0];
  const v = raw[field];
  if (field === 'exists') {
    if (typeof v !== 'boolean') throw new BadRequestError(`${where}: "exists" must be true or false`);
    return { key, exists: v };
  }
  if (field === 'value') {
    if (typeof v !== 'string') throw new BadRequestError(`${where}: "value" must be a string`);
    if (Buffer.byteLength(v) > limits.maxValueBytes) throw new BadRequestError(`${where}: value over ${limits.maxValueBytes} bytes`);
    return { key, value: v };
  }
  if (field === 'index') {
    if (typeof v === 'number') return { key, index: checkIndex(v, where) };
    if (!isObject(v)) throw new BadRequestError(`${where}: "index" must be a number or {"lt"|"le"|"gt"|"ge": n}`);
    const range: IndexRange = {};
    const keys = Object.keys(v);
    if (keys.length === 0) throw new BadRequestError(`${where}: an index range needs at least one of lt, le, gt, ge`);
    for (const k of keys) {
      if (!(RANGE_KEYS as readonly string[]).includes(k)) throw new BadRequestError(`${where}: unknown index bound "${k}" (lt, le, gt, ge)`);
      range[k as keyof IndexRange] = checkIndex(v[k], where);
    }
    return { key, index: range };
  }
  throw new BadRequestError(`${where}: unknown field "${field}" (index, exists, value)`);
}

function parseBranch(raw: unknown, name: 'success' | 'failure', limits: TxnLimits): TxnOp[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new BadRequestError(`"${name}" must be an array of operations`);
  const ops: TxnOp[] = [];
  const written = new Set<string>();
  raw.forEach((o: unknown, i) => {
    const where = `${name}[${i}]`;
    if (!isObject(o)) throw new BadRequestError(`${where} must be an object`);
    const key = checkKey(o.key, where, limits);
    const allowed = o.op === 'set' ? ['op', 'key', 'value', 'lease'] : ['op', 'key'];
    const extra = Object.keys(o).filter((k) => !allowed.includes(k));
    if (o.op === 'set') {
      if (typeof o.value !== 'string') throw new BadRequestError(`${where}: "value" must be a string`);
      if (Buffer.byteLength(o.value) > limits.maxValueBytes) throw new BadRequestError(`${where}: value over ${limits.maxValueBytes} bytes`);
      if (!isWellFormed(o.value)) throw new BadRequestError(`${where}: value is not well-formed Unicode (a lone surrogate)`);
      if (o.lease !== undefined && !isLeaseId(o.lease)) throw new BadRequestError(`${where}: "lease" must be a lease id such as "l-42"`);
    } else if (o.op !== 'delete' && o.op !== 'get') {
      throw new BadRequestError(`${where}: "op" must be "set", "delete" or "get"`);
    }
    if (extra.length > 0) throw new BadRequestError(`${where}: unknown field "${extra[0]}"`);
    if (o.op !== 'get') {
      if (written.has(key)) throw new DuplicateKeyError(`${name} writes key ${JSON.stringify(key)} more than once`);
      written.add(key);
    }
    if (o.op === 'set') ops.push(o.lease === undefined ? { op: 'set', key, value: o.value as string } : { op: 'set', key, value: o.value as string, lease: o.lease as string });
    else ops.push({ op: o.op, key });
  });
  return ops;
}

/** Validates a client's transaction body (parsed JSON); throws the API's 400s. */
export function parseTxn(body: unknown, limits: TxnLimits): TxnRequest {
  if (!isObject(body)) throw new BadRequestError('a transaction is a JSON object {"compare","success","failure"}');
  const extra = Object.keys(body).filter((k) => k !== 'compare' && k !== 'success' && k !== 'failure');
  if (extra.length > 0) throw new BadRequestError(`unknown field "${extra[0]}" (compare, success, failure)`);
  const rawCompare = body.compare ?? [];
  if (!Array.isArray(rawCompare)) throw new BadRequestError('"compare" must be an array');
  const counts = {
    compare: rawCompare.length,
    success: Array.isArray(body.success) ? body.success.length : 0,
    failure: Array.isArray(body.failure) ? body.failure.length : 0,
  };
  const total = counts.compare + counts.success + counts.failure;
  if (total > limits.maxOps) {
    throw new TooManyOpsError(`${total} operations (compare ${counts.compare}, success ${counts.success}, failure ${counts.failure}); at most ${limits.maxOps}`);
  }
  const compare = rawCompare.map((c: unknown, i) => parseCompare(c, i, limits));
  const success = parseBranch(body.success, 'success', limits);
  const failure = parseBranch(body.failure, 'failure', limits);
  if (compare.length + success.length + failure.length === 0) throw new BadRequestError('an empty transaction');
  return { compare, success, failure };
}

/** A transaction that writes in neither branch needs no log entry (served by ReadIndex). */
export function isReadOnlyTxn(txn: TxnRequest): boolean {
  return [...txn.success, ...txn.failure].every((o) => o.op === 'get');
}

/** Every key a transaction reads or writes (for prefetch, authorization and locking). */
export function txnKeys(txn: TxnRequest): { read: string[]; written: string[] } {
  const read = new Set<string>();
  const written = new Set<string>();
  for (const c of txn.compare) read.add(c.key);
  for (const o of [...txn.success, ...txn.failure]) (o.op === 'get' ? read : written).add(o.key);
  return { read: [...read], written: [...written] };
}

/** Whether one compare holds for `current` (undefined when the key is absent). */
export function compareHolds(c: Compare, current: StoredValue | undefined): boolean {
  if ('exists' in c) return (current !== undefined) === c.exists;
  if ('value' in c) return current !== undefined && current.value === c.value;
  if (typeof c.index === 'number') return current !== undefined && current.index === c.index;
  const idx = current?.index ?? 0;
  const r = c.index;
  return (r.lt === undefined || idx < r.lt) && (r.le === undefined || idx <= r.le) && (r.gt === undefined || idx > r.gt) && (r.ge === undefined || idx >= r.ge);
}

/**
 * Decides a transaction at `index` against `read` (the state just before the entry). Operations of
 * the chosen branch run in order and see the branch's earlier writes (a get after a set returns the
 * new value at `index`). Pure: every replica computes the same outcome.
 */
export function evaluateTxn(txn: TxnRequest, read: (key: string) => StoredValue | undefined, index: number): TxnOutcome {
  const succeeded = txn.compare.every((c) => compareHolds(c, read(c.key)));
  const branch = succeeded ? txn.success : txn.failure;
  const overlay = new Map<string, StoredValue | undefined>();
  const view = (key: string): StoredValue | undefined => (overlay.has(key) ? overlay.get(key) : read(key));
  const writes: KvOp[] = [];
  const results: TxnResult[] = [];
  for (const o of branch) {
    if (o.op === 'get') {
      const cur = view(o.key);
      results.push({ op: 'get', key: o.key, value: cur?.value ?? null, index: cur?.index ?? null });
    } else if (o.op === 'set') {
      overlay.set(o.key, { value: o.value, index });
      writes.push(o.lease === undefined ? { op: 'set', key: o.key, value: o.value } : { op: 'set', key: o.key, value: o.value, lease: o.lease });
      results.push({ op: 'set', key: o.key, index });
    } else {
      const existed = view(o.key) !== undefined;
      overlay.set(o.key, undefined);
      writes.push({ op: 'delete', key: o.key });
      results.push({ op: 'delete', key: o.key, deleted: existed });
    }
  }
  return { succeeded, writes, results };
}
