/**
 * Storage interfaces used by the node driver. Two implementations live beside this file:
 * memory/ (the default when RAFT_DIR is unset: not durable) and rocksdb/ (RAFT_DIR set). Both pass
 * the one shared contract suite in test/unit/storage/contract.ts.
 */
import type { Entry, HardState, HeldSnapshot } from '../raft/core/types.js';

/** Everything the Raft core needs to restart, as read back from stable storage. */
export interface RaftPersistedState {
  hardState: HardState;
  snapshot: HeldSnapshot | null;
  /** Entries after the snapshot (or from index 1), contiguous and in order. */
  entries: Entry[];
}

/** One durable write: applied atomically and synced to disk before the promise resolves. */
export interface RaftWrite {
  hardState: HardState | null;
  /** Appended after deleting every stored entry with index >= entries[0].index. */
  entries: Entry[];
}

/** The Raft log, term/vote and latest snapshot. Called only by the node driver, one call at a time. */
export interface LogStore {
  /** Reads back the persisted state; an empty store yields term 0, no vote, no snapshot, no entries. */
  load(): Promise<RaftPersistedState>;
  /** Atomically truncates the suffix, appends entries and writes hard state; resolves once synced. */
  write(w: RaftWrite): Promise<void>;
  /**
   * Saves `snapshot` and deletes every entry with index <= snapshot.meta.lastIndex, synced. When
   * `discardLog` is true (a snapshot received from the leader), every entry is deleted. A snapshot
   * without data stands for the KV store's own state at its index: the KV writes up to that index
   * must have been issued to the same store before (the sync makes them durable with it).
   */
  saveSnapshot(snapshot: HeldSnapshot, discardLog: boolean): Promise<void>;
  /** Approximate bytes used on disk (0 in memory). */
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

/** A stored value with the log index that last modified it (served as the ETag). */
export interface StoredValue {
  value: string;
  index: number;
}

/** One key-value mutation of a command. */
export type KvOp = { op: 'set'; key: string; value: string } | { op: 'delete'; key: string };

/** The operations of one committed entry, for KvStore.applyBatch. */
export interface KvApply {
  index: number;
  ops: KvOp[];
}

/** The state machine's data: keys, values and the applied index, always written together. */
export interface KvStore {
  get(key: string): Promise<StoredValue | undefined>;
  /**
   * Applies `ops` (tagged with `index`) and records appliedIndex = index in the same atomic batch.
   * Resolves with, for each op in order, whether its key existed just before that op (so a delete
   * of an absent key is detected at apply time).
   */
  apply(index: number, ops: KvOp[]): Promise<boolean[]>;
  /**
   * Applies several committed entries in index order and records appliedIndex in the same atomic
   * batch; resolves with apply()'s existence flags for each entry. It need not be synced on its own:
   * every applied entry is already durable in the log, and replay from the stored applied index is
   * exactly-once because the index is written atomically with the data (the driver's hot path).
   */
  applyBatch(entries: KvApply[], appliedIndex: number): Promise<boolean[][]>;
  /**
   * A hint that these keys will be written soon (the leader calls it when it proposes): a store with
   * a read cache may look up whether they exist now, so that applying the write later needs no disk
   * read. Never changes what any read or apply returns.
   */
  prefetch?(keys: string[]): void;
  /** Records appliedIndex = index for an entry that changes no key (noop, config). May be batched. */
  setApplied(index: number): Promise<void>;
  /** The applied index stored with the data (0 when empty). */
  appliedIndex(): Promise<number>;
  /**
   * Serialises the whole key space (values and their indices) as one string, as it is at the moment
   * of the call: applies made while the promise is pending are not in it (the driver exports in the
   * background and compacts at the index it captured).
   */
  exportSnapshot(): Promise<string>;
  /** Replaces the whole key space with a snapshot's content and sets appliedIndex. */
  importSnapshot(data: string, appliedIndex: number): Promise<void>;
  /** Number of keys (for metrics). */
  count(): Promise<number>;
  close(): Promise<void>;
}

/** Opens both stores of one node: in memory when `dir` is undefined, RocksDB under `dir` otherwise. */
export interface NodeStorage {
  log: LogStore;
  kv: KvStore;
  durable: boolean;
}
