/**
 * The state machine's snapshot format: a JSON array of `[key, value, index]` rows,
 * `[["a","1",1],["b/c","x",4]]`, keys in the order the store iterates them (sorted). This is what a
 * leader sends in InstallSnapshot and what a received snapshot is restored from, so it must not change
 * without a version: nodes of different builds exchange it. Called by KvStateMachine only; the storage
 * backends only iterate and replace their rows.
 */
import type { StoredValue } from './types.js';

/** Where snapshot rows come from and go to: the storage backend's key space (see storage/types.ts KvStore). */
export interface SnapshotRows {
  /** Calls `fn` for every key in order, as the key space is at the moment of the call. */
  forEachRow(fn: (key: string, value: StoredValue) => void): Promise<void>;
  /** Replaces the whole key space with `rows` and records `appliedIndex` with them, synced. */
  replaceRows(rows: ReadonlyArray<readonly [string, StoredValue]>, appliedIndex: number): Promise<void>;
}

/** One row of the snapshot, as encoded. */
function encodeRow(key: string, v: StoredValue): string {
  return JSON.stringify([key, v.value, v.index]);
}

/**
 * Serialises the whole key space as it is at the moment of the call: rows are encoded one by one as
 * the store delivers them (applies made while the promise is pending are not in it).
 */
export async function exportSnapshot(store: SnapshotRows): Promise<string> {
  const rows: string[] = [];
  await store.forEachRow((key, v) => rows.push(encodeRow(key, v)));
  return `[${rows.join(',')}]`;
}

/** Parses and validates a snapshot's data (the empty string is an empty key space); throws on malformed data. */
export function decodeSnapshot(data: string): Array<[string, StoredValue]> {
  const parsed: unknown = data === '' ? [] : JSON.parse(data);
  if (!Array.isArray(parsed)) throw new Error('kv snapshot: expected an array');
  return parsed.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== 3 || typeof row[0] !== 'string' || typeof row[1] !== 'string' ||
      typeof row[2] !== 'number') {
      throw new Error('kv snapshot: malformed row');
    }
    return [row[0], { value: row[1], index: row[2] }];
  });
}

/** Replaces the store's key space with a snapshot's content at `appliedIndex`; throws (changing nothing) on malformed data. */
export async function importSnapshot(store: SnapshotRows, data: string, appliedIndex: number): Promise<void> {
  await store.replaceRows(decodeSnapshot(data), appliedIndex);
}
