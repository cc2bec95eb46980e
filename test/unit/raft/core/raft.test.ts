import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { AppendEntries, AppendEntriesResponse, Entry, Message, RequestVote } from '../../../../src/raft/core/types.js';
import { TestNet, votersConfig } from './harness.js';

// The leader in these scripted exchanges is member 'b': a sender outside the configuration may not
// raise a voter's term (docs/cluster-identity.md).
function freshFollower(id: string, peers: string[], entries: Entry[] = [], term = 1, checkQuorum = true): Raft {
  const opts = { ...defaultRaftOptions(id, () => 0.5), checkQuorum };
  const r = new Raft(opts, { hardState: { term, votedFor: null }, snapshot: null, entries: [], applied: 0 });
  const cfg: Entry = { index: 1, term: 1, type: 'config', change: { op: 'promote', id }, config: votersConfig(peers) };
  const all = [cfg, ...entries];
  // Feed the log through a leader's AppendEntries so the follower holds exactly `all`.
  r.step({ type: 'AppendEntries', from: 'b', to: id, term, prevLogIndex: 0, prevLogTerm: 0, entries: all, leaderCommit: 0 });
  r.advance(r.ready());
  return r;
}

function ae(to: string, term: number, prevLogIndex: number, prevLogTerm: number, entries: Entry[], leaderCommit = 0): AppendEntries {
  return { type: 'AppendEntries', from: 'b', to, term, prevLogIndex, prevLogTerm, entries, leaderCommit };
}

function norm(index: number, term: number, data = `d${index}`): Entry {
  return { index, term, type: 'normal', data };
}

function lastResponse(msgs: Message[]): AppendEntriesResponse {
  const r = msgs.filter((m): m is AppendEntriesResponse => m.type === 'AppendEntriesResponse').pop();
  if (!r) throw new Error('no AppendEntriesResponse');
  return r;
}

describe('raft core: leader election (Raft §5.2)', () => {
  it('elects exactly one leader in a quiet three-node cluster', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    expect(net.leaders()).to.deep.equal(['a']);
    expect(net.raft('b').status().leaderId).to.equal('a');
  });

  it('a new leader appends a no-op of its own term and commits it (Raft §8)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const st = net.raft('a').status();
    const last = net.raft('a').entryAt(st.lastIndex);
    expect(last?.type).to.equal('noop');
    expect(last?.term).to.equal(st.term);
    expect(st.commitIndex).to.equal(st.lastIndex);
  });

  it('grants at most one vote per term', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [], 1, false);
    const rv = (from: string): RequestVote => ({ type: 'RequestVote', from, to: 'a', term: 5, preVote: false, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    r.step(rv('b'));
    r.step(rv('c'));
    const votes = r.ready().messages.filter((m) => m.type === 'RequestVoteResponse');
    expect(votes.map((m) => (m.type === 'RequestVoteResponse' ? [m.to, m.granted] : null))).to.deep.equal([['b', true], ['c', false]]);
  });

  it('rejects a candidate whose log is less up-to-date (Raft §5.4.1 election restriction)', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [norm(2, 2)], 2, false);
    r.step({ type: 'RequestVote', from: 'b', to: 'a', term: 3, preVote: false, lastLogIndex: 5, lastLogTerm: 1, transfer: false });
    const resp = r.ready().messages.find((m) => m.type === 'RequestVoteResponse');
    expect(resp && resp.type === 'RequestVoteResponse' && resp.granted).to.equal(false);
  });

  it('persists term and vote in the same Ready that releases the vote (persistence contract)', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [], 1, false);
    r.step({ type: 'RequestVote', from: 'b', to: 'a', term: 4, preVote: false, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    const rd = r.ready();
    expect(rd.hardState).to.deep.equal({ term: 4, votedFor: 'b' });
    expect(rd.messages.some((m) => m.type === 'RequestVoteResponse' && m.granted)).to.equal(true);
  });

  it('PreVote: a partitioned node rejoining does not raise the term or depose the leader (thesis §9.6)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const term = net.raft('a').status().term;
    net.isolate('c');
    net.tickNode('c', 100);
    expect(net.raft('c').status().term).to.equal(term);
    net.heal();
    net.tickNode('c', 30);
    net.tickNode('a', 4);
    expect(net.leaders()).to.deep.equal(['a']);
    expect(net.raft('a').status().term).to.equal(term);
  });

  it('without PreVote the same rejoining node disrupts the term (control for the test above)', () => {
    const net = new TestNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    net.elect('a');
    const term = net.raft('a').status().term;
    net.isolate('c');
    net.tickNode('c', 100);
    expect(net.raft('c').status().term).to.be.greaterThan(term);
  });

  it('CheckQuorum: a leader that cannot reach a majority steps down within an election timeout (thesis §6.2)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    net.tickNode('a', 2 * defaultRaftOptions('a', () => 0).electionTimeoutTicks + 1);
    expect(net.raft('a').status().role).to.not.equal('leader');
  });

  it('a voter that heard from a live leader ignores a disruptive RequestVote (leader lease)', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const term = net.raft('b').status().term;
    net.raft('b').step({ type: 'RequestVote', from: 'c', to: 'b', term: term + 5, preVote: false, lastLogIndex: 100, lastLogTerm: 100, transfer: false });
    expect(net.raft('b').status().term).to.equal(term);
  });
});

