/** The node driver over memory storage, with peers connected in-process through the peer message validator. */
import { expect } from 'chai';
import { RaftNode, type RaftNodeOptions } from '../../../../src/raft/node/node.js';
import { FileIdentityStore, type IdentityStore } from '../../../../src/raft/node/identity.js';
import type { SnapshotMeta } from '../../../../src/raft/core/types.js';
import type { NodeStorage } from '../../../../src/storage/types.js';
import type { Transport } from '../../../../src/transport/types.js';
import { MemoryKvStore, MemoryLogStore } from '../../../../src/storage/memory/index.js';
import { parseMessages } from '../../../../src/transport/validate.js';
import { openStorage } from '../../../../src/storage/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor as pollUntil } from '../../../support/procs.js';

/** Delivers messages between in-process nodes by raft address, as JSON through the real validator. */
class LoopbackNet {
  nodes = new Map<string, RaftNode>();
  down = new Set<string>();
  /** Message types dropped on their way to one raft address. */
  dropTo = new Map<string, Set<string>>();
  sentTypes: string[] = [];

  transport(selfAddr: string): Transport {
    return {
      send: (to, msgs) => {
        if (this.down.has(to.raftAddr) || this.down.has(selfAddr)) return;
        const dropped = this.dropTo.get(to.raftAddr);
        if (dropped) msgs = msgs.filter((m) => !dropped.has(m.type));
        if (msgs.length === 0) return;
        for (const m of msgs) this.sentTypes.push(m.type);
        const body = JSON.parse(JSON.stringify({ from: msgs[0]?.from ?? '', fromAddr: selfAddr, messages: msgs })) as unknown;
        setImmediate(() => {
          const parsed = parseMessages(body);
          this.nodes.get(to.raftAddr)?.receive(parsed.messages, parsed.fromAddr);
        });
      },
      close: async () => undefined,
    };
  }
}

function memoryStorage(): NodeStorage {
  return { log: new MemoryLogStore(), kv: new MemoryKvStore(), durable: false };
}

/** test/support's waitFor with this file's pace: every 10 ms for up to 20 s, and an exception from `fn` fails at once. */
function waitFor<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  return pollUntil(what, fn, timeoutMs, 10, false);
}

interface Started {
  node: RaftNode;
  storage: NodeStorage;
  addr: string;
  snapshots: { kind: string; meta: SnapshotMeta }[];
}

function options(id: string, bootstrap: boolean, snapshotThreshold: number): RaftNodeOptions {
  return { nodeId: id, raftAddr: `${id}:1`, apiAddr: `${id}:2`, tickMs: 5, electionTimeoutTicks: 10, heartbeatTicks: 2, requestTimeoutMs: 10_000, bootstrapIfEmpty: bootstrap, snapshotThreshold, compactionTailEntries: 2 };
}

async function startNode(net: LoopbackNet, id: string, bootstrap: boolean, threshold: number, storage = memoryStorage(), identityStore?: IdentityStore): Promise<Started> {
  const addr = `${id}:1`;
  const snapshots: Started['snapshots'] = [];
  const node = new RaftNode({ ...options(id, bootstrap, threshold), identityStore }, storage, net.transport(addr), {
    onSnapshot: (kind, meta) => snapshots.push({ kind, meta }),
  });
  net.nodes.set(addr, node);
  await node.start();
  return { node, storage, addr, snapshots };
}

async function threeNodes(net: LoopbackNet, threshold: number): Promise<Started[]> {
  const n1 = await startNode(net, 'n1', true, threshold);
  await waitFor('n1 to lead and commit its no-op', () => n1.node.leaderId() === 'n1' && n1.node.status().commitIndex === n1.node.status().lastIndex);
  const out = [n1];
  for (const id of ['n2', 'n3']) {
    const s = await startNode(net, id, false, threshold);
    out.push(s);
    await n1.node.changeMembership({ op: 'addLearner', member: { id, suffrage: 'learner', raftAddr: `${id}:1`, apiAddr: `${id}:2`, incarnation: s.node.identity().incarnation } });
    // members() already shows the promotion while it is uncommitted; the next change would be refused.
    await waitFor(`${id} to be promoted`, () => n1.node.members().find((m) => m.id === id)?.suffrage === 'voter' && n1.node.status().commitIndex === n1.node.status().lastIndex);
  }
  return out;
}

