import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { request } from 'undici';
import type { Server } from 'node:http';
import { createMetrics, httpMetrics, type NodeMetrics } from '../../../src/metrics/index.js';
import { RaftNode } from '../../../src/raft/node/node.js';
import { openStorage } from '../../../src/storage/index.js';
import { createApp } from '../../../src/api/app.js';
import type { Message } from '../../../src/raft/core/types.js';
import type { Transport } from '../../../src/transport/types.js';
import { waitFor } from '../../support/procs.js';

const root = join(import.meta.dirname, '../../..');

/** Sample value of `name` with exactly `labels` (plus the node label) in the registry's text output. */
async function sample(m: NodeMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const json = await m.registry.getMetricsAsJSON();
  const metric = json.find((x) => x.name === name || name.startsWith(`${x.name}_`));
  if (!metric) return undefined;
  const values = (metric as unknown as { values: { value: number; labels: Record<string, string | number>; metricName?: string }[] }).values;
  const v = values.find((s) => (s.metricName ?? metric.name) === name && Object.entries(labels).every(([k, val]) => String(s.labels[k]) === val));
  return v?.value;
}

describe('metrics: one registry per node, decorators and observer', function () {
  this.timeout(30_000);
  let metrics: NodeMetrics;
  let node: RaftNode;
  const sent: Message[][] = [];

  before(async () => {
    const storage = await openStorage(undefined, 'u1');
    let current: RaftNode | null = null;
    metrics = createMetrics('u1', () => current, false);
    const transport: Transport = { send: (_to, msgs) => void sent.push(msgs), close: async () => undefined };
    node = new RaftNode(
      { nodeId: 'u1', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2', tickMs: 10, electionTimeoutTicks: 10, heartbeatTicks: 2, requestTimeoutMs: 2000, bootstrapIfEmpty: true, snapshotThreshold: 5 },
      metrics.wrapStorage(storage),
      metrics.wrapTransport(transport),
      { ...metrics.observer, onSoftState: (s, prev) => metrics.onSoftState(s, prev), onSnapshot: (kind, meta, bytes) => metrics.onSnapshot(kind, meta, bytes) },
    );
    current = node;
    await node.start();
    await waitFor('leader', async () => node.leaderId() === 'u1', 10_000, 10);
  });

  after(async () => {
    await node.stop();
  });

  it('reads Raft state at scrape time: term, role, leader, indices, members', async () => {
    await node.write([{ op: 'set', key: 'a', value: '1' }]);
    const st = node.status();
    expect(await sample(metrics, 'raftkv_raft_term')).to.equal(st.term);
    expect(await sample(metrics, 'raftkv_raft_is_leader')).to.equal(1);
    expect(await sample(metrics, 'raftkv_raft_role', { role: 'leader' })).to.equal(1);
    expect(await sample(metrics, 'raftkv_raft_role', { role: 'follower' })).to.equal(0);
    expect(await sample(metrics, 'raftkv_raft_commit_index')).to.equal(st.commitIndex);
    expect(await sample(metrics, 'raftkv_raft_applied_index')).to.equal(node.appliedIndex());
    expect(await sample(metrics, 'raftkv_raft_last_log_index')).to.equal(st.lastIndex);
    expect(await sample(metrics, 'raftkv_raft_members', { suffrage: 'voter' })).to.equal(1);
    expect(await sample(metrics, 'raftkv_kv_keys')).to.equal(1);
    expect(await sample(metrics, 'raftkv_raft_leader_changes_total')).to.equal(1);
  });

  it('counts proposals, times their commit, and counts a refused one as failed by reason', async () => {
    const before = (await sample(metrics, 'raftkv_raft_proposals_total')) ?? 0;
    const commitsBefore = (await sample(metrics, 'raftkv_raft_proposal_commit_duration_seconds_count')) ?? 0;
    await node.write([{ op: 'set', key: 'b', value: '2' }]);
    await node.changeMembership({ op: 'remove', id: 'nobody' }).catch((err: Error) => err);
    expect(await sample(metrics, 'raftkv_raft_proposals_total')).to.equal(before + 2);
    expect(await sample(metrics, 'raftkv_raft_proposal_commit_duration_seconds_count')).to.equal(commitsBefore + 1);
    expect(await sample(metrics, 'raftkv_raft_proposals_failed_total', { reason: 'conflict' })).to.equal(1);
  });

  it('times ReadIndex barriers', async () => {
    await node.linearizableBarrier();
    expect(await sample(metrics, 'raftkv_raft_read_index_duration_seconds_count')).to.be.at.least(1);
  });

  it('times every synced log write (the timed LogStore) and passes other methods through', async () => {
    const n = (await sample(metrics, 'raftkv_storage_fsync_duration_seconds_count', { op: 'append' })) ?? 0;
    await node.write([{ op: 'set', key: 'c', value: '3' }]);
    expect(await sample(metrics, 'raftkv_storage_fsync_duration_seconds_count', { op: 'append' })).to.be.greaterThan(n);
    expect(await sample(metrics, 'raftkv_storage_size_bytes')).to.equal(0);
  });

  it('counts snapshots taken by the driver, the entries they compacted, and their size', async () => {
    for (let i = 0; i < 8; i++) await node.write([{ op: 'set', key: `s${i}`, value: 'x' }]);
    const st = node.status();
    expect(st.snapshotIndex).to.be.greaterThan(0);
    expect(await sample(metrics, 'raftkv_raft_snapshot_index')).to.equal(st.snapshotIndex);
    expect(await sample(metrics, 'raftkv_raft_snapshots_taken_total')).to.be.at.least(1);
    // Every snapshot compacts the stored log up to its index.
    expect(await sample(metrics, 'raftkv_raft_log_entries_compacted_total')).to.equal(st.snapshotIndex);
    // Compactions serialise nothing (the KV store holds the state): no size until data is sent or received.
    expect(await sample(metrics, 'raftkv_raft_snapshot_size_bytes')).to.equal(0);
    expect(await sample(metrics, 'raftkv_raft_snapshots_installed_total')).to.equal(0);
    const taken = await sample(metrics, 'raftkv_raft_snapshots_taken_total');
    metrics.onSnapshot('serialized', { lastIndex: 98, lastTerm: 1, config: { members: [] } }, 77);
    expect(await sample(metrics, 'raftkv_raft_snapshot_size_bytes')).to.equal(77);
    expect(await sample(metrics, 'raftkv_raft_snapshots_taken_total')).to.equal(taken);
    metrics.onSnapshot('installed', { lastIndex: 99, lastTerm: 1, config: { members: [] } }, 123);
    expect(await sample(metrics, 'raftkv_raft_snapshots_installed_total')).to.equal(1);
    expect(await sample(metrics, 'raftkv_raft_snapshot_size_bytes')).to.equal(123);
  });

  it('counts messages sent (wrapped transport) and received (peer server hook), and times round trips', async () => {
    const other = createMetrics('u2', () => null, false);
    const forwarded: Message[][] = [];
    const t = other.wrapTransport<Transport>({ send: (_to, msgs) => void forwarded.push(msgs), close: async () => undefined });
    const ae: Message = { type: 'AppendEntries', from: 'u2', to: 'p', term: 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, entries: [{ index: 1, term: 1, type: 'noop' }] };
    t.send({ id: 'p', raftAddr: 'x:1' }, [ae]);
    expect(forwarded).to.deep.equal([[ae]]);
    other.onMessagesReceived([{ type: 'AppendEntriesResponse', from: 'p', to: 'u2', term: 1, success: true, matchIndex: 1, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 }]);
    expect(await sample(other, 'raftkv_raft_rpcs_sent_total', { type: 'AppendEntries', result: 'none' })).to.equal(1);
    expect(await sample(other, 'raftkv_raft_rpcs_received_total', { type: 'AppendEntriesResponse', result: 'success' })).to.equal(1);
    expect(await sample(other, 'raftkv_raft_rpc_duration_seconds_count', { type: 'AppendEntries' })).to.equal(1);
    // Registries are per node: u1's counters are untouched by u2's traffic.
    expect(await sample(metrics, 'raftkv_raft_rpcs_received_total', { type: 'AppendEntriesResponse', result: 'success' })).to.equal(undefined);
    await t.close();
  });

  it('labels API durations by route template and status, never by raw key', async () => {
    const app = createApp({ node, nodeId: 'u1', limits: { maxKeyBytes: 100, maxValueBytes: 100, maxBodyBytes: 1000 }, logger: pino({ level: 'silent' }), registry: metrics.registry, requestTimeoutMs: 2000 });
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    await node.write([{ op: 'set', key: 'secret-key-123', value: 'v' }]);
    for (const path of ['/key/a', '/key/secret-key-123', '/key/missing', '/nope']) {
      const res = await request(`http://127.0.0.1:${port}${path}`);
      await res.body.dump();
    }
    const text = await metrics.registry.metrics();
    expect(text).to.not.contain('secret-key-123');
    expect(await sample(metrics, 'raftkv_http_request_duration_seconds_count', { method: 'GET', route: '/key/:key', status: '200' })).to.equal(2);
    expect(await sample(metrics, 'raftkv_http_request_duration_seconds_count', { method: 'GET', route: '/key/:key', status: '404' })).to.equal(1);
    expect(await sample(metrics, 'raftkv_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status: '404' })).to.equal(1);
    expect(await sample(metrics, 'raftkv_http_requests_in_flight')).to.equal(0);
    // A scrape through the API is itself a request in flight.
    const scrape = await request(`http://127.0.0.1:${port}/metrics`);
    expect(await scrape.body.text()).to.match(/^raftkv_http_requests_in_flight\{[^}]*\} 1$/m);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('every raftkv metric has HELP text with a unit-style name, and the README lists exactly these', async () => {
    httpMetrics(metrics.registry);
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => ({ name: m.name, help: m.help, type: String(m.type) }));
    const ours = names.filter((m) => m.name.startsWith('raftkv_'));
    expect(ours.length).to.be.greaterThan(25);
    for (const m of ours) {
      expect(m.help, m.name).to.be.a('string').and.have.length.greaterThan(10);
      if (m.type === 'counter') expect(m.name, m.name).to.match(/_total$/);
      if (m.type === 'histogram') expect(m.name, m.name).to.match(/_seconds$/);
    }
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Operations'));
    const listed = new Set([...section.matchAll(/`(raftkv_[a-z_]+)`/g)].map((m) => m[1]));
    expect([...listed].sort()).to.deep.equal(ours.map((m) => m.name).sort());
  });
});