describe('raft core: log replication (Raft §5.3)', () => {
  it('replicates and commits a proposal on every node', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const res = net.raft('a').propose('hello');
    expect(res.ok).to.equal(true);
    net.deliverAll();
    net.tickNode('a', 2);
    for (const id of ['a', 'b', 'c']) {
      expect(net.node(id).applied.some((e) => e.type === 'normal' && e.data === 'hello')).to.equal(true);
    }
  });

  it('refuses proposals beyond maxUncommittedEntries until the followers catch up (back-pressure)', () => {
    const net = new TestNet(['a', 'b', 'c'], { tune: (o) => { o.maxUncommittedEntries = 3; } });
    net.elect('a');
    net.isolate('a');
    const a = net.raft('a');
    for (let i = 0; i < 3; i++) expect(a.propose(`p${i}`).ok).to.equal(true);
    const refused = a.propose('p3');
    expect(refused).to.deep.equal({ ok: false, reason: 'too-many-uncommitted', leaderId: 'a' });
    expect(a.status().lastIndex - a.status().commitIndex).to.equal(3);
    net.heal();
    net.tickNode('a', 3);
    net.deliverAll();
    expect(a.status().commitIndex).to.equal(a.status().lastIndex);
    expect(a.propose('p4').ok).to.equal(true);
  });

  it('batches many proposals into one AppendEntries', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    for (let i = 0; i < 100; i++) net.raft('a').propose(`p${i}`);
    const rd = net.raft('a').ready();
    const appends = rd.messages.filter((m): m is AppendEntries => m.type === 'AppendEntries');
    expect(appends).to.have.length(2);
    expect(appends[0].entries).to.have.length(100);
  });

  it('pipelines: several AppendEntries in flight to one follower without waiting for acks', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    let sent = 0;
    for (let round = 0; round < 4; round++) {
      a.propose(`p${round}`);
      const rd = a.ready();
      sent += rd.messages.filter((m) => m.type === 'AppendEntries' && m.to === 'b').length;
      a.advance(rd); // the acks are never delivered
    }
    expect(sent).to.equal(4);
  });

  it('does not truncate on a stale AppendEntries whose entries already match', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [norm(2, 1), norm(3, 1), norm(4, 1)]);
    r.step(ae('a', 1, 1, 1, [norm(2, 1)]));
    const rd = r.ready();
    expect(lastResponse(rd.messages)).to.include({ success: true, matchIndex: 2 });
    r.advance(rd);
    expect(r.status().lastIndex).to.equal(4);
  });

  it('truncates from the first conflicting entry and appends the leader\'s (Raft §5.3)', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [norm(2, 1), norm(3, 1), norm(4, 1)], 1);
    r.step(ae('a', 2, 2, 1, [norm(3, 2, 'x')]));
    const rd = r.ready();
    expect(rd.entries.map((e) => [e.index, e.term])).to.deep.equal([[3, 2]]);
    r.advance(rd);
    expect(r.status().lastIndex).to.equal(3);
    expect(r.entryAt(3)).to.deep.include({ term: 2 });
  });

  it('rejects with a conflict hint that skips a whole term (fast backtracking)', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [norm(2, 2), norm(3, 2), norm(4, 2)], 2);
    r.step(ae('a', 3, 4, 3, []));
    const resp = lastResponse(r.ready().messages);
    expect(resp).to.include({ success: false, rejectedIndex: 4, conflictTerm: 2, conflictIndex: 2 });
  });

  it('rejects past the end of a short log with conflictIndex = lastIndex + 1', () => {
    const r = freshFollower('a', ['a', 'b', 'c'], [norm(2, 1)]);
    r.step(ae('a', 1, 9, 1, []));
    const resp = lastResponse(r.ready().messages);
    expect(resp).to.include({ success: false, conflictIndex: 3, conflictTerm: 0 });
  });

  it('a leader catches up a follower with a divergent log', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    for (let i = 0; i < 20; i++) {
      net.raft('a').propose(`x${i}`);
      net.deliverAll();
    }
    net.heal();
    net.tickNode('a', 4);
    expect(net.raft('c').status().lastIndex).to.equal(net.raft('a').status().lastIndex);
    expect(net.raft('c').status().commitIndex).to.equal(net.raft('a').status().commitIndex);
  });

  it('a follower whose pipelined appends were all lost catches up on a heartbeat round, with no new proposal', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.blocked.add('a->c');
    for (let i = 0; i < 3; i++) {
      net.raft('a').propose(`lost${i}`);
      net.deliverAll();
    }
    net.blocked.clear();
    net.tickNode('a', 6);
    expect(net.raft('c').status().lastIndex).to.equal(net.raft('a').status().lastIndex);
    expect(net.node('c').applied.filter((e) => e.type === 'normal').map((e) => e.type === 'normal' && e.data)).to.deep.equal(['lost0', 'lost1', 'lost2']);
  });

  it('Figure 8: a leader does not commit an entry of an earlier term by counting replicas (Raft §5.4.2)', () => {
    // Leader of term 3 holds an entry of term 2 at index 2 that a majority stores; its own log has no
    // term-3 entry committed yet, so commitIndex must stay below 2 until its own no-op is replicated.
    const opts = defaultRaftOptions('a', () => 0.5);
    const cfg: Entry = { index: 1, term: 1, type: 'config', change: { op: 'promote', id: 'a' }, config: votersConfig(['a', 'b', 'c']) };
    const r = new Raft(opts, { hardState: { term: 2, votedFor: 'a' }, snapshot: null, entries: [cfg, norm(2, 2)], applied: 1 });
    r.campaign();
    r.step({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 3, preVote: false, granted: true });
    expect(r.status().role).to.equal('leader');
    let rd = r.ready();
    r.advance(rd);
    // b acknowledges index 2 (the old-term entry) but not yet the no-op at 3.
    r.step({ type: 'AppendEntriesResponse', from: 'b', to: 'a', term: 3, success: true, matchIndex: 2, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
    expect(r.status().commitIndex).to.equal(1);
    r.step({ type: 'AppendEntriesResponse', from: 'b', to: 'a', term: 3, success: true, matchIndex: 3, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
    expect(r.status().commitIndex).to.equal(3);
    rd = r.ready();
    expect(rd.committedEntries.map((e) => e.index)).to.deep.equal([2, 3]);
  });

  it('a leader counts its own vote towards commit only for entries it has persisted (thesis §10.2.1)', () => {
    const net = new TestNet(['a']);
    net.raft('a').campaign();
    const a = net.raft('a');
    let rd = a.ready();
    expect(a.status().commitIndex).to.be.lessThan(a.status().lastIndex);
    a.advance(rd);
    expect(a.status().commitIndex).to.equal(a.status().lastIndex);
    rd = a.ready();
    expect(rd.committedEntries.length).to.be.greaterThan(0);
  });

  it('refuses proposals on a follower and names the leader', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    expect(net.raft('b').propose('x')).to.deep.equal({ ok: false, reason: 'not-leader', leaderId: 'a' });
  });
});

describe('raft core: linearizable reads via ReadIndex (thesis §6.4)', () => {
  it('confirms a leader read only after a quorum acknowledges the heartbeat round', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    a.readIndex('r1');
    const rd = a.ready();
    expect(rd.readStates).to.deep.equal([]);
    expect(rd.messages.filter((m) => m.type === 'Heartbeat' && m.ctx > 0)).to.have.length(2);
    a.advance(rd);
    net.inFlight.push(...rd.messages);
    net.deliverAll();
    const states = net.node('a').readReady.flatMap((r) => r.readStates);
    expect(states.map((s) => s.id)).to.deep.equal(['r1']);
    expect(states[0].index).to.equal(a.status().commitIndex);
  });

  it('an isolated leader cannot confirm a read', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    net.raft('a').readIndex('r1');
    net.tickNode('a', 5);
    expect(net.node('a').readReady.flatMap((r) => r.readStates)).to.deep.equal([]);
  });

  it('batches concurrent reads into one heartbeat round', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    const a = net.raft('a');
    for (let i = 0; i < 50; i++) a.readIndex(`r${i}`);
    const rd = a.ready();
    expect(rd.messages.filter((m) => m.type === 'Heartbeat')).to.have.length(2);
    a.advance(rd);
    net.inFlight.push(...rd.messages);
    net.deliverAll();
    expect(net.node('a').readReady.flatMap((r) => r.readStates)).to.have.length(50);
  });

  it('a follower obtains a read index from the leader', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.raft('b').readIndex('f1');
    net.deliverAll();
    net.tickNode('a', 2);
    const states = net.node('b').readReady.flatMap((r) => r.readStates);
    expect(states.map((s) => s.id)).to.deep.equal(['f1']);
    expect(states[0].index).to.equal(net.raft('a').status().commitIndex);
  });

  it('a read with no known leader fails at once', () => {
    const r = new Raft(defaultRaftOptions('z', () => 0.5), { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
    r.readIndex('q');
    expect(r.ready().readFailures).to.deep.equal([{ id: 'q', reason: 'no-leader' }]);
  });
});

