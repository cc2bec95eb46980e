/**
 * In-memory storage: the default when RAFT_DIR is unset. Nothing survives the process, but the
 * behaviour matches the durable RocksDB implementation (same contract suite).
 */
import type { Entry, HardState, HeldSnapshot } from '../../raft/core/types.js';
import type { EffectBatch, StoredValue } from '../../kv/types.js';
import type { KvStore, KvView, LogStore, RaftPersistedState, RaftWrite } from '../types.js';
import { compareKeys } from '../../kv/listing.js';

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

  async get(key: string): Promise<StoredValue | undefined> {
    const v = this.data.get(key);
    return v ? { value: v.value, index: v.index } : undefined;
  }

  async getMany(keys: string[]): Promise<Array<StoredValue | undefined>> {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async persist(batches: EffectBatch[], appliedIndex: number): Promise<void> {
    for (const { index, effects } of batches) {
      for (const e of effects) {
        if (e.type === 'put') this.data.set(e.key, { value: e.value, index });
        else this.data.delete(e.key);
      }
    }
    this.applied = appliedIndex;
  }

  async appliedIndex(): Promise<number> {
    return this.applied;
  }

  forEachRow(fn: (key: string, value: StoredValue) => void): Promise<void> {
    // Synchronously, within the call: the rows are the state at the moment of the call.
    for (const k of [...this.data.keys()].sort()) {
      const v = this.data.get(k)!;
      fn(k, { value: v.value, index: v.index });
    }
    return Promise.resolve();
  }

  async replaceRows(rows: ReadonlyArray<readonly [string, StoredValue]>, appliedIndex: number): Promise<void> {
    this.data = new Map(rows.map(([k, v]) => [k, { value: v.value, index: v.index }]));
    this.applied = appliedIndex;
  }

  async openView(): Promise<KvView> {
    // Copy on open: the rows are the state at this moment whatever is applied later (memory grows
    // with the number of keys, unlike RocksDB's iterator; the in-memory store is not for big data).
    const rows: Array<[string, StoredValue]> = [...this.data].map(([k, v]) => [k, { value: v.value, index: v.index }]);
    rows.sort((a, b) => compareKeys(a[0], b[0]));
    let at = 0;
    return {
      appliedIndex: this.applied,
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
