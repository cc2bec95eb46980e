/**
 * ReadIndex (thesis §6.4): linearizable reads without writing to the log. The leader records its
 * commit index for each read, confirms with a heartbeat round (`ctx`) that it still leads, and
 * releases the read once a quorum acknowledged that round; the state machine then serves it once it
 * has applied that index. A follower forwards its reads to the leader and serves them at the index
 * the leader answers. Any change of leadership fails what is waiting, so the client retries. This
 * class holds the queues and their release / fail rules; raft.ts decides when a round is sent.
 */
import { quorumMin } from './quorum.js';
import type { ReadIndexResponse } from './messages.js';
import type { ReadFailure, ReadFailureReason, ReadState } from './ready.js';
import type { NodeId } from './types.js';

interface PendingRead {
  id: string;
  /** Null for a read issued on this node; otherwise the follower that forwarded it. */
  from: NodeId | null;
  index: number;
  ctx: number;
}

/** Reads forwarded by one follower, released together: the highest index of them serves all. */
export interface ReleasedReads {
  ids: string[];
  index: number;
}

export class ReadIndexQueue {
  /** The latest confirmation round started (the `ctx` of its heartbeats); rounds only grow. */
  private roundCtx = 0;
  /** Leader: reads waiting for the next round (the leader must first commit in its term). */
  private awaitingRound: { id: string; from: NodeId | null }[] = [];
  /** Leader: reads whose round is out, waiting for a quorum of acknowledgements. */
  private inRound: PendingRead[] = [];
  /** Follower: reads to forward to the leader with the next Ready. */
  private toForward: string[] = [];
  /** Follower: reads forwarded and not answered yet. */
  private forwarded = new Set<string>();
  private states: ReadState[] = [];
  private failures: ReadFailure[] = [];

  /** The latest round; the leader acknowledges its own rounds at once. */
  get ctx(): number { return this.roundCtx; }
  /** Leader: a read (local, or forwarded by `from`) waits for the next round. */
  awaitRound(id: string, from: NodeId | null): void { this.awaitingRound.push({ id, from }); }
  /** Follower: a local read to forward to the leader. */
  forward(id: string): void { this.toForward.push(id); }
  /** A read that will not be confirmed. */
  fail(id: string, reason: ReadFailureReason): void { this.failures.push({ id, reason }); }
  get hasAwaitingRound(): boolean { return this.awaitingRound.length > 0; }
  get hasToForward(): boolean { return this.toForward.length > 0; }
  /** Confirmed or failed reads for the next Ready. */
  get hasResults(): boolean { return this.states.length > 0 || this.failures.length > 0; }

  /** Leader: starts a round for every waiting read at `commitIndex`; returns its ctx, or null when nothing waits. */
  startRound(commitIndex: number): number | null {
    if (this.awaitingRound.length === 0) return null;
    const ctx = ++this.roundCtx;
    for (const r of this.awaitingRound) this.inRound.push({ id: r.id, from: r.from, index: commitIndex, ctx });
    this.awaitingRound = [];
    return ctx;
  }

  /** Follower: the reads to forward now (the queue is emptied); `isSent` false fails them (no leader). */
  takeToForward(isSent: boolean): string[] {
    const ids = this.toForward;
    if (isSent) for (const id of ids) this.forwarded.add(id);
    else for (const id of ids) this.failures.push({ id, reason: 'no-leader' });
    this.toForward = [];
    return ids;
  }

  /**
   * Leader: `acked` holds, per voter, the highest round it acknowledged. Every read of a round a
   * quorum acknowledged is released: local ones become read states, forwarded ones are returned
   * grouped by follower for a ReadIndexResponse.
   */
  release(acked: number[]): Map<NodeId, ReleasedReads> {
    const remote = new Map<NodeId, ReleasedReads>();
    if (this.inRound.length === 0) return remote;
    // MUTATION-POINT: readindex-quorum
    const confirmedCtx = quorumMin(acked);
    const still: PendingRead[] = [];
    for (const r of this.inRound) {
      if (r.ctx > confirmedCtx) {
        still.push(r);
      } else if (r.from === null) {
        this.states.push({ id: r.id, index: r.index });
      } else {
        const group = remote.get(r.from) ?? { ids: [], index: r.index };
        group.ids.push(r.id);
        group.index = Math.max(group.index, r.index);
        remote.set(r.from, group);
      }
    }
    this.inRound = still;
    return remote;
  }

  /** Follower: the leader's answer to forwarded reads (unknown ids, e.g. already failed, are ignored). */
  answer(m: ReadIndexResponse): void {
    for (const id of m.ids) {
      if (!this.forwarded.delete(id)) continue;
      if (m.ok) this.states.push({ id, index: m.index });
      else this.failures.push({ id, reason: 'not-leader' });
    }
  }

  /** Leadership changed: every read this node waits for fails (forwarded reads of followers are dropped; they fail on their side). */
  failAll(reason: 'leadership-lost'): void {
    for (const r of this.awaitingRound) if (r.from === null) this.failures.push({ id: r.id, reason });
    for (const r of this.inRound) if (r.from === null) this.failures.push({ id: r.id, reason });
    for (const id of this.forwarded) this.failures.push({ id, reason });
    for (const id of this.toForward) this.failures.push({ id, reason });
    this.awaitingRound = [];
    this.inRound = [];
    this.forwarded.clear();
    this.toForward = [];
  }

  /** Hands the confirmed reads to a Ready and starts a new list. */
  takeStates(): ReadState[] {
    const s = this.states;
    this.states = [];
    return s;
  }

  /** Hands the failed reads to a Ready and starts a new list. */
  takeFailures(): ReadFailure[] {
    const f = this.failures;
    this.failures = [];
    return f;
  }
}
