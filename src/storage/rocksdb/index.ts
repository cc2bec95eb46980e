/**
 * Durable storage over RocksDB (the `@nxtedition/rocksdb` binding, see binding.ts). One database per
 * node directory holds both stores under key prefixes:
 *   'h'                      hard state (JSON)
 *   's'                      latest snapshot: meta and chunk count (JSON)
 *   's/' + 8-digit chunk no. the snapshot's data, in chunks of SNAP_CHUNK_CHARS characters, so a large
 *                            state machine is never one huge value
 *   'l/' + 16-digit index    log entries (JSON)
 *   'k/' + key               KV data (JSON StoredValue)
 *   'a'                      applied index (JSON number)
 *   'w/' + 16-digit index    watch history: the effects of the entry at that index (JSON), written in
 *                            the apply batch (see kv/history.ts for what is kept)
 *   'wf'                     watch history floor (JSON number): the highest index whose history is gone
 *   'e/' + lease id          a lease (JSON LeaseRecord), written in the apply batch
 *   'f/' + lease id + NUL + key   a key attached to that lease (empty value), written in the apply batch
 * Every mutating call is one atomic batch. Log, hard state and snapshot writes are synced; KV
 * applies are not (see KvStore.persist). Writes go to one writer thread (writer.ts), which writes
 * them one after another in the order they were issued; an unsynced write issued while none is
 * pending there is written on the main thread at once (RocksDatabase.batch), which keeps the same
 * order. So the WAL holds the writes in issue order: a synced write fsyncs the WAL up to itself,
 * which makes every unsynced KV apply issued before it durable too, and a snapshot is saved only
 * after what it covers was applied. Reads of up to SYNC_READ_MAX_KEYS keys run on the main thread
 * itself, larger reads and iterators in the libuv thread pool; they never wait for a write.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Entry, HardState, HeldSnapshot, SnapshotMeta } from '../../raft/core/types.js';
import type { EffectBatch, HistoryEntry, HistoryPage, LeaseRecord, LeaseState, StoredValue } from '../../kv/types.js';
import { DEFAULT_HISTORY_LIMITS, encodeHistory, HistoryBound, type HistoryLimits } from '../../kv/history.js';
import type { KvStore, KvView, LogStore, NodeStorage, RaftPersistedState, RaftWrite } from '../types.js';
import { ReadCache } from './cache.js';
import { BatchWriter, loadRocksLevel, type BatchOp, type RawDb, type RawIterator } from './binding.js';
import { countAt, historyNeed, inRange, isPastRange, PageBuilder, undoChanges, unavailablePage, type RangePage, type RangeQuery, type UndoneKey } from '../../kv/listing.js';
import type { WriterReply, WriterRequest } from './writer.js';

/** Default bound of the KV read cache (hot keys served without a RocksDB round trip). */
export const DEFAULT_KV_CACHE_BYTES = 64 * 1024 * 1024;

/** Rows per iterator step: each step is one thread-pool round trip. */
const ITERATOR_STEP_ROWS = 1000;
/** Unsynced batches of at most this many operations may be written on the calling thread (RocksDatabase.batch). */
export const INLINE_WRITE_MAX_OPS = 256;
/** Reads of at most this many keys run on the calling thread (RocksDatabase.getMany). */
export const SYNC_READ_MAX_KEYS = 16;

/**
 * Bytes per iterator step of a listing: its iterator spans the KV rows, the log and the history
 * (one consistent view), so a step that runs past the last KV row reads log entries it throws away;
 * this bounds them to about one step's worth.
 */
const LIST_STEP_BYTES = 1 << 20;

/**
 * Starts the writer thread (writer.js beside this file once compiled). Run from the TypeScript
 * source (tests and scripts under tsx), the thread loads writer.ts through tsx's API itself: Node 20
 * does not run the parent's `--import tsx` loader in worker threads (Node 22 does).
 */
function startWriter(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./writer.js', import.meta.url));
  const api = JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href);
  const writer = JSON.stringify(new URL('./writer.ts', import.meta.url).href);
  return new Worker(`import(${api}).then((tsx) => tsx.tsImport(${writer}, ${JSON.stringify(import.meta.url)}))`, { eval: true });
}

const HARD_KEY = 'h';
const SNAP_KEY = 's';
const SNAP_CHUNK_PREFIX = 's/';
const SNAP_CHUNK_END = 's0';
const SNAP_CHUNK_CHARS = 1 << 20;
const APPLIED_KEY = 'a';
const LOG_PREFIX = 'l/';
const LOG_END = 'l0'; // '0' sorts right after '/'
const KV_PREFIX = 'k/';
const KV_END = 'k0';
const HISTORY_PREFIX = 'w/';
const HISTORY_END = 'w0';
const HISTORY_FLOOR_KEY = 'wf';
const HISTORY_READ_END = 'wg';
const LEASE_PREFIX = 'e/';
const ATTACHED_PREFIX = 'f/';
const ATTACHED_END = 'f0';

/** The key of an attachment of `key` to lease `id` (ids never hold NUL). */
function attachedKey(id: string, key: string): string {
  return `${ATTACHED_PREFIX}${id}\u0000${key}`;
}

/** The lease id and key of an attachment row. */
function parseAttachedKey(k: string): [string, string] {
  const at = k.indexOf('\u0000');
  return [k.slice(ATTACHED_PREFIX.length, at), k.slice(at + 1)];
}

