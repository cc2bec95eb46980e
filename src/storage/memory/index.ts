/**
 * In-memory storage: the default when RAFT_DIR is unset. Nothing survives the process, but the
 * behaviour matches the durable RocksDB implementation (same contract suite).
 */
import type { Entry, HardState, HeldSnapshot } from '../../raft/core/types.js';
import type { KvApply, KvOp, KvStore, LogStore, RaftPersistedState, RaftWrite, StoredValue } from '../types.js';

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

  async apply(index: number, ops: KvOp[]): Promise<boolean[]> {
    return (await this.applyBatch([{ index, ops }], index))[0];
  }

  async applyBatch(entries: KvApply[], appliedIndex: number): Promise<boolean[][]> {
    const results = entries.map(({ index, ops }) =>
      ops.map((op) => {
        const had = this.data.has(op.key);
        if (op.op === 'set') this.data.set(op.key, { value: op.value, index });
        else this.data.delete(op.key);
        return had;
      }),
    );
    this.applied = appliedIndex;
    return results;
  }

  async setApplied(index: number): Promise<void> {
    this.applied = index;
  }

  async appliedIndex(): Promise<number> {
    return this.applied;
  }

  async exportSnapshot(): Promise<string> {
    const keys = [...this.data.keys()].sort();
    return JSON.stringify(keys.map((k) => {
      const v = this.data.get(k)!;
      return [k, v.value, v.index];
    }));
  }

  async importSnapshot(data: string, appliedIndex: number): Promise<void> {
    const rows = parseKvSnapshot(data);
    this.data = new Map(rows.map(([k, value, index]) => [k, { value, index }]));
    this.applied = appliedIndex;
  }

  async count(): Promise<number> {
    return this.data.size;
  }

  async close(): Promise<void> {
    // Nothing to release: the state stays in memory for a later reopen.
  }
}

/** Parses and validates the exportSnapshot format `[[key, value, index], ...]`. */
export function parseKvSnapshot(data: string): Array<[string, string, number]> {
  const parsed: unknown = data === '' ? [] : JSON.parse(data);
  if (!Array.isArray(parsed)) throw new Error('kv snapshot: expected an array');
  return parsed.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== 3 || typeof row[0] !== 'string' || typeof row[1] !== 'string' ||
      typeof row[2] !== 'number') {
      throw new Error('kv snapshot: malformed row');
    }
    return [row[0], row[1], row[2]];
  });
}
