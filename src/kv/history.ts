/**
 * The watch history's retention rule, shared by both storage backends: the records of the latest
 * applied entries with effects, bounded by a number of entries and of bytes. The oldest records go
 * first and the floor (the highest index whose history is gone) moves up to the last one dropped;
 * the newest record is always kept, however large, so a live watcher never loses the entry it is
 * about to read. Used by MemoryKvStore and RocksKvStore inside their apply batch (persist).
 */
import type { HistoryEntry } from './types.js';

/** Default WATCH_HISTORY_ENTRIES: records kept. */
export const DEFAULT_WATCH_HISTORY_ENTRIES = 100_000;
/** Default WATCH_HISTORY_BYTES: bytes of records kept (their JSON). */
export const DEFAULT_WATCH_HISTORY_BYTES = 64 * 1024 * 1024;

/** How much history a store keeps. */
export interface HistoryLimits {
  maxEntries: number;
  maxBytes: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxEntries: DEFAULT_WATCH_HISTORY_ENTRIES, maxBytes: DEFAULT_WATCH_HISTORY_BYTES };

/** The stored form of one record's effects (its size is what WATCH_HISTORY_BYTES counts). */
export function encodeHistory(entry: HistoryEntry): string {
  return JSON.stringify(entry.effects);
}

/**
 * The sizes of the records kept, oldest first, and the floor: what a store needs in memory to decide
 * which records to drop without reading them. Not the records themselves (RocksDB keeps those on disk).
 */
export class HistoryBound {
  private indexes: number[] = [];
  private sizes: number[] = [];
  /** Position of the oldest kept record in the arrays (dropped ones are sliced off lazily). */
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly limits: HistoryLimits,
    /** Invariant: every record kept has index > floor. */
    public floor: number,
  ) {}

  /** Number of records kept. */
  get count(): number {
    return this.indexes.length - this.head;
  }

  /** Records a new newest record (index above every kept one). */
  add(index: number, sizeBytes: number): void {
    this.indexes.push(index);
    this.sizes.push(sizeBytes);
    this.bytes += sizeBytes;
  }

  /** Drops the oldest records over the limits (never the newest); returns the indexes dropped and moves the floor to the last. */
  trim(): number[] {
    const dropped: number[] = [];
    while (this.count > 1 && (this.count > this.limits.maxEntries || this.bytes > this.limits.maxBytes)) {
      const index = this.indexes[this.head];
      this.bytes -= this.sizes[this.head];
      this.head++;
      dropped.push(index);
      this.floor = index;
    }
    if (this.head > 1024 && this.head * 2 > this.indexes.length) {
      this.indexes = this.indexes.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
    return dropped;
  }

  /** Forgets every record and sets the floor (a snapshot was restored at `floor`). */
  reset(floor: number): void {
    this.indexes = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
    this.floor = floor;
  }
}