/** Reads the lease table through `it` (an iterator whose range covers 'e/' to 'f0'), from its one view. */
async function readLeases(it: RawIterator): Promise<LeaseState> {
  const state: LeaseState = { leases: [], attached: [] };
  it.seek(LEASE_PREFIX);
  scan: for (;;) {
    const rows = await it.nextv(ITERATOR_STEP_ROWS);
    if (rows.length === 0) break;
    for (const [k, v] of rows) {
      if (!k.startsWith(LEASE_PREFIX)) break scan;
      state.leases.push(JSON.parse(v ?? '') as LeaseRecord);
    }
  }
  it.seek(ATTACHED_PREFIX);
  scan: for (;;) {
    const rows = await it.nextv(ITERATOR_STEP_ROWS);
    if (rows.length === 0) break;
    for (const [k] of rows) {
      if (!k.startsWith(ATTACHED_PREFIX)) break scan;
      state.attached.push(parseAttachedKey(k));
    }
  }
  state.leases.sort((a, b) => a.grantedIndex - b.grantedIndex);
  return state;
}

/** The history key of `index`: zero-padded so that byte order is index order. */
function historyKey(index: number): string {
  return HISTORY_PREFIX + String(index).padStart(16, '0');
}

/** The key of snapshot data chunk `n`. */
function snapChunkKey(n: number): string {
  return SNAP_CHUNK_PREFIX + String(n).padStart(8, '0');
}

/** What is stored under SNAP_KEY: the metadata and how many data chunks follow. */
interface StoredSnapshotHead {
  meta: SnapshotMeta;
  chunks: number;
  length: number;
  /** True when the snapshot has no data of its own: the KV store holds the state at its index. */
  inKv?: boolean;
}

/** The log key of `index`: zero-padded so that byte order is index order. */
function logKey(index: number): string {
  return LOG_PREFIX + String(index).padStart(16, '0');
}

/** A write sent to the writer thread and not yet acknowledged. */
interface PendingWrite {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * A RocksDB database shared by the log and KV stores of one node; closed when both have closed.
 * Reads run here; writes run on the writer thread, in the order batch() was called, except an
 * unsynced write made while no write is in flight, which is written here at once (batch()).
 */
export class RocksDatabase {
  private refs = 0;
  private closing: Promise<void> | null = null;
  private nextWriteId = 1;
  private readonly pending = new Map<number, PendingWrite>();
  /** Set when the writer thread failed or died, or a write here failed: every later write is refused with it. */
  private failure: Error | null = null;
  /** The writer thread has exited. */
  private isWriterGone = false;
  /** Writes unsynced batches on this thread when the writer thread is idle (see batch). */
  private inline: BatchWriter | null = null;
  /** How many batches were written on this thread (tests). */
  inlineWrites = 0;
  /** Resolves once the writer thread has exited (for any reason). */
  private readonly writerExited: Promise<void>;

  private constructor(
    private readonly db: RawDb,
    private readonly writer: Worker,
    readonly location: string,
  ) {
    this.writerExited = new Promise((resolve) => writer.once('exit', () => resolve()));
    writer.on('message', (reply: WriterReply) => this.onReply(reply));
    writer.on('error', (err) => this.fail(new Error(`rocksdb: the writer thread failed: ${err.message}`)));
    writer.on('exit', (code) => {
      this.isWriterGone = true;
      this.fail(new Error(`rocksdb: the writer thread exited (code ${code})`));
    });
    writer.unref(); // referenced only while a write is pending (see batch)
  }

