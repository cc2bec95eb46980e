/**
 * Composition root: reads the configuration once, opens storage, wires the Raft node, the peer
 * transport and the client API, joins the cluster when asked, and shuts down cleanly on SIGTERM.
 */
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { Agent, request, setGlobalDispatcher } from 'undici';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { openStorage } from './storage/index.js';
import { RaftNode } from './raft/node/node.js';
import { HttpTransport } from './transport/http/client.js';
import { startPeerServer } from './transport/http/server.js';
import { createApp } from './api/app.js';
import { createMetrics } from './metrics/index.js';
import type { Message } from './raft/core/types.js';
import { NodeSecurity } from './security/setup.js';
import { DiskSpaceGuard } from './storage/disk-space.js';
import path from 'node:path';
import { Counter } from 'prom-client';
import { FileIdentityStore, MemoryIdentityStore, isIdentityId } from './raft/node/identity.js';

const cfg = loadConfig();
const logger = createLogger(cfg);

/**
 * Joins through any member's API (docs/cluster-identity.md): this incarnation is added as a learner
 * (replacing an earlier incarnation of the same id, e.g. after a restart that lost the state) and the
 * answer names the cluster id, persisted before this node accepts a single peer stream.
 */
async function joinCluster(node: RaftNode, isStopping: () => boolean, sec: NodeSecurity): Promise<void> {
  const body = JSON.stringify({ id: cfg.nodeId, raftAddr: cfg.raftAdvertiseAddr, apiAddr: cfg.apiAdvertiseAddr, incarnation: node.identity().incarnation });
  let delayMs = 200;
  for (let attempt = 1; !isStopping(); attempt++) {
    for (const base of cfg.joinAddrs) {
      try {
        const headers = { 'content-type': 'application/json', ...sec.joinHeaders('/cluster/join', body) };
        const res = await request(`${base}/cluster/join`, { method: 'POST', body, headers, dispatcher: sec.apiClient().dispatcher(), headersTimeout: 10_000, bodyTimeout: 10_000 });
        const text = await res.body.text();
        if (res.statusCode === 200) {
          let clusterId: unknown = null;
          try {
            clusterId = (JSON.parse(text) as { clusterId?: unknown }).clusterId;
          } catch {
            clusterId = null;
          }
          if (isIdentityId(clusterId)) {
            await node.adoptClusterId(clusterId);
            logger.info({ via: base, attempt, clusterId, incarnation: node.identity().incarnation }, 'joined the cluster');
            return;
          }
          logger.warn({ via: base, body: text.slice(0, 200) }, 'the join answer names no cluster id (a member of an older version?); retrying');
        }
        logger.info({ via: base, status: res.statusCode, body: text.slice(0, 200), attempt }, 'join not accepted yet; retrying');
      } catch (err) {
        logger.info({ via: base, err: (err as Error).message, attempt }, 'join address not reachable yet; retrying');
      }
    }
    await new Promise((r) => setTimeout(r, delayMs));
    delayMs = Math.min(delayMs * 2, 2000);
  }
}

/** A start-up failure while opening or loading RAFT_DIR: refuse to serve, and say how to recover. */
function damagedStorage(err: unknown): Error {
  if (cfg.dataDir === undefined) return err instanceof Error ? err : new Error(String(err));
  const why = err instanceof Error ? err.message : String(err);
  return new Error(
    `storage: cannot load this node's data from ${cfg.dataDir}/${cfg.nodeId} (${why}); refusing to start rather than serve wrong data. ` +
      'If the directory is damaged, rebuild this member from the others: see docs/power-loss.md',
  );
}

