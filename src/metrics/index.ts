/**
 * Prometheus metrics: one Registry per node (tests run many nodes in one process). main.ts creates
 * it and composes its decorators around the node's collaborators (storage, transport, peer server,
 * node observer); the API mounts `httpMetrics(registry)`. Gauges are read from the node at scrape
 * time, so the hot path only pays for counters and histograms. Every metric is listed in the README.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Middleware } from 'koa';
import type { RaftNode, RaftNodeObserver } from '../raft/node/node.js';
import type { Message, Role, SnapshotMeta, SoftState } from '../raft/core/types.js';
import type { NodeStorage } from '../storage/types.js';
import type { Transport } from '../transport/types.js';
import { RaftKvError } from '../errors.js';
import { RpcRoundTripTracker, rpcResult, rpcType } from './rpc.js';

/** Latency buckets in seconds for network round trips, commits and requests. */
const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Latency buckets in seconds for synced disk writes. */
const FSYNC_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ROLES: readonly Role[] = ['follower', 'precandidate', 'candidate', 'leader'];

/** The metrics of one node and the decorators main.ts composes around its collaborators. */
export interface NodeMetrics {
  registry: Registry;
  leaderChanges: Counter;
  /** Called from the node observer on every soft-state change. */
  onSoftState(s: SoftState, prev: SoftState | null): void;
  /** Called from the node observer's onSnapshot: counts snapshots taken and installed and records their size. */
  onSnapshot(kind: 'taken' | 'serialized' | 'installed', meta: SnapshotMeta, bytes: number): void;
  /** Observer callbacks (proposals, ReadIndex, compaction) to spread into the node's observer. */
  observer: Required<Pick<RaftNodeObserver, 'onProposalDone' | 'onReadIndexDone' | 'onEntriesCompacted'>>;
  /** Wraps the node's storage: times every synced log write and reports bytes on disk and keys. */
  wrapStorage<S extends NodeStorage>(storage: S): S;
  /** Wraps the transport: counts every message sent, by type and result, and starts round-trip timers. */
  wrapTransport<T extends Transport>(transport: T): T;
  /** Called by the peer server's onMessages for every batch received from a peer. */
  onMessagesReceived(msgs: readonly Message[]): void;
  /** Called from the node observer's onLeaseExpired: counts lease expiries applied here. */
  onLeaseExpired(): void;
}

