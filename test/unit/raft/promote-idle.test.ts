/**
 * Regression (found by the fault suite while forming 5-node clusters): a learner that acknowledged
 * its own addLearner entry before that entry committed was never promoted on an idle cluster, since
 * promotion was only tried when its matchIndex grew (the first try is refused: a change is pending).
 */
import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../src/raft/core/raft.js';
import { TestNet, testNode } from './harness.js';

describe('raft core: learner promotion on an idle cluster (thesis §4.2.1)', () => {
  it('promotes a caught-up learner once the pending change commits, even with no further writes', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const raft = new Raft(defaultRaftOptions('d', () => 0.5), { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
    net.nodes.set('d', testNode(raft));
    // The voters' acknowledgements are lost, so d's arrives while addLearner is still uncommitted.
    net.blocked.add('b->a');
    net.blocked.add('c->a');
    expect(net.raft('a').proposeConfChange({ op: 'addLearner', member: { id: 'd', suffrage: 'learner', raftAddr: '', apiAddr: '' } }).ok).to.equal(true);
    net.deliverAll();
    const learnerEntry = net.raft('a').status().lastIndex;
    expect(net.raft('a').status().commitIndex).to.be.below(learnerEntry);
    net.heal();
    net.tickNode('a', 20); // heartbeats only: nobody proposes anything
    expect(net.raft('a').status().commitIndex).to.be.at.least(learnerEntry);
    expect(net.raft('a').status().config.members.find((m) => m.id === 'd')?.suffrage).to.equal('voter');
  });
});