async function main(): Promise<void> {
  process.umask(0o077); // data directories 0700, RocksDB's files 0600 (it creates them with the umask)
  const sec = new NodeSecurity(cfg, logger);
  const storage = await openStorage(cfg.dataDir, cfg.nodeId, { maxEntries: cfg.watchHistoryEntries, maxBytes: cfg.watchHistoryBytes }).catch((err: unknown) => {
    throw damagedStorage(err);
  });
  const diskSpace = cfg.dataDir === undefined ? null : new DiskSpaceGuard(cfg.dataDir, cfg.minFreeDiskBytes);
  await diskSpace?.start();
  if (storage.durable) logger.info({ dir: cfg.dataDir }, 'storage: RocksDB (durable)');
  else logger.warn('storage: in memory (RAFT_DIR unset) — data is NOT durable and is lost on restart');

  let node: RaftNode | null = null;
  const metrics = createMetrics(cfg.nodeId, () => node, true);
  // Peer connections leave from the Raft bind address when it is one specific IP, so nodes sharing
  // a host (e.g. 127.0.0.x in the fault suite's namespace) are told apart by source address.
  const isSpecificIp = isIP(cfg.raftBindHost) !== 0 && cfg.raftBindHost !== '0.0.0.0' && cfg.raftBindHost !== '::';
  const refusedStreams = new Counter({ name: 'raftkv_peer_streams_refused_total', help: 'Peer streams refused for their identity (another cluster, another node, certificate name), by side and reason', labelNames: ['side', 'reason'], registers: [metrics.registry] });
  const badEntries = new Counter({ name: 'raftkv_raft_bad_entries_total', help: 'Committed entries whose command could not be decoded, applied as no-ops', registers: [metrics.registry] });
  // Identity refusals are logged at most once a minute per peer and reason.
  const lastRefusalLog = new Map<string, number>();
  const logRefusal = (key: string, fields: Record<string, unknown>, msg: string): void => {
    const now = Date.now();
    if ((lastRefusalLog.get(key) ?? 0) > now - 60_000) return;
    lastRefusalLog.set(key, now);
    logger.warn(fields, msg);
  };
  const transport = new HttpTransport({
    selfAddr: cfg.raftAdvertiseAddr,
    localAddress: isSpecificIp ? cfg.raftBindHost : undefined,
    tls: sec.peerClientTls(),
    clusterSecret: cfg.clusterSecret,
    clusterId: () => node?.identity().clusterId ?? null,
    onRefused(to, status, body) {
      const reason = status === 409 ? 'wrong-cluster' : status === 421 ? 'wrong-node' : 'certificate-name';
      refusedStreams.inc({ side: 'sender', reason });
      const hint =
        status === 409
          ? `member ${to.id} at ${to.raftAddr} belongs to another cluster now (restarted empty without RAFT_JOIN_ADDR?): restart it with RAFT_JOIN_ADDR=<a member's API address> to rejoin as a new member, or remove it (DELETE /cluster/nodes/${to.id})`
          : `member ${to.id} at ${to.raftAddr} refused our stream`;
      logRefusal(`s:${to.id}:${status}`, { peer: to.id, status, answer: body.slice(0, 300) }, hint);
    },
  });
  if (isSpecificIp) setGlobalDispatcher(new Agent({ localAddress: cfg.raftBindHost })); // forwarding and join too
  // Metrics decorators: synced log writes are timed, every message sent is counted by type.
  const measuredStorage = metrics.wrapStorage(storage);
  const measuredTransport = metrics.wrapTransport(transport);
  const raftNode = new RaftNode(
    {
      nodeId: cfg.nodeId,
      raftAddr: cfg.raftAdvertiseAddr,
      apiAddr: cfg.apiAdvertiseAddr,
      tickMs: cfg.tickMs,
      electionTimeoutTicks: cfg.electionTimeoutTicks,
      heartbeatTicks: cfg.heartbeatTicks,
      requestTimeoutMs: cfg.requestTimeoutMs,
      bootstrapIfEmpty: cfg.joinAddrs.length === 0,
      snapshotThreshold: cfg.snapshotThreshold,
      leaseCheckpointIntervalMs: cfg.leaseCheckpointIntervalMs,
      snapshotThresholdBytes: cfg.snapshotThresholdBytes,
      writeRefusal: diskSpace ? () => diskSpace.refusal() : undefined,
      identityStore: cfg.dataDir === undefined ? new MemoryIdentityStore() : new FileIdentityStore(path.join(cfg.dataDir, cfg.nodeId)),
    },
    measuredStorage,
    measuredTransport,
    {
      ...metrics.observer,
      onSoftState(s, prev) {
        metrics.onSoftState(s, prev);
        if (!prev || prev.leaderId !== s.leaderId || prev.role !== s.role) logger.info({ role: s.role, term: s.term, leader: s.leaderId }, 'raft state changed');
      },
      onSnapshot(kind, meta, bytes) {
        metrics.onSnapshot(kind, meta, bytes);
        const what = { taken: 'snapshot taken; log compacted', serialized: 'snapshot serialised for a follower', installed: 'snapshot received from the leader and installed' }[kind];
        logger.info({ kind, lastIndex: meta.lastIndex, lastTerm: meta.lastTerm, bytes }, what);
      },
      onError(err) {
        logger.fatal({ err }, 'storage failure: stopping the node');
        process.exit(1);
      },
      onLeaseExpired(id, keys) {
        metrics.onLeaseExpired();
        logger.info({ lease: id, keys }, 'lease expired');
      },
      onBadEntry(index, err) {
        badEntries.inc();
        logger.error({ index, err: err.message }, 'a committed entry carries a malformed command; applied as a no-op');
      },
    },
  );
  node = raftNode;

  const onMessages = (msgs: Message[], fromAddr: string | null): void => {
    metrics.onMessagesReceived(msgs);
    raftNode.receive(msgs, fromAddr);
  };
  const peer = await startPeerServer({
    host: cfg.raftBindHost,
    port: cfg.raftBindPort,
    onMessages,
    tls: sec.raftTls?.serverOptions(),
    clusterSecret: cfg.clusterSecret,
    bodyTimeoutMs: cfg.bodyTimeoutMs,
    // Until start() has resolved the identity, the cluster id is unknown and every stream is refused.
    identity: () => ({ nodeId: cfg.nodeId, clusterId: raftNode.isStartedForPeers() ? raftNode.identity().clusterId : null }),
    onRefused(reason, d) {
      refusedStreams.inc({ side: 'receiver', reason });
      const hint =
        reason === 'wrong-cluster'
          ? `refused a peer stream from ${d.from} of cluster ${d.clusterId}: this node is in cluster ${raftNode.identity().clusterId}. If this node lost its state and should rejoin that cluster, stop it and start it with RAFT_JOIN_ADDR=<a member's API address> (and no state)`
          : `refused a peer stream from ${d.from} (${reason})`;
      logRefusal(`r:${d.from}:${reason}`, { from: d.from, reason, remote: d.remoteAddress }, hint);
    },
  });
  sec.onReload(() => {
    const tls = sec.peerClientTls();
    if (tls && sec.raftTls) {
      peer.setSecureContext(sec.raftTls.serverOptions());
      transport.setTls(tls);
    }
  });
  logger.info(sec.summary(), 'security');
  const { hadState, bootstrapped } = await raftNode.start().catch((err: unknown) => {
    throw damagedStorage(err);
  });
  logger.info({ hadState, bootstrapped, raft: cfg.raftAdvertiseAddr, api: cfg.apiAdvertiseAddr, ...raftNode.identity() }, 'raft node started');
  if (!hadState && cfg.joinAddrs.length === 0 && !storage.durable) {
    logger.warn('started empty without RAFT_JOIN_ADDR: this is a NEW one-node cluster. If this node was a member of a cluster before (in-memory state is lost on every restart), stop it and start it with RAFT_JOIN_ADDR=<a member\'s API address> to rejoin as a new member');
  }

  // Aborted at shutdown: watch streams end (clients resume elsewhere), so the server can close.
  const stopWatches = new AbortController();
  const app = createApp({
    node: raftNode,
    nodeId: cfg.nodeId,
    limits: { maxKeyBytes: cfg.maxKeyBytes, maxValueBytes: cfg.maxValueBytes, maxBodyBytes: cfg.maxBodyBytes, maxKeysPerRequest: cfg.maxKeysPerRequest, maxTxnOps: cfg.maxTxnOps, maxListLimit: cfg.maxListLimit, bodyTimeoutMs: cfg.bodyTimeoutMs },
    logger,
    registry: metrics.registry,
    requestTimeoutMs: cfg.requestTimeoutMs,
    tickMs: cfg.tickMs,
    security: sec.apiSecurity(),
    maxConcurrentRequests: cfg.maxConcurrentRequests,
    forward: sec.apiClient(),
    verifyJoiner: sec.raftTls ? (raftAddr) => transport.probe(raftAddr) : undefined,
    watch: { maxWatchers: cfg.maxWatchers, progressIntervalMs: cfg.watchProgressIntervalMs, stopSignal: stopWatches.signal, noLeaderMs: 2 * cfg.electionTimeoutTicks * cfg.tickMs },
  });
  const server: Server = await new Promise((resolve) => {
    const s = sec.createApiServer(app.callback());
    s.listen(cfg.port, cfg.host, () => resolve(s));
  });
  logger.info({ host: cfg.host, port: cfg.port, https: sec.apiTls !== null }, 'client API listening');

  let isStopping = false;
  if (!hadState && cfg.joinAddrs.length > 0) void joinCluster(raftNode, () => isStopping, sec);

  const shutdown = async (signal: string): Promise<void> => {
    if (isStopping) return;
    isStopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    // Thesis §3.10: a leader hands over to the most caught-up voter first, so the cluster does not
    // wait an election timeout for a new leader.
    if (raftNode.leaderId() === cfg.nodeId) {
      const t = await raftNode.transferLeadership(2000);
      if (t.started) logger.info({ to: t.to, newLeader: t.leaderId, ms: t.ms }, t.leaderId !== null && t.leaderId !== cfg.nodeId ? 'leadership handed over' : 'leadership transfer did not complete in time');
    }
    stopWatches.abort();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
    await raftNode.stop();
    await peer.close();
    await transport.close();
    await storage.log.close();
    await storage.kv.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => sec.reload());
}

main().catch((err: unknown) => {
  logger.fatal({ err }, 'start-up failed');
  process.exit(1);
});
