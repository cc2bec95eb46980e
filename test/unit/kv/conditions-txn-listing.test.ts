/**
 * Issue 16 rules decided in pure code: If-Match / If-None-Match parsing and evaluation (strong
 * comparison), transaction validation and apply-time evaluation, listing parameters, byte order and
 * continuation tokens (../../../docs/api.md).
 */
import { expect } from 'chai';
import { parseIfMatch, parseIfNoneMatch, preconditionFromHeaders, preconditionHolds, isPrecondition, PreconditionSyntaxError } from '../../../src/kv/conditions.js';
import { evaluateTxn, isReadOnlyTxn, parseTxn, compareHolds, type TxnRequest } from '../../../src/kv/txn.js';
import { compareKeys, encodeContinue, inRange, isPastRange, isWellFormed, parseListQuery } from '../../../src/kv/listing.js';
import type { StoredValue } from '../../../src/kv/types.js';

const limits = { maxOps: 8, maxKeyBytes: 16, maxValueBytes: 32 };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).constructor.name;
  }
  return 'no error';
}

describe('kv: preconditions', () => {
  it('If-Match lists strong index tags; * means the key must exist', () => {
    expect(parseIfMatch('"17"')).to.deep.equal({ kind: 'index', indexes: [17] });
    expect(parseIfMatch(' "17", "18" ')).to.deep.equal({ kind: 'index', indexes: [17, 18] });
    expect(parseIfMatch('*')).to.deep.equal({ kind: 'exists' });
  });

  it('a weak tag never matches (RFC 9110 strong comparison)', () => {
    const c = parseIfMatch('W/"17"');
    expect(preconditionHolds(c, { value: 'v', index: 17 })).to.equal(false);
  });

  it('refuses malformed tags', () => {
    for (const bad of ['17', '"abc"', '""', '"0"', '"1"x', '"-1"', 'W/17', '', '"1",,"2"', '"99999999999999999"']) {
      expect(() => parseIfMatch(bad), bad).to.throw(PreconditionSyntaxError);
    }
    expect(() => parseIfMatch(Array(17).fill('"1"').join(','))).to.throw(PreconditionSyntaxError);
  });

  it('If-None-Match on a write accepts only *, and not together with If-Match', () => {
    expect(parseIfNoneMatch('*')).to.deep.equal({ kind: 'absent' });
    expect(() => parseIfNoneMatch('"3"')).to.throw(PreconditionSyntaxError);
    expect(() => preconditionFromHeaders('"3"', '*')).to.throw(PreconditionSyntaxError);
    expect(preconditionFromHeaders(undefined, undefined)).to.equal(null);
  });

  it('holds exactly when the current state matches (absent keys fail If-Match)', () => {
    const cur: StoredValue = { value: 'v', index: 17 };
    expect(preconditionHolds({ kind: 'index', indexes: [17] }, cur)).to.equal(true);
    expect(preconditionHolds({ kind: 'index', indexes: [16] }, cur)).to.equal(false);
    expect(preconditionHolds({ kind: 'index', indexes: [17] }, undefined)).to.equal(false);
    expect(preconditionHolds({ kind: 'exists' }, undefined)).to.equal(false);
    expect(preconditionHolds({ kind: 'absent' }, undefined)).to.equal(true);
    expect(preconditionHolds({ kind: 'absent' }, cur)).to.equal(false);
  });

  it('validates preconditions decoded from the log', () => {
    expect(isPrecondition({ kind: 'absent' })).to.equal(true);
    expect(isPrecondition({ kind: 'index', indexes: [3] })).to.equal(true);
    for (const bad of [null, 1, {}, { kind: 'index', indexes: [] }, { kind: 'index', indexes: ['3'] }, { kind: 'absent', x: 1 }, { kind: 'index', indexes: [1.5] }]) {
      expect(isPrecondition(bad), JSON.stringify(bad)).to.equal(false);
    }
  });
});

