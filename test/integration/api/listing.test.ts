/**
 * Issue 17 point 1 / design §3 and pitfall 5, on a real node over HTTP: a listing of many pages is
 * the state at its first page's index I0 even while keys are added, changed and deleted between its
 * pages; `index` never goes backwards; "list, then watch from index + 1" misses and repeats nothing;
 * a token older than the history is 410 CONTINUE_EXPIRED with a fresh token that works.
 *
 * The key space is LIST_TEST_KEYS keys (default 50 000, pages of 200); the design's 1M is an opt-in
 * run: `LIST_TEST_KEYS=1000000 npx mocha test/integration/api/listing.test.ts` (under the heavy lock).
 */
import { expect } from 'chai';
import { request } from 'undici';
import { basePort, http, nodeEnv, removeDir, startNode, stopNode, tempDir, waitFor, waitForLeader, type HttpResult, type NodeProc } from '../../support/procs.js';

interface Item {
  key: string;
  value?: string;
  index: number;
}

interface Page {
  index: number;
  items: Item[];
  more: boolean;
  continue?: string;
  count?: number;
}

/** One acknowledged write: the keys it set (value) or deleted (null), at its index. */
interface Acked {
  index: number;
  changes: Array<[string, string | null]>;
}

const KEYS = Number(process.env.LIST_TEST_KEYS ?? 50_000);
const PAGE = 200;

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The state of every key after applying `writes` (any order: they are sorted by index here). */
function replay(writes: readonly Acked[]): Map<string, { value: string; index: number }> {
  const state = new Map<string, { value: string; index: number }>();
  for (const w of [...writes].sort((a, b) => a.index - b.index)) {
    for (const [key, value] of w.changes) {
      if (value === null) state.delete(key);
      else state.set(key, { value, index: w.index });
    }
  }
  return state;
}

