/**
 * A durable lower bound of what this node's Raft log held after its synced writes, kept outside
 * RocksDB in `<node dir>/log-bound`, and checked when the log is loaded.
 *
 * Why: RocksDB recovers its write-ahead log in point-in-time mode (the binding does not let us
 * choose another): a damaged record in the middle of the WAL makes it silently drop that record and
 * every later one. The node would then start with a shorter log, or an older term or vote, than it
 * had synced and acknowledged — Raft tolerates a node losing its unsynced tail after a power cut,
 * but not synced entries, votes or terms. With the bound, such a node refuses to start instead
 * (start-up failure, see docs/power-loss.md), while a torn *unsynced* tail (what a power cut leaves)
 * is below the bound and is accepted.
 *
 * What is recorded, after each synced write or snapshot has resolved: the last log index and its
 * term, and the hard state's term and vote. At load: the log must reach the recorded index with the
 * recorded term there (or a snapshot must cover it), and the hard state must not be older.
 *
 * Invariant: every version of the file that can be on disk is a lower bound of the durable state.
 * Raising it is done lazily (a pwrite into the page cache after the write it describes was synced;
 * fsynced at most once a second and at close): any older version is a lower bound too. Lowering it
 * (a write that replaces a suffix of the log at or below the recorded index, or a snapshot received
 * from the leader that ends below it; both rare) is written to both slots and fsynced BEFORE the
 * write that lowers the log is issued, so no version above the new log can survive a crash.
 *
 * Format: two slots at offsets 0 and 4096 (separate pages and sectors), written alternately, each a
 * 256-byte record `raftkv-log-bound 1 <seq> <crc32 of seq and JSON> <JSON>` padded with spaces. A crash can tear at
 * most the slot being written (the other holds an earlier, complete version); the valid slot with
 * the highest seq wins. The file is created complete (temporary file, fsync, rename, directory fsync).
 * A missing file (first start, or data written by a version without it) is created from the loaded
 * state; a file with no valid slot is damage and refuses the start.
 */
import { constants as fsc, promises as fsp, closeSync, fsync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { HardState, HeldSnapshot } from '../raft/core/types.js';
import type { LogStore, NodeStorage, RaftPersistedState, RaftWrite } from './types.js';
import { fsyncPath } from './durable-dir.js';

export const LOG_BOUND_FILE = 'log-bound';
/** Slot offsets are SLOT apart (separate pages); each record is RECORD bytes. */
const SLOT = 4096;
const RECORD = 256;
const MAGIC = 'raftkv-log-bound 1';
/** The lazily raised bound is fsynced at most this often (and at close). */
const SYNC_EVERY_MS = 1000;

/** What the file records. `term` null: the term at `index` is not known (after a lowering). */
export interface LogBound {
  index: number;
  term: number | null;
  hardTerm: number;
  vote: string | null;
}

function checksum(text: string): string {
  return crc32(text).toString(16).padStart(8, '0');
}

/** One slot's bytes for `bound` with sequence number `seq`. */
export function encodeSlot(seq: number, bound: LogBound): Buffer {
  let json = JSON.stringify(bound);
  // A vote id too long for a record is left out: a weaker bound, never a wrong one.
  if (json.length > RECORD - 64) json = JSON.stringify({ ...bound, vote: null });
  const text = `${MAGIC} ${seq} ${checksum(`${seq} ${json}`)} ${json}\n`;
  const buf = Buffer.alloc(RECORD, 0x20);
  buf.write(text, 0, 'utf8');
  return buf;
}

/** Decodes one slot; null when it is not a complete, valid slot. */
export function decodeSlot(buf: Buffer): { seq: number; bound: LogBound } | null {
  const text = buf.subarray(0, RECORD).toString('utf8').trimEnd();
  const m = /^raftkv-log-bound 1 (\d+) ([0-9a-f]{8}) (\{.*\})$/.exec(text);
  if (m === null || checksum(`${m[1]} ${m[3]}`) !== m[2]) return null;
  const o = JSON.parse(m[3]) as Partial<LogBound>;
  const isNat = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!isNat(o.index) || !(o.term === null || isNat(o.term)) || !isNat(o.hardTerm) || !(o.vote === null || typeof o.vote === 'string')) return null;
  return { seq: Number(m[1]), bound: { index: o.index, term: o.term, hardTerm: o.hardTerm, vote: o.vote } };
}