describe('kv: transactions', () => {
  const state = new Map<string, StoredValue>([
    ['a', { value: '1', index: 17 }],
    ['c', { value: 'x', index: 12 }],
  ]);
  const read = (k: string): StoredValue | undefined => state.get(k);

  it('evaluates the design example: compares hold, the success branch runs at one index', () => {
    const txn = parseTxn(
      {
        compare: [{ key: 'a', index: 17 }, { key: 'b', exists: false }, { key: 'c', value: 'x' }, { key: 'd', index: { lt: 40 } }],
        success: [{ op: 'set', key: 'a', value: '2' }, { op: 'delete', key: 'b' }, { op: 'get', key: 'c' }],
        failure: [{ op: 'get', key: 'a' }],
      },
      limits,
    );
    const out = evaluateTxn(txn, read, 42);
    expect(out.succeeded).to.equal(true);
    expect(out.writes).to.deep.equal([{ op: 'set', key: 'a', value: '2' }, { op: 'delete', key: 'b' }]);
    expect(out.results).to.deep.equal([
      { op: 'set', key: 'a', index: 42 },
      { op: 'delete', key: 'b', deleted: false },
      { op: 'get', key: 'c', value: 'x', index: 12 },
    ]);
  });

  it('runs the failure branch when any compare fails; a get of an absent key is null', () => {
    const txn = parseTxn({ compare: [{ key: 'a', index: 16 }], success: [{ op: 'set', key: 'a', value: 'no' }], failure: [{ op: 'get', key: 'a' }, { op: 'get', key: 'zz' }] }, limits);
    const out = evaluateTxn(txn, read, 50);
    expect(out.succeeded).to.equal(false);
    expect(out.writes).to.deep.equal([]);
    expect(out.results).to.deep.equal([
      { op: 'get', key: 'a', value: '1', index: 17 },
      { op: 'get', key: 'zz', value: null, index: null },
    ]);
  });

  it('a get after a set in the same branch sees the new value at the entry index', () => {
    const txn = parseTxn({ success: [{ op: 'set', key: 'n', value: 'v' }, { op: 'get', key: 'n' }] }, limits);
    expect(evaluateTxn(txn, read, 9).results[1]).to.deep.equal({ op: 'get', key: 'n', value: 'v', index: 9 });
  });

  it('index ranges compare an absent key as index 0; exact index needs the key', () => {
    expect(compareHolds({ key: 'q', index: { lt: 1 } }, undefined)).to.equal(true);
    expect(compareHolds({ key: 'q', index: { gt: 0 } }, undefined)).to.equal(false);
    expect(compareHolds({ key: 'q', index: { ge: 10, le: 17 } }, { value: '', index: 17 })).to.equal(true);
    expect(compareHolds({ key: 'q', index: 0 }, undefined)).to.equal(false);
  });

  it('read-only transactions are recognised (no log entry needed)', () => {
    expect(isReadOnlyTxn(parseTxn({ compare: [{ key: 'a', exists: true }], success: [{ op: 'get', key: 'a' }] }, limits))).to.equal(true);
    expect(isReadOnlyTxn(parseTxn({ failure: [{ op: 'delete', key: 'a' }] }, limits))).to.equal(false);
  });

  it('refuses bad transactions with clear codes', () => {
    const ops = (n: number): unknown[] => Array.from({ length: n }, (_, i) => ({ op: 'get', key: `k${i}` }));
    expect(code(() => parseTxn({ success: ops(9) }, limits))).to.equal('TOO_MANY_OPS');
    expect(code(() => parseTxn({ compare: [{ key: 'a', exists: true }], success: ops(4), failure: ops(4) }, limits))).to.equal('TOO_MANY_OPS');
    expect(code(() => parseTxn({ success: [{ op: 'set', key: 'a', value: '1' }, { op: 'delete', key: 'a' }] }, limits))).to.equal('DUPLICATE_KEY');
    const bad: unknown[] = [
      null,
      [],
      {},
      { compare: {} },
      { success: [{ op: 'put', key: 'a', value: '1' }] },
      { success: [{ op: 'set', key: 'a' }] },
      { success: [{ op: 'set', key: '', value: '1' }] },
      { success: [{ op: 'set', key: 'x'.repeat(17), value: '1' }] },
      { success: [{ op: 'set', key: 'a', value: 'v'.repeat(33) }] },
      { success: [{ op: 'get', key: 'a', value: '1' }] },
      { compare: [{ key: 'a' }] },
      { compare: [{ key: 'a', index: 1, exists: true }] },
      { compare: [{ key: 'a', index: -1 }] },
      { compare: [{ key: 'a', index: { eq: 3 } }] },
      { compare: [{ key: 'a', index: {} }] },
      { compare: [{ key: 'a', exists: 'yes' }] },
      { other: [] },
    ];
    for (const b of bad) expect(code(() => parseTxn(b, limits)), JSON.stringify(b)).to.equal('BAD_REQUEST');
  });

  it('the same entry decides the same outcome on every replica (pure)', () => {
    const txn: TxnRequest = parseTxn({ compare: [{ key: 'a', value: '1' }], success: [{ op: 'set', key: 'b', value: '2' }], failure: [] }, limits);
    expect(evaluateTxn(txn, read, 5)).to.deep.equal(evaluateTxn(txn, read, 5));
  });
});

