/** Options and result types of RaftKvClient (browser-safe: no Node imports; type-only imports). */
import type { FullNodeView, LocalClusterView, NodeHealth } from '../api/cluster-types.js';

/** How to construct a RaftKvClient. */
export interface RaftKvClientOptions {
  /** API base URLs of some or all nodes, e.g. `['http://app1:8081', 'http://app2:8082']`. */
  endpoints: string[];
  /** Per-request deadline in milliseconds (default 10000; keep it above the server's REQUEST_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Extra attempts after the first for a retryable failure (default 6). */
  retries?: number;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string;
  /** First backoff step in milliseconds (default 100); step n waits a random time in [0, min(max, base·2^n)]. */
  backoffBaseMs?: number;
  /** Cap of one backoff step in milliseconds (default 2000). */
  backoffMaxMs?: number;
}

/** Read consistency: `linearizable` (default, ReadIndex) or `stale` (the answering node's local state). */
export type Consistency = 'linearizable' | 'stale';

/** Options of RaftKvClient.get. */
export interface GetOptions {
  consistency?: Consistency;
}

/** The answer to a get. */
export interface GetResult {
  key: string;
  value: string;
  /** Raft log index of the entry that last wrote the key (from `ETag`), when reported. */
  index: number | null;
}

/** The answer to set and setMany: the log index of the committed entry (from `X-Raft-Index`). */
export interface WriteResult {
  index: number | null;
  /** The leader at the time of the answer (from `X-Raft-Leader`). */
  leaderId: string | null;
}

/** The answer to delete. */
export interface DeleteResult extends WriteResult {
  deleted: string;
}

/** Health of a member as the whole-cluster view reports it (declared with the server's view). */
export type { NodeHealth };

/** One member in the whole-cluster view, with the leader-only fields and `error` as null when absent. */
export interface ClusterNode extends Omit<FullNodeView, 'ticksSinceContact' | 'matchIndex' | 'lag' | 'lastContactMs' | 'error'> {
  /** From the leader: highest log index known to match the leader's. */
  matchIndex: number | null;
  /** From the leader: its last index minus this member's match index. */
  lag: number | null;
  /** From the leader: milliseconds since it last heard from this member. */
  lastContactMs: number | null;
  error: string | null;
}

/** The answer to cluster(): the answering node's view (`id` is the node that answered) plus every member's own report. */
export interface ClusterInfo extends Omit<LocalClusterView, 'snapshotIndex' | 'nodes'> {
  nodes: ClusterNode[];
  /** The endpoint that answered. */
  endpoint: string;
}

/** A member as listed after a membership change. */
export interface Member {
  id: string;
  raftAddr: string;
  apiAddr: string;
  suffrage: string;
}

/** The answer to removeNode. */
export interface RemoveNodeResult {
  removed: string;
  nodes: Member[];
}