/** Reads the file: the bound, null when the file does not exist; throws when it is damaged. */
export async function readLogBound(file: string): Promise<{ seq: number; bound: LogBound } | null> {
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const slots = [decodeSlot(data.subarray(0, SLOT)), decodeSlot(data.subarray(SLOT, 2 * SLOT))].filter((s) => s !== null);
  if (slots.length === 0) throw new Error(`${file} is damaged (no valid record)`);
  return slots.reduce((a, b) => (b.seq > a.seq ? b : a));
}

/** Why `state` (as loaded) is older than `bound`, or null when it is not. */
export function boundViolation(state: RaftPersistedState, bound: LogBound): string | null {
  const snapIndex = state.snapshot?.meta.lastIndex ?? 0;
  const last = state.entries.length > 0 ? state.entries[state.entries.length - 1].index : snapIndex;
  if (last < bound.index) return `the log ends at index ${last}, but this node had synced entries up to index ${bound.index}`;
  if (bound.term !== null && bound.index > 0) {
    const term = bound.index === snapIndex ? state.snapshot?.meta.lastTerm : bound.index > snapIndex ? state.entries[bound.index - snapIndex - 1]?.term : bound.term;
    if (term !== bound.term) return `the entry at index ${bound.index} has term ${term}, but this node had synced term ${bound.term} there`;
  }
  const hs = state.hardState;
  if (hs.term < bound.hardTerm) return `the stored term is ${hs.term}, but this node had synced term ${bound.hardTerm}`;
  if (hs.term === bound.hardTerm && bound.vote !== null && hs.votedFor !== bound.vote) {
    return `the stored vote in term ${hs.term} is ${hs.votedFor ?? 'none'}, but this node had synced a vote for ${bound.vote}`;
  }
  return null;
}

/**
 * Wraps a durable LogStore: load() checks the loaded state against the bound and refuses it when
 * older; writes keep the bound up to date (see the file comment for the invariant).
 */
export class BoundedLogStore implements LogStore {
  private readonly file: string;
  private fd: number | null = null;
  private seq = 0;
  /** What the latest slot says (the durable state is at least this). */
  private recorded: LogBound | null = null;
  /** The state as of the last synced write: last index and term, hard state. */
  private current: LogBound | null = null;
  private lastSyncMs = 0;
  private syncing = false;
  /** A failed background fsync of the file: reported by the next write. */
  private failure: Error | null = null;

  constructor(
    private readonly inner: LogStore,
    dir: string,
  ) {
    this.file = path.join(dir, LOG_BOUND_FILE);
  }

  async load(): Promise<RaftPersistedState> {
    const state = await this.inner.load();
    const found = await readLogBound(this.file);
    const snapIndex = state.snapshot?.meta.lastIndex ?? 0;
    const lastEntry = state.entries[state.entries.length - 1];
    const loaded: LogBound = {
      index: lastEntry?.index ?? snapIndex,
      term: lastEntry?.term ?? state.snapshot?.meta.lastTerm ?? 0,
      hardTerm: state.hardState.term,
      vote: state.hardState.votedFor,
    };
    if (found !== null) {
      const why = boundViolation(state, found.bound);
      if (why !== null) {
        throw new Error(`${why} (${this.file}): the write-ahead log is damaged and RocksDB recovered only the records before the damage; this node must not serve a log older than what it acknowledged`);
      }
      this.seq = found.seq;
      this.recorded = found.bound;
    } else {
      await this.create(loaded);
    }
    this.current = loaded;
    this.fd = openSync(this.file, fsc.O_WRONLY);
    return state;
  }

