import { expect } from 'chai';
import { buildReference, checkReference, checkStream, checkStreams, type MemberLog, type Reference, type WatchEffect, type WatchItem, type WatchStream } from '../faults/watch-check.js';
import { itemOf, SseParser } from '../faults/watchers.js';
import type { HistoryOp } from '../faults/kv-model.js';

const put = (key: string, value: string, prevIndex: number | null = null): WatchEffect => ({ type: 'put', key, value, prevIndex });
const del = (key: string, prevIndex: number): WatchEffect => ({ type: 'delete', key, prevIndex });

/** The committed log of the tests: 2 puts k1, 3 nothing (a no-op), 4 a txn on k1 and p/a, 5 p/b, 6 deletes k1, 7 p/a again. */
const LOG: MemberLog = {
  member: 'n1',
  floor: 0,
  upTo: 8,
  records: [
    { index: 2, effects: [put('k1', 'a')] },
    { index: 4, effects: [put('k1', 'b', 2), put('p/a', 'x')] },
    { index: 5, effects: [put('p/b', 'y')] },
    { index: 6, effects: [del('k1', 4)] },
    { index: 7, effects: [put('p/a', 'z', 4)] },
  ],
};
const ref = (): Reference => buildReference([LOG, { ...LOG, member: 'n2' }], 8);

let t = 0;
const open = (member: string, lastEventId: number | null): WatchItem => ({ kind: 'open', member, lastEventId, tMs: t++ });
const change = (id: number, events: WatchEffect[]): WatchItem => ({ kind: 'change', id, index: id, events, tMs: t++ });
const progress = (id: number): WatchItem => ({ kind: 'progress', id, index: id, tMs: t++ });
const end = (why = 'eof'): WatchItem => ({ kind: 'end', why, tMs: t++ });
const stream = (prefix: string, items: WatchItem[]): WatchStream => ({ name: 'w', prefix, items });
const problems = (s: WatchStream, r = ref()) => checkStream(s, r).problems;

