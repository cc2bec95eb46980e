/**
 * Issue 16 over real HTTP on a real three-node in-memory cluster: conditional writes, transactions
 * and listing (../../../docs/api.md), sent to the leader and to a follower (which forwards writes
 * with their conditions). Each rule of the design's sections 1-3 and pitfalls 4 and 5.
 */
import { expect } from 'chai';
import { http, waitForLeader, type NodeProc } from '../../support/procs.js';
import { startThreeNodes, type ThreeNodes } from '../client/three-nodes.js';

type R = Awaited<ReturnType<typeof http>>;

function expectError(r: R, status: number, code: string): { code: string; message: string; details?: Record<string, unknown> } {
  expect(r.status, r.text).to.equal(status);
  const err = (r.body as { error: { code: string; message: string; details?: Record<string, unknown> } }).error;
  expect(err.code).to.equal(code);
  expect(err.message).to.be.a('string').and.not.equal('');
  return err;
}

function index(r: R): number {
  const n = Number(r.headers['x-raft-index']);
  expect(Number.isInteger(n) && n > 0, `X-Raft-Index ${r.headers['x-raft-index']}`).to.equal(true);
  return n;
}

describe('API depth: conditional writes, transactions, listing (3 nodes)', function () {
  this.timeout(180_000);
  let c: ThreeNodes;
  let leader: NodeProc;
  let follower: NodeProc;

  before(async () => {
    c = await startThreeNodes();
    leader = await waitForLeader(c.nodes);
    follower = c.nodes.find((n) => n !== leader) as NodeProc;
  });

  after(async () => {
    await c?.stop();
  });

  for (const via of ['leader', 'follower'] as const) {
    describe(`sent to the ${via}`, () => {
      const api = (): string => (via === 'leader' ? leader.api : follower.api);
      const k = (name: string): string => `${via}/${name}`;

      it('PUT /key/:key sets one key; If-Match with the current index replaces it, a stale one is 412 with the current index', async () => {
        const put = await http('PUT', `${api()}/key/${encodeURIComponent(k('cas'))}`, { value: 'v1' });
        expect(put.status, put.text).to.equal(200);
        expect(put.body).to.deep.equal({ [k('cas')]: 'v1' });
        const i1 = index(put);
        expect(put.headers.etag).to.equal(`"${i1}"`);
        const ok = await http('PUT', `${api()}/key/${encodeURIComponent(k('cas'))}`, { value: 'v2' }, { 'If-Match': `"${i1}"` });
        expect(ok.status, ok.text).to.equal(200);
        const i2 = index(ok);
        expect(i2).to.be.greaterThan(i1);
        const stale = await http('PUT', `${api()}/key/${encodeURIComponent(k('cas'))}`, { value: 'v3' }, { 'If-Match': `"${i1}"` });
        const err = expectError(stale, 412, 'PRECONDITION_FAILED');
        expect(err.details).to.deep.equal({ current: { key: k('cas'), index: i2 } });
        expect(stale.headers.etag).to.equal(`"${i2}"`);
        index(stale);
        const g = await http('GET', `${api()}/key/${encodeURIComponent(k('cas'))}`);
        expect(g.body).to.deep.equal({ [k('cas')]: 'v2' });
        // A list of tags matches any; a weak tag never matches (strong comparison).
        expect((await http('PUT', `${api()}/key/${encodeURIComponent(k('cas'))}`, { value: 'v4' }, { 'If-Match': `"1", "${i2}"` })).status).to.equal(200);
        expectError(await http('PUT', `${api()}/key/${encodeURIComponent(k('cas'))}`, { value: 'v5' }, { 'If-Match': `W/"${i2}"` }), 412, 'PRECONDITION_FAILED');
      });

      it('If-Match on an absent key is 412 with current null; If-Match: * needs the key; If-None-Match: * creates only', async () => {
        const absent = expectError(await http('PUT', `${api()}/key/${encodeURIComponent(k('nokey'))}`, { value: 'x' }, { 'If-Match': '"5"' }), 412, 'PRECONDITION_FAILED');
        expect(absent.details).to.deep.equal({ current: null });
        expectError(await http('PUT', `${api()}/key/${encodeURIComponent(k('nokey'))}`, { value: 'x' }, { 'If-Match': '*' }), 412, 'PRECONDITION_FAILED');
        const created = await http('PUT', `${api()}/key/${encodeURIComponent(k('once'))}`, { value: 'first' }, { 'If-None-Match': '*' });
        expect(created.status, created.text).to.equal(200);
        const again = expectError(await http('PUT', `${api()}/key/${encodeURIComponent(k('once'))}`, { value: 'second' }, { 'If-None-Match': '*' }), 412, 'PRECONDITION_FAILED');
        expect(again.details).to.deep.equal({ current: { key: k('once'), index: index(created) } });
        expect((await http('GET', `${api()}/key/${encodeURIComponent(k('once'))}`)).body).to.deep.equal({ [k('once')]: 'first' });
        expect((await http('PUT', `${api()}/key/${encodeURIComponent(k('once'))}`, { value: 'third' }, { 'If-Match': '*' })).status).to.equal(200);
      });

      it('POST /key with If-None-Match: * is an atomic create-only batch; If-Match needs exactly one key', async () => {
        const a = k('batch/a');
        const b = k('batch/b');
        expect((await http('PUT', `${api()}/key/${encodeURIComponent(a)}`, { value: 'exists' })).status).to.equal(200);
        const failed = expectError(await http('POST', `${api()}/key`, { [a]: 'new', [b]: 'new' }, { 'If-None-Match': '*' }), 412, 'PRECONDITION_FAILED');
        expect((failed.details?.existing as Array<{ key: string }>).map((e) => e.key)).to.deep.equal([a]);
        expect((await http('GET', `${api()}/key/${encodeURIComponent(b)}`)).status, 'nothing of a failed batch is written').to.equal(404);
        expect((await http('GET', `${api()}/key/${encodeURIComponent(a)}`)).body).to.deep.equal({ [a]: 'exists' });
        const c1 = k('batch/c');
        const d = k('batch/d');
        const ok = await http('POST', `${api()}/key`, { [c1]: '1', [d]: '2' }, { 'If-None-Match': '*' });
        expect(ok.status, ok.text).to.equal(200);
        expectError(await http('POST', `${api()}/key`, { [c1]: '1', [d]: '2' }, { 'If-Match': '"3"' }), 400, 'BAD_REQUEST');
      });

      it('conditional DELETE: 412 when the index differs or the key is absent; an unconditional delete of an absent key stays 404', async () => {
        const key = k('del');
        const w = await http('PUT', `${api()}/key/${encodeURIComponent(key)}`, { value: 'x' });
        const i = index(w);
        const wrong = expectError(await http('DELETE', `${api()}/key/${encodeURIComponent(key)}`, undefined, { 'If-Match': `"${i + 1000}"` }), 412, 'PRECONDITION_FAILED');
        expect(wrong.details).to.deep.equal({ current: { key, index: i } });
        const del = await http('DELETE', `${api()}/key/${encodeURIComponent(key)}`, undefined, { 'If-Match': `"${i}"` });
        expect(del.status, del.text).to.equal(200);
        expect(del.body).to.deep.equal({ deleted: key });
        const gone = expectError(await http('DELETE', `${api()}/key/${encodeURIComponent(key)}`, undefined, { 'If-Match': `"${i}"` }), 412, 'PRECONDITION_FAILED');
        expect(gone.details).to.deep.equal({ current: null });
        expectError(await http('DELETE', `${api()}/key/${encodeURIComponent(key)}`), 404, 'KEY_NOT_FOUND');
      });

      it('malformed conditions are 400 and change nothing', async () => {
        const key = k('bad');
        const badHeaders: Array<Record<string, string>> = [{ 'If-Match': '17' }, { 'If-Match': '"x"' }, { 'If-None-Match': '"3"' }, { 'If-Match': '"1"', 'If-None-Match': '*' }];
        for (const h of badHeaders) {
          expectError(await http('PUT', `${api()}/key/${encodeURIComponent(key)}`, { value: 'x' }, h), 400, 'BAD_REQUEST');
        }
        expectError(await http('DELETE', `${api()}/key/${encodeURIComponent(key)}`, undefined, { 'If-None-Match': '*' }), 400, 'BAD_REQUEST');
        for (const body of ['{"value":1}', '{}', '{"value":"x","other":1}', '"x"', 'nope']) {
          expectError(await http('PUT', `${api()}/key/${encodeURIComponent(key)}`, body), 400, 'BAD_REQUEST');
        }
        expectError(await http('POST', `${api()}/key`, '{"k\\ud83d":"v"}'), 400, 'BAD_REQUEST');
        expectError(await http('PUT', `${api()}/key/${encodeURIComponent(key)}`, '{"value":"\\ude00"}'), 400, 'BAD_REQUEST');
        expect((await http('GET', `${api()}/key/${encodeURIComponent(key)}`)).status).to.equal(404);
      });

      it('POST /txn: the design example runs the success branch atomically at one index', async () => {
        const [a, b, cc, d] = ['a', 'b', 'c', 'd'].map((n) => k(`txn/${n}`));
        const wa = await http('PUT', `${api()}/key/${encodeURIComponent(a)}`, { value: 'old' });
        await http('PUT', `${api()}/key/${encodeURIComponent(cc)}`, { value: 'x' });
        const ic = Number((await http('GET', `${api()}/key/${encodeURIComponent(cc)}`)).headers.etag.replace(/"/g, ''));
        const r = await http('POST', `${api()}/txn`, {
          compare: [{ key: a, index: index(wa) }, { key: b, exists: false }, { key: cc, value: 'x' }, { key: d, index: { lt: 1e9 } }],
          success: [{ op: 'set', key: a, value: '1' }, { op: 'delete', key: b }, { op: 'get', key: cc }],
          failure: [{ op: 'get', key: a }],
        });
        expect(r.status, r.text).to.equal(200);
        const body = r.body as { succeeded: boolean; index: number; results: unknown[] };
        expect(body.succeeded).to.equal(true);
        expect(index(r)).to.equal(body.index);
        expect(body.results).to.deep.equal([
          { op: 'set', key: a, index: body.index },
          { op: 'delete', key: b, deleted: false },
          { op: 'get', key: cc, value: 'x', index: ic },
        ]);
        const g = await http('GET', `${api()}/key/${encodeURIComponent(a)}`);
        expect(g.headers.etag).to.equal(`"${body.index}"`);
        // The same compares now fail: the failure branch runs, nothing is written.
        const again = await http('POST', `${api()}/txn`, { compare: [{ key: a, index: index(wa) }], success: [{ op: 'set', key: a, value: 'no' }], failure: [{ op: 'get', key: a }, { op: 'get', key: b }] });
        expect(again.body).to.deep.include({ succeeded: false, results: [{ op: 'get', key: a, value: '1', index: body.index }, { op: 'get', key: b, value: null, index: null }] });
        expect((await http('GET', `${api()}/key/${encodeURIComponent(a)}`)).body).to.deep.equal({ [a]: '1' });
      });

      it('a read-only transaction takes no log entry; bad transactions are 400 with their codes', async () => {
        const key = k('ro');
        const w = await http('PUT', `${api()}/key/${encodeURIComponent(key)}`, { value: 'v' });
        const before = index(w);
        const r = await http('POST', `${api()}/txn`, { compare: [{ key, exists: true }], success: [{ op: 'get', key }] });
        expect(r.status, r.text).to.equal(200);
        expect((r.body as { index: number }).index).to.be.at.least(before);
        const after = await http('PUT', `${api()}/key/${encodeURIComponent(key)}`, { value: 'w' });
        // Only the PUT took an entry since: the read-only transaction did not.
        expect(index(after)).to.equal(before + 1);
        const many = Array.from({ length: 129 }, (_, i) => ({ op: 'get', key: `${key}${i}` }));
        const tooMany = expectError(await http('POST', `${api()}/txn`, { success: many }), 400, 'TOO_MANY_OPS');
        expect(tooMany.message).to.contain('129');
        expectError(await http('POST', `${api()}/txn`, { success: [{ op: 'set', key, value: '1' }, { op: 'delete', key }] }), 400, 'DUPLICATE_KEY');
        for (const bad of ['nope', '[]', '{}', '{"compare":[{"key":"a"}]}', '{"success":[{"op":"put","key":"a","value":"1"}]}']) {
          expectError(await http('POST', `${api()}/txn`, bad), 400, 'BAD_REQUEST');
        }
      });

      it('GET /keys lists a prefix page by page in byte order, with count, keysOnly and a continuation token', async () => {
        const pairs: Record<string, string> = {};
        for (let i = 0; i < 25; i++) pairs[k(`list/${String(i).padStart(2, '0')}`)] = `v${i}`;
        pairs[k('list/\u{1F600}')] = 'emoji';
        pairs[k('list/\uFF5E')] = 'tilde';
        pairs[k('listing-not')] = 'outside';
        expect((await http('POST', `${api()}/key`, pairs)).status).to.equal(200);
        const prefix = k('list/');
        const expected = Object.keys(pairs).filter((key) => key.startsWith(prefix)).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        const seen: string[] = [];
        let token: string | undefined;
        let lastIndex = 0;
        let pages = 0;
        do {
          const q = new URLSearchParams({ prefix, limit: '10', count: 'true', ...(token ? { continue: token } : {}) });
          const r = await http('GET', `${api()}/keys?${q.toString()}`);
          expect(r.status, r.text).to.equal(200);
          const page = r.body as { index: number; items: Array<{ key: string; value: string; index: number }>; more: boolean; continue?: string; count: number };
          expect(page.count).to.equal(27);
          expect(page.index).to.be.at.least(lastIndex, 'indexes never go backwards across pages');
          expect(index(r)).to.equal(page.index);
          lastIndex = page.index;
          for (const item of page.items) expect(item.value).to.equal(pairs[item.key]);
          seen.push(...page.items.map((i) => i.key));
          token = page.more ? page.continue : undefined;
          pages++;
        } while (token);
        expect(pages).to.equal(3);
        expect(seen).to.deep.equal(expected);
        const keysOnly = await http('GET', `${api()}/keys?prefix=${encodeURIComponent(prefix)}&keysOnly=true&limit=2`);
        expect((keysOnly.body as { items: unknown[] }).items[0]).to.have.keys(['key', 'index']);
        const range = await http('GET', `${api()}/keys?start=${encodeURIComponent(k('list/10'))}&end=${encodeURIComponent(k('list/12'))}&consistency=stale`);
        expect((range.body as { items: Array<{ key: string }> }).items.map((i) => i.key)).to.deep.equal([k('list/10'), k('list/11')]);
      });

      it('GET /keys refuses bad parameters and foreign tokens with 400', async () => {
        const first = (await http('GET', `${api()}/keys?prefix=${encodeURIComponent(k('list/'))}&limit=2`)).body as { continue: string };
        expectError(await http('GET', `${api()}/keys?prefix=other/&continue=${first.continue}`), 400, 'BAD_REQUEST');
        for (const q of ['limit=0', 'limit=1001', 'limit=x', 'prefix=a&start=b', 'start=z&end=a', 'continue=%%%', 'unknown=1', 'consistency=weak']) {
          expectError(await http('GET', `${api()}/keys?${q}`), 400, 'BAD_REQUEST');
        }
      });
    });
  }

  it('N clients racing a create-only write on one key: exactly one wins (pitfall 4)', async () => {
    for (let round = 0; round < 3; round++) {
      const key = `race/${round}`;
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) => http('PUT', `${c.nodes[i % 3].api}/key/${encodeURIComponent(key)}`, { value: `client-${i}` }, { 'If-None-Match': '*' })),
      );
      const wins = answers.filter((r) => r.status === 200);
      expect(wins, answers.map((r) => `${r.status} ${r.text}`).join('\n')).to.have.length(1);
      expect(answers.filter((r) => r.status === 412)).to.have.length(11);
      const winner = (wins[0].body as Record<string, string>)[key];
      expect((await http('GET', `${leader.api}/key/${encodeURIComponent(key)}`)).body).to.deep.equal({ [key]: winner });
    }
  });
});
