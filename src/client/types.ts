/** Options and result types of RaftKvClient (browser-safe: no Node imports). */

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

/** Health of a member as the whole-cluster view reports it. */
export type NodeHealth = 'ok' | 'lagging' | 'no-contact' | 'unreachable' | 'unknown';

/** One member in the whole-cluster view. */
export interface ClusterNode {
  id: string;
  raftAddr: string;
  apiAddr: string;
  suffrage: string;
  role: string | null;
  reachable: boolean;
  term: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  lastIndex: number | null;
  /** From the leader: highest log index known to match the leader's. */
  matchIndex: number | null;
  /** From the leader: its last index minus this member's match index. */
  lag: number | null;
  /** From the leader: milliseconds since it last heard from this member. */
  lastContactMs: number | null;
  health: NodeHealth;
  error: string | null;
}

/** The answer to cluster(): the answering node's view plus every member's own report. */
export interface ClusterInfo {
  /** The node that answered. */
  id: string;
  role: string;
  leader: { id: string; apiAddr: string | null } | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
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