  /**
   * Opens (creating if needed, mode 0700) the database at `location` and starts its writer thread.
   * Fails with a clear message when RocksDB cannot open the directory.
   */
  static async open(location: string): Promise<RocksDatabase> {
    await fsp.mkdir(location, { recursive: true, mode: 0o700 });
    await refuseSnappyTables(location);
    await fsp.chmod(location, 0o700); // also a directory made by an older version
    // The thread starts while the database opens; it is told the handle once that is open.
    const writer = startWriter();
    // Only these listeners are removed afterwards: the Worker has internal ones of its own.
    let onMessage: (reply: WriterReply) => void = () => undefined;
    let onError: (err: Error) => void = () => undefined;
    let onExit: (code: number) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      onMessage = (reply) => (reply.type === 'ready' ? resolve() : reject(new Error(`rocksdb: unexpected ${reply.type} from the writer`)));
      onError = reject;
      onExit = (code) => reject(new Error(`rocksdb: the writer thread exited at start (code ${code})`));
    });
    writer.on('message', onMessage).on('error', onError).on('exit', onExit);
    const RocksLevel = loadRocksLevel();
    const db = new RocksLevel(location);
    try {
      try {
        await db.open({ createIfMissing: true });
      } catch (err) {
        throw explainOpenError(location, err);
      }
      writer.postMessage({ type: 'open', handle: db.handle } satisfies WriterRequest);
      await ready;
    } catch (err) {
      ready.catch(() => undefined);
      await writer.terminate();
      if (db.status === 'open') await db.close();
      throw err;
    } finally {
      writer.off('message', onMessage).off('error', onError).off('exit', onExit);
    }
    return new RocksDatabase(db, writer, location);
  }

  private onReply(reply: WriterReply): void {
    if (reply.type !== 'done') return;
    const w = this.pending.get(reply.id);
    if (w === undefined) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.writer.unref();
    if (reply.error === undefined) {
      w.resolve();
      return;
    }
    const failed = new Error(`rocksdb: write failed: ${reply.error}`);
    w.reject(failed);
    // Refuse every later write here too: one this thread would write itself (batch) must not land
    // on top of a failed one. Writes already posted are the writer's to refuse (it answers them).
    this.failure ??= failed;
  }

  /** The writer is gone or failed: rejects every pending write and refuses all later ones. */
  private fail(err: Error): void {
    if (this.failure !== null) return;
    this.failure = this.closing !== null ? new Error('rocksdb: the database is closed') : err;
    for (const w of this.pending.values()) w.reject(this.failure);
    this.pending.clear();
  }

  /** Registers one more user; each must call release() once. */
  retain(): void {
    this.refs++;
  }

  /** Drops one user and closes the database when none is left. */
  async release(): Promise<void> {
    this.refs--;
    if (this.refs > 0) return;
    await this.close();
  }

  /**
   * Closes the writer first (it finishes every write posted before, in order, then exits), then the
   * database: the writer writes through the same native database, so it must be gone before that
   * closes.
   */
  private close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.isWriterGone) this.post({ type: 'close' });
      this.writer.ref();
      await this.writerExited;
      await this.db.close();
    })();
    return this.closing;
  }

  private post(req: WriterRequest): void {
    this.writer.postMessage(req);
  }

  /** Reads a raw value, or undefined when the key is absent. */
  async get(key: string): Promise<string | undefined> {
    return (await this.getMany([key]))[0];
  }

  /**
   * Reads many raw values in one call (undefined where absent). Up to SYNC_READ_MAX_KEYS keys are
   * read on the calling thread: a point lookup in the memtable or the block/page cache takes about
   * 10-25 us there, while a thread-pool read costs a hand-off to another thread and back, 80-140 us
   * of CPU and wall time on this project's 2-core VM (bench/handoff.ts; docs/performance.md, "Thread
   * hand-offs"). Larger reads go to the thread pool so that one call never holds the event loop for
   * long.
   */
  getMany(keys: string[]): Promise<Array<string | undefined>> {
    if (keys.length === 0) return Promise.resolve([]);
    // Only while open: the native synchronous lookup does not check, and crashes the process on a
    // closed database (the thread-pool path rejects instead).
    if (keys.length <= SYNC_READ_MAX_KEYS && this.db.status === 'open') {
      try {
        return Promise.resolve(this.db._getManySync(keys, { valueEncoding: 'utf8' }));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return this.db.getMany(keys, { valueEncoding: 'utf8' });
  }

  /**
   * Calls `fn` with each entry in [gte, lt) in order (value '' when `withValues` is false), without
   * holding them: work happens per batch the iterator delivers, never in one long synchronous block.
   * The iterator, and so the consistent view it reads, is created synchronously by this call.
   */
  async forEachEntry(gte: string, lt: string, withValues: boolean, fn: (key: string, value: string) => void): Promise<void> {
    const it = this.db.iterator({ gte, lt, values: withValues, keyEncoding: 'utf8', valueEncoding: 'utf8' });
    let failure: unknown = null;
    try {
      for (;;) {
        const rows = await it.nextv(ITERATOR_STEP_ROWS);
        if (rows.length === 0) break;
        for (const [k, v] of rows) fn(k, v ?? '');
      }
    } catch (err) {
      failure = err;
    }
    await it.close();
    if (failure !== null) throw failure;
  }

  /**
   * Runs `fn` over one iterator of [gte, lt) with values: every read through it (including after
   * seek) sees the one consistent view taken when this call created it. Closes it afterwards.
   */
  async withIterator<T>(gte: string, lt: string, fn: (it: RawIterator) => Promise<T>, highWaterMarkBytes?: number): Promise<T> {
    const it = this.iterator(gte, lt, highWaterMarkBytes);
    try {
      return await fn(it);
    } finally {
      await it.close();
    }
  }

  /**
   * An iterator over [gte, lt) with values. RocksDB takes its implicit snapshot when the iterator is
   * created: everything read through it, seeks included, is the database as it was at that moment.
   */
  iterator(gte: string, lt: string, highWaterMarkBytes?: number): RawIterator {
    return this.db.iterator({ gte, lt, values: true, keyEncoding: 'utf8', valueEncoding: 'utf8', ...(highWaterMarkBytes !== undefined ? { highWaterMarkBytes } : {}) });
  }

  /** Calls `fn` with each key in [gte, lt) in order, without reading values or holding the keys. */
  forEachKey(gte: string, lt: string, fn: (key: string) => void): Promise<void> {
    return this.forEachEntry(gte, lt, false, (k) => fn(k));
  }

  /** The keys in [gte, lt), without reading their values. */
  async scanKeys(gte: string, lt: string): Promise<string[]> {
    const keys: string[] = [];
    await this.forEachKey(gte, lt, (k) => keys.push(k));
    return keys;
  }

  /** Counts the keys in [gte, lt) without holding them in memory. */
  async count(gte: string, lt: string): Promise<number> {
    let n = 0;
    await this.forEachKey(gte, lt, () => n++);
    return n;
  }

  /** Reads and JSON-decodes a value, or undefined when the key is absent. */
  async getJson<T>(key: string): Promise<T | undefined> {
    const raw = await this.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as T);
  }

  /**
   * Writes `ops` as one atomic batch on the writer thread; resolves once the writer has written it
   * (and, when `sync`, fsynced the WAL), rejects if it failed or the writer is gone.
   */
  batch(ops: BatchOp[], sync = true): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closing !== null) return Promise.reject(new Error('rocksdb: the database is closed'));
    if (ops.length === 0) return Promise.resolve();
    // An unsynced write while the writer thread has nothing to do is written here, at once: no
    // write is in flight, so none can be overtaken and no fsync can hold this one up (the reason for
    // the writer thread), and it saves a hand-off to that thread and back (docs/performance.md,
    // "Thread hand-offs"). The driver writes a Ready's apply after its log append has completed, so
    // this is the usual case for applies.
    // Not while RocksDB delays or stops writes (compaction behind): that wait belongs on the writer
    // thread, never on the event loop; nor for big batches, whose copying the writer does better.
    if (!sync && this.pending.size === 0 && ops.length <= INLINE_WRITE_MAX_OPS && this.db.status === 'open' && !this.isWriteStalled()) {
      try {
        (this.inline ??= new BatchWriter(this.db)).write(ops, false);
        this.inlineWrites++;
        return Promise.resolve();
      } catch (err) {
        // As on the writer thread: the first failed write refuses every later one.
        const failed = new Error(`rocksdb: write failed: ${err instanceof Error ? err.message : String(err)}`);
        this.fail(failed);
        return Promise.reject(failed);
      }
    }
    const id = this.nextWriteId++;
    return new Promise<void>((resolve, reject) => {
      if (this.pending.size === 0) this.writer.ref();
      this.pending.set(id, { resolve, reject });
      this.post({ type: 'batch', id, ops, sync });
    });
  }

  /** Whether RocksDB is delaying or stopping writes now (about 1 us per property read). */
  private isWriteStalled(): boolean {
    return this.db.getProperty('rocksdb.actual-delayed-write-rate') !== '0' || this.db.getProperty('rocksdb.is-write-stopped') !== '0';
  }

  /** Counters of the WAL: writes and fsyncs since open (from RocksDB's statistics). */
  walStats(): { writes: number; syncs: number } {
    const m = /Cumulative WAL: (\d+) writes, (\d+) syncs/.exec(this.db.getProperty('rocksdb.stats'));
    if (m === null) throw new Error('rocksdb: no WAL statistics in rocksdb.stats');
    return { writes: Number(m[1]), syncs: Number(m[2]) };
  }

  /** Collects every [key, value] with gte <= key < lt, in key order. */
  async scan(gte: string, lt: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    await this.forEachEntry(gte, lt, true, (key, value) => out.push([key, value]));
    return out;
  }

  /** Approximate bytes used on disk: the total size of the files in the database directory. */
  async diskBytes(): Promise<number> {
    let total = 0;
    for (const name of await fsp.readdir(this.location)) {
      const st = await fsp.stat(path.join(this.location, name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null; // removed by a concurrent compaction
        throw err;
      });
      if (st?.isFile()) total += st.size;
    }
    return total;
  }
}

