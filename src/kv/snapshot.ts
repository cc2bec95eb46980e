/**
 * The state machine's snapshot format: a JSON array of `[key, value, index]` rows,
 * `[["a","1",1],["b/c","x",4]]`, keys in the order the store iterates them (sorted). With leases the
 * snapshot is version 2, an object `{"v":2,"leases":[{id,ttlMs,grantedIndex,remainingMs,keys}],"rows":[...]}`
 * (the rows as above); a state without leases is still written as version 1, so builds before leases
 * can read it. This is what a leader sends in InstallSnapshot and what a received snapshot is restored
 * from, so it must not change without a version: nodes of different builds exchange it. Called by
 * KvStateMachine only; the storage backends only iterate and replace their rows.
 */
import { decodeLeaseList, encodeLeaseList } from './leases.js';
import type { LeaseState, StoredValue } from './types.js';

/** Where snapshot rows come from and go to: the storage backend's key space (see storage/types.ts KvStore). */
export interface SnapshotRows {
  /** Calls `fn` for every key in order, as the key space is at the moment of the call. */
  forEachRow(fn: (key: string, value: StoredValue) => void): Promise<void>;
  /** Replaces the whole key space with `rows` (and the lease table with `leases`, empty when absent) and records `appliedIndex` with them, synced. */
  replaceRows(rows: ReadonlyArray<readonly [string, StoredValue]>, appliedIndex: number, leases?: LeaseState): Promise<void>;
}

/** One row of the snapshot, as encoded. */
function encodeRow(key: string, v: StoredValue): string {
  return JSON.stringify([key, v.value, v.index]);
}

/**
 * Serialises the whole key space as it is at the moment of the call: rows are encoded one by one as
 * the store delivers them (applies made while the promise is pending are not in it).
 */
export async function exportSnapshot(store: SnapshotRows, leases: LeaseState = { leases: [], attached: [] }): Promise<string> {
  const rows: string[] = [];
  // Called synchronously first: the store's view is the state at the moment of the call.
  await store.forEachRow((key, v) => rows.push(encodeRow(key, v)));
  if (leases.leases.length === 0) return `[${rows.join(',')}]`;
  return `{"v":2,"leases":${JSON.stringify(encodeLeaseList(leases))},"rows":[${rows.join(',')}]}`;
}

/** A decoded snapshot: the rows and the lease table. */
export interface DecodedSnapshot {
  rows: Array<[string, StoredValue]>;
  leases: LeaseState;
}

/** Parses and validates a snapshot's data, either version (the empty string is an empty key space); throws on malformed data. */
export function decodeSnapshotState(data: string): DecodedSnapshot {
  const parsed: unknown = data === '' ? [] : JSON.parse(data);
  if (Array.isArray(parsed)) return { rows: decodeRows(parsed), leases: { leases: [], attached: [] } };
  const o = parsed as { v?: unknown; leases?: unknown; rows?: unknown } | null;
  if (typeof o !== 'object' || o === null || o.v !== 2 || !Array.isArray(o.rows)) throw new Error('kv snapshot: expected an array or a version 2 object');
  try {
    return { rows: decodeRows(o.rows), leases: decodeLeaseList(o.leases) };
  } catch (err) {
    throw new Error(`kv snapshot: ${(err as Error).message}`);
  }
}

/** The rows of a snapshot's data (either version); throws on malformed data. */
export function decodeSnapshot(data: string): Array<[string, StoredValue]> {
  return decodeSnapshotState(data).rows;
}

function decodeRows(parsed: unknown[]): Array<[string, StoredValue]> {
  return parsed.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== 3 || typeof row[0] !== 'string' || typeof row[1] !== 'string' ||
      typeof row[2] !== 'number') {
      throw new Error('kv snapshot: malformed row');
    }
    return [row[0], { value: row[1], index: row[2] }];
  });
}

/** Replaces the store's key space with a snapshot's content at `appliedIndex`; throws (changing nothing) on malformed data. */
export async function importSnapshot(store: SnapshotRows, data: string, appliedIndex: number): Promise<LeaseState> {
  const { rows, leases } = decodeSnapshotState(data);
  await store.replaceRows(rows, appliedIndex, leases);
  return leases;
}
