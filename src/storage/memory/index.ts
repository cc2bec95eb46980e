/**
 * In-memory storage: the default when RAFT_DIR is unset. Nothing survives the process, but the
 * behaviour matches the durable RocksDB implementation (same contract suite).
 */
import type { Entry, HardState, HeldSnapshot } from '../../raft/core/types.js';
import type { EffectBatch, HistoryEntry, HistoryPage, LeaseRecord, LeaseState, StoredValue } from '../../kv/types.js';
import { DEFAULT_HISTORY_LIMITS, encodeHistory, HistoryBound, type HistoryLimits } from '../../kv/history.js';
import type { KvStore, KvView, LogStore, RaftPersistedState, RaftWrite } from '../types.js';
import { compareKeys, countAt, historyNeed, isPastRange, PageBuilder, undoChanges, unavailablePage, type RangePage, type RangeQuery, type UndoneKey } from '../../kv/listing.js';

/** Deep-copies a JSON-serialisable value so callers never alias stored state. */
function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** A LogStore kept in memory: closing it keeps its state, so it can be "reopened" within the process. */
export class MemoryLogStore implements LogStore {
  private hardState: HardState = { term: 0, votedFor: null };
  private snapshot: HeldSnapshot | null = null;
  private entries: Entry[] = [];

  async load(): Promise<RaftPersistedState> {
    return clone({ hardState: this.hardState, snapshot: this.snapshot, entries: this.entries });
  }

  async write(w: RaftWrite): Promise<void> {
    if (w.entries.length > 0) {
      const first = w.entries[0]!.index;
      this.entries = this.entries.filter((e) => e.index < first).concat(clone(w.entries));
    }
    if (w.hardState) this.hardState = clone(w.hardState);
  }

  async saveSnapshot(snapshot: HeldSnapshot, discardLog: boolean): Promise<void> {
    this.snapshot = clone(snapshot);
    const last = snapshot.meta.lastIndex;
    this.entries = discardLog ? [] : this.entries.filter((e) => e.index > last);
  }

  async sizeBytes(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    // Nothing to release: the state stays in memory for a later reopen.
  }
}

/** A KvStore kept in a Map: closing it keeps its state, so it can be "reopened" within the process. */
export class MemoryKvStore implements KvStore {
  private data = new Map<string, StoredValue>();
  private applied = 0;
  /** The lease table: leases by id, and the attached keys of each. */
  private leases = new Map<string, LeaseRecord>();
  private attached = new Map<string, Set<string>>();
  /** The watch history: records kept, oldest first, from position `historyHead` on (see kv/history.ts). */
  private history: HistoryEntry[] = [];
  private historyHead = 0;
  private readonly bound: HistoryBound;

  constructor(historyLimits: HistoryLimits = DEFAULT_HISTORY_LIMITS) {
    this.bound = new HistoryBound(historyLimits, 0);
  }
  /**
   * The keys in byte order, built on the first listing and dropped whenever a key is added or
   * removed (value updates keep it). Listing after many new keys sorts again: O(n log n) once.
   */
  private sorted: string[] | null = null;

  async get(key: string): Promise<StoredValue | undefined> {
    const v = this.data.get(key);
    return v ? { value: v.value, index: v.index } : undefined;
  }

  async getMany(keys: string[]): Promise<Array<StoredValue | undefined>> {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async persist(batches: EffectBatch[], appliedIndex: number, isHistory = true): Promise<void> {
    for (const { index, effects, leaseEffects } of batches) {
      for (const e of leaseEffects ?? []) {
        if (e.type === 'lease-put') this.leases.set(e.lease.id, { ...e.lease });
        else if (e.type === 'lease-delete') {
          this.leases.delete(e.id);
          this.attached.delete(e.id);
        } else if (e.type === 'attach') {
          const set = this.attached.get(e.id) ?? new Set<string>();
          this.attached.set(e.id, set.add(e.key));
        } else this.attached.get(e.id)?.delete(e.key);
      }
      for (const e of effects) {
        if (e.type === 'put') {
          if (this.sorted !== null && !this.data.has(e.key)) this.sorted = null;
          this.data.set(e.key, { value: e.value, index });
        } else if (this.data.delete(e.key)) this.sorted = null;
      }
      if (effects.length > 0 && isHistory) {
        const encoded = encodeHistory({ index, effects });
        this.history.push({ index, effects: JSON.parse(encoded) as HistoryEntry['effects'] });
        this.bound.add(index, encoded.length);
      }
    }
    if (!isHistory) {
      this.history = [];
      this.historyHead = 0;
      this.bound.reset(appliedIndex);
    }
    this.historyHead += this.bound.trim().length;
    if (this.historyHead > 1024 && this.historyHead * 2 > this.history.length) {
      this.history = this.history.slice(this.historyHead);
      this.historyHead = 0;
    }
    this.applied = appliedIndex;
  }

  /** Position in `history` of the first record with index >= `from`. */
  private historyAt(from: number): number {
    let lo = this.historyHead;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid].index < from) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  readHistory(from: number, maxEntries: number): Promise<HistoryPage> {
    // Synchronously, within the call: one consistent point.
    const lo = this.historyAt(from);
    const entries = this.history.slice(lo, lo + maxEntries).map((e) => clone(e));
    const isCut = lo + maxEntries < this.history.length;
    return Promise.resolve({ floor: this.bound.floor, appliedIndex: this.applied, entries, upTo: isCut ? entries[entries.length - 1].index : this.applied });
  }

