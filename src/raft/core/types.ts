/**
 * The data every part of the core shares: node ids, members and configurations, log entries, hard
 * state and snapshots. Pure, JSON-serialisable data. It also re-exports the types of messages.ts,
 * ready.ts, status.ts and options.ts, so code outside the core (driver, storage, transport, client)
 * imports the core's types from this one place; modules inside the core import the file they need.
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

export type * from './messages.js';
export type * from './ready.js';
export type * from './status.js';
export type { RaftOptions, RaftInitialState } from './options.js';