/** The Raft log, hard state and latest snapshot stored in RocksDB. */
export class RocksLogStore implements LogStore {
  /**
   * The indices that may have an entry stored, [first, last], known once load() ran (null before:
   * then writes scan for what they delete). Only the driver writes, one call at a time, so it stays
   * exact, and neither an append nor a compaction needs to read the log.
   */
  private stored: { first: number; last: number } | null = null;

  constructor(private readonly db: RocksDatabase) {
    db.retain();
  }

  async load(): Promise<RaftPersistedState> {
    const hardState = (await this.db.getJson<HardState>(HARD_KEY)) ?? { term: 0, votedFor: null };
    const snapshot = await this.loadSnapshot();
    const after = snapshot ? snapshot.meta.lastIndex : 0;
    const entries = (await this.db.scan(logKey(after + 1), LOG_END)).map(([, v]) => JSON.parse(v) as Entry);
    this.stored = entries.length > 0 ? { first: entries[0].index, last: entries[entries.length - 1].index } : { first: after + 1, last: after };
    return { hardState, snapshot, entries };
  }

  async write(w: RaftWrite): Promise<void> {
    const ops: BatchOp[] = [];
    if (w.entries.length > 0) {
      const first = w.entries[0]!.index;
      // Raft §5.3: the stored suffix from `first` on is replaced, so delete it (nothing when appending).
      if (this.stored === null) {
        for (const key of await this.db.scanKeys(logKey(first), LOG_END)) ops.push({ type: 'del', key });
      } else {
        for (let i = first; i <= this.stored.last; i++) ops.push({ type: 'del', key: logKey(i) });
      }
      // A put after a del of the same key in one batch wins, so overwritten indices end up correct.
      for (const e of w.entries) ops.push({ type: 'put', key: logKey(e.index), value: JSON.stringify(e) });
    }
    if (w.hardState) ops.push({ type: 'put', key: HARD_KEY, value: JSON.stringify(w.hardState) });
    await this.db.batch(ops);
    if (w.entries.length > 0 && this.stored !== null) this.stored.last = w.entries[w.entries.length - 1].index;
  }

