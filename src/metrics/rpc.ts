/**
 * Pure helpers for the Raft RPC metrics: the label of a message and a tracker that pairs a request
 * with its response. Raft messages travel one way (the response is a separate message), so an RPC's
 * round trip is measured by matching the response to the request it answers. Used by metrics/index.ts.
 */
import type { Message } from '../raft/core/types.js';

/** The `type` label of a message; PreVote rounds (thesis §9.6) are told apart from real votes. */
export function rpcType(m: Message): string {
  if (m.type === 'RequestVote') return m.preVote ? 'PreVote' : 'RequestVote';
  if (m.type === 'RequestVoteResponse') return m.preVote ? 'PreVoteResponse' : 'RequestVoteResponse';
  return m.type;
}

/** The `result` label of a message: the outcome for responses, `none` for requests. */
export function rpcResult(m: Message): string {
  switch (m.type) {
    case 'AppendEntriesResponse':
      return m.success ? 'success' : 'rejected';
    case 'RequestVoteResponse':
      return m.granted ? 'granted' : 'rejected';
    case 'ReadIndexResponse':
      return m.ok ? 'success' : 'rejected';
    case 'HeartbeatResponse':
    case 'InstallSnapshotResponse':
      return 'success';
    default:
      return 'none';
  }
}

interface Pending {
  /** Correlates the response: AppendEntries (prevLogIndex, last index), RequestVote (term, term), Heartbeat (ctx, ctx). */
  a: number;
  b: number;
  atMs: number;
}

/** One round trip observed: the request type and its duration. */
export interface RpcRoundTrip {
  type: 'AppendEntries' | 'RequestVote' | 'PreVote' | 'Heartbeat';
  seconds: number;
}

/**
 * Pairs requests with responses per peer. AppendEntries is matched by the index its success
 * acknowledges (prevLogIndex + entries) or its rejection echoes (prevLogIndex); votes by term;
 * heartbeats only when they carry a ReadIndex round (ctx > 0, unique per round). Unanswered requests
 * (Raft tolerates loss) expire after `maxAgeMs` and each queue is bounded, so memory stays bounded.
 */
export class RpcRoundTripTracker {
  private pending = new Map<string, Pending[]>();

  constructor(private readonly opts: { maxAgeMs: number; maxPerQueue: number } = { maxAgeMs: 10_000, maxPerQueue: 512 }) {}

  /** Records a message this node sent at `nowMs`. */
  sent(m: Message, nowMs: number): void {
    switch (m.type) {
      case 'AppendEntries':
        this.push(`${m.to}|AppendEntries`, { a: m.prevLogIndex, b: m.prevLogIndex + m.entries.length, atMs: nowMs });
        return;
      case 'RequestVote':
        this.push(`${m.to}|${m.preVote ? 'PreVote' : 'RequestVote'}`, { a: m.term, b: m.term, atMs: nowMs });
        return;
      case 'Heartbeat':
        if (m.ctx > 0) this.push(`${m.to}|Heartbeat`, { a: m.ctx, b: m.ctx, atMs: nowMs });
        return;
      default:
        return;
    }
  }

  /** Records a message this node received at `nowMs`; returns the round trip it completes, if any. */
  received(m: Message, nowMs: number): RpcRoundTrip | null {
    switch (m.type) {
      case 'AppendEntriesResponse':
        return m.success
          ? this.take(`${m.from}|AppendEntries`, 'AppendEntries', (p) => p.b === m.matchIndex, nowMs)
          : this.take(`${m.from}|AppendEntries`, 'AppendEntries', (p) => p.a === m.rejectedIndex, nowMs);
      case 'RequestVoteResponse': {
        const type = m.preVote ? 'PreVote' : 'RequestVote';
        return this.take(`${m.from}|${type}`, type, (p) => p.a === m.term, nowMs);
      }
      case 'HeartbeatResponse':
        return m.ctx > 0 ? this.take(`${m.from}|Heartbeat`, 'Heartbeat', (p) => p.a === m.ctx, nowMs) : null;
      default:
        return null;
    }
  }

  /** Requests still waiting for an answer (for tests). */
  size(): number {
    let n = 0;
    for (const q of this.pending.values()) n += q.length;
    return n;
  }

  private push(key: string, p: Pending): void {
    let q = this.pending.get(key);
    if (!q) {
      q = [];
      this.pending.set(key, q);
    }
    q.push(p);
    this.expire(q, p.atMs);
    if (q.length > this.opts.maxPerQueue) q.splice(0, q.length - this.opts.maxPerQueue);
  }

  private take(key: string, type: RpcRoundTrip['type'], matches: (p: Pending) => boolean, nowMs: number): RpcRoundTrip | null {
    const q = this.pending.get(key);
    if (!q) return null;
    this.expire(q, nowMs);
    const i = q.findIndex(matches);
    if (i < 0) return null;
    const [p] = q.splice(i, 1);
    return { type, seconds: Math.max(0, nowMs - p.atMs) / 1000 };
  }

  private expire(q: Pending[], nowMs: number): void {
    let drop = 0;
    while (drop < q.length && nowMs - q[drop].atMs > this.opts.maxAgeMs) drop++;
    if (drop > 0) q.splice(0, drop);
  }
}
