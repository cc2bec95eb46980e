/** The one request-body reader (src/http/body.ts): limit, deadline, abort. */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { readBody } from '../../../src/http/body.js';
import { RaftKvError } from '../../../src/errors.js';
import { waitFor } from '../../support/procs.js';

describe('http/body: the request-body reader', () => {
  let server: Server;
  let port = 0;
  const outcomes: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      readBody(req, 10, 300).then(
        (text) => outcomes.push(`ok:${text}`),
        (err: unknown) => outcomes.push(err instanceof RaftKvError ? `${err.status}:${err.code}` : `other:${String(err)}`),
      ).finally(() => res.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Writes raw bytes on a new connection; returns once the server recorded one more outcome. */
  async function send(raw: string, opts: { destroyAfterMs?: number } = {}): Promise<string> {
    const before = outcomes.length;
    const s = connect(port, '127.0.0.1', () => s.write(raw));
    s.on('error', () => undefined);
    if (opts.destroyAfterMs !== undefined) setTimeout(() => s.destroy(), opts.destroyAfterMs);
    await waitFor('an outcome', async () => outcomes.length > before, 5000, 10);
    s.destroy();
    return outcomes[before];
  }

  const post = (headers: string, body: string) => `POST / HTTP/1.1\r\nHost: x\r\n${headers}\r\n${body}`;

  it('returns a body within the limit as UTF-8', async () => {
    expect(await send(post('Content-Length: 6\r\n', 'hé!!!'))).to.equal('ok:hé!!!');
    expect(await send(post('Content-Length: 0\r\n', ''))).to.equal('ok:');
  });

  it('a declared or streamed body over the limit is 413 PAYLOAD_TOO_LARGE', async () => {
    expect(await send(post('Content-Length: 11\r\n', ''))).to.equal('413:PAYLOAD_TOO_LARGE');
    expect(await send(post('Transfer-Encoding: chunked\r\n', '6\r\nabcdef\r\n6\r\nghijkl\r\n'))).to.equal('413:PAYLOAD_TOO_LARGE');
  });

  it('a body that does not arrive in time is 408 REQUEST_TIMEOUT', async () => {
    expect(await send(post('Content-Length: 5\r\n', 'ab'))).to.equal('408:REQUEST_TIMEOUT');
  });

  it('a body cut off by the client is 400 BAD_REQUEST', async () => {
    expect(await send(post('Content-Length: 5\r\n', 'ab'), { destroyAfterMs: 50 })).to.equal('400:BAD_REQUEST');
  });
});
