import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { refused, json } from '../../support/fake-http.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BadRequestError,
  ClusterUnavailableError,
  ConflictError,
  ContinueExpiredError,
  KeyNotFoundError,
  NodeNotFoundError,
  NoLeaderError,
  OutcomeUnknownError,
  PayloadTooLargeError,
  RaftKvClient,
  TimeoutError,
  sameServer,
} from '../../../src/index.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

interface Fake {
  url: string;
  port: number;
  /** Requests received, as "METHOD path". */
  seen: string[];
  headers: IncomingMessage['headers'][];
  handle: Handler;
  server: Server;
}

const fakes: Fake[] = [];

/** A scripted HTTP server standing in for one raftkv node. */
async function fake(handle: Handler): Promise<Fake> {
  const f = { seen: [] as string[], headers: [] as IncomingMessage['headers'][], handle } as Fake;
  f.server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      f.seen.push(`${req.method} ${req.url}`);
      f.headers.push(req.headers);
      f.handle(req, body, res);
    });
  });
  await new Promise<void>((resolve) => f.server.listen(0, '127.0.0.1', resolve));
  f.port = (f.server.address() as AddressInfo).port;
  f.url = `http://127.0.0.1:${f.port}`;
  fakes.push(f);
  return f;
}

function error(code: string, status: number, leader?: string): Handler {
  return (_req, _body, res) => json(res, status, { error: { code, message: `${code.toLowerCase()} from fake` } }, leader ? { 'x-raft-leader': leader } : {});
}

const okWrite: Handler = (_req, body, res) => json(res, 200, body ? (JSON.parse(body) as unknown) : {}, { 'x-raft-index': '42', 'x-raft-leader': 'n1' });

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const fast = { backoffBaseMs: 5, backoffMaxMs: 20 };

