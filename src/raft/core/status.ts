/**
 * What the core answers outside the Ready: the outcome of propose / proposeConfChange /
 * transferLeadership, and the read-only status view used by /cluster, metrics and the simulator.
 */
import type { ClusterConfig, NodeId, Suffrage } from './types.js';
import type { Role } from './ready.js';

/** Why a proposal, membership change or transfer was refused. */
export type RejectReason =
  | 'not-leader'
  | 'transferring'
  | 'conf-change-pending'
  | 'no-commit-in-term'
  | 'unknown-member'
  | 'already-member'
  | 'not-caught-up'
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
