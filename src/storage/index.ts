/** Chooses and opens a node's storage: in memory without a data directory, RocksDB with one. */
import path from 'node:path';
import type { NodeStorage } from './types.js';
import { MemoryKvStore, MemoryLogStore } from './memory/index.js';
import { openRocksStorage } from './rocksdb/index.js';
import { ensureDurableDir } from './durable-dir.js';
import { withLogBound } from './log-bound.js';
import { DEFAULT_HISTORY_LIMITS, type HistoryLimits } from '../kv/history.js';

export type { NodeStorage } from './types.js';

/** Opens the storage of `nodeId`: in memory when `dir` is undefined, RocksDB under `dir/nodeId` otherwise. */
export async function openStorage(dir: string | undefined, nodeId: string, historyLimits: HistoryLimits = DEFAULT_HISTORY_LIMITS): Promise<NodeStorage> {
  if (dir === undefined) return { log: new MemoryLogStore(), kv: new MemoryKvStore(historyLimits), durable: false };
  const location = path.join(dir, nodeId);
  await ensureDurableDir(location);
  // The log bound refuses a log that RocksDB shortened when its write-ahead log was damaged.
  return withLogBound(await openRocksStorage(location, historyLimits), location);
}
