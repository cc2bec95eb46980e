/**
 * Issue 14 §3: a snapshot transfer must not be overtaken by compaction. While a follower receives a
 * snapshot chunk by chunk, the leader keeps taking snapshots under steady writes; if it dropped the
 * log after the snapshot being sent, the follower would need another snapshot as soon as it installed
 * this one, and under steady writes it could keep needing one forever.
 */
import { expect } from 'chai';
import type { InstallSnapshot, Message, Snapshot } from '../../../../src/raft/core/types.js';
import { TestNet } from './harness.js';

const isChunk = (m: Message): m is InstallSnapshot => m.type === 'InstallSnapshot';

describe('raft core: compaction during a snapshot transfer', () => {
  it('the leader keeps the entries after the snapshot being sent, so the follower continues by AppendEntries once it installed it', () => {
    const net = new TestNet(['a', 'b', 'c'], { tune: (o) => { o.maxSnapshotChunkBytes = 16; o.compactionTailEntries = 0; } });
    net.elect('a');
    const propose = (n: number, prefix: string): void => {
      for (let i = 0; i < n; i++) {
        expect(net.raft('a').propose(`${prefix}${i}`).ok).to.equal(true);
        net.deliverAll();
      }
      net.tickNode('a', 2);
    };
    net.isolate('c');
    propose(20, 'v-');
    const first = net.compact('a') as Snapshot;
    net.heal();
    // The transfer starts; c's acknowledgements are lost for a while, so it is still in progress...
    net.dropIf = (m) => m.type === 'InstallSnapshotResponse';
    net.delivered = [];
    net.tickNode('a', 2);
    expect(net.delivered.filter(isChunk).filter((m) => m.to === 'c').length).to.be.greaterThan(0);
    // ...while writes continue and the leader compacts again, past the snapshot being sent.
    propose(10, 'w-');
    const second = net.compact('a') as Snapshot;
    expect(second.meta.lastIndex).to.be.greaterThan(first.meta.lastIndex);
    // The links recover: the transfer completes and c catches up.
    net.dropIf = null;
    net.delivered = [];
    net.tickAll(30);
    const sent = net.delivered.filter(isChunk).filter((m) => m.to === 'c');
    expect([...new Set(sent.map((m) => m.meta.lastIndex))]).to.deep.equal([first.meta.lastIndex]);
    expect(net.node('c').installed.map((s) => s.meta.lastIndex)).to.deep.equal([first.meta.lastIndex]);
    expect(net.node('c').sm).to.deep.equal(net.node('a').sm);
    // Once no transfer needs them, the next compaction drops the kept entries.
    propose(3, 'x-');
    net.compact('a');
    expect(net.raft('a').entryAt(first.meta.lastIndex + 1)).to.equal(undefined);
  });
});