  /** Writes a new file holding `bound` in both slots, durably (temp file, fsync, rename, dir fsync). */
  private async create(bound: LogBound): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      // Record n lives in slot n % 2 (as in record()).
      await fh.write(encodeSlot(1, bound), 0, RECORD, SLOT);
      await fh.write(encodeSlot(2, bound), 0, RECORD, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.file);
    await fsyncPath(path.dirname(this.file));
    this.seq = 2;
    this.recorded = bound;
  }

  /** Writes `bound` into the next slot (page cache only). */
  private record(bound: LogBound): void {
    if (this.fd === null) return;
    this.seq++;
    writeSync(this.fd, encodeSlot(this.seq, bound), 0, RECORD, (this.seq % 2) * SLOT);
    this.recorded = bound;
  }

  /** fsyncs the file now, waiting for it. */
  private syncNow(): Promise<void> {
    const fd = this.fd;
    if (fd === null) return Promise.resolve();
    this.lastSyncMs = Date.now();
    return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** fsyncs the file in the background when the last fsync is older than SYNC_EVERY_MS. */
  private maybeSync(): void {
    if (this.syncing || this.fd === null || Date.now() - this.lastSyncMs < SYNC_EVERY_MS) return;
    this.syncing = true;
    this.syncNow().then(
      () => (this.syncing = false),
      (err: Error) => {
        this.syncing = false;
        this.failure ??= new Error(`storage: cannot sync ${this.file}: ${err.message}`);
      },
    );
  }

  /** Before a write that may leave the log ending at `index` or below: lowers the bound durably. */
  private async lowerTo(index: number): Promise<void> {
    const rec = this.recorded;
    if (rec === null || this.current === null || rec.index <= index) return;
    this.current = { ...this.current, index, term: null };
    // Both slots: a later, unsynced write can then tear only a slot that already holds the lowered bound.
    this.record(this.current);
    this.record(this.current);
    await this.syncNow();
  }

  /** After a synced write: raises the recorded bound to the new state. */
  private raise(next: LogBound): void {
    this.current = next;
    const rec = this.recorded;
    if (rec !== null && rec.index === next.index && rec.term === next.term && rec.hardTerm === next.hardTerm && rec.vote === next.vote) return;
    this.record(next);
    this.maybeSync();
  }

  async write(w: RaftWrite): Promise<void> {
    if (this.failure !== null) throw this.failure;
    const cur = this.current;
    if (cur !== null && w.entries.length > 0 && w.entries[0].index <= cur.index) await this.lowerTo(w.entries[0].index - 1);
    await this.inner.write(w);
    if (cur === null || this.current === null) return;
    const last = w.entries[w.entries.length - 1];
    const hs: HardState | null = w.hardState;
    this.raise({
      index: last?.index ?? this.current.index,
      term: last?.term ?? this.current.term,
      hardTerm: hs?.term ?? this.current.hardTerm,
      vote: hs ? hs.votedFor : this.current.vote,
    });
  }

  async saveSnapshot(snapshot: HeldSnapshot, discardLog: boolean): Promise<void> {
    if (this.failure !== null) throw this.failure;
    const { lastIndex, lastTerm } = snapshot.meta;
    if (discardLog) await this.lowerTo(lastIndex);
    await this.inner.saveSnapshot(snapshot, discardLog);
    if (this.current === null) return;
    if (discardLog) this.raise({ ...this.current, index: lastIndex, term: lastTerm });
    else if (lastIndex > this.current.index) this.raise({ ...this.current, index: lastIndex, term: lastTerm });
  }

  sizeBytes(): Promise<number> {
    return this.inner.sizeBytes();
  }

  async close(): Promise<void> {
    if (this.fd !== null) {
      const fd = this.fd;
      try {
        await this.syncNow();
      } finally {
        this.fd = null;
        closeSync(fd);
      }
    }
    await this.inner.close();
  }
}

/**
 * Adds the log bound to a durable storage whose files are in `dir`. Anything the wrapper does not
 * define (e.g. the RocksDB store's `db`, used by white-box tests) is read from the wrapped store.
 */
export function withLogBound(storage: NodeStorage, dir: string): NodeStorage {
  const inner = storage.log;
  const bounded = new BoundedLogStore(inner, dir);
  const log = new Proxy(bounded, {
    get(target, prop) {
      if (Reflect.has(target, prop)) return Reflect.get(target, prop, target) as unknown;
      const v: unknown = Reflect.get(inner, prop, inner);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(inner) : v;
    },
  });
  return { ...storage, log };
}
