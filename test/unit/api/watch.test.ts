/**
 * GET /watch (src/api/watch.ts): the query and Last-Event-ID, the SSE framing, and the stream of
 * frames over a real in-memory history (the route over HTTP is in test/integration/api/watch.test.ts).
 */
import { expect } from 'chai';
import { changeFrame, parseWatchQuery, sseFrame, watchFrames, type WatchSource } from '../../../src/api/watch.js';
import { RaftKvError } from '../../../src/errors.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import type { HistoryLimits } from '../../../src/kv/history.js';
import type { KvOp } from '../../../src/kv/types.js';
import { MemoryKvStore } from '../../../src/storage/memory/index.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createApp } from '../../../src/api/app.js';
import type { RaftNode } from '../../../src/raft/node/node.js';

/** A node stand-in: a real memory store and state machine, with the applied-index listeners. */
class FakeNode implements WatchSource {
  readonly store: MemoryKvStore;
  private readonly sm: KvStateMachine;
  private readonly listeners = new Set<(i: number) => void>();
  private applied = 0;

  constructor(limits?: HistoryLimits) {
    this.store = new MemoryKvStore(limits);
    this.sm = new KvStateMachine(this.store);
  }

  readHistory(from: number, max: number): ReturnType<WatchSource['readHistory']> {
    return this.store.readHistory(from, max);
  }

  onAppliedIndex(fn: (i: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  appliedIndex(): number {
    return this.applied;
  }

  leader: string | null = 'L';

  leaderId(): string | null {
    return this.leader;
  }

  async apply(index: number, ops: KvOp[]): Promise<void> {
    await this.sm.applyCommands([{ index, ops }], index);
    this.applied = index;
    for (const fn of this.listeners) fn(index);
  }
}

const set = (key: string, value = 'v'): KvOp => ({ op: 'set', key, value });

/** The next frame, or 'timeout' if none comes within `ms`. */
async function nextFrame(gen: AsyncGenerator<string>, ms = 2000): Promise<string | 'timeout' | 'done'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const r = await Promise.race([gen.next(), t]);
  clearTimeout(timer);
  if (r === 'timeout') return r;
  return r.done ? 'done' : r.value;
}

/** Parses SSE text into messages (comments skipped). */
function messages(text: string): Array<{ id?: string; event: string; data: unknown }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '' && !block.startsWith(':'))
    .map((block) => {
      const m: { id?: string; event: string; data: unknown } = { event: 'message', data: null };
      for (const line of block.split('\n')) {
        const at = line.indexOf(': ');
        const [field, value] = [line.slice(0, at), line.slice(at + 2)];
        if (field === 'id') m.id = value;
        else if (field === 'event') m.event = value;
        else if (field === 'data') m.data = JSON.parse(value);
      }
      return m;
    });
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as RaftKvError).code;
  }
  return 'none';
}