function secondsSince(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

/** The `reason` label of a failed proposal or read: the error's stable code, lower case. */
function failureReason(err: Error): string {
  return err instanceof RaftKvError ? err.code.toLowerCase() : 'internal';
}

/** Creates the node's registry with every raftkv metric; the Raft gauges read `getNode()` at scrape time. */
export function createMetrics(nodeId: string, getNode: () => RaftNode | null, withDefaults: boolean): NodeMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  if (withDefaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const status = () => getNode()?.status();

  // --- Raft state, read at scrape time ---------------------------------------------------------
  new Gauge({ name: 'raftkv_raft_term', help: 'Current Raft term of this node', registers, collect() { this.set(status()?.term ?? 0); } });
  new Gauge({
    name: 'raftkv_raft_role',
    help: 'Role of this node: 1 for the role it is in, 0 for the others',
    labelNames: ['role'],
    registers,
    collect() {
      const role = status()?.role;
      for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  new Gauge({ name: 'raftkv_raft_is_leader', help: '1 if this node is the leader, else 0', registers, collect() { this.set(status()?.role === 'leader' ? 1 : 0); } });
  new Gauge({ name: 'raftkv_raft_has_leader', help: '1 if this node knows a leader, else 0', registers, collect() { this.set(getNode()?.leaderId() ? 1 : 0); } });
  new Gauge({ name: 'raftkv_raft_commit_index', help: 'Highest log index known to be committed', registers, collect() { this.set(status()?.commitIndex ?? 0); } });
  new Gauge({ name: 'raftkv_raft_applied_index', help: 'Highest log index applied to the key-value store', registers, collect() { this.set(getNode()?.appliedIndex() ?? 0); } });
  new Gauge({ name: 'raftkv_raft_last_log_index', help: 'Index of the last entry in the local log', registers, collect() { this.set(status()?.lastIndex ?? 0); } });
  new Gauge({ name: 'raftkv_raft_snapshot_index', help: 'Last log index covered by the latest snapshot (0 without one)', registers, collect() { this.set(status()?.snapshotIndex ?? 0); } });
  new Gauge({
    name: 'raftkv_raft_members',
    help: 'Members of the configuration in force, by suffrage',
    labelNames: ['suffrage'],
    registers,
    collect() {
      const members = getNode()?.members() ?? [];
      this.set({ suffrage: 'voter' }, members.filter((m) => m.suffrage === 'voter').length);
      this.set({ suffrage: 'learner' }, members.filter((m) => m.suffrage === 'learner').length);
    },
  });
  new Gauge({
    name: 'raftkv_raft_peer_match_index',
    help: 'Highest log index known to be replicated on each peer (leader only)',
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      for (const p of status()?.peers ?? []) this.set({ peer: p.id }, p.matchIndex);
    },
  });
  new Gauge({
    name: 'raftkv_raft_peer_replication_lag_entries',
    help: "Entries in the leader's log not yet replicated to each peer: last log index - match index (leader only)",
    labelNames: ['peer'],
    registers,
    collect() {
      this.reset();
      const st = status();
      for (const p of st?.peers ?? []) this.set({ peer: p.id }, Math.max(0, st!.lastIndex - p.matchIndex));
    },
  });
  const leaderChanges = new Counter({ name: 'raftkv_raft_leader_changes_total', help: 'Times this node saw the known leader change (including to none)', registers });

  // --- Raft RPCs -----------------------------------------------------------------------------
  const rpcsSent = new Counter({ name: 'raftkv_raft_rpcs_sent_total', help: 'Raft messages sent to peers, by type and result (result is none for requests)', labelNames: ['type', 'result'], registers });
  const rpcsReceived = new Counter({ name: 'raftkv_raft_rpcs_received_total', help: 'Raft messages received from peers, by type and result (result is none for requests)', labelNames: ['type', 'result'], registers });
  const rpcDuration = new Histogram({
    name: 'raftkv_raft_rpc_duration_seconds',
    help: 'Round trip from sending a Raft request to receiving its response, in seconds (AppendEntries, RequestVote, PreVote, ReadIndex heartbeats)',
    labelNames: ['type'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const tracker = new RpcRoundTripTracker();

  // --- Proposals, reads, snapshots -----------------------------------------------------------
  const proposals = new Counter({ name: 'raftkv_raft_proposals_total', help: 'Proposals (writes and membership changes) submitted on this node', registers });
  const proposalsFailed = new Counter({ name: 'raftkv_raft_proposals_failed_total', help: 'Proposals that were not acknowledged, by reason (error code)', labelNames: ['reason'], registers });
  const commitDuration = new Histogram({ name: 'raftkv_raft_proposal_commit_duration_seconds', help: 'From proposal to committed and applied on this node, in seconds', buckets: LATENCY_BUCKETS_SECONDS, registers });
  const readIndexDuration = new Histogram({ name: 'raftkv_raft_read_index_duration_seconds', help: 'From a linearizable read request to its ReadIndex being confirmed and applied, in seconds', buckets: LATENCY_BUCKETS_SECONDS, registers });
  const readIndexFailed = new Counter({ name: 'raftkv_raft_read_index_failed_total', help: 'Linearizable reads whose ReadIndex could not be confirmed, by reason (error code)', labelNames: ['reason'], registers });
  const snapshotsTaken = new Counter({ name: 'raftkv_raft_snapshots_taken_total', help: 'Snapshots of the state machine taken by this node', registers });
  const snapshotsInstalled = new Counter({ name: 'raftkv_raft_snapshots_installed_total', help: 'Snapshots received from the leader and installed', registers });
  const snapshotBytes = new Gauge({ name: 'raftkv_raft_snapshot_size_bytes', help: 'Size of the state-machine data of the latest snapshot serialised for a follower or installed from the leader, in bytes (0 before the first)', registers });
  const entriesCompacted = new Counter({ name: 'raftkv_raft_log_entries_compacted_total', help: 'Log entries deleted by log compaction', registers });

  // --- Storage -------------------------------------------------------------------------------
  let wrapped: NodeStorage | null = null;
  const fsyncDuration = new Histogram({ name: 'raftkv_storage_fsync_duration_seconds', help: 'Duration of synced log writes (append: entries and hard state; snapshot: snapshot save), in seconds', labelNames: ['op'], buckets: FSYNC_BUCKETS_SECONDS, registers });
  const fsyncFailures = new Counter({ name: 'raftkv_storage_fsync_failures_total', help: 'Synced log writes that failed (the node stops after one)', labelNames: ['op'], registers });
  new Gauge({
    name: 'raftkv_storage_size_bytes',
    help: 'Approximate bytes the node uses on disk (0 for the in-memory store)',
    registers,
    async collect() {
      this.set(wrapped ? await wrapped.log.sizeBytes() : 0);
    },
  });
  new Gauge({
    name: 'raftkv_kv_keys',
    help: 'Keys in the local key-value store',
    registers,
    async collect() {
      this.set(wrapped ? await wrapped.kv.count() : 0);
    },
  });

  function timed<A extends unknown[]>(op: string, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    return async (...args: A) => {
      const started = performance.now();
      try {
        await fn(...args);
      } catch (err) {
        fsyncFailures.inc({ op });
        throw err;
      }
      fsyncDuration.observe({ op }, secondsSince(started));
    };
  }

  // --- Leases (docs/leases.md) ---------------------------------------------------------------------
  new Gauge({
    name: 'raftkv_leases',
    help: 'Leases in the replicated table as applied on this node',
    registers,
    async collect() {
      this.set((await getNode()?.leases())?.length ?? 0);
    },
  });
  const leaseExpiries = new Counter({ name: 'raftkv_lease_expiries_total', help: 'Lease expiries applied on this node (each deleted its lease and keys)', registers });

  return {
    registry,
    leaderChanges,
    onLeaseExpired() {
      leaseExpiries.inc();
    },
    onSoftState(s, prev) {
      if (!prev || prev.leaderId !== s.leaderId) leaderChanges.inc();
    },
    onSnapshot(kind, _meta, bytes) {
      // A compaction serialises nothing: the size is that of the last snapshot sent or received.
      if (kind === 'taken') snapshotsTaken.inc();
      else snapshotBytes.set(bytes);
      if (kind === 'installed') snapshotsInstalled.inc();
    },
    observer: {
      onProposalDone(err, seconds) {
        proposals.inc();
        if (err) proposalsFailed.inc({ reason: failureReason(err) });
        else commitDuration.observe(seconds);
      },
      onReadIndexDone(err, seconds) {
        if (err) readIndexFailed.inc({ reason: failureReason(err) });
        else readIndexDuration.observe(seconds);
      },
      onEntriesCompacted(count) {
        if (count > 0) entriesCompacted.inc(count);
      },
    },
    wrapStorage(storage) {
      const log = storage.log;
      const write = timed('append', log.write.bind(log));
      const saveSnapshot = timed('snapshot', log.saveSnapshot.bind(log));
      // A Proxy rather than an object literal, so methods added to LogStore later pass through untouched.
      const timedLog = new Proxy(log, {
        get(target, prop) {
          if (prop === 'write') return write;
          if (prop === 'saveSnapshot') return saveSnapshot;
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const out = { ...storage, log: timedLog };
      wrapped = out;
      return out;
    },
    wrapTransport(transport) {
      return new Proxy(transport, {
        get(target, prop) {
          if (prop === 'send') {
            return (to: { id: string; raftAddr: string }, msgs: Message[]) => {
              const now = performance.now();
              for (const m of msgs) {
                rpcsSent.inc({ type: rpcType(m), result: rpcResult(m) });
                tracker.sent(m, now);
              }
              target.send(to, msgs);
            };
          }
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
    onMessagesReceived(msgs) {
      const now = performance.now();
      for (const m of msgs) {
        rpcsReceived.inc({ type: rpcType(m), result: rpcResult(m) });
        const rt = tracker.received(m, now);
        if (rt) rpcDuration.observe({ type: rt.type }, rt.seconds);
      }
    },
  };
}

interface HttpMetrics {
  duration: Histogram;
  /** Requests being served; the gauge reads it at scrape time, so the hot path only counts. */
  inFlight: { n: number };
  /** Histogram children by "method route status", resolved once (label hashing is per-call work otherwise). */
  children: Map<string, { observe(v: number): void }>;
}

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const httpMetricsByRegistry = new WeakMap<Registry, HttpMetrics>();

/**
 * Koa middleware timing every API request into `registry`, labelled by method, route template
 * (`/key/:key`, never the raw key, so cardinality stays bounded) and status. app.ts mounts it first.
 */
export function httpMetrics(registry: Registry): Middleware {
  let m = httpMetricsByRegistry.get(registry);
  if (!m) {
    m = {
      duration: new Histogram({
        name: 'raftkv_http_request_duration_seconds',
        help: 'Client API request duration in seconds, by method, route template and status code',
        labelNames: ['method', 'route', 'status'],
        buckets: LATENCY_BUCKETS_SECONDS,
        registers: [registry],
      }),
      inFlight: { n: 0 },
      children: new Map(),
    };
    const counter = m.inFlight;
    new Gauge({
      name: 'raftkv_http_requests_in_flight',
      help: 'Client API requests being served',
      registers: [registry],
      collect() {
        this.set(counter.n);
      },
    });
    httpMetricsByRegistry.set(registry, m);
  }
  const { duration, inFlight, children } = m;
  return async (ctx, next) => {
    const started = performance.now();
    inFlight.n++;
    try {
      await next();
    } finally {
      inFlight.n--;
      const matched: unknown = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const route = typeof matched === 'string' ? matched : 'unmatched';
      const method = HTTP_METHODS.has(ctx.method) ? ctx.method : 'OTHER';
      const status = ctx.status;
      const key = `${method} ${route} ${status}`;
      let child = children.get(key);
      if (child === undefined) {
        child = duration.labels(method, route, String(status));
        children.set(key, child);
      }
      child.observe(secondsSince(started));
    }
  };
}

/**
 * Registers `raftkv_tls_cert_expiry_timestamp_seconds{cert="api"|"peer"}`, read from `expiry` at
 * scrape time (so a SIGHUP reload shows at once); once per registry. Called by the API's createApp.
 */
export function registerTlsCertExpiry(registry: Registry, expiry: () => Partial<Record<'api' | 'peer', number>>): void {
  if (registry.getSingleMetric('raftkv_tls_cert_expiry_timestamp_seconds') !== undefined) return;
  new Gauge({
    name: 'raftkv_tls_cert_expiry_timestamp_seconds',
    help: 'When the TLS certificate in use expires (notAfter), in seconds since the epoch, by identity (api, peer)',
    labelNames: ['cert'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cert, seconds] of Object.entries(expiry())) if (seconds !== undefined) this.labels(cert).set(seconds);
    },
  });
}
