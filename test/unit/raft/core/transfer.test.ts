import { expect } from 'chai';
import { defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { Message } from '../../../../src/raft/core/types.js';
import { TestNet } from './harness.js';

const electionTimeoutTicks = defaultRaftOptions('x', () => 0).electionTimeoutTicks;

function commitSome(net: TestNet, n: number): void {
  for (let i = 0; i < n; i++) {
    net.raft('a').propose(`p${i}`);
    net.deliverAll();
  }
}

describe('raft core: leadership transfer (thesis §3.10)', () => {
  it('hands leadership to the chosen voter with TimeoutNow; it wins the next term and the old leader follows', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    commitSome(net, 3);
    const term = net.raft('a').status().term;
    expect(net.raft('a').transferLeadership('b')).to.deep.equal({ ok: true, to: 'b' });
    net.deliverAll();
    expect(net.delivered.some((m) => m.type === 'TimeoutNow' && m.to === 'b')).to.equal(true);
    expect(net.leaders()).to.deep.equal(['b']);
    expect(net.raft('b').status().term).to.equal(term + 1);
    expect(net.raft('a').status()).to.include({ role: 'follower', leaderId: 'b' });
    // The new leader commits writes, and the old one applies them.
    expect(net.raft('b').propose('after').ok).to.equal(true);
    net.deliverAll();
    net.tickNode('b', 2);
    expect(net.node('a').applied.some((e) => e.type === 'normal' && e.data === 'after')).to.equal(true);
  });

  it('without a target, picks the most caught-up voter', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.blocked.add('a->c');
    commitSome(net, 5);
    const res = net.raft('a').transferLeadership();
    expect(res).to.deep.equal({ ok: true, to: 'b' });
  });

  it('brings a lagging target up to date before sending TimeoutNow', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.blocked.add('a->b');
    commitSome(net, 5);
    net.blocked.clear();
    const last = net.raft('a').status().lastIndex;
    expect(net.raft('b').status().lastIndex).to.be.lessThan(last);
    net.delivered = [];
    expect(net.raft('a').transferLeadership('b').ok).to.equal(true);
    // The lost AppendEntries are noticed on the next heartbeat round.
    net.tickNode('a', 4);
    const firstTimeoutNow = net.delivered.findIndex((m) => m.type === 'TimeoutNow');
    const caughtUp = net.delivered.findIndex((m: Message) => m.type === 'AppendEntriesResponse' && m.from === 'b' && m.matchIndex === last);
    expect(caughtUp).to.be.greaterThan(-1);
    expect(firstTimeoutNow).to.be.greaterThan(caughtUp);
    expect(net.leaders()).to.deep.equal(['b']);
  });

  it('refuses proposals and membership changes while transferring (reason "transferring")', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    expect(net.raft('a').transferLeadership('b').ok).to.equal(true);
    expect(net.raft('a').leadershipTransferee).to.equal('b');
    expect(net.raft('a').propose('x')).to.deep.equal({ ok: false, reason: 'transferring', leaderId: 'a' });
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'c' })).to.deep.equal({ ok: false, reason: 'transferring', leaderId: 'a' });
    expect(net.raft('a').transferLeadership('c')).to.deep.equal({ ok: false, reason: 'transferring', leaderId: 'a' });
  });

  it('aborts a transfer that has not completed within an election timeout; proposals resume', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('b');
    expect(net.raft('a').transferLeadership('b').ok).to.equal(true);
    net.tickNode('a', electionTimeoutTicks);
    expect(net.raft('a').status().role).to.equal('leader');
    expect(net.raft('a').leadershipTransferee).to.equal(null);
    expect(net.raft('a').propose('x').ok).to.equal(true);
  });

  it('refuses a transfer on a follower, to itself, or to a non-voter', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raft('b').transferLeadership('c')).to.deep.equal({ ok: false, reason: 'not-leader', leaderId: 'a' });
    expect(net.raft('a').transferLeadership('a')).to.deep.equal({ ok: false, reason: 'no-target', leaderId: 'a' });
    expect(net.raft('a').transferLeadership('zz')).to.deep.equal({ ok: false, reason: 'unknown-member', leaderId: 'a' });
    const solo = new TestNet(['s']);
    solo.raft('s').campaign();
    solo.deliverAll();
    expect(solo.raft('s').transferLeadership()).to.deep.equal({ ok: false, reason: 'no-target', leaderId: 's' });
  });
});
