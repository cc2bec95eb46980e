/** A hand-cranked network of Raft cores for unit tests: messages move only when a test says so. */
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { ClusterConfig, Entry, HardState, HeldSnapshot, Message, RaftOptions, Ready, Snapshot } from '../../../../src/raft/core/types.js';

export interface TestNode {
  raft: Raft;
  persistedHardState: HardState;
  persistedEntries: Entry[];
  /** Entries applied one by one (not those covered by an installed snapshot). */
  applied: Entry[];
  readReady: Ready[];
  /** The toy state machine: the data of every normal entry applied, in order (snapshots carry it as JSON). */
  sm: string[];
  /** Index the toy state machine has applied (entries or snapshot). */
  smIndex: number;
  persistedSnapshot: HeldSnapshot | null;
  /** The toy state machine as durably stored at the persisted snapshot's index (what a data-less snapshot stands for). */
  persistedSm: string[];
  /** Snapshots received from a leader and installed, in order. */
  installed: Snapshot[];
}

/** A fresh TestNode around `raft`. */
export function testNode(raft: Raft): TestNode {
  return { raft, persistedHardState: { term: 0, votedFor: null }, persistedEntries: [], applied: [], readReady: [], sm: [], smIndex: 0, persistedSnapshot: null, persistedSm: [], installed: [] };
}

/** A config where every id is a voter. */
export function votersConfig(ids: string[]): ClusterConfig {
  return { members: ids.map((id) => ({ id, suffrage: 'voter' as const, raftAddr: '', apiAddr: '' })) };
}

/** Deterministic rng for tests: a fixed sequence scaled per node so timeouts differ. */
function fixedRng(k: number): () => number {
  let x = k * 0.137;
  return () => {
    x = (x + 0.318) % 1;
    return x;
  };
}

export class TestNet {
  nodes = new Map<string, TestNode>();
  inFlight: Message[] = [];
  /** Pairs "a->b" whose messages are dropped. */
  blocked = new Set<string>();
  /** Drops a message when it returns true (after `blocked`). */
  dropIf: ((m: Message) => boolean) | null = null;
  /** Every message delivered, in order (for assertions on what crossed the network). */
  delivered: Message[] = [];

  constructor(ids: string[], opts: { preVote?: boolean; checkQuorum?: boolean; tune?: (o: RaftOptions) => void } = {}) {
    const config = votersConfig(ids);
    ids.forEach((id, k) => {
      const o = defaultRaftOptions(id, fixedRng(k + 1));
      o.preVote = opts.preVote ?? true;
      o.checkQuorum = opts.checkQuorum ?? true;
      opts.tune?.(o);
      const raft = new Raft(o, { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
      raft.bootstrap(config);
      this.nodes.set(id, testNode(raft));
    });
    this.processAll();
  }

  /** Has node `id` snapshot its toy state machine at its applied index and compact its log (as the driver does). */
  compact(id: string): Snapshot | null {
    return this.persistCompaction(id, this.node(id).raft.compact(this.node(id).smIndex, JSON.stringify(this.node(id).sm))) as Snapshot | null;
  }

  /** Like compact(), but without data: the state machine holds it (the RocksDB driver's way). */
  compactWithoutData(id: string): HeldSnapshot | null {
    return this.persistCompaction(id, this.node(id).raft.compact(this.node(id).smIndex, null));
  }

  /** Answers needsSnapshotData as the driver does: the toy state machine serialised at its applied index. */
  supplySnapshot(id: string): HeldSnapshot | null {
    const n = this.node(id);
    return this.persistCompaction(id, n.raft.supplySnapshotData(n.smIndex, JSON.stringify(n.sm)));
  }

  private persistCompaction(id: string, snap: HeldSnapshot | null): HeldSnapshot | null {
    const n = this.node(id);
    if (snap) {
      if (snap.meta.lastIndex !== n.smIndex) throw new Error(`harness: snapshot at ${snap.meta.lastIndex} but the state machine is at ${n.smIndex}`);
      n.persistedSnapshot = snap;
      n.persistedSm = [...n.sm];
      n.persistedEntries = n.persistedEntries.filter((e) => e.index > snap.meta.lastIndex);
    }
    return snap;
  }

  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: string): Raft {
    return this.node(id).raft;
  }

  /** Handles every node's Ready the way the driver does: persist, queue messages, apply, advance. */
  processAll(): void {
    for (const n of this.nodes.values()) this.process(n);
  }

  process(n: TestNode): Ready | null {
    if (!n.raft.hasReady()) return null;
    const rd = n.raft.ready();
    if (rd.snapshot) {
      // Persist the received snapshot (discarding the whole stored log), then install it below.
      n.persistedSnapshot = rd.snapshot;
      n.persistedEntries = [];
    }
    if (rd.hardState) n.persistedHardState = rd.hardState;
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      n.persistedEntries = n.persistedEntries.filter((e) => e.index < first).concat(rd.entries);
    }
    this.inFlight.push(...rd.messages);
    if (rd.snapshot) {
      n.sm = JSON.parse(rd.snapshot.data) as string[];
      n.smIndex = rd.snapshot.meta.lastIndex;
      n.installed.push(rd.snapshot);
    }
    for (const e of rd.committedEntries) {
      if (e.index !== n.smIndex + 1) throw new Error(`${n.raft.id}: applied ${e.index} after ${n.smIndex}`);
      if (e.type === 'normal') n.sm.push(e.data);
      n.smIndex = e.index;
    }
    n.applied.push(...rd.committedEntries);
    n.readReady.push(rd);
    n.raft.advance(rd);
    return rd;
  }

  /** Delivers queued messages (and the ones they cause) until the network is quiet. */
  deliverAll(maxRounds = 100): void {
    for (let i = 0; i < maxRounds; i++) {
      this.processAll();
      if (this.inFlight.length === 0) return;
      const batch = this.inFlight;
      this.inFlight = [];
      for (const m of batch) {
        if (this.blocked.has(`${m.from}->${m.to}`)) continue;
        if (this.dropIf?.(m)) continue;
        this.delivered.push(m);
        this.nodes.get(m.to)?.raft.step(m);
      }
    }
    throw new Error('network did not settle');
  }

  /** Ticks one node `n` times, delivering after each tick. */
  tickNode(id: string, n: number): void {
    for (let i = 0; i < n; i++) {
      this.raft(id).tick();
      this.deliverAll();
    }
  }

  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.raft.tick();
      this.deliverAll();
    }
  }

  /** Cuts every link between `id` and the rest (both directions). */
  isolate(id: string): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}->${other}`);
      this.blocked.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Elects `id` by ticking it past its election timeout with everyone else quiet. */
  elect(id: string): void {
    this.tickNode(id, 40);
    if (this.raft(id).status().role !== 'leader') throw new Error(`${id} was not elected`);
  }

  leaders(): string[] {
    return [...this.nodes.values()].filter((n) => n.raft.status().role === 'leader').map((n) => n.raft.id);
  }
}