describe('watch check (test/faults/watch-check.ts)', () => {
  describe('streams against the committed log', () => {
    it('accepts a fresh stream that sends every matching change once, in order, with progress between', () => {
      const s = stream('p/', [open('n1', null), progress(3), change(4, [put('p/a', 'x')]), progress(4), change(5, [put('p/b', 'y')]), change(7, [put('p/a', 'z', 4)]), progress(8)]);
      expect(problems(s)).to.deep.equal([]);
      expect(checkStream(s, ref()).events).to.equal(3);
    });

    it('accepts a stream resumed on another member with Last-Event-ID after a NO_LEADER error', () => {
      const s = stream('', [
        open('n1', null), progress(1), change(2, [put('k1', 'a')]), { kind: 'error', code: 'NO_LEADER', tMs: t++ }, end(),
        open('n2', 2), change(4, [put('k1', 'b', 2), put('p/a', 'x')]), end('UND_ERR_BODY_TIMEOUT'),
        open('n3', 4), change(5, [put('p/b', 'y')]), change(6, [del('k1', 4)]), change(7, [put('p/a', 'z', 4)]), progress(8),
      ]);
      expect(problems(s)).to.deep.equal([]);
    });

    it('flags a skipped event (a gap)', () => {
      const s = stream('p/', [open('n1', null), progress(3), change(4, [put('p/a', 'x')]), change(7, [put('p/a', 'z', 4)]), progress(8)]);
      expect(problems(s).join()).to.match(/before change 7: change at 5 \[put p\/b=y\] never sent/);
    });

    it('flags a gap across a reconnection (resumed after the last id seen)', () => {
      const s = stream('p/', [open('n1', null), progress(3), change(4, [put('p/a', 'x')]), end(), open('n2', 5), change(7, [put('p/a', 'z', 4)])]);
      expect(problems(s).join()).to.match(/Last-Event-ID 5, not 4/);
    });

    it('flags a duplicate and an out-of-order event', () => {
      const dup = stream('p/', [open('n1', null), progress(3), change(4, [put('p/a', 'x')]), change(4, [put('p/a', 'x')])]);
      expect(problems(dup).join()).to.match(/change 4 after 4: duplicate/);
      const back = stream('p/', [open('n1', null), progress(3), change(5, [put('p/b', 'y')]), change(4, [put('p/a', 'x')])]);
      expect(problems(back).join()).to.match(/change 4 after 5: out of order/);
    });

    it('flags an event the member sends again after a reconnection that resumed past it', () => {
      const s = stream('p/', [open('n1', null), progress(3), change(4, [put('p/a', 'x')]), end(), open('n2', 4), change(4, [put('p/a', 'x')])]);
      expect(problems(s).join()).to.match(/duplicate/);
    });

    it('flags a transaction split over two messages, or missing one of its effects', () => {
      const split = stream('', [open('n1', 2), change(4, [put('k1', 'b', 2)]), change(4, [put('p/a', 'x')])]);
      expect(problems(split).join()).to.match(/change 4 sent \[put k1=b\], the committed entry has \[put k1=b, put p\/a=x\]/);
    });

    it('flags an event with a wrong value, and one that is not in the log', () => {
      expect(problems(stream('p/', [open('n1', 3), change(4, [put('p/a', 'WRONG')])])).join()).to.match(/the committed entry has \[put p\/a=x\]/);
      expect(problems(stream('p/', [open('n1', 3), change(6, [del('p/a', 4)])])).join()).to.match(/change 6 \[delete p\/a\] has no matching effect/);
    });

    it('flags a progress id ahead of a change not yet sent', () => {
      const s = stream('p/', [open('n1', null), progress(3), progress(5), change(4, [put('p/a', 'x')]), change(5, [put('p/b', 'y')])]);
      expect(problems(s).join()).to.match(/progress 5 ahead of it: change at 4/);
    });

    it('flags a fresh stream that starts with a change instead of its start progress', () => {
      expect(problems(stream('p/', [open('n1', null), change(4, [put('p/a', 'x')])])).join()).to.match(/before its start progress/);
    });

    it('accepts COMPACTED (before streaming or mid-stream) when the floor is really past the resume point, then checks the fresh restart', () => {
      const s = stream('p/', [
        open('n1', 3), { kind: 'error', code: 'COMPACTED', compactedIndex: 6, tMs: t++ }, end(),
        open('n2', null), progress(6), change(7, [put('p/a', 'z', 4)]), end(),
        open('n3', 7), { kind: 'refused', status: 410, code: 'COMPACTED', compactedIndex: 8, tMs: t++ },
        open('n1', null), progress(8),
      ]);
      const r = checkStream(s, ref());
      expect(r.problems, r.problems.join('\n')).to.deep.equal([]);
      expect(r.compacted).to.equal(2);
    });

    it('flags a COMPACTED whose floor is below the resume point (a skip dressed as compaction)', () => {
      const s = stream('p/', [open('n1', 4), { kind: 'error', code: 'COMPACTED', compactedIndex: 4, tMs: t++ }]);
      expect(problems(s).join()).to.match(/COMPACTED error \(compactedIndex 4\) mid-stream at 4/);
    });

    it('counts changes at or below the reference floor as unchecked, and checks the rest', () => {
      const r = buildReference([{ member: 'n1', floor: 4, upTo: 8, records: LOG.records.filter((x) => x.index > 4) }], 8);
      const s = stream('p/', [open('n2', 3), change(4, [put('p/a', 'x')]), change(7, [put('p/a', 'z', 4)])]);
      const c = checkStream(s, r);
      expect(c.unchecked).to.equal(1);
      expect(c.problems.join()).to.match(/change at 5/);
    });

    it('checkStreams is ok only when every stream and the reference are', () => {
      const good = stream('p/', [open('n1', 3), change(4, [put('p/a', 'x')]), change(5, [put('p/b', 'y')]), change(7, [put('p/a', 'z', 4)]), progress(8)]);
      const c = checkStreams([good], ref());
      expect(c.ok, c.problems.join('\n')).to.equal(true);
      const bad = buildReference([LOG, { ...LOG, member: 'n2', records: LOG.records.slice(1) }], 8);
      expect(checkStreams([good], bad).ok).to.equal(false);
    });
  });

  describe('the reference', () => {
    it('flags members that disagree where both hold the history, not where one is below its floor', () => {
      const other: MemberLog = { member: 'n2', floor: 3, upTo: 8, records: LOG.records.filter((x) => x.index > 3) };
      expect(buildReference([LOG, other], 8).problems).to.deep.equal([]);
      const differs: MemberLog = { ...other, records: other.records.map((x) => (x.index === 5 ? { index: 5, effects: [put('p/b', 'OTHER')] } : x)) };
      expect(buildReference([LOG, differs], 8).problems.join()).to.match(/n1 and n2 disagree at index 5/);
      const missing: MemberLog = { ...other, records: other.records.filter((x) => x.index !== 6) };
      expect(buildReference([LOG, missing], 8).problems.join()).to.match(/disagree at index 6: \[delete k1\] vs \[no record\]/);
    });

    it('flags a member read short of the converged index, or one that could not be read', () => {
      expect(buildReference([{ ...LOG, upTo: 7 }], 8).problems.join()).to.match(/read only to 7/);
      expect(buildReference([{ ...LOG, error: 'boom' }], 8).problems.join()).to.match(/could not be read: boom/);
    });

    const ops: HistoryOp[] = [
      { client: 0, kind: 'set', key: 'k1', value: 'a', index: 2, invokeMs: 0, completeMs: 1, ok: true },
      {
        client: 1, kind: 'txn', invokeMs: 1, completeMs: 2, ok: true,
        txn: { compare: [], success: [{ op: 'set', key: 'k1', value: 'b' }, { op: 'set', key: 'p/a', value: 'x' }], failure: [] },
        txnResult: { succeeded: true, index: 4, results: [{ op: 'set', key: 'k1', index: 4 }, { op: 'set', key: 'p/a', index: 4 }] },
      },
      { client: 2, kind: 'delete', key: 'k1', index: 6, invokeMs: 3, completeMs: 4, ok: true },
    ];
    const final = new Map<string, string | null>([['k1', null], ['p/a', 'z']]);

    it('accepts a log that holds every acknowledged write at its index and replays to the converged state', () => {
      const r = ref();
      const withP = [...ops, { client: 3, kind: 'set', key: 'p/b', value: 'y', invokeMs: 0, completeMs: null, ok: true } as HistoryOp, { client: 3, kind: 'set', key: 'p/a', value: 'z', invokeMs: 5, completeMs: null, ok: true } as HistoryOp];
      expect(checkReference(r, withP, final, ['k1', 'p/a', 'p/b'])).to.deep.equal([]);
    });

    it('flags an acknowledged write missing at its index, a value no one wrote, a failed write applied, and a bad prevIndex', () => {
      const r = ref();
      const lost: HistoryOp = { client: 4, kind: 'set', key: 'k2', value: 'q', index: 3, invokeMs: 0, completeMs: 1, ok: true };
      const failed: HistoryOp = { client: 5, kind: 'set', key: 'p/b', value: 'y', invokeMs: 0, completeMs: 1, ok: false };
      const found = checkReference(r, [...ops, lost, failed], final, ['k1', 'p/a', 'p/b']).join('\n');
      expect(found).to.match(/acknowledged set of client 4 at index 3 wrote \[put k2=q\] but the log has \[\]/);
      expect(found).to.match(/index 5 puts p\/b=y, whose write was answered as failed/);
      expect(found).to.match(/index 7 puts p\/a=z, which no operation wrote/);
      const chain = buildReference([{ ...LOG, records: [...LOG.records.slice(0, 3), { index: 6, effects: [del('k1', 2)] }, LOG.records[4]] }], 8);
      expect(checkReference(chain, [], new Map(), []).join()).to.match(/index 6 delete k1 has prevIndex 2, but the key's previous put is 4/);
    });

    it('flags a log that does not replay to the converged state', () => {
      expect(checkReference(ref(), [], new Map([['k1', 'b']]), []).join()).to.match(/replaying the log gives k1=null, the converged state has b/);
    });
  });

  describe('the SSE reader', () => {
    it('parses frames split anywhere, skipping comments', () => {
      const text = ': watching "p/" from 4\n\nid: 4\nevent: change\ndata: {"index":4,"events":[{"type":"put","key":"p/a","value":"x","prevIndex":null}]}\n\nid: 5\nevent: progress\ndata: {"index":5}\n\nevent: error\ndata: {"error":{"code":"COMPACTED","message":"m","details":{"compactedIndex":9,"currentIndex":12}}}\n\n';
      for (const cut of [1, 7, 30, text.length - 1]) {
        const p = new SseParser();
        const items = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))].map((m) => itemOf(m, 0));
        expect(items.map((i) => i.kind)).to.deep.equal(['change', 'progress', 'error']);
        expect(items[0]).to.include({ id: 4, index: 4 });
        expect(items[2]).to.include({ code: 'COMPACTED', compactedIndex: 9 });
      }
    });
  });
});
