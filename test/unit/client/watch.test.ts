import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { refused } from '../../support/fake-http.js';
import { BadRequestError, ClusterUnavailableError, RaftKvClient, SseParser, WatchCompactedError, type WatchMessage } from '../../../src/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Fake {
  url: string;
  /** Requests received: the URL and the Last-Event-ID / Authorization / Accept headers. */
  seen: { url: string; lastEventId: string | undefined; auth: string | undefined; accept: string | undefined }[];
  closed: number;
  server: Server;
}

const fakes: Fake[] = [];

/** A scripted HTTP server standing in for one raftkv node's GET /watch. */
async function fake(handle: Handler): Promise<Fake> {
  const f = { seen: [], closed: 0 } as unknown as Fake;
  f.server = createServer((req, res) => {
    f.seen.push({ url: req.url ?? '', lastEventId: req.headers['last-event-id'] as string | undefined, auth: req.headers.authorization, accept: req.headers.accept });
    res.on('close', () => f.closed++);
    handle(req, res);
  });
  await new Promise<void>((resolve) => f.server.listen(0, '127.0.0.1', resolve));
  f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
  fakes.push(f);
  return f;
}

function open(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(': watching\n\n');
}

function change(index: number, key: string, value: string): string {
  return `id: ${index}\nevent: change\ndata: ${JSON.stringify({ index, events: [{ type: 'put', key, value, prevIndex: null }] })}\n\n`;
}

function progress(index: number): string {
  return `id: ${index}\nevent: progress\ndata: ${JSON.stringify({ index })}\n\n`;
}

function errorEvent(code: string, details?: Record<string, unknown>): string {
  return `event: error\ndata: ${JSON.stringify({ error: { code, message: `${code} from fake`, ...(details ? { details } : {}) } })}\n\n`;
}

/** Collects up to `n` messages (or until the iterator ends); the error it threw, if any. */
async function collect(it: AsyncGenerator<WatchMessage>, n: number): Promise<{ messages: WatchMessage[]; error: Error | null }> {
  const messages: WatchMessage[] = [];
  try {
    for await (const m of it) {
      messages.push(m);
      if (messages.length >= n) break;
    }
  } catch (err) {
    return { messages, error: err as Error };
  }
  return { messages, error: null };
}

const fast = { backoffBaseMs: 5, backoffMaxMs: 20 };

