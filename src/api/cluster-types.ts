/**
 * The shapes of `GET /cluster` and `GET /cluster?view=all`, declared once: built by
 * src/api/cluster-view.ts, read by the client library (src/client) and the tests. Types only, no
 * runtime imports, so the browser-safe client can `import type` them.
 */

/** Health of one member in the whole-cluster view. */
export type NodeHealth = 'ok' | 'lagging' | 'no-contact' | 'unreachable' | 'unknown';

/** One member as this node sees it. */
export interface LocalNodeView {
  id: string;
  raftAddr: string;
  apiAddr: string;
  suffrage: string;
  /** This node's own role for itself; `leader` for the known leader; on the leader, `follower`/`learner` for the rest; otherwise null. */
  role: string | null;
  /** The incarnation the configuration records for this member (docs/cluster-identity.md). */
  incarnation?: string;
  /** Only known on the leader (and for the leader itself). */
  matchIndex?: number;
  ticksSinceContact?: number;
  /** Leader's last index minus this member's match index (leader only). */
  lag?: number;
  /** Milliseconds since the leader last heard from this member (leader only; 0 for itself). */
  lastContactMs?: number;
}

/** The body of `GET /cluster` without `view=all`. */
export interface LocalClusterView {
  id: string;
  /** This node's cluster id (null before it joined) and its own incarnation. */
  clusterId?: string | null;
  incarnation?: string;
  role: string;
  leader: { id: string; apiAddr: string | null } | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** Last index covered by this node's latest snapshot (0 when none). */
  snapshotIndex: number;
  nodes: LocalNodeView[];
}

/** One member in the whole-cluster view: its own report merged with the leader's progress for it. */
export interface FullNodeView extends LocalNodeView {
  reachable: boolean;
  term: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  lastIndex: number | null;
  /** The member's own report of its cluster id, incarnation and the term of its entry at the leader's matchIndex (null when unknown). */
  ownClusterId?: string | null;
  ownIncarnation?: string | null;
  health: NodeHealth;
  /** Why the member's own report is missing, when it is. */
  error?: string;
}

/** The body of `GET /cluster?view=all`. */
export interface FullClusterView extends Omit<LocalClusterView, 'nodes'> {
  view: 'all';
  observedAt: string;
  nodes: FullNodeView[];
}
