/**
 * Issue 17, GET /watch over real HTTP on a real three-node in-memory cluster with a small history
 * (WATCH_HISTORY_ENTRIES=60): a watcher on a follower sees every change of its prefix in order,
 * exactly once, a transaction's effects as one message; Last-Event-ID resumes without gap or
 * duplicate; a `from` below the floor is 410 COMPACTED before streaming; MAX_WATCHERS is a 429.
 */
import { expect } from 'chai';
import { request } from 'undici';
import { http, stopNode, waitFor, waitForLeader, type NodeProc } from '../../support/procs.js';
import { startThreeNodes, type ThreeNodes } from '../client/three-nodes.js';

interface SseMessage {
  id?: string;
  event: string;
  data: unknown;
}

/** An open SSE stream: every message received so far, parsed. */
class Watcher {
  readonly messages: SseMessage[] = [];
  status = 0;
  /** Set when the stream failed other than by close(). */
  error: Error | null = null;
  private readonly ac = new AbortController();
  private buffer = '';
  readonly done: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.done = (async () => {
      try {
        const res = await request(url, { signal: this.ac.signal, headers });
        this.status = res.statusCode;
        for await (const chunk of res.body) {
          this.buffer += (chunk as Buffer).toString('utf8');
          let at: number;
          while ((at = this.buffer.indexOf('\n\n')) >= 0) {
            const block = this.buffer.slice(0, at);
            this.buffer = this.buffer.slice(at + 2);
            if (block.startsWith(':')) continue;
            const m: SseMessage = { event: 'message', data: null };
            for (const line of block.split('\n')) {
              const i = line.indexOf(': ');
              const field = line.slice(0, i);
              const value = line.slice(i + 2);
              if (field === 'id') m.id = value;
              else if (field === 'event') m.event = value;
              else if (field === 'data') m.data = JSON.parse(value);
            }
            this.messages.push(m);
          }
        }
      } catch (err) {
        // A stream cut by the server (its node killed) ends here; the tests look at what arrived.
        if (!this.ac.signal.aborted) this.error = err as Error;
      }
    })();
  }

  changes(): Array<{ index: number; events: Array<{ type: string; key: string; value?: string; prevIndex: number | null }> }> {
    return this.messages.filter((m) => m.event === 'change').map((m) => {
      const d = m.data as { index: number; events: Array<{ type: string; key: string; value?: string; prevIndex: number | null }> };
      expect(String(d.index)).to.equal(m.id);
      return d;
    });
  }

  async close(): Promise<void> {
    this.ac.abort();
    await this.done;
  }
}