  async appliedIndex(): Promise<number> {
    return this.applied;
  }

  async loadLeases(): Promise<LeaseState> {
    return this.leaseState();
  }

  /** A copy of the lease table, leases by id and keys sorted. */
  private leaseState(): LeaseState {
    const leases = [...this.leases.values()].sort((a, b) => a.grantedIndex - b.grantedIndex).map((l) => ({ ...l }));
    return { leases, attached: leases.flatMap((l) => [...(this.attached.get(l.id) ?? [])].sort(compareKeys).map((k): [string, string] => [l.id, k])) };
  }

  forEachRow(fn: (key: string, value: StoredValue) => void): Promise<void> {
    // Synchronously, within the call: the rows are the state at the moment of the call.
    for (const k of [...this.data.keys()].sort()) {
      const v = this.data.get(k)!;
      fn(k, { value: v.value, index: v.index });
    }
    return Promise.resolve();
  }

  /** The keys in byte order: the cached order while no key was added or removed, else sorted once again. */
  private sortedKeys(): string[] {
    return (this.sorted ??= [...this.data.keys()].sort(compareKeys));
  }

  listRange(q: RangeQuery): Promise<RangePage> {
    // Synchronously, within the call: the rows, the history and the applied index are one consistent point.
    let undo: Map<string, UndoneKey> | null = null;
    const atIndex = q.atIndex ?? this.applied;
    if (atIndex !== this.applied) {
      const need = historyNeed(atIndex, this.bound.floor, this.applied);
      if (need !== null) return Promise.resolve(unavailablePage(need, atIndex, this.bound.floor, this.applied));
      undo = undoChanges(q, this.history.slice(this.historyAt(atIndex + 1)));
      if (undo === null) return Promise.resolve(unavailablePage('expired', atIndex, this.bound.floor, this.applied));
    }
    const keys = this.sortedKeys();
    const from = q.after !== null ? q.after : q.start;
    // The first key at or after `from` (strictly after `after`).
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(keys[mid], from);
      if (c < 0 || (q.after !== null && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    const builder = new PageBuilder(q, undo);
    // Keys from `from` up to the first one past the range are all in it (prefix keys are contiguous).
    for (let i = lo; i < keys.length && !isPastRange(keys[i], q); i++) {
      if (!builder.offer(keys[i], this.data.get(keys[i])!)) break;
    }
    let count: number | undefined;
    if (q.count) {
      let n = 0;
      let a = 0;
      let b = keys.length;
      while (a < b) {
        const mid = (a + b) >>> 1;
        if (compareKeys(keys[mid], q.start) < 0) a = mid + 1;
        else b = mid;
      }
      for (let j = a; j < keys.length && !isPastRange(keys[j], q); j++) n++;
      count = countAt(n, undo);
    }
    return Promise.resolve(builder.finish(atIndex, count));
  }

  async replaceRows(rows: ReadonlyArray<readonly [string, StoredValue]>, appliedIndex: number, leases: LeaseState = { leases: [], attached: [] }): Promise<void> {
    this.data = new Map(rows.map(([k, v]) => [k, { value: v.value, index: v.index }]));
    this.leases = new Map(leases.leases.map((l) => [l.id, { ...l }]));
    this.attached = new Map();
    for (const [id, key] of leases.attached) this.attached.set(id, (this.attached.get(id) ?? new Set<string>()).add(key));
    this.sorted = null;
    this.applied = appliedIndex;
    // The history before a restored snapshot is unknown: the floor moves up to it.
    this.history = [];
    this.historyHead = 0;
    this.bound.reset(appliedIndex);
  }

  async openView(): Promise<KvView> {
    // Copy on open: the rows are the state at this moment whatever is applied later (memory grows
    // with the number of keys, unlike RocksDB's iterator; the in-memory store is not for big data).
    const rows: Array<[string, StoredValue]> = this.sortedKeys().map((k) => {
      const v = this.data.get(k)!;
      return [k, { value: v.value, index: v.index }];
    });
    let at = 0;
    return {
      appliedIndex: this.applied,
      leases: this.leaseState(),
      nextRows: async (max) => rows.slice(at, (at = Math.min(rows.length, at + max))),
      close: async () => {
        at = rows.length;
      },
    };
  }

  async count(): Promise<number> {
    return this.data.size;
  }

  async close(): Promise<void> {
    // Nothing to release: the state stays in memory for a later reopen.
  }
}
