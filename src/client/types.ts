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

/** A condition on a write: `ifMatch` the key's index (or any of several; `'*'` = the key exists), `ifNoneMatch: '*'` = it does not. */
export interface WriteConditions {
  ifMatch?: number | number[] | '*';
  ifNoneMatch?: '*';
}

/** One compare of a transaction (see docs/api.md). */
export type TxnCompare =
  | { key: string; index: number | { lt?: number; le?: number; gt?: number; ge?: number } }
  | { key: string; exists: boolean }
  | { key: string; value: string };

/** One operation of a transaction branch. */
export type TxnOp = { op: 'set'; key: string; value: string } | { op: 'delete'; key: string } | { op: 'get'; key: string };

/** A transaction: compares, then the success or the failure branch, atomically at one index. */
export interface TxnRequest {
  compare?: TxnCompare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

/** The result of one operation of the branch that ran. */
export type TxnOpResult =
  | { op: 'set'; key: string; index: number }
  | { op: 'delete'; key: string; deleted: boolean }
  | { op: 'get'; key: string; value: string | null; index: number | null };

/** The answer to a transaction. */
export interface TxnResult {
  succeeded: boolean;
  /** The index the transaction was applied at (a read-only one: the index it read at). */
  index: number;
  results: TxnOpResult[];
}

/** Options of RaftKvClient.list and listPage. */
export interface ListOptions {
  /** Keys per page (default 100, at most the server's MAX_LIST_LIMIT). */
  pageSize?: number;
  keysOnly?: boolean;
  consistency?: Consistency;
}

/** One listed key; `value` is absent with keysOnly. */
export interface ListItem {
  key: string;
  value?: string;
  index: number;
}

/** One page of a listing. */
export interface ListPage {
  /** The index whose state the page shows: every page of one listing shows its first page's index. */
  index: number;
  items: ListItem[];
  /** A token for the next page, or null on the last page. */
  continue: string | null;
  /** Keys in the whole range at `index`, when asked for. */
  count?: number;
}