  /** Reads the snapshot head and reassembles its data from the chunks; null when none is stored. */
  private async loadSnapshot(): Promise<HeldSnapshot | null> {
    const head = await this.db.getJson<StoredSnapshotHead>(SNAP_KEY);
    if (!head) return null;
    if (head.inKv === true) return { meta: head.meta, data: null };
    const parts = (await this.db.scan(SNAP_CHUNK_PREFIX, SNAP_CHUNK_END)).map(([, v]) => v);
    const data = parts.join('');
    if (parts.length !== head.chunks || data.length !== head.length) {
      throw new Error(`rocksdb: snapshot at ${head.meta.lastIndex} is incomplete (${parts.length}/${head.chunks} chunks)`);
    }
    return { meta: head.meta, data };
  }

  async saveSnapshot(snapshot: HeldSnapshot, discardLog: boolean): Promise<void> {
    const index = snapshot.meta.lastIndex;
    const ops: BatchOp[] = [];
    if (this.stored !== null) {
      const end = discardLog ? this.stored.last : Math.min(index, this.stored.last);
      for (let i = this.stored.first; i <= end; i++) ops.push({ type: 'del', key: logKey(i) });
    } else {
      const end = discardLog ? LOG_END : logKey(index + 1);
      for (const key of await this.db.scanKeys(LOG_PREFIX, end)) ops.push({ type: 'del', key });
    }
    // The previous snapshot's chunks go in the same atomic batch that writes the new ones.
    for (const key of await this.db.scanKeys(SNAP_CHUNK_PREFIX, SNAP_CHUNK_END)) ops.push({ type: 'del', key });
    const data = snapshot.data;
    let chunks = 0;
    if (data !== null) {
      for (let at = 0; at < data.length; at += SNAP_CHUNK_CHARS) {
        ops.push({ type: 'put', key: snapChunkKey(chunks++), value: data.slice(at, at + SNAP_CHUNK_CHARS) });
      }
    }
    const head: StoredSnapshotHead = data === null ? { meta: snapshot.meta, chunks: 0, length: 0, inKv: true } : { meta: snapshot.meta, chunks, length: data.length };
    ops.push({ type: 'put', key: SNAP_KEY, value: JSON.stringify(head) });
    await this.db.batch(ops);
    if (this.stored !== null) {
      this.stored.first = Math.max(this.stored.first, index + 1);
      if (discardLog) this.stored.last = index;
    }
  }

  async sizeBytes(): Promise<number> {
    return this.db.diskBytes();
  }

  async close(): Promise<void> {
    await this.db.release();
  }
}

/** The state machine's keys, values and applied index stored in RocksDB. */
export class RocksKvStore implements KvStore {
  private keyCount = 0;
  private readonly cache: ReadCache;
  /** The sizes of the history records on disk and the floor (the records stay on disk). */
  private bound: HistoryBound;
  /** History records over the limits found at open, deleted by the next persist. */
  private pendingDrops: number[] = [];
  /** Whether 'wf' is on disk (a store written before the history existed has none). */
  private isFloorStored = false;

  private constructor(
    private readonly db: RocksDatabase,
    cacheBytes: number,
    private readonly historyLimits: HistoryLimits,
  ) {
    db.retain();
    this.cache = new ReadCache(cacheBytes);
    this.bound = new HistoryBound(historyLimits, 0);
  }

  /** Opens the KV store over `db`, counting the stored keys and the history records once. */
  static async open(db: RocksDatabase, cacheBytes = DEFAULT_KV_CACHE_BYTES, historyLimits: HistoryLimits = DEFAULT_HISTORY_LIMITS): Promise<RocksKvStore> {
    const store = new RocksKvStore(db, cacheBytes, historyLimits);
    store.keyCount = await db.count(KV_PREFIX, KV_END);
    const floor = await db.getJson<number>(HISTORY_FLOOR_KEY);
    store.isFloorStored = floor !== undefined;
    // Without a stored floor the store was written before the history existed: none below its applied index.
    store.bound = new HistoryBound(historyLimits, floor ?? (await db.getJson<number>(APPLIED_KEY)) ?? 0);
    await db.forEachEntry(HISTORY_PREFIX, HISTORY_END, true, (k, v) => store.bound.add(Number(k.slice(HISTORY_PREFIX.length)), v.length));
    store.pendingDrops = store.bound.trim(); // the limits may have shrunk since the last run
    return store;
  }

  async get(key: string): Promise<StoredValue | undefined> {
    const cached = this.cache.lookup(key);
    if (cached !== undefined) return cached ?? undefined;
    const generation = this.cache.generation;
    const v = (await this.db.getJson<StoredValue>(KV_PREFIX + key)) ?? null;
    this.cache.fill(key, v, generation);
    return v ?? undefined;
  }

  async getMany(keys: string[]): Promise<Array<StoredValue | undefined>> {
    // From the cache where known (a prefetch usually put them there), else one lookup of all the rest.
    const out: Array<StoredValue | undefined> = new Array(keys.length);
    const missing: number[] = [];
    keys.forEach((k, i) => {
      const cached = this.cache.lookup(k);
      if (cached === undefined) missing.push(i);
      else out[i] = cached ?? undefined;
    });
    if (missing.length === 0) return out;
    // A prefetch still queued keeps its place ahead of this read.
    if (this.prefetchQueue.size > 0) this.flushPrefetch();
    const generation = this.cache.generation;
    const found = await this.db.getMany(missing.map((i) => KV_PREFIX + keys[i]));
    missing.forEach((i, j) => {
      const raw = found[j];
      const v = raw === undefined ? null : (JSON.parse(raw) as StoredValue);
      this.cache.fill(keys[i], v, generation);
      out[i] = v ?? undefined;
    });
    return out;
  }

