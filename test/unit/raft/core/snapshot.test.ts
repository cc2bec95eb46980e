import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { Entry, InstallSnapshot, InstallSnapshotResponse, Message, Snapshot } from '../../../../src/raft/core/types.js';
import { TestNet, testNode, votersConfig } from './harness.js';

const isChunk = (m: Message): m is InstallSnapshot => m.type === 'InstallSnapshot';
const isChunkAck = (m: Message): m is InstallSnapshotResponse => m.type === 'InstallSnapshotResponse';

/** A three-node net with small snapshot chunks; `a` is elected. */
function smallChunkNet(chunk = 64, tail = 0): TestNet {
  const net = new TestNet(['a', 'b', 'c'], {
    tune: (o) => {
      o.maxSnapshotChunkBytes = chunk;
      o.compactionTailEntries = tail;
    },
  });
  net.elect('a');
  return net;
}

function proposeMany(net: TestNet, n: number, prefix: string): void {
  for (let i = 0; i < n; i++) {
    expect(net.raft('a').propose(`${prefix}${i}`).ok).to.equal(true);
    net.deliverAll();
  }
  net.tickNode('a', 2);
}

/** A lone follower `f` of peers a,b,f holding the config entry plus `entries`, committed up to `commit`. */
function follower(entries: Entry[], commit: number): Raft {
  const r = new Raft(defaultRaftOptions('f', () => 0.5), { hardState: { term: 1, votedFor: null }, snapshot: null, entries: [], applied: 0 });
  const cfg: Entry = { index: 1, term: 1, type: 'config', change: { op: 'promote', id: 'f' }, config: votersConfig(['a', 'b', 'f']) };
  r.step({ type: 'AppendEntries', from: 'a', to: 'f', term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [cfg, ...entries], leaderCommit: commit });
  r.advance(r.ready());
  return r;
}

function chunk(meta: Snapshot['meta'], offset: number, data: string, done: boolean, term = 1): InstallSnapshot {
  return { type: 'InstallSnapshot', from: 'a', to: 'f', term, meta, offset, data, done };
}