describe('watch: query, framing and the stream of frames', () => {
  it('parses prefix and from; Last-Event-ID resumes at id + 1 and wins over from; malformed or unknown input is 400', () => {
    const p = (qs: string, last?: string) => parseWatchQuery(new URLSearchParams(qs), last, 16);
    expect(p('')).to.deep.equal({ prefix: '', from: null });
    expect(p('prefix=a%2F&from=7')).to.deep.equal({ prefix: 'a/', from: 7 });
    expect(p('prefix=a/&from=7', '41')).to.deep.equal({ prefix: 'a/', from: 42 });
    expect(p('prefix=a/', '0')).to.deep.equal({ prefix: 'a/', from: 1 });
    for (const [qs, last] of [['from=0'], ['from=-1'], ['from=1.5'], ['from=x'], ['from=99999999999999999'], ['limit=3'], ['from=1&from=2'], ['prefix=' + 'x'.repeat(17)], ['', 'abc']] as const) {
      expect(code(() => p(qs, last)), `${qs} ${last}`).to.equal('BAD_REQUEST');
    }
  });

  it('frames one SSE message per index: id, event and a one-line JSON data field', () => {
    expect(sseFrame(42, 'progress', { index: 42 })).to.equal('id: 42\nevent: progress\ndata: {"index":42}\n\n');
    expect(sseFrame(null, 'error', { a: 'x\ny\r' })).to.equal('event: error\ndata: {"a":"x\\ny\\r"}\n\n');
    const effects = [{ type: 'put' as const, key: 'p/a', value: '1', prevIndex: null }, { type: 'delete' as const, key: 'q/b', prevIndex: 3 }];
    expect(changeFrame(9, effects, 'p/')).to.equal('id: 9\nevent: change\ndata: {"index":9,"events":[{"type":"put","key":"p/a","value":"1","prevIndex":null}]}\n\n');
    expect(changeFrame(9, effects, 'z/')).to.equal('');
    expect(messages(changeFrame(9, effects, ''))[0].data).to.deep.equal({ index: 9, events: effects });
  });

  it('events keep their shape: the history\'s prevValue (kept for listings) is never sent', async () => {
    const n = new FakeNode();
    await n.apply(1, [set('p/a', 'secret-old'), set('p/b', 'x')]);
    await n.apply(2, [set('p/a', 'new'), { op: 'delete', key: 'p/b' }]);
    const stored = (await n.readHistory(2, 10)).entries[0].effects;
    expect(stored.map((e) => e.prevValue)).to.deep.equal(['secret-old', 'x']);
    const gen = watchFrames(n, 'p/', 2, null, 60_000);
    expect(await nextFrame(gen)).to.match(/^: watching/);
    const frame = (await nextFrame(gen)) as string;
    expect(frame).to.not.include('prevValue');
    expect(frame).to.not.include('secret-old');
    expect(messages(frame)[0].data).to.deep.equal({ index: 2, events: [{ type: 'put', key: 'p/a', value: 'new', prevIndex: 1 }, { type: 'delete', key: 'p/b', prevIndex: 1 }] });
    expect(changeFrame(2, stored, '')).to.equal(frame);
    await gen.return(undefined);
  });

  it('streams every matching change in order, once, a multi-key entry as one message; other prefixes and empty entries send nothing', async () => {
    const n = new FakeNode();
    await n.apply(1, [set('p/a', '1')]);
    await n.apply(2, [set('q/x')]);
    const control = { isClosed: false, wake: null as (() => void) | null };
    const gen = watchFrames(n, 'p/', 1, null, 60_000, control);
    expect(await nextFrame(gen)).to.match(/^: watching/);
    expect(messages((await nextFrame(gen)) as string)).to.deep.equal([{ id: '1', event: 'change', data: { index: 1, events: [{ type: 'put', key: 'p/a', value: '1', prevIndex: null }] } }]);
    const pending = nextFrame(gen);
    await n.apply(3, [{ op: 'delete', key: 'p/none' }]);
    await n.apply(4, [set('p/b', '2'), set('q/y'), { op: 'delete', key: 'p/a' }]);
    expect(messages((await pending) as string)).to.deep.equal([
      { id: '4', event: 'change', data: { index: 4, events: [{ type: 'put', key: 'p/b', value: '2', prevIndex: null }, { type: 'delete', key: 'p/a', prevIndex: 1 }] } },
    ]);
    expect(await nextFrame(gen, 200)).to.equal('timeout');
    // The client goes away while the stream waits: it is woken and ends (as the route does on close).
    control.isClosed = true;
    control.wake?.();
    expect(await gen.return(undefined)).to.deep.equal({ done: true, value: undefined });
  });

  it('without from: a progress event first; a quiet prefix gets progress at the applied index, never ahead of a change not yet sent', async () => {
    const n = new FakeNode();
    await n.apply(1, [set('q/x')]);
    const gen = watchFrames(n, 'p/', 2, 1, 100);
    expect(await nextFrame(gen)).to.match(/^: watching/);
    expect(messages((await nextFrame(gen)) as string)).to.deep.equal([{ id: '1', event: 'progress', data: { index: 1 } }]);
    await n.apply(2, [set('q/y')]);
    await n.apply(3, [set('q/z')]);
    const progress = messages((await nextFrame(gen)) as string)[0];
    expect(progress).to.deep.equal({ id: '3', event: 'progress', data: { index: 3 } });
    await n.apply(4, [set('p/a')]);
    // The change at 4 comes before any progress at or past 4.
    expect(messages((await nextFrame(gen)) as string)[0]).to.include({ id: '4', event: 'change' });
    const later = messages((await nextFrame(gen)) as string)[0];
    expect(later).to.deep.equal({ id: '4', event: 'progress', data: { index: 4 } });
    await gen.return(undefined);
  });

  it('a stream that falls behind the floor gets an error event COMPACTED with the floor and applied index, then ends', async () => {
    const n = new FakeNode({ maxEntries: 2, maxBytes: 1 << 20 });
    await n.apply(1, [set('p/a')]);
    const gen = watchFrames(n, 'p/', 1, null, 60_000);
    expect(await nextFrame(gen)).to.match(/^: watching/);
    expect(messages((await nextFrame(gen)) as string)[0]).to.include({ id: '1' });
    // The client stops reading while three more entries land: the record of 2 is dropped before it reads on.
    for (let i = 2; i <= 4; i++) await n.apply(i, [set('p/b')]);
    const [err] = messages((await nextFrame(gen)) as string);
    expect(err.event).to.equal('error');
    expect(err.id).to.equal(undefined);
    const body = err.data as { error: { code: string; message: string; details: unknown } };
    expect(body.error.code).to.equal('COMPACTED');
    expect(body.error.details).to.deep.equal({ compactedIndex: 2, currentIndex: 4 });
    expect(await nextFrame(gen)).to.equal('done');
  });

  it('a slow client catches up page by page from the history: every change, in order, once', async () => {
    const n = new FakeNode();
    for (let i = 1; i <= 1000; i++) await n.apply(i, [set(i % 3 === 0 ? `p/${i}` : `q/${i}`)]);
    const gen = watchFrames(n, 'p/', 1, null, 60_000);
    const seen: number[] = [];
    let frames = 0;
    while (seen.length < 333) {
      const f = await nextFrame(gen);
      expect(f).to.not.equal('timeout');
      frames++;
      for (const m of messages(f as string)) seen.push(Number(m.id));
    }
    expect(seen).to.deep.equal(Array.from({ length: 333 }, (_, i) => (i + 1) * 3));
    // More than one page: nothing beyond a page is ever produced ahead of the reader.
    expect(frames).to.be.greaterThan(3);
    await gen.return(undefined);
  });

  it('a node without a leader for noLeaderMs ends the stream with an error event NO_LEADER (a leader seen meanwhile restarts the clock)', async () => {
    const n = new FakeNode();
    const gen = watchFrames(n, 'p/', 1, null, 60_000, { isClosed: false, wake: null }, undefined, 300);
    expect(await nextFrame(gen)).to.match(/^: watching/);
    n.leader = null;
    const pending = nextFrame(gen, 5000);
    await new Promise((r) => setTimeout(r, 100));
    n.leader = 'L'; // back before the limit: the clock restarts
    await new Promise((r) => setTimeout(r, 250));
    n.leader = null;
    const [err] = messages((await pending) as string);
    expect(err.event).to.equal('error');
    expect(err.data).to.have.nested.property('error.code', 'NO_LEADER');
    expect(await nextFrame(gen)).to.equal('done');
  });

  it('MAX_WATCHERS holds for opens that arrive together (the slot is taken before the ReadIndex wait), and the open streams keep them', async () => {
    const n = new FakeNode();
    await n.apply(1, [set('p/a')]);
    const stub = Object.assign(Object.create(n) as FakeNode, {
      members: () => [],
      linearizableBarrier: () => new Promise<void>((resolve) => setTimeout(resolve, 50)),
    });
    const app = createApp({
      node: stub as unknown as RaftNode,
      nodeId: 'L',
      limits: { maxKeyBytes: 64, maxValueBytes: 100, maxBodyBytes: 1000 },
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      requestTimeoutMs: 1000,
      watch: { maxWatchers: 2, progressIntervalMs: 60_000 },
    });
    const server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const ac = new AbortController();
    try {
      const answers = await Promise.all([0, 1, 2, 3, 4].map(() => request(`${base}/watch?prefix=p%2F`, { signal: ac.signal })));
      const statuses = answers.map((r) => r.statusCode).sort();
      expect(statuses).to.deep.equal([200, 200, 429, 429, 429]);
      for (const r of answers) if (r.statusCode === 429) await r.body.text();
      // The two streams hold their slots: a later open with from is refused too.
      expect((await request(`${base}/watch?prefix=p%2F&from=1`, { signal: ac.signal })).statusCode).to.equal(429);
    } finally {
      ac.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