describe('raft node driver (in-process, memory storage)', function () {
  this.timeout(60_000);
  const running: RaftNode[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((n) => n.stop()));
  });

  it('a delete reports at apply time whether the key existed: of two racing deletes exactly one finds it', async () => {
    const net = new LoopbackNet();
    const s = await startNode(net, 'solo', true, 10_000);
    running.push(s.node);
    await waitFor('a leader', () => s.node.leaderId() === 'solo');
    await s.node.write([{ op: 'set', key: 'k', value: 'v' }]);
    const [d1, d2] = await Promise.all([s.node.deleteKey('k'), s.node.deleteKey('k')]);
    expect([d1.existed, d2.existed].sort()).to.deep.equal([false, true]);
    expect(d2.index).to.not.equal(d1.index);
    expect((await s.node.deleteKey('never')).existed).to.equal(false);
  });

  it('stop() rejects a read that is confirmed but still waiting for its index to be applied', async () => {
    const net = new LoopbackNet();
    const [n1, n2, n3] = await threeNodes(net, 10_000);
    running.push(n1.node, n2.node);
    // n3 hears heartbeats and read confirmations but no entries, so it falls behind the commit index.
    net.dropTo.set(n3.addr, new Set(['AppendEntries', 'InstallSnapshot']));
    await n1.node.write([{ op: 'set', key: 'k', value: 'v' }]);
    const read = n3.node.linearizableBarrier().then(
      () => 'served',
      (err: Error) => err.message,
    );
    await waitFor('the read to be confirmed and left waiting for apply', () => n3.node.pendingReads().awaitingApply === 1);
    await n3.node.stop();
    expect(await read).to.equal('node is shutting down');
  });

  it('takes a snapshot every SNAPSHOT_THRESHOLD applied entries and compacts the log', async () => {
    const net = new LoopbackNet();
    const s = await startNode(net, 'solo', true, 10);
    running.push(s.node);
    await waitFor('a leader', () => s.node.leaderId() === 'solo');
    for (let i = 0; i < 25; i++) await s.node.write([{ op: 'set', key: `k${i}`, value: `v${i}` }]);
    await waitFor('two snapshots', () => s.snapshots.filter((x) => x.kind === 'taken').length >= 2);
    const persisted = await s.storage.log.load();
    const snapIndex = persisted.snapshot?.meta.lastIndex ?? 0;
    expect(snapIndex).to.be.at.least(20);
    expect(persisted.entries.every((e) => e.index > snapIndex)).to.equal(true);
    // Nothing is serialised for a compaction: the stored snapshot stands for the KV store's own state.
    expect(persisted.snapshot?.data).to.equal(null);
    expect(s.snapshots.filter((x) => x.kind === 'serialized')).to.deep.equal([]);
    expect(await s.storage.kv.appliedIndex()).to.be.at.least(snapIndex);
    expect(s.node.status().snapshotIndex).to.equal(snapIndex);
  });

  it('also compacts once SNAPSHOT_THRESHOLD_BYTES of entry data were applied, long before the entry threshold', async () => {
    const net = new LoopbackNet();
    const storage = memoryStorage();
    const snapshots: { kind: string; meta: SnapshotMeta }[] = [];
    const node = new RaftNode({ ...options('big', true, 1_000_000), snapshotThresholdBytes: 10_000 }, storage, net.transport('big:1'), { onSnapshot: (kind, meta) => snapshots.push({ kind, meta }) });
    net.nodes.set('big:1', node);
    running.push(node);
    await node.start();
    await waitFor('a leader', () => node.leaderId() === 'big');
    // Four writes of about 3000 bytes each pass 10000 bytes; the entry threshold is a million.
    for (let i = 0; i < 4; i++) await node.write([{ op: 'set', key: `big${i}`, value: 'v'.repeat(3000) }]);
    await waitFor('a compaction by bytes', () => snapshots.some((x) => x.kind === 'taken'));
    const snapIndex = node.status().snapshotIndex;
    expect(snapIndex).to.be.at.least(4);
    expect((await storage.log.load()).entries.every((e) => e.index > snapIndex)).to.equal(true);
    // Small writes after it do not compact again until another 10000 bytes were applied.
    for (let i = 0; i < 5; i++) await node.write([{ op: 'set', key: `small${i}`, value: 'v' }]);
    expect(snapshots.filter((x) => x.kind === 'taken')).to.have.length(1);
  });

  it('restarts on RocksDB from a snapshot without data: every key is there and writes go on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-node-snap-'));
    try {
      // The identity lives beside the data (RAFT_DIR/NODE_ID/identity.json), as main.ts keeps it: the
      // restarted node is the same incarnation, the sole voter its configuration records.
      const identity = new FileIdentityStore(join(dir, 'solo'));
      let storage = await openStorage(dir, 'solo');
      let s = await startNode(new LoopbackNet(), 'solo', true, 10, storage, identity);
      await waitFor('a leader', () => s.node.leaderId() === 'solo');
      for (let i = 0; i < 25; i++) await s.node.write([{ op: 'set', key: `k${i}`, value: `v${i}` }]);
      await waitFor('a snapshot', () => s.node.status().snapshotIndex >= 20);
      await s.node.stop();
      await storage.log.close();
      await storage.kv.close();
      storage = await openStorage(dir, 'solo');
      const persisted = await storage.log.load();
      expect(persisted.snapshot?.data).to.equal(null);
      expect(persisted.snapshot?.meta.lastIndex).to.be.at.least(20);
      s = await startNode(new LoopbackNet(), 'solo', false, 10, storage, identity);
      running.push(s.node);
      for (let i = 0; i < 25; i++) expect(await s.node.get(`k${i}`), `k${i}`).to.deep.include({ value: `v${i}` });
      await waitFor('the sole voter to lead again', () => s.node.leaderId() === 'solo');
      await s.node.write([{ op: 'set', key: 'after-restart', value: 'yes' }]);
      expect(await s.node.get('after-restart')).to.deep.include({ value: 'yes' });
      await s.node.stop();
      await storage.log.close();
      await storage.kv.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start when the KV state is behind a snapshot without data (it could not be rebuilt)', async () => {
    const storage = memoryStorage();
    const config = { members: [{ id: 'r', suffrage: 'voter' as const, raftAddr: 'r:1', apiAddr: 'r:2' }] };
    await storage.log.write({ hardState: { term: 3, votedFor: 'r' }, entries: [] });
    await storage.log.saveSnapshot({ meta: { lastIndex: 12, lastTerm: 3, config }, data: null }, false);
    const node = new RaftNode(options('r', false, 10_000), storage, { send: () => undefined, close: async () => undefined });
    let err: Error | null = null;
    await node.start().catch((e: Error) => (err = e));
    expect(err).to.be.an('error');
    expect(String(err)).to.match(/key-value state is behind the snapshot at 12/);
  });

  it('Raft §7: a follower cut off while the leader compacted past it catches up through InstallSnapshot with every key', async () => {
    const net = new LoopbackNet();
    const nodes = await threeNodes(net, 20);
    running.push(...nodes.map((n) => n.node));
    const [n1, , n3] = nodes;
    net.down.add(n3.addr);
    for (let i = 0; i < 80; i++) await n1.node.write([{ op: 'set', key: `key-${i}`, value: `value-${i}` }]);
    await waitFor('the leader to compact past n3', () => n1.node.status().snapshotIndex > n3.node.appliedIndex() + 2);
    net.sentTypes = [];
    net.down.delete(n3.addr);
    await waitFor('n3 to catch up', () => n3.node.appliedIndex() >= n1.node.status().commitIndex);
    expect(net.sentTypes).to.include('InstallSnapshot');
    expect(n3.snapshots.some((x) => x.kind === 'installed')).to.equal(true);
    // The leader compacted without data and serialised its state only because n3 needed it.
    expect(n1.snapshots.filter((x) => x.kind === 'serialized').length).to.be.at.least(1);
    for (let i = 0; i < 80; i++) expect(await n3.node.get(`key-${i}`), `key-${i}`).to.deep.include({ value: `value-${i}` });
    // Replication continues normally afterwards.
    await n1.node.write([{ op: 'set', key: 'after', value: 'yes' }]);
    await waitFor('n3 to apply a later write', async () => (await n3.node.get('after'))?.value === 'yes');
  });

  it('a slow snapshot export still reaches a lagging follower while steady writes keep passing the threshold', async () => {
    const net = new LoopbackNet();
    const nodes = await threeNodes(net, 5);
    running.push(...nodes.map((n) => n.node));
    const [n1, , n3] = nodes;
    // The export captures the state when called, as the stores do, but takes 150 ms to hand it over.
    const kv = n1.storage.kv;
    const realForEachRow = kv.forEachRow.bind(kv);
    kv.forEachRow = async (fn) => {
      await realForEachRow(fn);
      await new Promise((r) => setTimeout(r, 150));
    };
    net.down.add(n3.addr);
    for (let i = 0; i < 30; i++) await n1.node.write([{ op: 'set', key: `a${i}`, value: 'x' }]);
    net.down.delete(n3.addr);
    let isWriting = true;
    const writer = (async () => {
      for (let i = 0; isWriting; i++) {
        await n1.node.write([{ op: 'set', key: `b${i}`, value: 'y' }]);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      await waitFor('n3 to install a snapshot', () => n3.snapshots.some((x) => x.kind === 'installed'), 15_000);
    } finally {
      isWriting = false;
      await writer;
    }
    expect(await n3.node.get('a29')).to.deep.include({ value: 'x' });
  });

  it('restart after an interrupted snapshot install: the persisted snapshot is imported before anything else', async () => {
    const storage = memoryStorage();
    const config = { members: [{ id: 'r', suffrage: 'voter' as const, raftAddr: 'r:1', apiAddr: 'r:2' }] };
    await storage.log.write({ hardState: { term: 3, votedFor: 'r' }, entries: [] });
    await storage.log.saveSnapshot({ meta: { lastIndex: 12, lastTerm: 3, config }, data: JSON.stringify([['from-snap', 'yes', 9]]) }, true);
    const net = new LoopbackNet();
    const s = await startNode(net, 'r', false, 10_000, storage);
    running.push(s.node);
    expect(await storage.kv.appliedIndex()).to.equal(12);
    expect(await s.node.get('from-snap')).to.deep.equal({ value: 'yes', index: 9 });
    await waitFor('the sole voter to lead again', () => s.node.leaderId() === 'r');
    const idx = await s.node.write([{ op: 'set', key: 'next', value: '1' }]);
    expect(idx).to.be.greaterThan(12);
  });

  it('transferLeadership hands over to another voter and the cluster keeps taking writes', async () => {
    const net = new LoopbackNet();
    const nodes = await threeNodes(net, 10_000);
    running.push(...nodes.map((n) => n.node));
    const leader = nodes.find((n) => n.node.leaderId() === n.node.status().id) as Started;
    const t = await leader.node.transferLeadership(2000);
    expect(t.started).to.equal(true);
    expect(t.leaderId).to.not.equal(null);
    expect(t.leaderId).to.not.equal(leader.node.status().id);
    const next = nodes.find((n) => n.node.status().id === t.leaderId) as Started;
    await next.node.write([{ op: 'set', key: 'after-transfer', value: 'ok' }]);
  });
});

