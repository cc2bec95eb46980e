import { expect } from 'chai';
import { Progress } from '../../../../src/raft/core/progress.js';
import type { Entry } from '../../../../src/raft/core/types.js';

const entries = (from: number, to: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term: 1, type: 'noop' as const }));

describe('Progress: the leader\'s view of one follower (progress.ts)', () => {
  it('starts as a probe at the leader\'s end; one AppendEntries outstanding at a time', () => {
    const pr = new Progress('', 11);
    expect([pr.state, pr.matchIndex, pr.nextIndex]).to.deep.equal(['probe', 0, 11]);
    expect(pr.canSendAppend(4, 10)).to.equal(true);
    pr.appendSent([]);
    expect(pr.isPaused).to.equal(true);
    expect(pr.canSendAppend(4, 10)).to.equal(false);
  });

  it('the first acknowledgement that advances the match turns a probe into replication right after it', () => {
    const pr = new Progress('', 11);
    pr.appendSent([]);
    expect(pr.acknowledge(10)).to.equal(true);
    pr.resume();
    expect([pr.state, pr.matchIndex, pr.nextIndex, pr.inflightCount]).to.deep.equal(['replicate', 10, 11, 0]);
    expect(pr.acknowledge(10)).to.equal(false);
  });

  it('replication pipelines within the in-flight window; acknowledgements free it', () => {
    const pr = new Progress('', 1);
    pr.acknowledge(0 + 1);
    pr.appendSent(entries(2, 3));
    pr.appendSent(entries(4, 5));
    expect([pr.nextIndex, pr.inflightCount]).to.deep.equal([6, 2]);
    expect(pr.canSendAppend(2, 9)).to.equal(false);
    pr.acknowledge(3);
    expect(pr.inflightCount).to.equal(1);
    expect(pr.canSendAppend(2, 9)).to.equal(true);
    expect(pr.canSendAppend(2, 5)).to.equal(false);
  });

  it('a rejection backtracks to the hint, never at or below the match; the same probe refused again is paused', () => {
    const pr = new Progress('', 20);
    expect(pr.backtrack(7, 19)).to.equal(true);
    expect([pr.state, pr.nextIndex, pr.isPaused]).to.deep.equal(['probe', 7, false]);
    expect(pr.backtrack(7, 6)).to.equal(true);
    expect(pr.nextIndex).to.equal(6);
    expect(pr.backtrack(9, 9)).to.equal(true);
    expect(pr.backtrack(9, 9)).to.equal(false);
    expect(pr.isPaused).to.equal(true);
  });

  it('a follower that lost acknowledged entries has its match forgotten and is probed from its end', () => {
    const pr = new Progress('', 1);
    pr.acknowledge(8);
    pr.forgetMatch(3);
    expect([pr.state, pr.matchIndex, pr.nextIndex, pr.isPaused]).to.deep.equal(['probe', 2, 3, false]);
  });

  it('snapshot transfer: one chunk outstanding, a duplicate acknowledgement is ignored, done resumes replication after the match', () => {
    const pr = new Progress('', 1);
    pr.becomeSnapshot({ meta: { lastIndex: 50, lastTerm: 2, config: { members: [] } }, data: 'abcdefghij' });
    expect(pr.nextChunk(4)).to.include({ offset: 0, end: 4 });
    pr.chunkSent();
    expect(pr.chunkAcknowledged(0)).to.equal(false);
    expect(pr.chunkAcknowledged(4)).to.equal(true);
    expect(pr.nextChunk(4)).to.include({ offset: 4, end: 8 });
    pr.snapshotDone(50);
    expect([pr.state, pr.matchIndex, pr.nextIndex, pr.snapshot]).to.deep.equal(['replicate', 50, 51, null]);
  });

  it('a chunk or its acknowledgement lost is resent after the timeout; a snapshot without data waits for the driver', () => {
    const pr = new Progress('', 1);
    pr.becomeSnapshot(null);
    expect(pr.isPaused).to.equal(true);
    for (let i = 0; i < 5; i++) expect(pr.isChunkRetryDue(3)).to.equal(false);
    pr.becomeSnapshot({ meta: { lastIndex: 5, lastTerm: 1, config: { members: [] } }, data: 'xy' });
    pr.chunkSent();
    expect(pr.isChunkRetryDue(3)).to.equal(false);
    expect(pr.isChunkRetryDue(3)).to.equal(false);
    expect(pr.isChunkRetryDue(3)).to.equal(true);
    expect(pr.isPaused).to.equal(false);
  });
});