describe('client library: failover, retry safety and error typing (scripted servers)', () => {
  afterEach(async () => {
    await Promise.all(fakes.splice(0).map((f) => new Promise<void>((resolve) => {
      f.server.closeAllConnections();
      f.server.close(() => resolve());
    })));
  });

  it('a write whose connection was refused is retried on the next endpoint', async () => {
    const b = await fake(okWrite);
    const client = new RaftKvClient({ endpoints: [await refused(), b.url], ...fast });
    expect(await client.set('k', 'v')).to.deep.equal({ index: 42, leaderId: 'n1' });
    expect(b.seen).to.deep.equal(['POST /key']);
  });

  it('a write answered 504 TIMEOUT is outcome-unknown and is not sent again', async () => {
    const a = await fake(error('TIMEOUT', 504));
    const b = await fake(okWrite);
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    const err = await rejection(client.set('k', 'v'));
    expect(err).to.be.instanceOf(OutcomeUnknownError);
    expect((err as OutcomeUnknownError).cause).to.be.instanceOf(TimeoutError);
    expect(err.message).to.contain('may or may not have been applied');
    expect(a.seen.length + b.seen.length).to.equal(1);
  });

  it('a write whose connection dropped after sending is outcome-unknown and is not sent again', async () => {
    const a = await fake((req) => req.socket.destroy());
    const b = await fake(okWrite);
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    const err = await rejection(client.setMany({ k: 'v', k2: 'v2' }));
    expect(err).to.be.instanceOf(OutcomeUnknownError);
    expect(a.seen.length + b.seen.length).to.equal(1);
  });

  it('a write that times out on the client is outcome-unknown and is not sent again', async () => {
    const a = await fake(() => undefined);
    const b = await fake(okWrite);
    const client = new RaftKvClient({ endpoints: [a.url, b.url], timeoutMs: 200, ...fast });
    const err = await rejection(client.delete('k'));
    expect(err).to.be.instanceOf(OutcomeUnknownError);
    expect(a.seen.length + b.seen.length).to.equal(1);
  });

  it('a write answered 503 NO_LEADER (nothing applied) fails over and succeeds', async () => {
    const a = await fake(error('NO_LEADER', 503));
    const b = await fake(okWrite);
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    expect((await client.set('k', 'v')).index).to.equal(42);
    expect(a.seen).to.have.length(1);
    expect(b.seen).to.have.length(1);
  });

  it('a write answered 503 UNAVAILABLE or 500 is outcome-unknown (the node may have proposed it)', async () => {
    for (const [code, status] of [['UNAVAILABLE', 503], ['INTERNAL', 500]] as const) {
      const a = await fake(error(code, status));
      const b = await fake(okWrite);
      const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
      const err = await rejection(client.set('k', 'v'));
      expect(err, code).to.be.instanceOf(OutcomeUnknownError);
      expect(a.seen.length + b.seen.length).to.equal(1);
    }
  });

  it('reads are retried after a dropped connection, a 504 and a 503', async () => {
    let n = 0;
    const a = await fake((req, _b, res) => {
      n++;
      if (n === 1) req.socket.destroy();
      else if (n === 2) error('TIMEOUT', 504)(req, '', res);
      else if (n === 3) error('UNAVAILABLE', 503)(req, '', res);
      else json(res, 200, { k: 'v' }, { etag: '"7"' });
    });
    const client = new RaftKvClient({ endpoints: [a.url], retries: 5, ...fast });
    expect(await client.get('k')).to.deep.equal({ key: 'k', value: 'v', index: 7 });
    expect(a.seen).to.have.length(4);
  });

  it('a read that keeps failing throws the last server error after retries+1 attempts', async () => {
    const a = await fake(error('NO_LEADER', 503));
    const client = new RaftKvClient({ endpoints: [a.url], retries: 2, ...fast });
    expect(await rejection(client.get('k'))).to.be.instanceOf(NoLeaderError);
    expect(a.seen).to.have.length(3);
  });

  it('no answer at all is ClusterUnavailableError listing every attempt', async () => {
    const client = new RaftKvClient({ endpoints: [await refused(), await refused()], retries: 3, ...fast });
    const err = await rejection(client.get('k'));
    expect(err).to.be.instanceOf(ClusterUnavailableError);
    expect((err as ClusterUnavailableError).attempts).to.have.length(4);
    expect((err as ClusterUnavailableError).code).to.equal('CLUSTER_UNAVAILABLE');
  });

  it('4xx answers are typed and never retried', async () => {
    const cases: [string, number, new (...a: never[]) => Error][] = [
      ['BAD_REQUEST', 400, BadRequestError],
      ['PAYLOAD_TOO_LARGE', 413, PayloadTooLargeError],
      ['CONFLICT', 409, ConflictError],
      ['KEY_NOT_FOUND', 404, KeyNotFoundError],
    ];
    for (const [code, status, type] of cases) {
      const a = await fake(error(code, status));
      const client = new RaftKvClient({ endpoints: [a.url], ...fast });
      const err = await rejection(client.get('the-key'));
      expect(err, code).to.be.instanceOf(type);
      expect((err as BadRequestError).status).to.equal(status);
      expect(a.seen).to.have.length(1);
    }
    const nf = await fake(error('KEY_NOT_FOUND', 404));
    const err = (await rejection(new RaftKvClient({ endpoints: [nf.url] }).delete('gone'))) as KeyNotFoundError;
    expect(err.key).to.equal('gone');
  });

  it('a later list page answered 410 CONTINUE_EXPIRED is a typed ContinueExpiredError with the fresh token, never retried nor restarted', async () => {
    const details = { continue: 'fresh-token', listIndex: 7, compactedIndex: 20, currentIndex: 31 };
    const a = await fake((req, _body, res) => {
      if (!(req.url ?? '').includes('continue=')) json(res, 200, { index: 7, items: [{ key: 'p/a', value: '1', index: 3 }], more: true, continue: 'old-token' });
      else json(res, 410, { error: { code: 'CONTINUE_EXPIRED', message: 'expired from fake', details } });
    });
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const err = (await rejection(client.listPage('p/', { continueToken: 'old-token' }))) as ContinueExpiredError;
    expect(err).to.be.instanceOf(ContinueExpiredError);
    expect([err.code, err.status, err.continueToken, err.listIndex, err.compactedIndex, err.currentIndex]).to.deep.equal(['CONTINUE_EXPIRED', 410, 'fresh-token', 7, 20, 31]);
    a.seen.length = 0;
    const items: string[] = [];
    const listed = await rejection((async () => {
      for await (const item of client.list('p/')) items.push(item.key);
    })());
    expect(listed).to.be.instanceOf(ContinueExpiredError);
    expect(items).to.deep.equal(['p/a']);
    expect(a.seen).to.deep.equal(['GET /keys?prefix=p%2F', 'GET /keys?prefix=p%2F&continue=old-token']);
  });

  it('removeNode of a non-member is NodeNotFoundError, from NODE_NOT_FOUND and from an older server\'s KEY_NOT_FOUND', async () => {
    for (const code of ['NODE_NOT_FOUND', 'KEY_NOT_FOUND']) {
      const a = await fake(error(code, 404));
      const err = await rejection(new RaftKvClient({ endpoints: [a.url], ...fast }).removeNode('ghost'));
      expect(err, code).to.be.instanceOf(NodeNotFoundError);
      expect((err as NodeNotFoundError).nodeId).to.equal('ghost');
      expect((err as NodeNotFoundError).code).to.equal('NODE_NOT_FOUND');
      expect(a.seen).to.have.length(1);
    }
  });

  it('learns the leader from X-Raft-Leader, maps it to an endpoint through /cluster, and goes there first', async () => {
    const b = await fake((_req, body, res) => json(res, 200, JSON.parse(body) as unknown, { 'x-raft-index': '10', 'x-raft-leader': 'n2' }));
    const a = await fake((req, body, res) => {
      if (req.url === '/cluster') {
        json(res, 200, {
          id: 'n1', role: 'follower', leader: { id: 'n2', apiAddr: `localhost:${b.port}` }, term: 3, commitIndex: 5, appliedIndex: 5, lastIndex: 5,
          nodes: [{ id: 'n1', apiAddr: `127.0.0.1:${a.port}` }, { id: 'n2', apiAddr: `localhost:${b.port}` }],
        }, { 'x-raft-leader': 'n2' });
      } else json(res, 200, JSON.parse(body) as unknown, { 'x-raft-index': '9', 'x-raft-leader': 'n2' });
    });
    const client = new RaftKvClient({ endpoints: [a.url, b.url], ...fast });
    await client.set('k', 'v');
    expect(client.knownLeader).to.equal('n2');
    expect(a.seen).to.deep.equal(['POST /key']);
    await client.set('k', 'v2');
    await client.set('k', 'v3');
    expect(a.seen).to.deep.equal(['POST /key', 'GET /cluster']);
    expect(b.seen).to.deep.equal(['POST /key', 'POST /key']);
  });

  it('sends the token as a bearer token and keys URL-encoded', async () => {
    const a = await fake((_req, _b, res) => json(res, 200, { 'a/b c': 'v' }));
    const client = new RaftKvClient({ endpoints: [a.url], token: 's3cret' });
    expect((await client.get('a/b c', { consistency: 'stale' })).value).to.equal('v');
    expect(a.seen).to.deep.equal(['GET /key/a%2Fb%20c?consistency=stale']);
    expect(a.headers[0].authorization).to.equal('Bearer s3cret');
  });

  it('rejects bad construction and empty setMany without any request', async () => {
    expect(() => new RaftKvClient({ endpoints: [] })).to.throw(BadRequestError);
    expect(() => new RaftKvClient({ endpoints: ['not a url'] })).to.throw(BadRequestError);
    const a = await fake(okWrite);
    expect(await rejection(new RaftKvClient({ endpoints: [a.url] }).setMany({}))).to.be.instanceOf(BadRequestError);
    expect(await rejection(new RaftKvClient({ endpoints: [a.url] }).get(''))).to.be.instanceOf(BadRequestError);
    expect(await rejection(new RaftKvClient({ endpoints: [a.url] }).delete(''))).to.be.instanceOf(BadRequestError);
    expect(a.seen).to.deep.equal([]);
  });

  it('garbage answers are errors, not crashes', async () => {
    const a = await fake((_req, _b, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"nope": 1');
    });
    const client = new RaftKvClient({ endpoints: [a.url], retries: 0 });
    expect((await rejection(client.get('k'))).message).to.contain('unexpected answer');
    expect((await rejection(client.cluster())).message).to.contain('unexpected answer');
    const u = await fake((_req, _b, res) => json(res, 503, 'not an error body'));
    expect(await rejection(new RaftKvClient({ endpoints: [u.url], retries: 0 }).set('k', 'v'))).to.be.instanceOf(OutcomeUnknownError);
  });

  it('sameServer matches host:port, treating loopback names alike', () => {
    expect(sameServer('127.0.0.1:8081', 'http://localhost:8081')).to.equal(true);
    expect(sameServer('app1:8081', 'http://app1:8081/')).to.equal(true);
    expect(sameServer('app1:8081', 'http://app2:8081')).to.equal(false);
    expect(sameServer('app1:80', 'http://app1')).to.equal(true);
    expect(sameServer('app1:8081', 'http://app1:8082')).to.equal(false);
  });

  it('src/client imports nothing from Node, so it runs in browsers', () => {
    const dir = join(import.meta.dirname, '../../../src/client');
    // With the one module outside src/client it imports (the address parser).
    const files = [...readdirSync(dir).filter((n) => n.endsWith('.ts')).map((n) => join(dir, n)), join(dir, '../net/address.ts')];
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).to.not.match(/from\s+['"]node:|require\(|\bprocess\.|\bBuffer\b|from\s+['"](fs|http|https|net|path|os|url)['"]/);
    }
  });
});