  /** Keys to look up in the next prefetch read (one RocksDB read per event-loop turn, not one per write). */
  private prefetchQueue = new Set<string>();
  private isPrefetchScheduled = false;

  prefetch(keys: string[]): void {
    for (const k of keys) if (this.cache.lookup(k) === undefined) this.prefetchQueue.add(k);
    if (this.prefetchQueue.size === 0 || this.isPrefetchScheduled) return;
    this.isPrefetchScheduled = true;
    setImmediate(() => this.flushPrefetch());
  }

  /** Starts the queued prefetch read now (on the next turn, or when a read of the store comes first). */
  private flushPrefetch(): void {
    this.isPrefetchScheduled = false;
    if (this.prefetchQueue.size === 0) return;
    const missing = [...this.prefetchQueue];
    this.prefetchQueue.clear();
    // Cached only if no write to the key lands meanwhile (the generation guard), like any read from disk.
    const generation = this.cache.generation;
    this.db.getMany(missing.map((k) => KV_PREFIX + k)).then(
      (found) => missing.forEach((k, i) => this.cache.fill(k, found[i] === undefined ? null : (JSON.parse(found[i] as string) as StoredValue), generation)),
      () => undefined, // only a hint: apply reads whatever is still unknown
    );
  }

  async persist(batches: EffectBatch[], appliedIndex: number, isHistory = true): Promise<void> {
    // The state machine decided every effect against the current values, so the key count follows
    // from them: a put without a previous value adds a key, a delete removes one.
    const updates = new Map<string, StoredValue | null>();
    const batch: BatchOp[] = [];
    let count = this.keyCount;
    for (const { index, effects, leaseEffects } of batches) {
      for (const e of leaseEffects ?? []) {
        if (e.type === 'lease-put') batch.push({ type: 'put', key: LEASE_PREFIX + e.lease.id, value: JSON.stringify(e.lease) });
        else if (e.type === 'lease-delete') batch.push({ type: 'del', key: LEASE_PREFIX + e.id });
        else if (e.type === 'attach') batch.push({ type: 'put', key: attachedKey(e.id, e.key), value: '' });
        else batch.push({ type: 'del', key: attachedKey(e.id, e.key) });
      }
      for (const e of effects) {
        if (e.type === 'put') {
          batch.push({ type: 'put', key: KV_PREFIX + e.key, value: JSON.stringify({ value: e.value, index }) });
          if (e.prevIndex === null) count++;
          updates.set(e.key, { value: e.value, index });
        } else {
          batch.push({ type: 'del', key: KV_PREFIX + e.key });
          count--;
          updates.set(e.key, null);
        }
      }
      if (effects.length > 0 && isHistory) {
        const encoded = encodeHistory({ index, effects });
        batch.push({ type: 'put', key: historyKey(index), value: encoded });
        this.bound.add(index, encoded.length);
      }
    }
    // The history is trimmed in the same batch: records and floor never disagree on disk.
    let isFloorMoved = false;
    if (!isHistory) {
      for (const key of await this.db.scanKeys(HISTORY_PREFIX, HISTORY_END)) batch.push({ type: 'del', key });
      this.bound.reset(appliedIndex);
      this.pendingDrops = [];
      isFloorMoved = true;
    }
    const dropped = this.pendingDrops.concat(this.bound.trim());
    this.pendingDrops = [];
    for (const i of dropped) batch.push({ type: 'del', key: historyKey(i) });
    if (isFloorMoved || dropped.length > 0 || !this.isFloorStored) batch.push({ type: 'put', key: HISTORY_FLOOR_KEY, value: JSON.stringify(this.bound.floor) });
    this.isFloorStored = true;
    batch.push({ type: 'put', key: APPLIED_KEY, value: JSON.stringify(appliedIndex) });
    await this.db.batch(batch, false);
    this.cache.afterWrite(updates);
    this.keyCount = count;
  }

  async appliedIndex(): Promise<number> {
    return (await this.db.getJson<number>(APPLIED_KEY)) ?? 0;
  }

  loadLeases(): Promise<LeaseState> {
    return this.db.withIterator(LEASE_PREFIX, ATTACHED_END, readLeases);
  }