describe('client.watch: resumable change streams over SSE (scripted servers)', () => {
  afterEach(async () => {
    await Promise.all(
      fakes.splice(0).map(
        (f) =>
          new Promise<void>((resolve) => {
            f.server.closeAllConnections();
            f.server.close(() => resolve());
          }),
      ),
    );
  });

  it('parses SSE: comments, CRLF and CR line ends split across chunks, multi-line data, id-less events', () => {
    const p = new SseParser();
    const out = [...p.push(': hi\r\nid: 4\r'), ...p.push('\nevent: change\r\ndata: a\r\ndata: b\r'), ...p.push('\n\r\n'), ...p.push('event: error\ndata: {}\n\n')];
    expect(out).to.deep.equal([
      { id: '4', event: 'change', data: 'a\nb' },
      { id: null, event: 'error', data: '{}' },
    ]);
  });

  it('yields change and progress messages, sending from, the token and Accept: text/event-stream', async () => {
    const a = await fake((_req, res) => {
      open(res);
      res.write(change(5, 'p/a', '1') + progress(6));
    });
    const client = new RaftKvClient({ endpoints: [a.url], token: 's3cret', ...fast });
    const { messages, error } = await collect(client.watch('p/', { from: 5 }), 2);
    expect(error).to.equal(null);
    expect(messages).to.deep.equal([
      { type: 'change', index: 5, events: [{ type: 'put', key: 'p/a', value: '1', prevIndex: null }] },
      { type: 'progress', index: 6 },
    ]);
    expect(a.seen[0].url).to.equal('/watch?prefix=p%2F&from=5');
    expect(a.seen[0].auth).to.equal('Bearer s3cret');
    expect(a.seen[0].accept).to.equal('text/event-stream');
    expect(a.seen[0].lastEventId).to.equal(undefined);
  });

  it('a stream cut mid-frame resumes on the next endpoint with Last-Event-ID = the last index delivered, without a duplicate', async () => {
    const a = await fake((_req, res) => {
      open(res);
      res.write(change(5, 'p/a', '1') + change(7, 'p/b', '2'));
      // Half a frame, then the connection dies (a node killed mid-write).
      res.write('id: 9\nevent: change\ndata: {"index":9,"ev');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const b = await fake((req, res) => {
      open(res);
      // The server resumes at Last-Event-ID + 1; a repeated progress at the resume point is dropped.
      expect(req.headers['last-event-id']).to.equal('7');
      res.write(progress(7) + change(9, 'p/c', '3') + change(12, 'p/d', '4'));
    });
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    const retried: string[] = [];
    const { messages, error } = await collect(client.watch('p/', { onRetry: (r) => retried.push(r.endpoint) }), 4);
    expect(error).to.equal(null);
    expect(messages.map((m) => `${m.type}@${m.index}`)).to.deep.equal(['change@5', 'change@7', 'change@9', 'change@12']);
    expect(a.seen).to.have.length(1);
    expect(b.seen).to.have.length(1);
    expect(b.seen[0].lastEventId).to.equal('7');
    expect(retried).to.deep.equal([a.url]);
  });

  it('never yields an index twice or going backwards, even if a server repeats or reorders', async () => {
    const a = await fake((_req, res) => {
      open(res);
      res.write(change(5, 'p/a', '1') + progress(5) + change(4, 'p/old', 'x') + change(8, 'p/b', '2') + progress(8) + progress(10));
    });
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const { messages } = await collect(client.watch('p/'), 3);
    expect(messages.map((m) => `${m.type}@${m.index}`)).to.deep.equal(['change@5', 'change@8', 'progress@10']);
  });

  it('an error event NO_LEADER or UNAVAILABLE, a refused connection and a 503 resume elsewhere', async () => {
    let calls = 0;
    const a = await fake((_req, res) => {
      open(res);
      res.write(++calls === 1 ? progress(3) + errorEvent('NO_LEADER') : progress(5));
      if (calls === 1) res.end();
    });
    const b = await fake((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NO_LEADER', message: 'no leader' } }));
    });
    const c = await fake((req, res) => {
      open(res);
      res.write(change(4, 'p/x', 'y') + errorEvent('UNAVAILABLE'));
      res.end();
    });
    const dead = await refused();
    const client = new RaftKvClient({ endpoints: [a.url, dead, b.url, c.url], ...fast });
    const { messages, error } = await collect(client.watch('p/'), 3);
    expect(error).to.equal(null);
    expect(messages.map((m) => `${m.type}@${m.index}`)).to.deep.equal(['progress@3', 'change@4', 'progress@5']);
    expect(b.seen[0].lastEventId).to.equal('3');
    expect(c.seen[0].lastEventId).to.equal('3');
    // After c's UNAVAILABLE, back round to a, resuming after 4.
    expect(a.seen[1].lastEventId).to.equal('4');
  });

  it('410 COMPACTED before streaming is a WatchCompactedError with compactedIndex and currentIndex, not retried', async () => {
    const a = await fake((_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'COMPACTED', message: 'history starts after 100', details: { compactedIndex: 100, currentIndex: 250 } } }));
    });
    const b = await fake((_req, res) => open(res));
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    const { messages, error } = await collect(client.watch('p/', { from: 7 }), 1);
    expect(messages).to.deep.equal([]);
    expect(error).to.be.instanceOf(WatchCompactedError);
    const e = error as WatchCompactedError;
    expect([e.code, e.status, e.compactedIndex, e.currentIndex, e.endpoint]).to.deep.equal(['COMPACTED', 410, 100, 250, a.url]);
    expect(b.seen).to.have.length(0);
  });

  it('an error event COMPACTED mid-stream throws WatchCompactedError after the messages before it', async () => {
    const a = await fake((_req, res) => {
      open(res);
      res.write(change(5, 'p/a', '1') + errorEvent('COMPACTED', { compactedIndex: 40, currentIndex: 90 }));
      res.end();
    });
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const { messages, error } = await collect(client.watch('p/'), 5);
    expect(messages.map((m) => m.index)).to.deep.equal([5]);
    expect(error).to.be.instanceOf(WatchCompactedError);
    expect((error as WatchCompactedError).compactedIndex).to.equal(40);
    expect(a.seen).to.have.length(1);
  });

  it('a stream that goes silent past idleTimeoutMs is dropped and resumed elsewhere', async () => {
    const a = await fake((_req, res) => {
      open(res);
      res.write(change(2, 'p/a', '1')); // then nothing, the connection stays open (a partition)
    });
    const b = await fake((_req, res) => {
      open(res);
      res.write(change(3, 'p/b', '2'));
    });
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    const errors: string[] = [];
    const { messages } = await collect(client.watch('p/', { idleTimeoutMs: 300, onRetry: (r) => errors.push((r.error as { code?: string }).code ?? '') }), 2);
    expect(messages.map((m) => m.index)).to.deep.equal([2, 3]);
    expect(errors).to.deep.equal(['WATCH_STALLED']);
    expect(b.seen[0].lastEventId).to.equal('2');
  });

  it('400 is a BadRequestError at once; a bad from is refused before any request', async () => {
    const a = await fake((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'prefix is not well-formed' } }));
    });
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const r = await collect(client.watch('p/'), 1);
    expect(r.error).to.be.instanceOf(BadRequestError);
    expect(a.seen).to.have.length(1);
    const bad = await collect(client.watch('p/', { from: 0 }), 1);
    expect(bad.error).to.be.instanceOf(BadRequestError);
    expect(a.seen).to.have.length(1);
  });

  it('gives up after `retries` failed attempts in a row with ClusterUnavailableError', async () => {
    const client = new RaftKvClient({ endpoints: [await refused(), await refused()], ...fast });
    const { error } = await collect(client.watch('p/', { retries: 3 }), 1);
    expect(error).to.be.instanceOf(ClusterUnavailableError);
    expect((error as ClusterUnavailableError).attempts).to.have.length(4);
  });

  it('abort ends the iteration quietly and closes the stream; so does breaking out of the loop', async () => {
    const a = await fake((_req, res) => {
      open(res);
      res.write(progress(1));
    });
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const ac = new AbortController();
    const got: number[] = [];
    for await (const m of client.watch('', { signal: ac.signal })) {
      got.push(m.index);
      setTimeout(() => ac.abort(), 20);
    }
    expect(got).to.deep.equal([1]);
    const { messages } = await collect(client.watch(''), 1);
    expect(messages).to.have.length(1);
    const deadline = Date.now() + 5000;
    while (a.closed < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(a.closed).to.equal(2);
  });
});