describe('kv: listing', () => {
  const opts = { maxLimit: 1000, maxKeyBytes: 64 };
  const q = (s: string): URLSearchParams => new URLSearchParams(s);

  it('orders keys by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF5E (3 UTF-8 bytes, 0xEF...) sorts before U+1F600 (4 bytes, 0xF0...) in UTF-8, after it in UTF-16.
    expect(compareKeys('\uFF5E', '\u{1F600}')).to.be.lessThan(0);
    expect('\uFF5E' < '\u{1F600}').to.equal(false);
    // Against Buffer.compare over many random well-formed strings from every band.
    const bands = [0x41, 0x7f, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xff5e, 0xffff, 0x10000, 0x1f600, 0x10ffff];
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const str = (): string => Array.from({ length: 1 + rnd(3) }, () => String.fromCodePoint(bands[rnd(bands.length)])).join('');
    for (let i = 0; i < 3000; i++) {
      const a = str();
      const b = str();
      expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).to.equal(Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }
  });

  it('refuses lone surrogates (they have no UTF-8 form)', () => {
    expect(isWellFormed('a\u{1F600}')).to.equal(true);
    expect(isWellFormed('a\uD83D')).to.equal(false);
    expect(isWellFormed('\uDE00b')).to.equal(false);
    // Keys arrive with lone surrogates only through JSON escapes ("\uD83D"): the body parsers refuse them.
    expect(code(() => parseTxn({ success: [{ op: 'set', key: 'a\uD83D', value: '1' }] }, limits))).to.equal('BAD_REQUEST');
  });

  it('a prefix covers exactly the keys that start with it; a scan stops at the first key past it', () => {
    const p = parseListQuery(q('prefix=p/'), opts);
    for (const k of ['p/', 'p/a', 'p/\u{1F600}']) expect(inRange(k, p.range), k).to.equal(true);
    for (const k of ['p', 'p0', 'q', 'o/zz']) expect(inRange(k, p.range), k).to.equal(false);
    expect(isPastRange('p0', p.range)).to.equal(true);
    expect(isPastRange('o', p.range)).to.equal(false);
    expect(isPastRange('p/zzz', p.range)).to.equal(false);
    const r = parseListQuery(q('start=b&end=d'), opts);
    expect(['b', 'c', 'czz'].map((k) => inRange(k, r.range))).to.deep.equal([true, true, true]);
    expect(['a', 'd', 'da'].map((k) => inRange(k, r.range))).to.deep.equal([false, false, false]);
    expect(isPastRange('d', r.range)).to.equal(true);
  });

  it('defaults: limit 100, linearizable, first page', () => {
    const p = parseListQuery(q(''), opts);
    expect(p).to.include({ limit: 100, keysOnly: false, count: false, consistency: 'linearizable', after: null, firstIndex: null });
  });

  it('a continuation token resumes after its key and is refused for another range', () => {
    const first = parseListQuery(q('prefix=p/&limit=2'), opts);
    const token = encodeContinue(first.range, 'p/b', 40);
    const next = parseListQuery(q(`prefix=p/&limit=2&continue=${token}`), opts);
    expect(next.after).to.equal('p/b');
    expect(next.firstIndex).to.equal(40);
    expect(code(() => parseListQuery(q(`prefix=x/&continue=${token}`), opts))).to.equal('BAD_REQUEST');
    expect(code(() => parseListQuery(q('continue=garbage!'), opts))).to.equal('BAD_REQUEST');
    expect(code(() => parseListQuery(q(`continue=${Buffer.from('{"v":2}').toString('base64url')}`), opts))).to.equal('BAD_REQUEST');
  });

  it('refuses bad parameters', () => {
    for (const bad of ['limit=0', 'limit=1001', 'limit=-1', 'limit=abc', 'prefix=a&start=b', 'start=b&end=a', 'consistency=weak', 'keysOnly=maybe', 'foo=1', 'limit=1&limit=2', `prefix=${'x'.repeat(65)}`]) {
      expect(code(() => parseListQuery(q(bad), opts)), bad).to.equal('BAD_REQUEST');
    }
  });
});