  readHistory(from: number, maxEntries: number): Promise<HistoryPage> {
    // One iterator over ['a', 'wg'): the applied index, the records and the floor all come from its
    // one implicit snapshot, so a record dropped meanwhile shows as a floor above it, never as a gap.
    return this.db.withIterator(APPLIED_KEY, HISTORY_READ_END, async (it) => {
      const head = await it.nextv(1);
      const appliedIndex = head.length > 0 && head[0][0] === APPLIED_KEY ? (JSON.parse(head[0][1] ?? '0') as number) : 0;
      it.seek(historyKey(Math.max(0, from)));
      const entries: HistoryEntry[] = [];
      let isCut = false;
      scan: while (entries.length <= maxEntries) {
        const rows = await it.nextv(Math.min(maxEntries + 1 - entries.length, ITERATOR_STEP_ROWS));
        if (rows.length === 0) break;
        for (const [k, v] of rows) {
          if (!k.startsWith(HISTORY_PREFIX)) break scan;
          if (entries.length === maxEntries) {
            isCut = true;
            break scan;
          }
          entries.push({ index: Number(k.slice(HISTORY_PREFIX.length)), effects: JSON.parse(v ?? '[]') as HistoryEntry['effects'] });
        }
      }
      it.seek(HISTORY_FLOOR_KEY);
      const f = await it.nextv(1);
      // No stored floor yet: nothing was dropped since open, so the floor is the one found at open.
      const floor = f.length > 0 && f[0][0] === HISTORY_FLOOR_KEY ? (JSON.parse(f[0][1] ?? '0') as number) : this.bound.floor;
      return { floor, appliedIndex, entries, upTo: isCut ? entries[entries.length - 1].index : appliedIndex };
    });
  }

  listRange(q: RangeQuery): Promise<RangePage> {
    // One iterator from the applied index key ('a') past the history floor ('wf'): the applied index,
    // the floor, the history records and the rows all come from its one implicit snapshot, so the page
    // is the state at exactly its index, and the changes it undoes are exactly those after I0.
    return this.db.withIterator(APPLIED_KEY, HISTORY_READ_END, async (it) => {
      const head = await it.nextv(1);
      const appliedIndex = head.length > 0 && head[0][0] === APPLIED_KEY ? (JSON.parse(head[0][1] ?? '0') as number) : 0;
      const atIndex = q.atIndex ?? appliedIndex;
      let undo: Map<string, UndoneKey> | null = null;
      if (atIndex !== appliedIndex) {
        it.seek(HISTORY_FLOOR_KEY);
        const f = await it.nextv(1);
        // No stored floor yet: nothing was dropped since open, so the floor is the one found at open.
        const floor = f.length > 0 && f[0][0] === HISTORY_FLOOR_KEY ? (JSON.parse(f[0][1] ?? '0') as number) : this.bound.floor;
        const need = historyNeed(atIndex, floor, appliedIndex);
        if (need !== null) return unavailablePage(need, atIndex, floor, appliedIndex);
        const entries: HistoryEntry[] = [];
        it.seek(historyKey(atIndex + 1));
        scan: for (;;) {
          const rows = await it.nextv(ITERATOR_STEP_ROWS);
          if (rows.length === 0) break;
          for (const [k, v] of rows) {
            if (!k.startsWith(HISTORY_PREFIX)) break scan;
            const effects = (JSON.parse(v ?? '[]') as HistoryEntry['effects']).filter((e) => inRange(e.key, q));
            if (effects.length > 0) entries.push({ index: Number(k.slice(HISTORY_PREFIX.length)), effects });
          }
        }
        undo = undoChanges(q, entries);
        if (undo === null) return unavailablePage('expired', atIndex, floor, appliedIndex);
      }
      // The smallest key after `after` is `after` + U+0000.
      it.seek(KV_PREFIX + (q.after !== null ? `${q.after}\u0000` : q.start));
      const builder = new PageBuilder(q, undo);
      scan: for (;;) {
        const rows = await it.nextv(Math.min(q.limit + 1, ITERATOR_STEP_ROWS));
        if (rows.length === 0) break;
        for (const [k, v] of rows) {
          const key = k.slice(KV_PREFIX.length);
          if (!k.startsWith(KV_PREFIX) || isPastRange(key, q)) break scan;
          if (!builder.offer(key, JSON.parse(v ?? '') as StoredValue)) break scan;
        }
      }
      let count: number | undefined;
      if (q.count) {
        let n = 0;
        it.seek(KV_PREFIX + q.start);
        count: for (;;) {
          const rows = await it.nextv(ITERATOR_STEP_ROWS);
          if (rows.length === 0) break;
          for (const [k] of rows) {
            if (!k.startsWith(KV_PREFIX) || isPastRange(k.slice(KV_PREFIX.length), q)) break count;
            n++;
          }
        }
        count = countAt(n, undo);
      }
      return builder.finish(atIndex, count);
    }, LIST_STEP_BYTES);
  }

  forEachRow(fn: (key: string, value: StoredValue) => void): Promise<void> {
    // Row by row as the iterator delivers them; the iterator is created by this very call, so the
    // rows are the state at the moment of the call.
    return this.db.forEachEntry(KV_PREFIX, KV_END, true, (k, v) => fn(k.slice(KV_PREFIX.length), JSON.parse(v) as StoredValue));
  }

