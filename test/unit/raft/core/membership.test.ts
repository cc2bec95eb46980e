import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import { TestNet, testNode } from './harness.js';

const member = (id: string) => ({ id, suffrage: 'learner' as const, raftAddr: '', apiAddr: '' });

/** Adds an empty node `id` to the test network (it knows nothing until the leader contacts it). */
function addEmptyNode(net: TestNet, id: string): void {
  const raft = new Raft(defaultRaftOptions(id, () => 0.5), { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
  net.nodes.set(id, testNode(raft));
}

describe('raft core: membership changes, one server at a time (thesis §4.1)', () => {
  it('adds a node as a learner and promotes it once it has caught up', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    addEmptyNode(net, 'd');
    const res = net.raft('a').proposeConfChange({ op: 'addLearner', member: member('d') });
    expect(res.ok).to.equal(true);
    net.deliverAll();
    net.tickNode('a', 6);
    const cfg = net.raft('a').status().config.members;
    expect(cfg.find((m) => m.id === 'd')?.suffrage).to.equal('voter');
    expect(net.raft('d').status().config.members.find((m) => m.id === 'd')?.suffrage).to.equal('voter');
  });

  // Found by the fault suite forming 5-node clusters: promotion was tried only when the learner's
  // matchIndex grew, so a refused learner on an idle cluster stayed a learner for ever.
  it('a caught-up learner whose promotion was refused (another change pending) is promoted later without new entries', () => {
    const net = new TestNet(['a', 'b']);
    net.elect('a');
    addEmptyNode(net, 'd');
    net.blocked.add('a->d');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', member: member('d') }).ok).to.equal(true);
    net.deliverAll();
    net.tickNode('a', 2);
    // b is cut off, so the next change stays uncommitted while d catches up and asks to be promoted.
    net.blocked.clear();
    net.blocked.add('a->b');
    net.blocked.add('b->a');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', member: member('e') }).ok).to.equal(true);
    net.tickNode('a', 3);
    expect(net.raft('d').status().lastIndex).to.equal(net.raft('a').status().lastIndex);
    expect(net.raft('a').status().config.members.find((m) => m.id === 'd')?.suffrage).to.equal('learner');
    net.heal();
    net.tickNode('a', 8);
    expect(net.raft('a').status().config.members.find((m) => m.id === 'd')?.suffrage).to.equal('voter');
  });

  it('rejects a second change while one is uncommitted', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', member: member('d') }).ok).to.equal(true);
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', member: member('e') })).to.deep.equal({ ok: false, reason: 'conf-change-pending', leaderId: 'a' });
  });

  it('a new leader refuses changes until it has committed an entry of its own term', () => {
    const opts = defaultRaftOptions('a', () => 0.5);
    const r = new Raft(opts, { hardState: { term: 1, votedFor: null }, snapshot: null, entries: [{ index: 1, term: 1, type: 'config', change: { op: 'promote', id: 'a' }, config: { members: ['a', 'b', 'c'].map((id) => ({ id, suffrage: 'voter' as const, raftAddr: '', apiAddr: '' })) } }], applied: 1 });
    r.campaign();
    r.step({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 2, preVote: false, granted: true });
    expect(r.status().role).to.equal('leader');
    expect(r.proposeConfChange({ op: 'remove', id: 'c' })).to.deep.equal({ ok: false, reason: 'no-commit-in-term', leaderId: 'a' });
  });

  it('removes a follower; the remaining two keep committing', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'c' }).ok).to.equal(true);
    net.deliverAll();
    net.isolate('c');
    const res = net.raft('a').propose('after');
    expect(res.ok).to.equal(true);
    net.deliverAll();
    net.tickNode('a', 3);
    expect(net.node('a').applied.some((e) => e.type === 'normal' && e.data === 'after')).to.equal(true);
  });

  it('a leader that removes itself steps down once the removal commits, and the rest elect a new leader', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raft('a').proposeConfChange({ op: 'remove', id: 'a' }).ok).to.equal(true);
    net.deliverAll();
    net.tickNode('a', 3);
    expect(net.raft('a').status().role).to.equal('follower');
    net.tickAll(60);
    const leaders = net.leaders();
    expect(leaders).to.have.length(1);
    expect(leaders[0]).to.not.equal('a');
  });
});
