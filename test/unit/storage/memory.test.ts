import { MemoryKvStore, MemoryLogStore } from '../../../src/storage/memory/index.js';
import type { NodeStorage } from '../../../src/storage/types.js';
import { storageContract } from './contract.js';

storageContract('memory', () => {
  // Reopening returns the same instances: closing a memory store keeps its state.
  const storage: NodeStorage = { log: new MemoryLogStore(), kv: new MemoryKvStore(), durable: false };
  return {
    open: async () => storage,
    cleanup: async () => {
      // Nothing on disk to remove.
    },
  };
});
