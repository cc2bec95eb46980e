/**
 * The ready()/advance() contract when messages are stepped in between (issue 14 §1): the driver
 * awaits its fsync with the core live, so a Ready's entries may be truncated before advance().
 */
import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { ClusterConfig, Entry } from '../../../../src/raft/core/types.js';

const config: ClusterConfig = { members: ['a', 'b', 'c'].map((id) => ({ id, suffrage: 'voter' as const, raftAddr: '', apiAddr: '' })) };

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push(i === 1 ? { index: 1, term: 1, type: 'config', change: { op: 'promote', id: 'a' }, config } : { index: i, term, type: 'normal', data: `d${i}` });
  }
  return out;
}

function follower(): Raft {
  return new Raft(defaultRaftOptions('b', () => 0.5), { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
}

describe('Raft core: stepping messages between ready() and advance()', () => {
  it('entries of an in-flight Ready that a truncation kept become stable at advance(); only the overwritten suffix is handed out again', () => {
    const r = follower();
    r.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: entries(1, 100, 2), leaderCommit: 60 });
    const rd = r.ready();
    expect(rd.entries.length).to.equal(100);
    expect(rd.committedEntries.length).to.equal(60);
    // The driver is persisting rd when term 3's leader conflicts at 61.
    r.step({ type: 'AppendEntries', from: 'c', to: 'b', term: 3, prevLogIndex: 60, prevLogTerm: 2, entries: entries(61, 61, 3), leaderCommit: 60 });
    r.advance(rd);
    expect(r.status().appliedIndex).to.equal(60);
    // The persisted prefix is stable: compacting at the applied index is allowed.
    expect(() => r.compact(60, null)).not.to.throw();
    const next = r.ready();
    expect(next.entries.map((e) => `${e.index}/${e.term}`)).to.deep.equal(['61/3']);
    r.advance(next);
    expect(r.hasReady()).to.equal(false);
  });

  it('a truncation below an in-flight Ready leaves it unstable: the new entries are written from the conflict', () => {
    const r = follower();
    r.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: entries(1, 10, 2), leaderCommit: 5 });
    r.advance(r.ready());
    r.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 10, prevLogTerm: 2, entries: entries(11, 20, 2), leaderCommit: 5 });
    const rd = r.ready();
    expect(rd.entries[0].index).to.equal(11);
    r.step({ type: 'AppendEntries', from: 'c', to: 'b', term: 3, prevLogIndex: 7, prevLogTerm: 2, entries: entries(8, 9, 3), leaderCommit: 5 });
    r.advance(rd);
    const next = r.ready();
    expect(next.entries.map((e) => `${e.index}/${e.term}`)).to.deep.equal(['8/3', '9/3']);
  });
});

describe('Raft core: acknowledgements queued before a truncation', () => {
  it('a success queued for entries that a later append in the same batch overwrites is not sent', () => {
    const r = follower();
    r.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: entries(1, 10, 2), leaderCommit: 5 });
    r.advance(r.ready());
    // Both arrive before the next Ready: a's append of 11..12, then c (term 3) conflicting at 8.
    r.step({ type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 10, prevLogTerm: 2, entries: entries(11, 12, 2), leaderCommit: 5 });
    r.step({ type: 'AppendEntries', from: 'c', to: 'b', term: 3, prevLogIndex: 7, prevLogTerm: 2, entries: entries(8, 8, 3), leaderCommit: 5 });
    const rd = r.ready();
    expect(rd.entries.map((e) => `${e.index}/${e.term}`)).to.deep.equal(['8/3']);
    const acks = rd.messages.filter((m) => m.type === 'AppendEntriesResponse' && m.success).map((m) => `${m.to}:${m.type === 'AppendEntriesResponse' ? m.matchIndex : ''}`);
    // b never persisted 11..12 (nor 8..10 of term 2 beyond what the last Ready wrote): no ack of them may leave.
    expect(acks).to.deep.equal(['c:8']);
  });
});
