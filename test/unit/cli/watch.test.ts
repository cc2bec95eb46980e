import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXIT, run } from '../../../src/cli/main.js';
import { formatWatchMessage } from '../../../src/cli/format.js';

const servers: Server[] = [];

/** A scripted GET /watch server; `seen` records each request's URL and Last-Event-ID. */
async function fake(handle: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ url: string; seen: { url: string; lastEventId: string | undefined }[] }> {
  const seen: { url: string; lastEventId: string | undefined }[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', lastEventId: req.headers['last-event-id'] as string | undefined });
    handle(req, res, seen.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function sse(res: ServerResponse, frames: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(frames);
}

const CHANGE_5 = `id: 5\nevent: change\ndata: ${JSON.stringify({ index: 5, events: [{ type: 'put', key: 'p/a', value: 'one two', prevIndex: null }, { type: 'delete', key: 'p/b', prevIndex: 3 }] })}\n\n`;
const CHANGE_9 = `id: 9\nevent: change\ndata: ${JSON.stringify({ index: 9, events: [{ type: 'delete', key: 'p/c', prevIndex: 7, reason: 'lease-expired', lease: 'l-4' }] })}\n\n`;
const PROGRESS_12 = `id: 12\nevent: progress\ndata: {"index":12}\n\n`;

/** Runs the CLI in-process; calls `onOut` on each stdout line (to send Ctrl-C at the right moment). */
async function cli(argv: string[], onOut: (lines: string[]) => void = () => undefined): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, {
    out: (s) => {
      out.push(s);
      onOut(out);
    },
    err: (s) => err.push(s),
    env: {},
  });
  return { code, out, err };
}

/** Ctrl-C once `n` lines are out (emitted on the process, as the terminal would). */
function ctrlCAfter(n: number): (lines: string[]) => void {
  let isSent = false;
  return (lines) => {
    if (!isSent && lines.length >= n) {
      isSent = true;
      setTimeout(() => process.emit('SIGINT'), 10);
    }
  };
}

describe('raftkv watch (CLI, against scripted SSE servers)', () => {
  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  });

  it('prints one tab-separated line per event, resumes after a drop, and Ctrl-C exits 0', async () => {
    const a = await fake((_req, res) => {
      sse(res, CHANGE_5);
      setTimeout(() => res.socket?.destroy(), 30);
    });
    const b = await fake((_req, res) => sse(res, CHANGE_9 + PROGRESS_12));
    const r = await cli(['watch', 'p/', '--from', '4', '--endpoints', `${a.url},${b.url}`], ctrlCAfter(3));
    expect(r.code).to.equal(EXIT.ok);
    expect(r.out).to.deep.equal(['5\tput\tp/a\tone two', '5\tdelete\tp/b', '9\tdelete\tp/c\t(lease-expired l-4)']);
    expect(a.seen[0].url).to.equal('/watch?prefix=p%2F&from=4');
    expect(b.seen[0].lastEventId).to.equal('5');
    expect(r.err.join('\n')).to.match(/resuming on another endpoint after index 5/);
    expect(process.listenerCount('SIGINT')).to.equal(0);
  });

  it('--json prints NDJSON: one object per event and one per progress', async () => {
    const a = await fake((_req, res) => sse(res, CHANGE_5 + CHANGE_9 + PROGRESS_12));
    const r = await cli(['watch', 'p/', '--json', '--endpoints', a.url], ctrlCAfter(4));
    expect(r.code).to.equal(EXIT.ok);
    expect(r.out.map((l) => JSON.parse(l) as unknown)).to.deep.equal([
      { index: 5, type: 'put', key: 'p/a', value: 'one two', prevIndex: null },
      { index: 5, type: 'delete', key: 'p/b', prevIndex: 3 },
      { index: 9, type: 'delete', key: 'p/c', prevIndex: 7, reason: 'lease-expired', lease: 'l-4' },
      { index: 12, type: 'progress' },
    ]);
    expect(r.err).to.deep.equal([]);
  });

  it('COMPACTED exits 5 with the message; the --json error names the code', async () => {
    const a = await fake((_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'COMPACTED', message: 'the watch history starts after index 100', details: { compactedIndex: 100, currentIndex: 300 } } }));
    });
    const r = await cli(['watch', 'p/', '--from', '3', '--endpoints', a.url]);
    expect(r.code).to.equal(EXIT.compacted);
    expect(r.err.join('\n')).to.contain('the watch history starts after index 100');
    const j = await cli(['watch', 'p/', '--from', '3', '--json', '--endpoints', a.url]);
    expect(j.code).to.equal(5);
    expect((JSON.parse(j.err[0]) as { error: { code: string } }).error.code).to.equal('COMPACTED');
  });

  it('usage errors exit 2 without a request: no prefix, a bad --from, --from on another command', async () => {
    const a = await fake((_req, res) => sse(res, ''));
    for (const argv of [['watch'], ['watch', 'p/', '--from', '0'], ['watch', 'p/', '--from', 'x'], ['get', 'k', '--from', '3']]) {
      const r = await cli([...argv, '--endpoints', a.url]);
      expect(r.code, argv.join(' ')).to.equal(EXIT.usage);
    }
    expect(a.seen).to.deep.equal([]);
  });

  it('a cluster that never answers exits 3 after the retries', async () => {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    const r = await cli(['watch', 'p/', '--retries', '1', '--endpoints', url]);
    expect(r.code).to.equal(EXIT.unavailable);
    expect(r.err.join('\n')).to.match(/no endpoint served the stream after 2 attempt/);
  });

  it('formats keys and values with control characters JSON-quoted', () => {
    expect(formatWatchMessage({ type: 'change', index: 3, events: [{ type: 'put', key: 'a\tb', value: 'x\ny', prevIndex: null }] }, false)).to.deep.equal(['3\tput\t"a\\tb"\t"x\\ny"']);
    expect(formatWatchMessage({ type: 'progress', index: 3 }, false)).to.deep.equal([]);
  });
});
