/**
 * The driver feeds peer messages to the core while a Ready's fsync is in flight (issue 14 §1). A
 * lagging follower receives one catch-up append whose leader commit covers most of it; while that
 * Ready's write is still syncing, a new leader's first append truncates above the commit index. The
 * entries the write persisted below the truncation point must count as stable once it completes:
 * otherwise the applied index runs ahead of the stable index, compaction throws ("compacting to X
 * beyond the persisted Y") and the node stops, and the next Ready writes already-applied entries again.
 */
import { expect } from 'chai';
import { RaftNode } from '../../../../src/raft/node/node.js';
import { MemoryKvStore, MemoryLogStore } from '../../../../src/storage/memory/index.js';
import { encodeCommand } from '../../../../src/kv/commands.js';
import type { ClusterConfig, Entry, Message } from '../../../../src/raft/core/types.js';
import type { RaftWrite } from '../../../../src/storage/types.js';
import type { Transport } from '../../../../src/transport/types.js';
import { waitFor } from '../../../support/procs.js';

/** A memory log store whose writes stay unsynced until the test releases them. */
class SlowLogStore extends MemoryLogStore {
  writes: RaftWrite[] = [];
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;
  /** Resolved when a write is waiting at the gate. */
  waiting: Promise<void> = Promise.resolve();
  private signalWaiting: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
    this.waiting = new Promise((r) => (this.signalWaiting = r));
  }

  release(): void {
    this.open?.();
    this.gate = null;
  }

  override async write(w: RaftWrite): Promise<void> {
    this.writes.push(w);
    if (this.gate) {
      this.signalWaiting?.();
      await this.gate;
    }
    await super.write(w);
  }
}

const config: ClusterConfig = {
  members: ['a', 'b', 'c'].map((id) => ({ id, suffrage: 'voter' as const, raftAddr: `${id}:1`, apiAddr: `${id}:2` })),
};

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    if (i === 1) out.push({ index: 1, term: 1, type: 'config', change: { op: 'promote', id: 'a' }, config });
    else out.push({ index: i, term, type: 'normal', data: encodeCommand([{ op: 'set', key: `k${i}`, value: `v${i}` }]) });
  }
  return out;
}

describe('RaftNode: messages between ready() and advance()', () => {
  it('a truncating append during the fsync of a catch-up Ready leaves the persisted prefix stable: no compaction failure, nothing written twice', async () => {
    const log = new SlowLogStore();
    const kv = new MemoryKvStore();
    const errors: unknown[] = [];
    const transport: Transport = { send: () => undefined, close: async () => undefined };
    const node = new RaftNode(
      // A low snapshot threshold so the catch-up's committed entries are enough to compact.
      { nodeId: 'b', raftAddr: 'b:1', apiAddr: 'b:2', tickMs: 60_000, electionTimeoutTicks: 10, heartbeatTicks: 2, requestTimeoutMs: 5000, bootstrapIfEmpty: false, snapshotThreshold: 10 },
      { log, kv, durable: false },
      transport,
      { onError: (e) => errors.push(e) },
    );
    await node.start();
    try {
      // 1. Leader a (term 2) sends one catch-up append of 100 entries committing 60 of them; its write stalls.
      log.hold();
      const catchUp: Message = { type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: entries(1, 100, 2), leaderCommit: 60, toInc: node.identity().incarnation };
      node.receive([catchUp], 'a:1');
      await log.waiting;
      // 2. While it syncs, c wins term 3 (with a log ending at 60) and its first append conflicts at 61.
      const takeOver: Message = { type: 'AppendEntries', from: 'c', to: 'b', term: 3, prevLogIndex: 60, prevLogTerm: 2, entries: entries(61, 61, 3), leaderCommit: 60, toInc: node.identity().incarnation };
      node.receive([takeOver], 'c:1');
      // 3. The write completes; the node applies 1..60 and takes a snapshot (threshold 10).
      log.release();
      await waitFor('b to apply 60 and store entry 61 of term 3', async () => {
        if (!node.isHealthy()) return true;
        const stored = await log.load();
        return node.appliedIndex() >= 60 && stored.entries.some((e) => e.index === 61 && e.term === 3) && (stored.snapshot?.meta.lastIndex ?? 0) > 0;
      }, 5000, 10, false);
      expect(errors.map((e) => String(e))).to.deep.equal([]);
      expect(node.isHealthy()).to.equal(true);
      // The write after the take-over starts at the conflict: entries 1..60 were persisted once.
      expect(log.writes.map((w) => w.entries[0]?.index ?? null).filter((i) => i !== null)).to.deep.equal([1, 61]);
      const stored = await log.load();
      const snapshotIndex = stored.snapshot?.meta.lastIndex ?? 0;
      expect(snapshotIndex).to.be.greaterThan(0);
      // Nothing below the snapshot is left in the stored log (no entry written again after compaction).
      expect(stored.entries.filter((e) => e.index <= snapshotIndex)).to.deep.equal([]);
      expect(stored.entries.map((e) => `${e.index}/${e.term}`)).to.deep.equal([...entries(snapshotIndex + 1, 60, 2), ...entries(61, 61, 3)].map((e) => `${e.index}/${e.term}`));
    } finally {
      log.release();
      await node.stop();
    }
  });
});
