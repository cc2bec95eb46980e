/** A hand-cranked network of Raft cores for unit tests: messages move only when a test says so. */
import { Raft, defaultRaftOptions } from '../../../src/raft/core/raft.js';
import type { ClusterConfig, Entry, HardState, Message, Ready } from '../../../src/raft/core/types.js';

export interface TestNode {
  raft: Raft;
  persistedHardState: HardState;
  persistedEntries: Entry[];
  applied: Entry[];
  readReady: Ready[];
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

  constructor(ids: string[], opts: { preVote?: boolean; checkQuorum?: boolean } = {}) {
    const config = votersConfig(ids);
    ids.forEach((id, k) => {
      const o = defaultRaftOptions(id, fixedRng(k + 1));
      o.preVote = opts.preVote ?? true;
      o.checkQuorum = opts.checkQuorum ?? true;
      const raft = new Raft(o, { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
      raft.bootstrap(config);
      this.nodes.set(id, { raft, persistedHardState: { term: 0, votedFor: null }, persistedEntries: [], applied: [], readReady: [] });
    });
    this.processAll();
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
    if (rd.hardState) n.persistedHardState = rd.hardState;
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      n.persistedEntries = n.persistedEntries.filter((e) => e.index < first).concat(rd.entries);
    }
    this.inFlight.push(...rd.messages);
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
