import { MemoryKvStore, MemoryLogStore } from '../../../src/storage/memory/index.js';
import type { NodeStorage } from '../../../src/storage/types.js';
import { storageContract } from './contract.js';
import type { HistoryLimits } from '../../../src/kv/history.js';

storageContract('memory', () => {
  // Reopening returns the same instances: closing a memory store keeps its state.
  let storage: NodeStorage = { log: new MemoryLogStore(), kv: new MemoryKvStore(), durable: false };
  let limits: HistoryLimits | undefined;
  return {
    open: async (historyLimits) => {
      if (historyLimits !== limits) storage = { ...storage, kv: new MemoryKvStore(historyLimits) };
      limits = historyLimits;
      return storage;
    },
    cleanup: async () => {
      // Nothing on disk to remove.
    },
  };
});