/** The change events of GET /watch from `from` on, read until one at or past `until` (or a progress there). */
async function watchUntil(api: string, prefix: string, from: number, until: number): Promise<Array<{ index: number; events: Array<{ type: string; key: string; value?: string }> }>> {
  const ac = new AbortController();
  const out: Array<{ index: number; events: Array<{ type: string; key: string; value?: string }> }> = [];
  const res = await request(`${api}/watch?prefix=${encodeURIComponent(prefix)}&from=${from}`, { signal: ac.signal });
  expect(res.statusCode).to.equal(200);
  let buffer = '';
  const deadline = setTimeout(() => ac.abort(), 60_000);
  try {
    for await (const chunk of res.body) {
      buffer += (chunk as Buffer).toString('utf8');
      let at: number;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (block.startsWith(':')) continue;
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as { index: number; events: Array<{ type: string; key: string; value?: string }> };
        if (event === 'error') throw new Error(`watch error: ${JSON.stringify(data)}`);
        if (event === 'change') out.push(data);
        if (data.index >= until) {
          ac.abort();
          return out;
        }
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  } finally {
    clearTimeout(deadline);
  }
  return out;
}

describe('GET /keys: every page of a listing at its first page\'s index (pitfall 5, real node)', function () {
  this.timeout(Math.max(300_000, KEYS * 2));
  const port = basePort();
  const dir = tempDir('raftkv-list-');
  let big: NodeProc;
  let small: NodeProc;

  before(async () => {
    // A durable node (RocksDB) with the default history, and an in-memory one with a tiny history.
    big = startNode('big', nodeEnv(port, 1, { extra: { RAFT_DIR: dir } }));
    small = startNode('small', nodeEnv(port, 2, { extra: { WATCH_HISTORY_ENTRIES: '20' } }));
    await waitForLeader([big], 60_000);
    await waitForLeader([small], 60_000);
  });

  after(async () => {
    await Promise.all([big, small].filter(Boolean).map((n) => stopNode(n, 'SIGKILL')));
    removeDir(dir);
  });

  async function write(api: string, changes: Array<[string, string | null]>): Promise<Acked> {
    let r: HttpResult;
    const sets = changes.filter(([, v]) => v !== null);
    if (sets.length === changes.length) r = await http('POST', `${api}/key`, Object.fromEntries(sets));
    else if (changes.length === 1) r = await http('DELETE', `${api}/key/${encodeURIComponent(changes[0][0])}`);
    else r = await http('POST', `${api}/txn`, { success: changes.map(([key, value]) => (value === null ? { op: 'delete', key } : { op: 'set', key, value })) });
    expect(r.status, r.text).to.equal(200);
    return { index: Number(r.headers['x-raft-index']), changes };
  }

  it(`${KEYS} keys in pages of ${PAGE} under concurrent writes: the pages' union is the state at I0, index never decreases; then a watch from I0 + 1 misses and repeats nothing`, async () => {
    const acked: Acked[] = [];
    const keyOf = (i: number) => `big/${String(i).padStart(7, '0')}`;
    for (let i = 0; i < KEYS; i += 1000) {
      const batch: Array<[string, string]> = [];
      for (let j = i; j < Math.min(KEYS, i + 1000); j++) batch.push([keyOf(j), `v${j}`]);
      acked.push(await write(big.api, batch));
    }
    // Writers: changes, deletes, new keys (some sorting before, some after the pages read so far)
    // and deletes of keys not read yet, in single writes and transactions; one writes outside the prefix.
    let isStopped = false;
    let n = 0;
    const deleted = new Set<number>();
    // Each writer owns half of the keys (even or odd), so its own order is the order its writes apply.
    const writer = async (part: number) => {
      let x = part + 1;
      const rnd = (m: number) => ((x = (x * 1103515245 + 12345) % 2147483648), (x >> 8) % m);
      const mine = () => Math.min(KEYS - 1 - ((KEYS - 1 - part) % 2), rnd(Math.ceil(KEYS / 2)) * 2 + part);
      while (!isStopped) {
        const i = mine();
        const kind = rnd(5);
        let changes: Array<[string, string | null]>;
        if (kind === 0 && !deleted.has(i)) {
          deleted.add(i);
          changes = [[keyOf(i), null]];
        } else if (kind === 1) changes = [[`${keyOf(i)}-new${n}`, `n${n}`]];
        else if (kind === 2) {
          const j = mine();
          changes = deleted.has(j) || j === i ? [[keyOf(i), `t${n}`]] : [[keyOf(i), `t${n}`], [keyOf(j), null]];
          if (changes.length === 2) deleted.add(j);
        } else changes = [[keyOf(i), `c${n}`]];
        if (deleted.has(i) && changes[0][1] !== null) deleted.delete(i);
        n++;
        acked.push(await write(big.api, changes));
      }
    };
    const outsider = (async () => {
      while (!isStopped) acked.push(await write(big.api, [[`other/${n++}`, 'x']]));
    })();
    const writers = [writer(0), writer(1), outsider];

    const listed = new Map<string, Item>();
    let token: string | undefined;
    let i0 = -1;
    let pages = 0;
    let lastKey = '';
    try {
      do {
        const q = new URLSearchParams({ prefix: 'big/', limit: String(PAGE), ...(pages % 50 === 0 ? { count: 'true' } : {}), ...(token ? { continue: token } : {}) });
        const r = await http('GET', `${big.api}/keys?${q.toString()}`);
        expect(r.status, r.text).to.equal(200);
        const page = r.body as Page;
        if (i0 < 0) i0 = page.index;
        expect(page.index, 'every page shows the first page\'s index').to.equal(i0);
        expect(Number(r.headers['x-raft-index'])).to.equal(i0);
        if (page.count !== undefined) expect(page.count, 'count is the whole range at I0').to.equal([...replay(acked.filter((w) => w.index <= i0)).keys()].filter((k) => k.startsWith('big/')).length);
        for (const item of page.items) {
          expect(byteOrder(item.key, lastKey), 'byte order, no repeat').to.be.greaterThan(0);
          lastKey = item.key;
          listed.set(item.key, item);
        }
        token = page.more ? page.continue : undefined;
        pages++;
        // Make sure writes land between pages (the writers run meanwhile; wait for one more at least).
        const seen = acked.length;
        await waitFor('a concurrent write between pages', () => acked.length > seen, 30_000, 5);
      } while (token);
    } finally {
      isStopped = true;
      await Promise.all(writers);
    }
    const atI0 = replay(acked.filter((w) => w.index <= i0));
    const expected = [...atI0].filter(([k]) => k.startsWith('big/'));
    const changedAfter = acked.filter((w) => w.index > i0 && w.changes.some(([k]) => k.startsWith('big/'))).length;
    console.log(`      ${KEYS} keys, ${pages} pages at I0=${i0}; ${changedAfter} writes to the prefix after I0 during the listing`);
    expect(changedAfter, 'writes landed during the listing').to.be.greaterThan(pages / 2);
    expect(listed.size).to.equal(expected.length);
    for (const [key, v] of expected) expect(listed.get(key), key).to.deep.equal({ key, value: v.value, index: v.index });

    // List, then watch from I0 + 1: replaying the events on the listing gives the final state, and the
    // events are exactly the acknowledged writes to the prefix after I0, each once.
    const last = Math.max(...acked.map((w) => w.index));
    const events = await watchUntil(big.api, 'big/', i0 + 1, last);
    const wantIndexes = acked.filter((w) => w.index > i0 && w.changes.some(([k]) => k.startsWith('big/'))).map((w) => w.index).sort((a, b) => a - b);
    expect(events.map((e) => e.index), 'no miss, no repeat, in order').to.deep.equal(wantIndexes);
    const state = new Map([...listed].map(([k, v]) => [k, { value: v.value as string, index: v.index }]));
    for (const e of events) {
      for (const ev of e.events) {
        if (ev.type === 'put') state.set(ev.key, { value: ev.value as string, index: e.index });
        else state.delete(ev.key);
      }
    }
    const final = [...replay(acked)].filter(([k]) => k.startsWith('big/'));
    expect(state.size).to.equal(final.length);
    for (const [key, v] of final) expect(state.get(key), key).to.deep.equal(v);
  });

  it('a token older than the history is 410 CONTINUE_EXPIRED with a fresh token that resumes after the same key; a foreign token stays 400', async () => {
    const acked: Acked[] = [];
    acked.push(await write(small.api, Array.from({ length: 9 }, (_, i) => [`e/${i}`, `a${i}`] as [string, string])));
    const first = await http('GET', `${small.api}/keys?prefix=e%2F&limit=3`);
    const p1 = first.body as Page;
    expect(p1.items.map((i) => i.key)).to.deep.equal(['e/0', 'e/1', 'e/2']);
    // Changes within the history: the next page still shows I0.
    acked.push(await write(small.api, [['e/3', null]]));
    acked.push(await write(small.api, [['e/4', 'b4']]));
    const p2 = (await http('GET', `${small.api}/keys?prefix=e%2F&limit=3&continue=${p1.continue}`)).body as Page;
    expect(p2.index).to.equal(p1.index);
    expect(p2.items).to.deep.equal([{ key: 'e/3', value: 'a3', index: acked[0].index }, { key: 'e/4', value: 'a4', index: acked[0].index }, { key: 'e/5', value: 'a5', index: acked[0].index }]);
    // 25 more entries: the history (20 records) no longer reaches back to I0.
    for (let i = 0; i < 25; i++) acked.push(await write(small.api, [[`x/${i}`, 'x']]));
    acked.push(await write(small.api, [['e/7', 'c7']]));
    const expired = await http('GET', `${small.api}/keys?prefix=e%2F&limit=3&continue=${p2.continue}`);
    expect(expired.status, expired.text).to.equal(410);
    const err = (expired.body as { error: { code: string; message: string; details: { continue: string; listIndex: number; compactedIndex: number; currentIndex: number } } }).error;
    expect(err.code).to.equal('CONTINUE_EXPIRED');
    expect(err.details.listIndex).to.equal(p1.index);
    expect(err.details.compactedIndex).to.be.greaterThan(p1.index);
    const current = acked[acked.length - 1].index;
    expect(err.details.currentIndex).to.equal(current);
    // The fresh token resumes after e/5 at the current index.
    const p3 = await http('GET', `${small.api}/keys?prefix=e%2F&limit=3&continue=${err.details.continue}`);
    expect(p3.status, p3.text).to.equal(200);
    expect(p3.body).to.deep.equal({ index: current, items: [{ key: 'e/6', value: 'a6', index: acked[0].index }, { key: 'e/7', value: 'c7', index: current }, { key: 'e/8', value: 'a8', index: acked[0].index }], more: false });
    expect((await http('GET', `${small.api}/keys?prefix=f%2F&continue=${err.details.continue}`)).status).to.equal(400);
  });
});
