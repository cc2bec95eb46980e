import { expect } from 'chai';
import type { Message } from '../../../src/raft/core/types.js';
import { RpcRoundTripTracker, rpcResult, rpcType } from '../../../src/metrics/rpc.js';

const ae = (to: string, prevLogIndex: number, n: number): Message => ({
  type: 'AppendEntries',
  from: 'L',
  to,
  term: 3,
  prevLogIndex,
  prevLogTerm: 3,
  leaderCommit: 0,
  entries: Array.from({ length: n }, (_, i) => ({ index: prevLogIndex + 1 + i, term: 3, type: 'noop' as const })),
});
const aeOk = (from: string, matchIndex: number): Message => ({ type: 'AppendEntriesResponse', from, to: 'L', term: 3, success: true, matchIndex, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
const aeNo = (from: string, rejectedIndex: number): Message => ({ type: 'AppendEntriesResponse', from, to: 'L', term: 3, success: false, matchIndex: 0, rejectedIndex, conflictIndex: 1, conflictTerm: 0 });

describe('RPC metrics helpers', () => {
  it('labels PreVote apart from RequestVote, and responses by result', () => {
    const rv: Message = { type: 'RequestVote', from: 'a', to: 'b', term: 2, preVote: true, lastLogIndex: 0, lastLogTerm: 0, transfer: false };
    expect(rpcType(rv)).to.equal('PreVote');
    expect(rpcType({ ...rv, preVote: false })).to.equal('RequestVote');
    expect(rpcResult(rv)).to.equal('none');
    expect(rpcResult({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 2, preVote: false, granted: false })).to.equal('rejected');
    expect(rpcType({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 2, preVote: true, granted: true })).to.equal('PreVoteResponse');
    expect(rpcResult(aeOk('b', 1))).to.equal('success');
    expect(rpcResult(aeNo('b', 1))).to.equal('rejected');
  });

  it('pairs an AppendEntries with the response that acknowledges its last index, per peer', () => {
    const t = new RpcRoundTripTracker();
    t.sent(ae('b', 0, 2), 1000);
    t.sent(ae('b', 2, 3), 1010);
    t.sent(ae('c', 0, 2), 1020);
    // Responses may arrive out of order; each one is matched to its own request.
    expect(t.received(aeOk('b', 5), 1050)).to.deep.equal({ type: 'AppendEntries', seconds: 0.04 });
    expect(t.received(aeOk('c', 2), 1070)).to.deep.equal({ type: 'AppendEntries', seconds: 0.05 });
    expect(t.received(aeOk('b', 2), 1100)).to.deep.equal({ type: 'AppendEntries', seconds: 0.1 });
    expect(t.size()).to.equal(0);
  });

  it('pairs a rejection by the prevLogIndex it echoes; an unknown response completes nothing', () => {
    const t = new RpcRoundTripTracker();
    t.sent(ae('b', 7, 1), 0);
    expect(t.received(aeOk('b', 99), 5)).to.equal(null);
    expect(t.received(aeNo('b', 7), 20)).to.deep.equal({ type: 'AppendEntries', seconds: 0.02 });
    expect(t.received(aeNo('b', 7), 30)).to.equal(null);
  });

  it('pairs votes by term and kind, heartbeats only by a ReadIndex ctx', () => {
    const t = new RpcRoundTripTracker();
    t.sent({ type: 'RequestVote', from: 'a', to: 'b', term: 4, preVote: true, lastLogIndex: 0, lastLogTerm: 0, transfer: false }, 0);
    t.sent({ type: 'RequestVote', from: 'a', to: 'b', term: 4, preVote: false, lastLogIndex: 0, lastLogTerm: 0, transfer: false }, 10);
    expect(t.received({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 4, preVote: false, granted: true }, 30)).to.deep.equal({ type: 'RequestVote', seconds: 0.02 });
    expect(t.received({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 5, preVote: true, granted: false }, 30)).to.equal(null);
    expect(t.received({ type: 'RequestVoteResponse', from: 'b', to: 'a', term: 4, preVote: true, granted: true }, 40)).to.deep.equal({ type: 'PreVote', seconds: 0.04 });
    t.sent({ type: 'Heartbeat', from: 'a', to: 'b', term: 4, commit: 0, ctx: 0 }, 50);
    t.sent({ type: 'Heartbeat', from: 'a', to: 'b', term: 4, commit: 0, ctx: 9 }, 50);
    expect(t.size()).to.equal(1);
    expect(t.received({ type: 'HeartbeatResponse', from: 'b', to: 'a', term: 4, ctx: 0 }, 60)).to.equal(null);
    expect(t.received({ type: 'HeartbeatResponse', from: 'b', to: 'a', term: 4, ctx: 9 }, 60)).to.deep.equal({ type: 'Heartbeat', seconds: 0.01 });
  });

  it('forgets unanswered requests after maxAgeMs and bounds each queue', () => {
    const t = new RpcRoundTripTracker({ maxAgeMs: 100, maxPerQueue: 3 });
    t.sent(ae('b', 0, 1), 0);
    expect(t.received(aeOk('b', 1), 500)).to.equal(null);
    for (let i = 0; i < 10; i++) t.sent(ae('b', i, 1), 1000);
    expect(t.size()).to.equal(3);
    expect(t.received(aeOk('b', 1), 1001)).to.equal(null);
    expect(t.received(aeOk('b', 10), 1001)).to.not.equal(null);
  });
});
