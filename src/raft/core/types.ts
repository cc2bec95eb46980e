/**
 * The Raft core's vocabulary: log entries, cluster configuration, messages between peers and the
 * Ready bundle handed to the driver. Pure data — everything here is JSON-serialisable so the
 * transport can send it as-is. Imports nothing.
 */

/** A node's stable identity within a cluster (the NODE_ID of the process). */
export type NodeId = string;

/** Whether a member votes and counts towards quorum (voter) or only receives the log (learner). */
export type Suffrage = 'voter' | 'learner';

/** One member of the cluster as recorded in the replicated configuration. Addresses are opaque to the core. */
export interface Member {
  id: NodeId;
  suffrage: Suffrage;
  /** Peer RPC address (host:port), used by the transport. Empty in the simulator. */
  raftAddr: string;
  /** Client API address (host:port), used for forwarding and /cluster. Empty in the simulator. */
  apiAddr: string;
  /**
   * The incarnation of the process behind `id`: fresh random text each time a node starts with no
   * state (docs/cluster-identity.md). Messages name it; a node that lost its state is a new
   * incarnation, hence a new member. Absent (= '') in configurations written before incarnations.
   */
  incarnation?: string;
}

/** The set of members. Invariant: ids are unique. */
export interface ClusterConfig {
  members: Member[];
}

/** A single-server membership change (Raft thesis §4.1): one member added, promoted or removed at a time. */
export type ConfChange =
  | { op: 'addLearner'; member: Member }
  | { op: 'promote'; id: NodeId }
  | { op: 'remove'; id: NodeId };

/**
 * A log entry. `normal` carries an opaque application command; `noop` is appended by every new
 * leader (Raft §8); `config` carries a membership change together with the full resulting config,
 * which takes effect as soon as it is appended (thesis §4.1).
 */
export type Entry =
  | { index: number; term: number; type: 'normal'; data: string }
  | { index: number; term: number; type: 'noop' }
  | { index: number; term: number; type: 'config'; change: ConfChange; config: ClusterConfig };

/** Term and vote, which must be on stable storage before any message that depends on them is sent (Raft Fig. 2). */
export interface HardState {
  term: number;
  votedFor: NodeId | null;
}

/** Describes a snapshot: the state machine after applying every entry up to and including `lastIndex`. */
export interface SnapshotMeta {
  lastIndex: number;
  lastTerm: number;
  /** The configuration in force at lastIndex. */
  config: ClusterConfig;
}

/** A complete snapshot: metadata plus the application's opaque serialised state. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: string;
}

/**
 * A snapshot as a node holds it. `data` is null when the state machine itself holds the state at
 * `meta.lastIndex` durably (a RocksDB-backed store), so nothing is serialised until a follower needs
 * it: the core then asks for it (Raft.needsSnapshotData) and the driver supplies it.
 */
export interface HeldSnapshot {
  meta: SnapshotMeta;
  data: string | null;
}

// ---------------------------------------------------------------------------------------------
// Messages. Every message carries the sender's term; a discriminated union on `type`.
// ---------------------------------------------------------------------------------------------

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

export type MessageType = Message['type'];

// ---------------------------------------------------------------------------------------------
// Roles, results and the Ready bundle.
// ---------------------------------------------------------------------------------------------

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

export type ReadFailureReason = 'no-leader' | 'not-leader' | 'leadership-lost' | 'removed';

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

/** Why a proposal, membership change or transfer was refused. */
export type RejectReason =
  | 'not-leader'
  | 'transferring'
  | 'conf-change-pending'
  | 'no-commit-in-term'
  | 'unknown-member'
  | 'already-member'
  | 'not-caught-up'
  | 'removed'
  | 'too-large'
  | 'no-target'
  | 'too-many-uncommitted';

/** The result of propose / proposeConfChange: where the entry went, or why it was refused. */
export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; reason: RejectReason; leaderId: NodeId | null };

/** The result of transferLeadership: the voter chosen to take over, or why no transfer started. */
export type TransferResult =
  | { ok: true; to: NodeId }
  | { ok: false; reason: RejectReason; leaderId: NodeId | null };

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

/** Per-follower replication progress as seen by the leader (exposed for metrics and /cluster). */
export interface PeerStatus {
  id: NodeId;
  suffrage: Suffrage;
  matchIndex: number;
  nextIndex: number;
  state: 'probe' | 'replicate' | 'snapshot';
  inflight: number;
  /** Ticks since the leader last heard from this peer. */
  ticksSinceContact: number;
}

/** A read-only view of the core for status endpoints and invariant checks. */
export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  votedFor: NodeId | null;
  leaderId: NodeId | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  snapshotIndex: number;
  config: ClusterConfig;
  /** Only on the leader. */
  peers: PeerStatus[];
}