  async replaceRows(rows: ReadonlyArray<readonly [string, StoredValue]>, appliedIndex: number, leases: LeaseState = { leases: [], attached: [] }): Promise<void> {
    const batch: BatchOp[] = (await this.db.scanKeys(KV_PREFIX, KV_END)).map((key) => ({ type: 'del', key }));
    for (const key of await this.db.scanKeys(LEASE_PREFIX, ATTACHED_END)) batch.push({ type: 'del', key });
    for (const l of leases.leases) batch.push({ type: 'put', key: LEASE_PREFIX + l.id, value: JSON.stringify(l) });
    for (const [id, key] of leases.attached) batch.push({ type: 'put', key: attachedKey(id, key), value: '' });
    const keys = new Set<string>();
    for (const [key, { value, index }] of rows) {
      batch.push({ type: 'put', key: KV_PREFIX + key, value: JSON.stringify({ value, index }) });
      keys.add(key);
    }
    // The history before a restored snapshot is unknown: every record goes and the floor moves up to it.
    for (const key of await this.db.scanKeys(HISTORY_PREFIX, HISTORY_END)) batch.push({ type: 'del', key });
    batch.push({ type: 'put', key: HISTORY_FLOOR_KEY, value: JSON.stringify(appliedIndex) });
    batch.push({ type: 'put', key: APPLIED_KEY, value: JSON.stringify(appliedIndex) });
    await this.db.batch(batch);
    this.cache.clear();
    this.keyCount = keys.size;
    this.bound = new HistoryBound(this.historyLimits, appliedIndex);
    this.pendingDrops = [];
    this.isFloorStored = true;
  }

  async openView(): Promise<KvView> {
    // ONE iterator over ['a', 'k0'): its first row is the applied index (when stored; 'a' sorts
    // before 'h' and 'k/'), then a seek to 'k/' reads the rows, all from the same implicit snapshot,
    // so the index and the rows are one atomic state of the store.
    // The lease rows ('e/', 'f/') sort between them and are read whole through the same iterator.
    const it = this.db.iterator(APPLIED_KEY, KV_END);
    let appliedIndex = 0;
    let leases: LeaseState;
    try {
      const first = await it.nextv(1);
      if (first.length > 0 && first[0][0] === APPLIED_KEY) appliedIndex = JSON.parse(first[0][1] ?? '0') as number;
      leases = await readLeases(it);
      it.seek(KV_PREFIX);
    } catch (err) {
      await it.close();
      throw err;
    }
    let isClosed = false;
    return {
      appliedIndex,
      leases,
      nextRows: async (max) => {
        if (isClosed) return [];
        const rows = await it.nextv(max);
        return rows.map(([k, v]) => [k.slice(KV_PREFIX.length), JSON.parse(v ?? '') as StoredValue]);
      },
      close: async () => {
        if (isClosed) return;
        isClosed = true;
        await it.close();
      },
    };
  }

  async count(): Promise<number> {
    return this.keyCount;
  }

  async close(): Promise<void> {
    await this.db.release();
  }
}

/** The message that says why tables written by rocksdb@5.2.1 cannot be read, and what to do. */
function snappyMessage(location: string, isUnchanged: boolean): string {
  return (
    `rocksdb: cannot open the data directory ${location}: it holds Snappy-compressed tables, written by raftkv's earlier RocksDB binding ` +
    `(rocksdb@5.2.1, RocksDB 6.17), which this build (@nxtedition/rocksdb, RocksDB 9.7, ZSTD only) cannot read.${isUnchanged ? ' Nothing was changed.' : ''} ` +
    `Copy it once into uncompressed tables on Node 20 (docs/storage.md, "Data directories written by rocksdb@5.2.1"), ` +
    `or remove this node from the cluster and add it back with an empty directory.`
  );
}

/**
 * Refuses, before RocksDB 9.7 opens it (opening rewrites the MANIFEST and OPTIONS files, and the
 * tables may only fail later, when read), a directory last opened with Snappy compression that
 * holds tables: the newest OPTIONS file records the options its tables were written with. Without
 * tables (everything still in the WAL) it opens fine: replaying the WAL writes ZSTD tables.
 */
async function refuseSnappyTables(location: string): Promise<void> {
  const names = await fsp.readdir(location);
  if (!names.some((n) => n.endsWith('.sst'))) return;
  const options = names.filter((n) => /^OPTIONS-\d+$/.test(n)).sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)));
  const newest = options.at(-1);
  if (newest === undefined) return;
  const text = await fsp.readFile(path.join(location, newest), 'utf8');
  if (/^\s*compression=kSnappyCompression\s*$/m.test(text)) throw new Error(snappyMessage(location, true));
}

/**
 * The error to report when a data directory cannot be opened or read at start-up. Tables written by
 * the binding raftkv used before (rocksdb@5.2.1: RocksDB 6.17, Snappy) cannot be read by this build
 * (ZSTD only): say so and how to proceed, rather than only RocksDB's "Unsupported compression".
 */
function explainOpenError(location: string, err: unknown): Error {
  const cause = err instanceof Error ? ((err as Error & { cause?: Error }).cause?.message ?? err.message) : String(err);
  if (/compression/i.test(cause) && /snappy/i.test(cause)) return new Error(`${snappyMessage(location, false)} (${cause})`);
  return new Error(`rocksdb: cannot open the data directory ${location}: ${cause}`);
}

/** Opens both stores of one node in a single RocksDB database at `location`. */
export async function openRocksStorage(location: string, historyLimits: HistoryLimits = DEFAULT_HISTORY_LIMITS): Promise<NodeStorage> {
  const db = await RocksDatabase.open(location);
  const log = new RocksLogStore(db);
  try {
    // Counting reads every table that holds a key, so an unreadable one is found here, not later.
    const kv = await RocksKvStore.open(db, DEFAULT_KV_CACHE_BYTES, historyLimits);
    return { log, kv, durable: true };
  } catch (err) {
    await log.close();
    throw explainOpenError(location, err);
  }
}
