/**
 * Prometheus metrics: one Registry per node (tests run many nodes in one process). main.ts creates
 * it; the node observer and the API update it.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { RaftNode } from './raft/node/node.js';
import type { SoftState } from './raft/core/types.js';

export interface NodeMetrics {
  registry: Registry;
  leaderChanges: Counter;
  onSoftState(s: SoftState, prev: SoftState | null): void;
}

/** Creates the registry with the Raft gauges, read from `node` at scrape time. */
export function createMetrics(nodeId: string, getNode: () => RaftNode | null, withDefaults: boolean): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  if (withDefaults) collectDefaultMetrics({ register: registry });
  const status = () => getNode()?.status();
  new Gauge({ name: 'raftkv_raft_term', help: 'Current Raft term', registers: [registry], collect() { this.set(status()?.term ?? 0); } });
  new Gauge({ name: 'raftkv_raft_is_leader', help: '1 if this node is the leader', registers: [registry], collect() { this.set(status()?.role === 'leader' ? 1 : 0); } });
  new Gauge({ name: 'raftkv_raft_commit_index', help: 'Highest log index known to be committed', registers: [registry], collect() { this.set(status()?.commitIndex ?? 0); } });
  new Gauge({ name: 'raftkv_raft_applied_index', help: 'Highest log index applied to the key-value store', registers: [registry], collect() { this.set(getNode()?.appliedIndex() ?? 0); } });
  new Gauge({ name: 'raftkv_raft_last_log_index', help: 'Index of the last entry in the local log', registers: [registry], collect() { this.set(status()?.lastIndex ?? 0); } });
  const leaderChanges = new Counter({ name: 'raftkv_raft_leader_changes_total', help: 'Times this node saw the leader change', registers: [registry] });
  return {
    registry,
    leaderChanges,
    onSoftState(s, prev) {
      if (!prev || prev.leaderId !== s.leaderId) leaderChanges.inc();
    },
  };
}
