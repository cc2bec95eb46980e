/**
 * The Ready bundle: the core's single output, handed to the driver by Raft.ready() and acknowledged
 * by Raft.advance() (etcd's rawnode contract). The driver persists, then sends, then applies, then
 * advances; src/raft/node/node.ts and test/sim/cluster.ts are the two drivers.
 */
import type { Entry, HardState, NodeId, Snapshot } from './types.js';
import type { Message } from './messages.js';

/** The role a node plays in its current term (thesis §9.6 adds precandidate). */
export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

/** Volatile state the driver may report (metrics, /cluster); not persisted. */
export interface SoftState {
  role: Role;
  leaderId: NodeId | null;
  term: number;
}

/** A ReadIndex that has been confirmed: the read `id` may be served once the local state machine has applied `index`. */
export interface ReadState {
  id: string;
  index: number;
}

/**
 * Why a read could not be confirmed: no leader known, the leader refused it (it no longer leads), or
 * leadership changed while it waited (the client retries).
 */
export type ReadFailureReason = 'no-leader' | 'not-leader' | 'leadership-lost';

/** A read that will not be confirmed: the driver fails its waiter. */
export interface ReadFailure {
  id: string;
  reason: ReadFailureReason;
}

/**
 * What the driver must do, in this order: persist `snapshot`, then `entries` (deleting any stored
 * entry at index >= entries[0].index first) and `hardState`, syncing to disk; then send `messages`;
 * then restore `snapshot` into the state machine (if any) and apply `committedEntries`; then report
 * `readStates`/`readFailures` and call `advance(ready)`.
 */
export interface Ready {
  /** Present when term or vote changed since the last Ready. */
  hardState: HardState | null;
  /** Entries to append to stable storage. They may overwrite a suffix of what is stored. */
  entries: Entry[];
  /** A snapshot received from the leader, to persist and install (the log up to it is discarded). */
  snapshot: Snapshot | null;
  /** Messages to send, released only after the state above is persisted. */
  messages: Message[];
  /** Entries committed and not yet applied, in index order. */
  committedEntries: Entry[];
  readStates: ReadState[];
  readFailures: ReadFailure[];
  softState: SoftState;
  /** The commit index after this Ready; informational (the driver may persist it, it is not required). */
  commitIndex: number;
}
