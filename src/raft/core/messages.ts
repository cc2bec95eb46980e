/**
 * The messages Raft peers exchange (Raft §5, thesis §3.10, §4, §6.4, §9.6). Every message carries
 * the sender's term; a discriminated union on `type`, JSON-serialisable so the transport sends it
 * as-is. Produced by the core (raft.ts) and validated at the boundary by src/transport/validate.ts.
 */
import type { Entry, NodeId, SnapshotMeta } from './types.js';


interface MessageBase {
  from: NodeId;
  to: NodeId;
  term: number;
  /** The sender's incarnation (stamped by the core when sending; '' when absent). */
  fromInc?: string;
  /** The incarnation of `to` the sender addresses; a receiver of another incarnation drops it. */
  toInc?: string;
}

/** RequestVote (Raft §5.2), also used for PreVote (thesis §9.6) where `term` is the term the sender would campaign in. */
export interface RequestVote extends MessageBase {
  type: 'RequestVote';
  preVote: boolean;
  lastLogIndex: number;
  lastLogTerm: number;
  /** Set when campaigning because of TimeoutNow: voters ignore their leader lease (thesis §3.10). */
  transfer: boolean;
}

/** The answer to RequestVote (or PreVote); a granted pre-vote carries the term asked for. */
export interface RequestVoteResponse extends MessageBase {
  type: 'RequestVoteResponse';
  preVote: boolean;
  granted: boolean;
}

/** AppendEntries (Raft §5.3). Carries up to maxEntriesPerAppend / maxBytesPerAppend entries. */
export interface AppendEntries extends MessageBase {
  type: 'AppendEntries';
  prevLogIndex: number;
  prevLogTerm: number;
  entries: Entry[];
  leaderCommit: number;
}

/**
 * Reply to AppendEntries. On success `matchIndex` is the last index known to match the leader's log.
 * On rejection `rejectedIndex` echoes the request's prevLogIndex and the hint (conflictIndex,
 * conflictTerm) lets the leader skip a whole term per round trip (fast backtracking).
 */
export interface AppendEntriesResponse extends MessageBase {
  type: 'AppendEntriesResponse';
  success: boolean;
  matchIndex: number;
  rejectedIndex: number;
  conflictIndex: number;
  /** Term of the follower's entry at rejectedIndex, or 0 when its log is too short. */
  conflictTerm: number;
}

/**
 * Leader liveness and ReadIndex confirmation. `commit` is min(leader commit, follower's match) so a
 * follower never commits entries it may not share with the leader. `ctx` is the ReadIndex round.
 */
export interface Heartbeat extends MessageBase {
  type: 'Heartbeat';
  commit: number;
  ctx: number;
}

/** The answer to Heartbeat: echoes the ReadIndex round it confirms. */
export interface HeartbeatResponse extends MessageBase {
  type: 'HeartbeatResponse';
  ctx: number;
}

/** A chunk of the leader's snapshot (InstallSnapshot, Raft §7); chunks are sent one at a time per follower. */
export interface InstallSnapshot extends MessageBase {
  type: 'InstallSnapshot';
  meta: SnapshotMeta;
  offset: number;
  data: string;
  done: boolean;
}

/**
 * Acknowledges a chunk of the snapshot ending at `lastIndex`: `received` characters are buffered and
 * the next chunk must start there. `done` means the follower needs no more of it (installed, already
 * covered by its log, or stale) and `matchIndex` is then its new match.
 */
export interface InstallSnapshotResponse extends MessageBase {
  type: 'InstallSnapshotResponse';
  lastIndex: number;
  received: number;
  done: boolean;
  matchIndex: number;
}

/** A follower asks the leader for a read index on behalf of its clients (thesis §6.4). */
export interface ReadIndexRequest extends MessageBase {
  type: 'ReadIndex';
  ids: string[];
}

/** The leader's answer: reads `ids` may be served once the follower has applied `index`. ok=false: not leader any more. */
export interface ReadIndexResponse extends MessageBase {
  type: 'ReadIndexResponse';
  ids: string[];
  index: number;
  ok: boolean;
}

/** Leadership transfer (thesis §3.10): the receiver campaigns at once, skipping PreVote. */
export interface TimeoutNow extends MessageBase {
  type: 'TimeoutNow';
}

/** Every message between peers: a discriminated union on `type`. */
export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | ReadIndexRequest
  | ReadIndexResponse
  | TimeoutNow;

/** Exhaustiveness guard for switches over discriminated unions (messages, membership changes). */
export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