describe('GET /watch (3 nodes, served by a follower)', function () {
  this.timeout(180_000);
  let c: ThreeNodes;
  let leader: NodeProc;
  let follower: NodeProc;
  const open: Watcher[] = [];
  const watch = (url: string, headers?: Record<string, string>): Watcher => {
    const w = new Watcher(url, headers);
    open.push(w);
    return w;
  };

  before(async () => {
    // SNAPSHOT_THRESHOLD=20: a follower paused for 40 writes catches up by InstallSnapshot.
    c = await startThreeNodes({ WATCH_HISTORY_ENTRIES: '60', WATCH_PROGRESS_INTERVAL_MS: '300', MAX_WATCHERS: '3', SNAPSHOT_THRESHOLD: '20' });
    leader = await waitForLeader(c.nodes);
    follower = c.nodes.find((n) => n !== leader) as NodeProc;
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((w) => w.close()));
  });

  after(async () => {
    await c?.stop();
  });

  /** Opens a stream that has sent its first message, retrying while the member refuses (e.g. no leader known yet). */
  async function openStream(url: string): Promise<Watcher> {
    return waitFor(`a stream to open at ${url}`, async () => {
      const x = watch(url);
      await waitFor('its first message', () => x.messages.length > 0 || x.error !== null || (x.status !== 0 && x.status !== 200), 3000).catch(() => null);
      return x.messages.length > 0 ? x : null;
    }, 30_000);
  }

  /** Writes through the leader and returns the entry's index. */
  async function put(pairs: Record<string, string>): Promise<number> {
    const r = await http('POST', `${leader.api}/key`, pairs);
    expect(r.status, r.text).to.equal(200);
    return Number(r.headers['x-raft-index']);
  }

  it('sees every change of its prefix in order, exactly once, a transaction as one message; resumes with Last-Event-ID without gap or duplicate', async () => {
    const w = watch(`${follower.api}/watch?prefix=w%2F`);
    // Without from: a progress event at once, at the index confirmed by ReadIndex.
    const first = await waitFor('the first progress event', () => w.messages[0]);
    expect(w.status).to.equal(200);
    expect(first.event).to.equal('progress');
    const start = Number(first.id);
    expect((first.data as { index: number }).index).to.equal(start);

    const expected = new Map<number, Array<{ type: string; key: string }>>();
    for (let i = 0; i < 10; i++) {
      const index = await put({ [`w/k${i}`]: `v${i}` });
      expected.set(index, [{ type: 'put', key: `w/k${i}` }]);
      await put({ [`x/other${i}`]: 'no' }); // another prefix: nothing for this watcher
    }
    const txn = await http('POST', `${leader.api}/txn`, { success: [{ op: 'set', key: 'w/a', value: '1' }, { op: 'set', key: 'x/b', value: '2' }, { op: 'delete', key: 'w/k0' }, { op: 'set', key: 'w/k1', value: 'again' }] });
    expect(txn.status, txn.text).to.equal(200);
    const txnIndex = (txn.body as { index: number }).index;
    expected.set(txnIndex, [{ type: 'put', key: 'w/a' }, { type: 'delete', key: 'w/k0' }, { type: 'put', key: 'w/k1' }]);
    const del = await http('DELETE', `${leader.api}/key/${encodeURIComponent('w/k2')}`);
    expect(del.status, del.text).to.equal(200);
    const delIndex = Number(del.headers['x-raft-index']);
    expected.set(delIndex, [{ type: 'delete', key: 'w/k2' }]);

    await waitFor('every change on the follower', () => w.changes().some((ch) => ch.index === delIndex), 30_000);
    const seen = w.changes();
    expect(seen.map((ch) => ch.index)).to.deep.equal([...expected.keys()]);
    for (const ch of seen) expect(ch.events.map((e) => ({ type: e.type, key: e.key }))).to.deep.equal(expected.get(ch.index));
    const t = seen.find((ch) => ch.index === txnIndex);
    expect(t?.events[1]).to.deep.equal({ type: 'delete', key: 'w/k0', prevIndex: seen[0].index });
    expect(t?.events[2]).to.deep.equal({ type: 'put', key: 'w/k1', value: 'again', prevIndex: seen[1].index });
    // Every id goes up; a progress is never ahead of a change sent after it.
    let last = start;
    for (const m of w.messages.slice(1)) {
      if (m.event === 'change') expect(Number(m.id)).to.be.greaterThan(last);
      else expect(Number(m.id)).to.be.at.least(last);
      last = Number(m.id);
    }
    // A quiet prefix still advances: progress at the applied index.
    await waitFor('a progress past the last change', () => w.messages.some((m) => m.event === 'progress' && Number(m.id) >= delIndex), 10_000);
    await w.close();

    // Resume from the fifth change: exactly the ones after it, on another member.
    const resumeAt = seen[4].index;
    const other = c.nodes.find((n) => n !== follower) as NodeProc;
    const r = watch(`${other.api}/watch?prefix=w%2F&from=1`, { 'Last-Event-ID': String(resumeAt) });
    await waitFor('the resumed stream to catch up', () => r.changes().some((ch) => ch.index === delIndex), 30_000);
    expect(r.changes().map((ch) => ch.index)).to.deep.equal(seen.slice(5).map((ch) => ch.index));
    expect(r.changes()).to.deep.equal(seen.slice(5));
    // from = an index gives the changes from it on, inclusive.
    const f = watch(`${follower.api}/watch?prefix=w%2F&from=${txnIndex}`);
    await waitFor('the from stream', () => f.changes().some((ch) => ch.index === delIndex), 30_000);
    expect(f.changes().map((ch) => ch.index)).to.deep.equal([txnIndex, delIndex]);
  });

  it('over MAX_WATCHERS a node answers 429', async () => {
    const ws: Watcher[] = [];
    for (let i = 0; i < 3; i++) ws.push(await openStream(`${follower.api}/watch?prefix=m%2F`));
    const r = await http('GET', `${follower.api}/watch?prefix=m%2F`);
    expect(r.status, r.text).to.equal(429);
    expect(r.body).to.have.nested.property('error.code', 'TOO_MANY_REQUESTS');
    await ws[0].close();
    const again = await waitFor('a free slot once a stream closed', async () => {
      const w = watch(`${follower.api}/watch?prefix=m%2F`);
      await waitFor('its answer', () => w.status !== 0 || null, 5000).catch(() => null);
      return w.status === 200 ? w : null;
    }, 10_000);
    expect(again.status).to.equal(200);
  });

  it('from at or below the history floor is 410 COMPACTED with the floor and the applied index, before streaming', async () => {
    const early = await put({ 'c/first': '1' });
    for (let i = 0; i < 70; i++) await put({ [`c/k${i}`]: String(i) });
    await waitFor('the follower to apply', async () => {
      const g = await http('GET', `${follower.api}/key/${encodeURIComponent('c/k69')}?consistency=stale`);
      return g.status === 200;
    });
    const r = await http('GET', `${follower.api}/watch?prefix=c%2F&from=${early}`);
    expect(r.status, r.text).to.equal(410);
    const err = (r.body as { error: { code: string; details: { compactedIndex: number; currentIndex: number } } }).error;
    expect(err.code).to.equal('COMPACTED');
    expect(err.details.compactedIndex).to.be.at.least(early);
    expect(err.details.currentIndex).to.be.greaterThan(err.details.compactedIndex);
    // Just above the floor streams.
    const w = watch(`${follower.api}/watch?prefix=c%2F&from=${err.details.compactedIndex + 1}`);
    await waitFor('changes from just above the floor', () => w.changes().length > 0, 10_000);
    expect(w.status).to.equal(200);
  });

  it('a quiet prefix resumes across compaction thanks to progress ids; an old id behind the floor is 410, never a gap (pitfall 1)', async () => {
    const w = watch(`${follower.api}/watch?prefix=quiet%2F`);
    const first = await waitFor('the first progress', () => w.messages[0], 10_000);
    let lastWrite = 0;
    for (let i = 0; i < 100; i++) lastWrite = await put({ [`busy/k${i}`]: String(i) }); // more than the 60 kept
    const progress = await waitFor('a progress past the writes', () => w.messages.find((m) => m.event === 'progress' && Number(m.id) >= lastWrite), 10_000);
    await w.close();
    const resumed = watch(`${follower.api}/watch?prefix=quiet%2F`, { 'Last-Event-ID': String(progress.id) });
    const quiet = await put({ 'quiet/x': '1' });
    await waitFor('the change after the resume', () => resumed.changes().some((ch) => ch.index === quiet), 10_000);
    expect(resumed.status).to.equal(200);
    expect(resumed.changes().map((ch) => ch.index)).to.deep.equal([quiet]);
    // The id of the first progress is behind the floor now: 410 before streaming.
    const old = await http('GET', `${follower.api}/watch?prefix=quiet%2F`, undefined, { 'Last-Event-ID': String(first.id) });
    expect(old.status, old.text).to.equal(410);
    expect(old.body).to.have.nested.property('error.code', 'COMPACTED');
  });

  it('a follower that installs a snapshot answers COMPACTED to a watcher behind it; the stream resumes in full on a member whose history covers it (pitfall 2)', async () => {
    leader = await waitForLeader(c.nodes);
    const lagger = c.nodes.find((n) => n !== leader) as NodeProc;
    const w = watch(`${lagger.api}/watch?prefix=snap%2F`);
    await waitFor('the stream to open', () => w.messages.length > 0, 10_000);
    const a = await put({ 'snap/a': '0' });
    await waitFor('the first change', () => w.changes().some((ch) => ch.index === a), 10_000);
    lagger.proc?.kill('SIGSTOP');
    const written: number[] = [];
    try {
      for (let i = 0; i < 40; i++) written.push(await put({ [`snap/k${i}`]: String(i) }));
    } finally {
      lagger.proc?.kill('SIGCONT');
    }
    await waitFor('the error event', () => w.messages.some((m) => m.event === 'error'), 30_000);
    await w.done;
    const last = w.messages[w.messages.length - 1];
    expect(last.data).to.have.nested.property('error.code', 'COMPACTED');
    // Before the error: whole changes from the start on without a gap (those that reached the paused
    // member's socket before the leader compacted are applied from the log), then the error.
    const got = w.changes().map((ch) => ch.index);
    expect(got).to.deep.equal([a, ...written].slice(0, got.length));
    expect(got.length).to.be.below(written.length + 1);
    const behind = await http('GET', `${lagger.api}/watch?prefix=snap%2F`, undefined, { 'Last-Event-ID': String(a) });
    expect(behind.status, behind.text).to.equal(410);
    const r = watch(`${leader.api}/watch?prefix=snap%2F`, { 'Last-Event-ID': String(a) });
    await waitFor('the resumed stream on the leader', () => r.changes().some((ch) => ch.index === written[written.length - 1]), 10_000);
    expect(r.changes().map((ch) => ch.index)).to.deep.equal(written);
  });

  it('a node cut off from the leader for two election timeouts ends its streams with an error event NO_LEADER', async () => {
    const w = watch(`${follower.api}/watch?prefix=n%2F`);
    await waitFor('the stream to open', () => w.messages.length > 0, 10_000);
    const others = c.nodes.filter((n) => n !== follower);
    for (const n of others) n.proc?.kill('SIGSTOP');
    try {
      await waitFor('the NO_LEADER error event', () => w.messages.some((m) => m.event === 'error'), 30_000);
    } finally {
      for (const n of others) n.proc?.kill('SIGCONT');
    }
    await w.done;
    const last = w.messages[w.messages.length - 1];
    expect(last.data).to.have.nested.property('error.code', 'NO_LEADER');
    leader = await waitForLeader(c.nodes);
  });

  // Last: it stops a member.
  it('a node shutting down ends its streams with an error event (UNAVAILABLE) and exits cleanly, not held open by them', async () => {
    // The member may still be learning the leader elected after the previous test: retry the open.
    const w = await openStream(`${follower.api}/watch?prefix=s%2F`);
    // Exit code 0: not the forced exit (code 1) that shutdown falls back to after 10 s.
    expect(await stopNode(follower, 'SIGTERM')).to.equal(0);
    await w.done;
    expect(w.error).to.equal(null);
    const last = w.messages[w.messages.length - 1];
    expect(last.event).to.equal('error');
    expect(last.data).to.have.nested.property('error.code', 'UNAVAILABLE');
  });
});
