/**
 * Storage interfaces: persistence only (what the data means and how it changes is src/kv/). Used by
 * the node driver and the state machine. Two implementations live beside this file:
 * memory/ (the default when RAFT_DIR is unset: not durable) and rocksdb/ (RAFT_DIR set). Both pass
 * the one shared contract suite in test/unit/storage/contract.ts.
 */
import type { Entry, HardState, HeldSnapshot } from '../raft/core/types.js';
import type { EffectBatch, HistoryPage, LeaseState, StoredValue } from '../kv/types.js';
import type { SnapshotRows } from '../kv/snapshot.js';
import type { RangePage, RangeQuery } from '../kv/listing.js';

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

/**
 * A read-only view of the whole key space at one point in time, for a backup: the rows and the
 * applied index exactly as one atomic state of the store, however many applies land while it is read.
 */
export interface KvView {
  /** The applied index of the state the view shows. */
  readonly appliedIndex: number;
  /** The lease table of that same state (every lease and attached key; read whole when the view opens). */
  readonly leases: LeaseState;
  /** The next rows in UTF-8 byte order of the keys, at most `max`; empty once every row was read. */
  nextRows(max: number): Promise<Array<[string, StoredValue]>>;
  /** Releases the view (safe to call more than once; the backup route calls it when the stream ends or is cut). */
  close(): Promise<void>;
}

/**
 * The state machine's data, persisted: keys, values and the applied index, always written together.
 * It decides nothing: the state machine (src/kv/state-machine.ts) reads the keys a batch touches,
 * decides the effects, and hands them here to be written.
 */
export interface KvStore extends SnapshotRows {
  get(key: string): Promise<StoredValue | undefined>;
  /** The current values of `keys` (undefined where absent), read for apply. */
  getMany(keys: string[]): Promise<Array<StoredValue | undefined>>;
  /**
   * Writes the effects of several applied entries in index order (a put stores `{value, index}` with
   * its entry's index, a delete removes the key) and appliedIndex, all in one atomic batch. It need
   * not be synced on its own: every applied entry is already durable in the log, and replay from the
   * stored applied index is exactly-once because the index is written atomically with the data (the
   * driver's hot path). With no effects it only moves the applied index. Each entry with effects
   * also leaves a watch-history record in the same batch; with `isHistory` false (an offline restore
   * writing rows that are not changes) none is written and the history is reset: every record
   * dropped and the floor set to `appliedIndex`. A batch's `leaseEffects` change the lease table
   * (kv/types.ts LeaseEffect) in the same atomic batch.
   */
  persist(batches: EffectBatch[], appliedIndex: number, isHistory?: boolean): Promise<void>;
  /**
   * A hint that these keys will be written soon (the leader calls it when it proposes): a store with
   * a read cache may look them up now, so that applying the write later needs no disk read. Never
   * changes what any read returns.
   */
  prefetch?(keys: string[]): void;
  /** The applied index stored with the data (0 when empty). */
  appliedIndex(): Promise<number>;
  /** The whole lease table as persisted (read once by the state machine, which then keeps it in memory). */
  loadLeases(): Promise<LeaseState>;
  /**
   * The watch history from index `from` on, at most `maxEntries` records, read at one consistent
   * point of the store with its floor and applied index (kv/types.ts HistoryPage). `persist` writes
   * each entry's effects as a record in its own batch, drops the oldest records over the limits
   * (kv/history.ts), and `replaceRows` drops them all and moves the floor up to its applied index.
   */
  readHistory(from: number, maxEntries: number): Promise<HistoryPage>;
  /**
   * One page of a key range in UTF-8 byte order, read at one consistent point of the store: the
   * page's `index` is the applied index of that point, and `count` (when asked) counts the whole
   * range at that same point.
   */
  listRange(q: RangeQuery): Promise<RangePage>;
  /**
   * Opens a point-in-time view of every row and the applied index (GET /backup reads one). RocksDB:
   * one iterator, whose implicit snapshot holds the state while it is read (memory flat in the
   * number of keys). In memory: the rows are copied when the view is opened.
   */
  openView(): Promise<KvView>;
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
