/** Options and result types of RaftKvClient (browser-safe: no Node imports; type-only imports). */
import type { FullNodeView, LocalClusterView, NodeHealth } from '../api/cluster-types.js';
import type { LeaseLostError } from './errors.js';

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

/** Options of set and setMany: conditions, and `lease` to attach the keys to a lease (a write without it detaches them). */
export interface WriteOptions extends WriteConditions {
  /** A lease id (`l-42`, from grantLease or lease()): the keys are deleted when it expires or is revoked. */
  lease?: string;
}

/** One compare of a transaction (see docs/api.md). */
export type TxnCompare =
  | { key: string; index: number | { lt?: number; le?: number; gt?: number; ge?: number } }
  | { key: string; exists: boolean }
  | { key: string; value: string };

/** One operation of a transaction branch. */
export type TxnOp = { op: 'set'; key: string; value: string; lease?: string } | { op: 'delete'; key: string } | { op: 'get'; key: string };

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

/** One resolved effect in a watch `change` message. */
export type WatchEvent =
  | { type: 'put'; key: string; value: string; prevIndex: number | null; reason?: string; lease?: string }
  /** `reason` / `lease` name a lease that expired or was revoked, when the delete came from one. */
  | { type: 'delete'; key: string; prevIndex: number | null; reason?: string; lease?: string };

/**
 * What RaftKvClient.watch yields: a `change` (every matching effect of one log entry, in order) or a
 * `progress` (everything under the prefix up to `index` was delivered). Indexes strictly increase.
 */
export type WatchMessage = { type: 'change'; index: number; events: WatchEvent[] } | { type: 'progress'; index: number };

/** Options of RaftKvClient.watch. */
export interface WatchOptions {
  /** The first index to deliver (inclusive); without it the watch starts after the current index (told as a first `progress`). */
  from?: number;
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  /**
   * Failed connection attempts in a row (no message delivered in between) before the iterator throws
   * ClusterUnavailableError, or the last server error (default 20; `Infinity`: never give up).
   */
  retries?: number;
  /** A stream that delivers no byte for this long is dropped and resumed elsewhere (default 30000; 0: never). Keep it above the servers' WATCH_PROGRESS_INTERVAL_MS. */
  idleTimeoutMs?: number;
  /** Called each time a stream opens (200), with the endpoint serving it. */
  onConnect?: (endpoint: string) => void;
  /** Called when a stream fails or drops and the watch will resume elsewhere. */
  onRetry?: (info: { endpoint: string; error: Error; attempt: number }) => void;
}

/** The answer to grantLease: the new lease's id (`l-<index of the grant entry>`), its TTL and that index. */
export interface LeaseGrant {
  id: string;
  ttlMs: number;
  index: number;
}

/** The answer to keepAliveLease: the leader's remaining time for the lease after the renewal. */
export interface LeaseKeepAlive {
  id: string;
  ttlMs: number;
  remainingMs: number | null;
}

/** The answer to revokeLease. */
export interface LeaseRevoke {
  id: string;
  revoked: true;
  /** The index of the revoke; null when a retry found the lease gone after an attempt whose answer was lost. */
  index: number | null;
  /** The keys deleted with the lease (null as for `index`). */
  deleted: string[] | null;
}

/** One lease as getLease and listLeases report it. */
export interface LeaseInfo {
  id: string;
  ttlMs: number;
  /** The index of the grant (getLease only). */
  grantedIndex?: number;
  /** The leader's remaining time; null when a follower answered (only the leader has the deadline). */
  remainingMs: number | null;
  /** The attached keys, with getLease(id, {keys: true}). */
  keys?: string[];
}

/** The answer to listLeases: every lease at `index`. */
export interface LeaseList {
  index: number;
  leases: LeaseInfo[];
}

/** Options of RaftKvClient.lease (the self-renewing handle). */
export interface LeaseOptions {
  /** Time between keepalives (default ttlMs / 3). Failed keepalives are retried sooner, on other endpoints. */
  keepAliveIntervalMs?: number;
  /** Called after each acknowledged keepalive. */
  onKeepAlive?: (r: LeaseKeepAlive) => void;
  /** Called once when the lease is lost (also told by the handle's `lost` promise and `signal`). */
  onLost?: (error: LeaseLostError) => void;
}