describe('raft core: snapshots and log compaction (Raft §7)', () => {
  it('compact records the snapshot at the applied index and drops the log up to it', () => {
    const net = smallChunkNet();
    proposeMany(net, 10, 'x');
    const a = net.raft('a');
    const applied = net.node('a').smIndex;
    const snap = net.compact('a');
    expect(snap?.meta.lastIndex).to.equal(applied);
    expect(snap?.meta.lastTerm).to.equal(a.status().term);
    expect(snap?.meta.config.members.map((m) => m.id)).to.deep.equal(['a', 'b', 'c']);
    expect(a.status().snapshotIndex).to.equal(applied);
    expect(a.entryAt(applied)).to.equal(undefined);
    expect(a.entryAt(1)).to.equal(undefined);
    // Not newer than the latest snapshot: nothing happens.
    expect(a.compact(applied, 'again')).to.equal(null);
  });

  it('compact refuses an index the state machine has not applied', () => {
    const net = smallChunkNet();
    net.isolate('a');
    net.raft('a').propose('uncommitted');
    net.deliverAll();
    const last = net.raft('a').status().lastIndex;
    expect(() => net.raft('a').compact(last, '[]')).to.throw(/beyond the applied index/);
  });

  it('keeps compactionTailEntries entries behind the snapshot in memory', () => {
    const net = smallChunkNet(64, 5);
    proposeMany(net, 20, 'x');
    const snap = net.compact('a') as Snapshot;
    const a = net.raft('a');
    expect(a.entryAt(snap.meta.lastIndex - 4)?.index).to.equal(snap.meta.lastIndex - 4);
    expect(a.entryAt(snap.meta.lastIndex - 5)).to.equal(undefined);
    expect(a.status().snapshotIndex).to.equal(snap.meta.lastIndex);
  });

  it('keeps at most compactionTailBytes of entry data behind the snapshot, even when compactionTailEntries allows more', () => {
    const net = new TestNet(['a', 'b', 'c'], { tune: (o) => { o.compactionTailEntries = 100; o.compactionTailBytes = 250; } });
    net.elect('a');
    for (let i = 0; i < 20; i++) {
      expect(net.raft('a').propose(`${i}`.padStart(100, 'x')).ok).to.equal(true);
      net.deliverAll();
    }
    net.tickNode('a', 2);
    const snap = net.compact('a') as Snapshot;
    const a = net.raft('a');
    // 100-character entries: two fit in 250 bytes, a third would not.
    expect(a.entryAt(snap.meta.lastIndex)?.index).to.equal(snap.meta.lastIndex);
    expect(a.entryAt(snap.meta.lastIndex - 1)?.index).to.equal(snap.meta.lastIndex - 1);
    expect(a.entryAt(snap.meta.lastIndex - 2)).to.equal(undefined);
  });

  it('a compacted leader still replicates entries after the snapshot by AppendEntries', () => {
    const net = smallChunkNet();
    proposeMany(net, 10, 'x');
    net.compact('a');
    net.delivered = [];
    proposeMany(net, 5, 'y');
    expect(net.delivered.filter(isChunk)).to.deep.equal([]);
    for (const id of ['b', 'c']) expect(net.node(id).sm).to.deep.equal(net.node('a').sm);
    expect(net.node('c').sm.slice(-5)).to.deep.equal(['y0', 'y1', 'y2', 'y3', 'y4']);
  });

  it('Raft §7: a follower behind the leader\'s snapshot receives it in chunks and catches up', () => {
    const net = smallChunkNet(64);
    net.isolate('c');
    proposeMany(net, 30, 'value-');
    const snap = net.compact('a') as Snapshot;
    expect(snap.data.length).to.be.greaterThan(3 * 64);
    net.heal();
    net.delivered = [];
    net.tickNode('a', 4);
    const chunks = net.delivered.filter(isChunk).filter((m) => m.to === 'c');
    expect(chunks.length).to.equal(Math.ceil(snap.data.length / 64));
    expect(chunks.every((m) => m.data.length <= 64)).to.equal(true);
    expect(chunks.map((m) => m.offset)).to.deep.equal(chunks.map((_, i) => i * 64));
    expect(chunks.filter((m) => m.done)).to.have.length(1);
    const c = net.node('c');
    expect(c.installed.map((s) => s.meta)).to.deep.equal([snap.meta]);
    expect(c.persistedSnapshot?.meta).to.deep.equal(snap.meta);
    expect(c.sm).to.deep.equal(net.node('a').sm);
    // Replication resumes after the snapshot.
    proposeMany(net, 3, 'after-');
    expect(c.sm).to.deep.equal(net.node('a').sm);
    expect(c.sm.slice(-1)).to.deep.equal(['after-2']);
    const peer = net.raft('a').status().peers.find((p) => p.id === 'c');
    expect(peer?.state).to.equal('replicate');
  });

  it('a snapshot taken without data: the leader asks for the data only when a follower needs it, then sends it in chunks', () => {
    const net = smallChunkNet(64);
    net.isolate('c');
    proposeMany(net, 30, 'value-');
    const a = net.raft('a');
    expect(a.needsSnapshotData).to.equal(false);
    const snap = net.compactWithoutData('a');
    expect(snap?.data).to.equal(null);
    expect(a.latestSnapshot?.data).to.equal(null);
    // b is caught up: replicating to it needs no snapshot, so nothing is asked for yet.
    proposeMany(net, 2, 'more-');
    net.heal();
    net.delivered = [];
    net.tickNode('a', 4);
    // c is behind the compacted log: the leader asks for the data and sends nothing until it has it.
    expect(a.needsSnapshotData).to.equal(true);
    expect(net.delivered.filter(isChunk)).to.deep.equal([]);
    expect(net.raft('b').needsSnapshotData).to.equal(false);
    net.tickNode('a', defaultRaftOptions('a', () => 0).electionTimeoutTicks + 2);
    expect(net.delivered.filter(isChunk)).to.deep.equal([]);
    expect(a.needsSnapshotData).to.equal(true);
    // Supplied at the applied index, which moved past the snapshot: that compacts again, and c gets it.
    const appliedNow = net.node('a').smIndex;
    expect(appliedNow).to.be.greaterThan(snap!.meta.lastIndex);
    const supplied = net.supplySnapshot('a');
    expect(supplied?.meta.lastIndex).to.equal(appliedNow);
    expect(supplied?.data).to.equal(JSON.stringify(net.node('a').sm));
    expect(a.needsSnapshotData).to.equal(false);
    net.deliverAll();
    net.tickNode('a', 2);
    const c = net.node('c');
    expect(c.installed.map((s) => s.meta.lastIndex)).to.deep.equal([appliedNow]);
    expect(c.sm).to.deep.equal(net.node('a').sm);
    expect(net.delivered.filter(isChunk).length).to.be.greaterThan(1);
    // Once no transfer needs it, the supplied data is dropped again (it can be asked for anew).
    expect(a.latestSnapshot?.meta.lastIndex).to.equal(appliedNow);
    expect(a.latestSnapshot?.data).to.equal(null);
    expect(a.needsSnapshotData).to.equal(false);
    proposeMany(net, 2, 'after-');
    expect(c.sm).to.deep.equal(net.node('a').sm);
  });

  it('data supplied at the snapshot\'s own index is attached to it (nothing compacts); an older answer is ignored', () => {
    const net = smallChunkNet(64);
    net.isolate('c');
    proposeMany(net, 20, 'value-');
    const snap = net.compactWithoutData('a')!;
    net.heal();
    net.tickNode('a', 4);
    const a = net.raft('a');
    expect(a.needsSnapshotData).to.equal(true);
    expect(a.supplySnapshotData(snap.meta.lastIndex - 1, '["old"]')).to.equal(null);
    expect(a.needsSnapshotData).to.equal(true);
    expect(net.node('c').installed).to.deep.equal([]);
    expect(net.supplySnapshot('a')).to.equal(null);
    expect(a.latestSnapshot?.meta).to.deep.equal(snap.meta);
    expect(a.latestSnapshot?.data).to.equal(JSON.stringify(net.node('a').sm));
    net.deliverAll();
    net.tickNode('a', 2);
    expect(net.node('c').installed.map((s) => s.meta)).to.deep.equal([snap.meta]);
    expect(net.node('c').sm).to.deep.equal(net.node('a').sm);
  });

  it('a lost snapshot chunk is resent after an election timeout of ticks, one chunk outstanding at a time', () => {
    const net = smallChunkNet(32);
    net.isolate('c');
    proposeMany(net, 20, 'value-');
    const snap = net.compact('a') as Snapshot;
    net.heal();
    let dropped = 0;
    net.dropIf = (m) => isChunk(m) && m.offset === 64 && dropped++ === 0;
    net.delivered = [];
    net.tickNode('a', 3);
    // The chunk at 64 was lost: nothing beyond it was sent meanwhile.
    expect(net.delivered.filter(isChunk).map((m) => m.offset)).to.deep.equal([0, 32]);
    expect(net.node('c').installed).to.deep.equal([]);
    net.tickNode('a', defaultRaftOptions('a', () => 0).electionTimeoutTicks + 5);
    expect(dropped).to.be.greaterThan(0);
    expect(net.node('c').installed.map((s) => s.meta.lastIndex)).to.deep.equal([snap.meta.lastIndex]);
    expect(net.node('c').sm).to.deep.equal(net.node('a').sm);
  });

  it('a stale snapshot (not newer than the commit index) is ignored', () => {
    const entries: Entry[] = [2, 3, 4, 5].map((i) => ({ index: i, term: 1, type: 'normal', data: `d${i}` }));
    const f = follower(entries, 5);
    expect(f.status().commitIndex).to.equal(5);
    f.step(chunk({ lastIndex: 3, lastTerm: 1, config: votersConfig(['a', 'b', 'f']) }, 0, '["old"]', true));
    const rd = f.ready();
    expect(rd.snapshot).to.equal(null);
    expect(rd.messages.filter(isChunkAck)).to.deep.equal([{ type: 'InstallSnapshotResponse', from: 'f', to: 'a', term: 1, lastIndex: 3, received: 0, done: true, matchIndex: 5 }]);
    f.advance(rd);
    expect(f.status().lastIndex).to.equal(5);
    expect(f.entryAt(4)?.index).to.equal(4);
  });

  it('Raft §7: a follower whose log holds the snapshot\'s last entry keeps the entries after it and only advances commit', () => {
    const entries: Entry[] = [2, 3, 4, 5].map((i) => ({ index: i, term: 1, type: 'normal', data: `d${i}` }));
    const f = follower(entries, 2);
    f.step(chunk({ lastIndex: 4, lastTerm: 1, config: votersConfig(['a', 'b', 'f']) }, 0, '["x"]', false));
    const rd = f.ready();
    expect(rd.snapshot).to.equal(null);
    expect(rd.messages.filter(isChunkAck).map((m) => [m.done, m.matchIndex])).to.deep.equal([[true, 4]]);
    expect(rd.committedEntries.map((e) => e.index)).to.deep.equal([3, 4]);
    expect(f.status().lastIndex).to.equal(5);
  });

  it('buffers chunks in order: a gap is answered with the offset held, and a newer snapshot restarts the buffer', () => {
    const f = follower([{ index: 2, term: 1, type: 'noop' }], 2);
    const cfg = votersConfig(['a', 'b', 'f']);
    const metaA = { lastIndex: 10, lastTerm: 1, config: cfg };
    const acks = (): InstallSnapshotResponse[] => {
      const rd = f.ready();
      f.advance(rd);
      return rd.messages.filter(isChunkAck);
    };
    f.step(chunk(metaA, 5, 'late!', false));
    expect(acks().map((m) => m.received)).to.deep.equal([0]);
    f.step(chunk(metaA, 0, '["ab', false));
    expect(acks().map((m) => [m.received, m.done])).to.deep.equal([[4, false]]);
    f.step(chunk(metaA, 9, 'gap"]', true));
    expect(acks().map((m) => [m.received, m.done])).to.deep.equal([[4, false]]);
    f.step(chunk(metaA, 0, '["ab', false)); // a duplicate of a chunk already held
    expect(acks().map((m) => [m.received, m.done])).to.deep.equal([[4, false]]);
    // A newer snapshot from the leader starts over at offset 0.
    const metaB = { lastIndex: 12, lastTerm: 1, config: cfg };
    f.step(chunk(metaB, 0, '["n', false));
    expect(acks().map((m) => [m.lastIndex, m.received])).to.deep.equal([[12, 3]]);
    // A late chunk of the older snapshot does not disturb the newer buffer.
    f.step(chunk(metaA, 4, 'c"]', true));
    expect(acks()).to.deep.equal([]);
    f.step(chunk(metaB, 3, 'ew"]', true));
    const rd = f.ready();
    expect(rd.snapshot).to.deep.equal({ meta: metaB, data: '["new"]' });
    expect(rd.messages.filter(isChunkAck).map((m) => [m.done, m.matchIndex])).to.deep.equal([[true, 12]]);
    f.advance(rd);
    const st = f.status();
    expect([st.commitIndex, st.appliedIndex, st.lastIndex, st.snapshotIndex]).to.deep.equal([12, 12, 12, 12]);
  });

  it('the configuration is restored from a received snapshot', () => {
    const net = smallChunkNet(64);
    net.isolate('c');
    proposeMany(net, 5, 'x');
    // d joins while c is cut off: the change is committed by a and b, then compacted away.
    net.nodes.set('d', testNode(new Raft(defaultRaftOptions('d', () => 0.5), { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 })));
    net.isolate('d');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', member: { id: 'd', suffrage: 'learner', raftAddr: '', apiAddr: '' } }).ok).to.equal(true);
    net.deliverAll();
    net.tickNode('a', 2);
    proposeMany(net, 5, 'y');
    const snap = net.compact('a') as Snapshot;
    expect(snap.meta.config.members.map((m) => [m.id, m.suffrage])).to.deep.equal([['a', 'voter'], ['b', 'voter'], ['c', 'voter'], ['d', 'learner']]);
    net.heal();
    net.tickNode('a', 6);
    for (const id of ['c', 'd']) {
      expect(net.node(id).installed.map((s) => s.meta.lastIndex), id).to.deep.equal([snap.meta.lastIndex]);
      expect(net.node(id).sm).to.deep.equal(net.node('a').sm);
    }
    // d learned the configuration from the snapshot, then caught up and was promoted.
    const dCfg = net.raft('d').status().config.members;
    expect(dCfg.map((m) => m.id)).to.deep.equal(['a', 'b', 'c', 'd']);
    expect(dCfg.find((m) => m.id === 'd')?.suffrage).to.equal('voter');
  });

  it('a node restarts from a snapshot plus the entries after it, with the snapshot\'s config', () => {
    const net = smallChunkNet();
    proposeMany(net, 8, 'x');
    const snap = net.compact('a') as Snapshot;
    proposeMany(net, 2, 'y');
    const b = net.node('b');
    net.compact('b');
    const restarted = new Raft(defaultRaftOptions('b', () => 0.5), {
      hardState: b.persistedHardState,
      snapshot: b.persistedSnapshot,
      entries: b.persistedEntries,
      applied: b.smIndex,
    });
    const st = restarted.status();
    expect(st.snapshotIndex).to.equal(b.persistedSnapshot?.meta.lastIndex);
    expect(st.lastIndex).to.equal(net.raft('b').status().lastIndex);
    expect(st.config.members.map((m) => m.id)).to.deep.equal(['a', 'b', 'c']);
    expect(snap.meta.lastIndex).to.be.lessThan(st.snapshotIndex + 1);
    expect(restarted.latestSnapshot?.data).to.equal(JSON.stringify(b.sm));
  });

  it('a new leader sends its snapshot to a follower its log no longer covers', () => {
    const net = smallChunkNet(1 << 20);
    net.isolate('c');
    proposeMany(net, 10, 'x');
    for (const id of ['a', 'b']) net.compact(id);
    // a dies; b takes over and must catch c up from its own snapshot.
    net.isolate('a');
    net.blocked.delete('b->c');
    net.blocked.delete('c->b');
    // Only b can win: c's log is behind, and c's vote is withheld until its lease on a expires.
    net.tickAll(80);
    expect(net.leaders()).to.include('b');
    net.tickNode('b', 4);
    expect(net.node('c').installed).to.have.length(1);
    expect(net.node('c').sm).to.deep.equal(net.node('b').sm);
  });
});
