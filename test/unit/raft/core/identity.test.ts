/**
 * Membership and incarnation rules of the core (docs/cluster-identity.md), one rule per test, each
 * driven with hand-built messages. Every test here fails on the core before incarnations: a node
 * with no state voted, a non-member at a higher term deposed the leader, the follower-side shortcut
 * acknowledged entries of another history, and a follower that lost its log was never reset.
 */
import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { AppendEntriesResponse, ClusterConfig, Entry, Message, RequestVoteResponse } from '../../../../src/raft/core/types.js';
import { TestNet } from './harness.js';

function config(ids: string[], inc = (id: string) => `${id}-1`): ClusterConfig {
  return { members: ids.map((id) => ({ id, suffrage: 'voter' as const, raftAddr: '', apiAddr: '', incarnation: inc(id) })) };
}

function node(id: string, incarnation: string): Raft {
  const o = { ...defaultRaftOptions(id, () => 0.5), incarnation, checkQuorum: false };
  return new Raft(o, { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
}

/** A follower `id` whose log is exactly `entries` (fed by member `from`'s AppendEntries at `term`), committed up to `commit`. */
function follower(id: string, entries: Entry[], term: number, commit: number, from = 'b'): Raft {
  const r = node(id, `${id}-1`);
  r.step({ type: 'AppendEntries', from, to: id, term, prevLogIndex: 0, prevLogTerm: 0, entries, leaderCommit: commit, fromInc: `${from}-1`, toInc: `${id}-1` });
  r.advance(r.ready());
  return r;
}

function responses<T extends Message['type']>(msgs: Message[], type: T): Extract<Message, { type: T }>[] {
  return msgs.filter((m): m is Extract<Message, { type: T }> => m.type === type);
}

const cfgEntry = (ids: string[]): Entry => ({ index: 1, term: 1, type: 'config', change: { op: 'promote', id: ids[0] }, config: config(ids) });

describe('raft core: cluster identity and incarnations', () => {
  it('a node with no state never grants a vote, not even a pre-vote (it cannot know what it promised before)', () => {
    const r = node('b', 'b-2');
    for (const preVote of [true, false]) {
      r.step({ type: 'RequestVote', from: 'c', to: 'b', term: 5, preVote, lastLogIndex: 3, lastLogTerm: 2, transfer: false, fromInc: 'c-1', toInc: 'b-2' });
    }
    expect(responses(r.ready().messages, 'RequestVoteResponse').filter((v: RequestVoteResponse) => v.granted)).to.deep.equal([]);
    expect(r.status().votedFor).to.equal(null);
    // Nor once it holds a configuration that records its old incarnation (b-1) rather than itself.
    const r2 = node('b', 'b-2');
    r2.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [cfgEntry(['a', 'b', 'c'])], leaderCommit: 1, fromInc: 'a-1', toInc: 'b-2' });
    r2.advance(r2.ready());
    for (const preVote of [true, false]) {
      r2.step({ type: 'RequestVote', from: 'c', to: 'b', term: 5, preVote, lastLogIndex: 3, lastLogTerm: 2, transfer: false, fromInc: 'c-1', toInc: 'b-2' });
    }
    const votes = responses(r2.ready().messages, 'RequestVoteResponse');
    expect(votes.length).to.equal(2);
    expect(votes.every((v: RequestVoteResponse) => !v.granted)).to.equal(true);
    expect(r2.status().votedFor).to.equal(null);
  });

  it('a message addressed to another incarnation of this node is dropped', () => {
    const r = follower('a', [cfgEntry(['a', 'b', 'c'])], 1, 1);
    r.step({ type: 'RequestVote', from: 'c', to: 'a', term: 5, preVote: false, lastLogIndex: 9, lastLogTerm: 9, transfer: false, fromInc: 'c-1', toInc: 'a-0' });
    expect(r.ready().messages).to.deep.equal([]);
    expect(r.status().term).to.equal(1);
  });

  it('answers from another incarnation of a member than the configuration records are never counted (votes, matchIndex)', () => {
    // Candidate a (term 2) of a, b, c (b-1, c-1): a granted vote from c-2 must not count as c-1's.
    const a = follower('a', [cfgEntry(['a', 'b', 'c'])], 1, 1);
    a.campaign();
    a.advance(a.ready());
    const term = a.status().term;
    a.step({ type: 'RequestVoteResponse', from: 'c', to: 'a', term, preVote: false, granted: true, fromInc: 'c-2', toInc: 'a-1' });
    expect(a.status().role).to.equal('candidate');
    a.step({ type: 'RequestVoteResponse', from: 'c', to: 'a', term, preVote: false, granted: true, fromInc: 'c-1', toInc: 'a-1' });
    expect(a.status().role).to.equal('leader');
    a.advance(a.ready());
    // Leader a: a success from c-2 claiming a's whole log does not move c's matchIndex.
    const last = a.status().lastIndex;
    a.step({ type: 'AppendEntriesResponse', from: 'c', to: 'a', term, success: true, matchIndex: last, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0, fromInc: 'c-2', toInc: 'a-1' });
    expect(a.status().peers.find((p) => p.id === 'c')?.matchIndex).to.equal(0);
    expect(a.status().commitIndex).to.be.lessThan(last);
  });

  it('a voter lagging behind the entry that records a member\'s new incarnation still votes for it under Raft\'s rules, and answers that incarnation', () => {
    // a's configuration records c-1; c lost its state, rejoined as c-2, was promoted, and campaigns at term 5.
    const a = follower('a', [cfgEntry(['a', 'b', 'c'])], 1, 1);
    a.step({ type: 'RequestVote', from: 'c', to: 'a', term: 5, preVote: false, lastLogIndex: 9, lastLogTerm: 4, transfer: false, fromInc: 'c-2', toInc: 'a-1' });
    const [vote] = responses(a.ready().messages, 'RequestVoteResponse');
    expect(vote).to.include({ granted: true, term: 5, toInc: 'c-2' });
    expect(a.status()).to.include({ term: 5, votedFor: 'c' });
    // Not a log behind ours (Raft §5.4.1), whoever asks.
    const a2 = follower('a', [cfgEntry(['a', 'b', 'c']), { index: 2, term: 3, type: 'noop' }], 3, 1);
    a2.step({ type: 'RequestVote', from: 'c', to: 'a', term: 5, preVote: false, lastLogIndex: 9, lastLogTerm: 2, transfer: false, fromInc: 'c-2', toInc: 'a-1' });
    const [refused] = responses(a2.ready().messages, 'RequestVoteResponse');
    expect(refused).to.include({ granted: false, toInc: 'c-2' });
    // It then follows c-2 as the leader of term 5 and answers c-2 (not the c-1 its configuration records).
    a.step({ type: 'AppendEntries', from: 'c', to: 'a', term: 5, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 5, type: 'noop' }], leaderCommit: 2, fromInc: 'c-2', toInc: 'a-1' });
    expect(a.status()).to.include({ leaderId: 'c', lastIndex: 2 });
    const ack = responses(a.ready().messages, 'AppendEntriesResponse').pop() as AppendEntriesResponse;
    expect(ack).to.include({ success: true, matchIndex: 2, toInc: 'c-2' });
    // Reads it forwards go to the leader's incarnation too.
    a.readIndex('r1');
    const [fwd] = responses(a.ready().messages, 'ReadIndex');
    expect(fwd).to.include({ to: 'c', toInc: 'c-2' });
  });

  it('a non-member cannot raise a voter\'s term nor depose its leader (signed AppendEntries from "evil" at term 100)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    const term = a.status().term;
    const entry: Entry = { index: a.status().lastIndex + 1, term: 100, type: 'normal', data: '{"ops":[{"op":"set","key":"k","value":"evil"}]}' };
    a.step({ type: 'AppendEntries', from: 'evil', to: 'a', term: 100, prevLogIndex: a.status().lastIndex, prevLogTerm: term, entries: [entry], leaderCommit: entry.index });
    a.step({ type: 'RequestVote', from: 'evil', to: 'a', term: 101, preVote: false, lastLogIndex: 99, lastLogTerm: 99, transfer: true });
    expect(a.status()).to.include({ role: 'leader', term, leaderId: 'a' });
    expect(a.entryAt(entry.index)).to.equal(undefined);
  });

  it('a leader of this term is not replaced by another sender claiming leadership in the same term (Raft §5.2: one leader per term)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const b = net.raft('b');
    const st = b.status();
    b.step({ type: 'AppendEntries', from: 'c', to: 'b', term: st.term, prevLogIndex: st.lastIndex, prevLogTerm: st.term, entries: [{ index: st.lastIndex + 1, term: st.term, type: 'noop' }], leaderCommit: 0 });
    expect(b.status()).to.include({ leaderId: 'a', lastIndex: st.lastIndex });
  });

  it('a voter lagging behind the entry that adds a candidate judges its pre-vote and vote under Raft\'s rules (simulator seed 65 with --leases)', () => {
    // a knows only a, b, c; the cluster has since added d and removed b (whose log holds its own
    // uncommitted removal, so it does not campaign). With no leader alive, d's log is ahead of a's:
    // a must grant, or d (which needs a) and a (whom b refuses) are stuck forever.
    const a = follower('a', [cfgEntry(['a', 'b', 'c'])], 1, 1);
    a.step({ type: 'RequestVote', from: 'd', to: 'a', term: 4, preVote: true, lastLogIndex: 9, lastLogTerm: 3, transfer: false, fromInc: 'd-1', toInc: 'a-1' });
    const [pre] = responses(a.ready().messages, 'RequestVoteResponse');
    expect(pre).to.include({ granted: true, preVote: true, term: 4, to: 'd', toInc: 'd-1' });
    expect(a.status().term).to.equal(1); // a pre-vote changes nothing
    a.step({ type: 'RequestVote', from: 'd', to: 'a', term: 4, preVote: false, lastLogIndex: 9, lastLogTerm: 3, transfer: false, fromInc: 'd-1', toInc: 'a-1' });
    const [vote] = responses(a.ready().messages, 'RequestVoteResponse');
    expect(vote).to.include({ granted: true, preVote: false, term: 4, to: 'd' });
    expect(a.status()).to.include({ term: 4, votedFor: 'd' });
    // Raft's rules still hold for it: one vote per term, and never for a log behind ours.
    a.step({ type: 'RequestVote', from: 'e', to: 'a', term: 4, preVote: false, lastLogIndex: 20, lastLogTerm: 3, transfer: false, fromInc: 'e-1', toInc: 'a-1' });
    expect(responses(a.ready().messages, 'RequestVoteResponse')[0]).to.include({ granted: false });
    const a2 = follower('a', [cfgEntry(['a', 'b', 'c']), { index: 2, term: 3, type: 'noop' }], 3, 1);
    a2.step({ type: 'RequestVote', from: 'd', to: 'a', term: 5, preVote: true, lastLogIndex: 9, lastLogTerm: 2, transfer: false, fromInc: 'd-1', toInc: 'a-1' });
    expect(responses(a2.ready().messages, 'RequestVoteResponse')[0]).to.include({ granted: false });
  });

  it('a sender outside the configuration cannot waive the leader lease with a transfer flag (only our leader\'s TimeoutNow can)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const b = net.raft('b');
    const term = b.status().term;
    b.step({ type: 'RequestVote', from: 'evil', to: 'b', term: term + 1, preVote: false, lastLogIndex: 99, lastLogTerm: 99, transfer: true });
    expect(b.status()).to.include({ term, leaderId: 'a' });
    expect(responses(b.ready().messages, 'RequestVoteResponse')).to.have.length(0);
    // A member's transfer campaign still waives it (thesis §3.10).
    b.step({ type: 'RequestVote', from: 'c', to: 'b', term: term + 1, preVote: false, lastLogIndex: 99, lastLogTerm: 99, transfer: true });
    expect(b.status()).to.include({ term: term + 1, votedFor: 'c' });
  });

  it('a voter that lags behind the entry adding a new leader learns the term from members\' vote answers, then follows that leader', () => {
    // a knows only a, b, c; the cluster has since added d, which now leads at term 3.
    const a = follower('a', [cfgEntry(['a', 'b', 'c'])], 1, 1);
    a.step({ type: 'Heartbeat', from: 'd', to: 'a', term: 3, commit: 0, ctx: 0, fromInc: 'd-1', toInc: 'a-1' });
    expect(a.status().term).to.equal(1); // a stranger cannot raise the term
    a.step({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 3, preVote: true, granted: false, fromInc: 'b-1', toInc: 'a-1' });
    expect(a.status().term).to.equal(3);
    a.step({ type: 'AppendEntries', from: 'd', to: 'a', term: 3, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 3, type: 'noop' }], leaderCommit: 2, fromInc: 'd-1', toInc: 'a-1' });
    expect(a.status()).to.include({ leaderId: 'd', lastIndex: 2 });
    const resp = responses(a.ready().messages, 'AppendEntriesResponse').pop() as AppendEntriesResponse;
    expect(resp).to.include({ success: true, matchIndex: 2, toInc: 'd-1' });
  });

  it('the follower-side shortcut below the commit index never acknowledges entries of another history (phantom replica)', () => {
    // A node that bootstrapped its own cluster: config@1 (term 1), its no-op@2 (term 2), committed.
    const mine: Entry[] = [cfgEntry(['a', 'b', 'c']), { index: 2, term: 2, type: 'noop' }];
    const r = follower('a', mine, 2, 2);
    // The old cluster's leader (term 5) probes at index 1, whose term happens to match, carrying its index 2 (term 1).
    r.step({ type: 'AppendEntries', from: 'b', to: 'a', term: 5, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 1, type: 'noop' }, { index: 3, term: 5, type: 'noop' }], leaderCommit: 3, fromInc: 'b-1', toInc: 'a-1' });
    const resp = responses(r.ready().messages, 'AppendEntriesResponse').pop() as AppendEntriesResponse;
    expect(resp.success).to.equal(false);
    expect(r.entryAt(2)?.term).to.equal(2); // nothing committed is truncated
    // An empty probe below the commit index is acknowledged only up to what it proves.
    const r2 = follower('a', mine, 2, 2);
    r2.step({ type: 'AppendEntries', from: 'b', to: 'a', term: 5, prevLogIndex: 1, prevLogTerm: 1, entries: [], leaderCommit: 3, fromInc: 'b-1', toInc: 'a-1' });
    const resp2 = responses(r2.ready().messages, 'AppendEntriesResponse').pop() as AppendEntriesResponse;
    expect(resp2).to.include({ success: true, matchIndex: 1 });
  });

  it('the leader resets its view of a follower that proves it lost its log, and probes it at most once per heartbeat (no repair storm)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    for (let i = 0; i < 3; i++) a.propose(`{"ops":[{"op":"set","key":"k","value":"${i}"}]}`);
    net.processAll();
    net.deliverAll();
    const before = a.status().peers.find((p) => p.id === 'b');
    expect(before?.matchIndex).to.equal(a.status().lastIndex);
    const last = a.status().lastIndex;
    const term = a.status().term;
    // b's disk was replaced under the same identity: its log is empty and it rejects the next append.
    const reject = (rejectedIndex: number): AppendEntriesResponse => ({ type: 'AppendEntriesResponse', from: 'b', to: 'a', term, success: false, matchIndex: 0, rejectedIndex, conflictIndex: 1, conflictTerm: 0 });
    a.step(reject(last));
    const after = a.status().peers.find((p) => p.id === 'b');
    expect(after?.matchIndex).to.equal(0);
    expect(after?.state).to.equal('probe');
    let probes = responses(a.ready().messages, 'AppendEntries').filter((m) => m.to === 'b').length;
    expect(probes).to.equal(1);
    // The same probe refused over and over is not answered with a new probe each time.
    for (let i = 0; i < 50; i++) a.step(reject(0));
    probes = responses(a.ready().messages, 'AppendEntries').filter((m) => m.to === 'b').length;
    expect(probes).to.be.at.most(1);
  });

  it('a new incarnation whose log still records its old incarnation as a voter never campaigns, and follows a newer leader it does not know yet (simulator seed 776)', () => {
    // b-2 has caught up only to the old configuration, which records b-1 as a voter.
    const b = node('b', 'b-2');
    b.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 3, prevLogIndex: 0, prevLogTerm: 0, entries: [cfgEntry(['a', 'b', 'c'])], leaderCommit: 1, fromInc: 'a-1', toInc: 'b-2' });
    b.advance(b.ready());
    for (let i = 0; i < 50; i++) b.tick();
    b.campaign();
    expect(b.status().role).to.equal('follower');
    expect(responses(b.ready().messages, 'RequestVote')).to.deep.equal([]);
    // d, added after what b holds, leads term 9: b is no voter of its own configuration, so it follows.
    b.step({ type: 'Heartbeat', from: 'd', to: 'b', term: 9, commit: 0, ctx: 0, fromInc: 'd-1', toInc: 'b-2' });
    expect(b.status()).to.include({ term: 9, leaderId: 'd' });
  });

  it('a read forwarded in an older term fails when the term moves on under the same leader id (the leader drops it as stale)', () => {
    const f = follower('a', [cfgEntry(['a', 'b', 'c'])], 1, 1);
    f.readIndex('r1');
    expect(responses(f.ready().messages, 'ReadIndex')).to.have.length(1);
    f.step({ type: 'Heartbeat', from: 'b', to: 'a', term: 4, commit: 0, ctx: 0, fromInc: 'b-1', toInc: 'a-1' });
    expect(f.ready().readFailures).to.deep.equal([{ id: 'r1', reason: 'leadership-lost' }]);
  });

  it('a learner is promoted only once it holds the committed log (an empty voter would not know it is one)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    expect(a.proposeConfChange({ op: 'addLearner', member: { id: 'b', suffrage: 'learner', raftAddr: '', apiAddr: '', incarnation: 'b-2' } }).ok).to.equal(true);
    // Commit the change with c alone (b-2 is a learner now; voters a, c).
    net.processAll();
    net.deliverAll();
    net.processAll();
    expect(a.status().config.members.find((m) => m.id === 'b')?.suffrage).to.equal('learner');
    expect(a.status().peers.find((p) => p.id === 'b')?.matchIndex).to.equal(0);
    expect(a.proposeConfChange({ op: 'promote', id: 'b' })).to.include({ ok: false, reason: 'not-caught-up' });
  });

  it('a new incarnation of a member replaces the old one as a learner, and the leader forgets the old one\'s progress', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    expect(a.status().peers.find((p) => p.id === 'b')?.matchIndex).to.be.greaterThan(0);
    const res = a.proposeConfChange({ op: 'addLearner', member: { id: 'b', suffrage: 'learner', raftAddr: '', apiAddr: '', incarnation: 'b-2' } });
    expect(res.ok).to.equal(true);
    const b = a.status().config.members.find((m) => m.id === 'b');
    expect(b).to.include({ suffrage: 'learner', incarnation: 'b-2' });
    expect(a.status().peers.find((p) => p.id === 'b')?.matchIndex).to.equal(0);
    // The same incarnation again is already a member.
    const again = a.proposeConfChange({ op: 'addLearner', member: { id: 'b', suffrage: 'learner', raftAddr: '', apiAddr: '', incarnation: 'b-2' } });
    expect(again).to.include({ ok: false });
  });
});
