/**
 * A byte-bounded cache of key → stored value (or known absence) in front of the RocksDB KV store,
 * evicting in CLOCK (second-chance) order, an LRU approximation: a hit only sets the entry's
 * reference bit, so reads never mutate the Map (moving an entry to the back on every hit costs a
 * rehash of the whole table every few thousand reads once it holds many keys).
 * Every RocksDB get costs a lookup (a large one also a thread-pool round trip); hot keys are
 * served from here instead. Used only by RocksKvStore, which keeps it coherent: writes go through it, and a value
 * read from disk is cached only if no write happened while it was being read.
 */
import type { StoredValue } from '../../kv/types.js';

/** How many recent write batches (and at most how many keys in them) the per-key read guard remembers. */
const RECENT_BATCHES = 256;
const RECENT_KEYS = 1 << 16;

/** Rough per-entry overhead of the Map slot and object headers, in bytes. */
const ENTRY_OVERHEAD_BYTES = 64;

function sizeOf(key: string, v: StoredValue | null): number {
  return ENTRY_OVERHEAD_BYTES + 2 * key.length + (v === null ? 0 : 2 * v.value.length);
}

interface Slot {
  v: StoredValue | null;
  /** Read since the clock hand last passed: spared once (moved to the back) instead of evicted. */
  isReferenced: boolean;
}

export class ReadCache {
  /** Insertion order is the clock's order: the hand starts at the front. */
  private readonly entries = new Map<string, Slot>();
  private bytes = 0;
  /**
   * Bumped by every write. Invariant: a value read from disk is cached only when no write to that
   * key (and no clear) happened after the generation seen before the read started, so a read racing
   * a write never caches the older value.
   */
  private gen = 0;
  /** The generation of the last write of each key written in the last RECENT_BATCHES write batches. */
  private readonly recent = new Map<string, number>();
  /** Those batches, oldest first. */
  private readonly recentBatches: { gen: number; keys: string[] }[] = [];
  private recentKeys = 0;
  /**
   * Fills of reads that started before this generation are refused: the writes since then are no
   * longer all in `recent` (or a clear() happened). Per key, so one write batch does not void every
   * read in flight (under load a write lands every few milliseconds: with one global generation most
   * prefetched lookups were thrown away and read again at apply).
   */
  private floorGen = 0;
  /**
   * The eviction cursor, a live iterator over `entries`: everything before it was evicted, so it
   * always stands at the least recently used entry. Restarting an iteration from the front on
   * every eviction would walk the deleted slots V8 keeps until a rehash (quadratic under churn).
   */
  private cursor: Iterator<[string, Slot]> | null = null;

  constructor(private readonly maxBytes: number) {}

  /** The generation to pass to fill() for a read from disk that starts now. */
  get generation(): number {
    return this.gen;
  }

  /** The cached value: a StoredValue, null when the key is known to be absent, undefined when not cached. */
  lookup(key: string): StoredValue | null | undefined {
    const slot = this.entries.get(key);
    if (slot === undefined) return undefined;
    slot.isReferenced = true;
    return slot.v;
  }

  /** Caches what a disk read started at `generation` returned, unless that key was written (or the cache cleared) since. */
  fill(key: string, v: StoredValue | null, generation: number): void {
    if (generation < this.floorGen) return;
    const writtenAt = this.recent.get(key);
    if (writtenAt !== undefined && writtenAt > generation) return;
    this.put(key, v);
  }

  /** Records the outcome of a write batch (null for a deleted key) once it is in RocksDB. */
  afterWrite(updates: Map<string, StoredValue | null>): void {
    this.gen++;
    const keys = [...updates.keys()];
    for (const key of keys) this.recent.set(key, this.gen);
    this.recentBatches.push({ gen: this.gen, keys });
    this.recentKeys += keys.length;
    while (this.recentBatches.length > RECENT_BATCHES || this.recentKeys > RECENT_KEYS) {
      const old = this.recentBatches.shift() as { gen: number; keys: string[] };
      this.recentKeys -= old.keys.length;
      for (const key of old.keys) if (this.recent.get(key) === old.gen) this.recent.delete(key);
      this.floorGen = old.gen;
    }
    for (const [key, v] of updates) this.put(key, v);
  }

  /** Forgets everything (the key space was replaced wholesale, e.g. by a snapshot). */
  clear(): void {
    this.gen++;
    this.floorGen = this.gen;
    this.recent.clear();
    this.recentBatches.length = 0;
    this.recentKeys = 0;
    this.entries.clear();
    this.bytes = 0;
    this.cursor = null;
  }

  private put(key: string, v: StoredValue | null): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.bytes -= sizeOf(key, old.v);
      this.entries.delete(key);
    }
    const size = sizeOf(key, v);
    if (size > this.maxBytes) return;
    this.entries.set(key, { v, isReferenced: false });
    this.bytes += size;
    while (this.bytes > this.maxBytes) {
      this.cursor ??= this.entries.entries();
      const next = this.cursor.next();
      if (next.done) {
        this.cursor = null;
        // Unreachable while the byte count is right (an empty cache holds 0 bytes); never spin.
        if (this.entries.size === 0) {
          this.bytes = 0;
          return;
        }
        continue;
      }
      const [k, slot] = next.value;
      this.entries.delete(k);
      if (slot.isReferenced) {
        // Second chance: read since the hand last passed, so it goes to the back instead.
        slot.isReferenced = false;
        this.entries.set(k, slot);
        continue;
      }
      this.bytes -= sizeOf(k, slot.v);
    }
  }
}