describe('raft core: restart', () => {
  it('a node restarted from persisted state keeps its term, vote and log', () => {
    const net = new TestNet(['a', 'b', 'c']);
    net.elect('a');
    net.raft('a').propose('v');
    net.deliverAll();
    const b = net.node('b');
    const restarted = new Raft(defaultRaftOptions('b', () => 0.5), { hardState: b.persistedHardState, snapshot: null, entries: b.persistedEntries, applied: 0 });
    expect(restarted.status().term).to.equal(net.raft('b').status().term);
    expect(restarted.status().lastIndex).to.equal(net.raft('b').status().lastIndex);
    expect(restarted.status().config.members.map((m) => m.id)).to.deep.equal(['a', 'b', 'c']);
  });
});

describe('raft core: no busy work', () => {
  it('a new leader with reads it cannot serve yet reports no Ready until its no-op commits', () => {
    const cfg: Entry = { index: 1, term: 1, type: 'config', change: { op: 'promote', id: 'a' }, config: votersConfig(['a', 'b', 'c']) };
    const r = new Raft(defaultRaftOptions('a', () => 0.5), { hardState: { term: 1, votedFor: null }, snapshot: null, entries: [cfg], applied: 1 });
    r.campaign();
    r.step({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 2, preVote: false, granted: true });
    expect(r.status().role).to.equal('leader');
    r.readIndex('r');
    let rounds = 0;
    while (r.hasReady() && rounds < 100) {
      r.advance(r.ready());
      rounds++;
    }
    expect(r.status().commitIndex).to.equal(1);
    expect(r.hasReady()).to.equal(false);
    // Once the no-op commits, the read proceeds.
    r.step({ type: 'AppendEntriesResponse', from: 'b', to: 'a', term: 2, success: true, matchIndex: 2, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
    expect(r.hasReady()).to.equal(true);
    const rd = r.ready();
    expect(rd.messages.some((m) => m.type === 'Heartbeat' && m.ctx > 0)).to.equal(true);
  });
});
