/** The core's tunables and the state it restarts from; the node driver maps configuration onto them. */
import type { Entry, HardState, HeldSnapshot, NodeId } from './types.js';

/** Tunables of the core; every time is in ticks. */
export interface RaftOptions {
  id: NodeId;
  /** This process's incarnation (Member.incarnation); '' when incarnations are not used. */
  incarnation: string;
  /** Base election timeout; the actual timeout is uniformly random in [base, 2*base). */
  electionTimeoutTicks: number;
  heartbeatTicks: number;
  /** Seeded random source in [0, 1): the only randomness the core uses. */
  rng: () => number;
  preVote: boolean;
  checkQuorum: boolean;
  maxEntriesPerAppend: number;
  maxBytesPerAppend: number;
  /** Bound on AppendEntries messages in flight to one follower (pipelining window). */
  maxInflight: number;
  /** Size of one InstallSnapshot chunk, in characters of the snapshot's data (≈ bytes for ASCII JSON). */
  maxSnapshotChunkBytes: number;
  /**
   * Entries at or before a new snapshot's index kept in memory by compact(), so a follower that lags
   * by a little is still served by AppendEntries rather than a whole InstallSnapshot. 0 keeps none.
   */
  compactionTailEntries: number;
  /** Bound on the bytes of entry data kept by compactionTailEntries (whichever keeps fewer entries). */
  compactionTailBytes: number;
  /** Bound on the bytes of committed entries handed out in one Ready. */
  maxApplyBytes: number;
  /**
   * Most entries a leader holds beyond its commit index: further proposals are refused
   * ('too-many-uncommitted') until followers catch up, so a slow quorum means back-pressure
   * rather than an unbounded log that can take ever longer to commit.
   */
  maxUncommittedEntries: number;
  /** When true the leader promotes a learner to voter once it has caught up. */
  autoPromote: boolean;
}

/** What the core restarts from: everything the driver persisted. */
export interface RaftInitialState {
  hardState: HardState;
  snapshot: HeldSnapshot | null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];
  /** Index the state machine has applied (≥ snapshot.lastIndex); committed entries after it are applied again. */
  applied: number;
}

/** Sensible defaults for the core's tunables; the node driver maps configuration onto them. */
export function defaultRaftOptions(id: NodeId, rng: () => number): RaftOptions {
  return {
    id,
    incarnation: '',
    electionTimeoutTicks: 10,
    heartbeatTicks: 2,
    rng,
    preVote: true,
    checkQuorum: true,
    maxEntriesPerAppend: 512,
    maxBytesPerAppend: 1 << 20,
    maxInflight: 16,
    maxSnapshotChunkBytes: 512 * 1024,
    compactionTailEntries: 0,
    compactionTailBytes: 8 << 20,
    maxApplyBytes: 4 << 20,
    maxUncommittedEntries: 10_000,
    autoPromote: true,
  };
}
