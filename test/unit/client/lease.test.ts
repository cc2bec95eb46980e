import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { refused, json } from '../../support/fake-http.js';
import {
  AbortedError,
  BadRequestError,
  InvalidTtlError,
  LeaseLostError,
  LeaseNotFoundError,
  OutcomeUnknownError,
  PreconditionFailedError,
  RaftKvClient,
  type LeaseHandle,
} from '../../../src/index.js';
import { waitFor } from '../../support/procs.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

interface Fake {
  url: string;
  /** Requests received, as "METHOD path" with the time they arrived (performance.now()). */
  seen: { what: string; at: number; headers: IncomingMessage['headers'] }[];
  handle: Handler;
  server: Server;
  /** Requests whose connection the client closed before an answer. */
  abandoned: number;
}

const fakes: Fake[] = [];

/** A scripted HTTP server standing in for one raftkv node; `handle` may be swapped mid-test. */
async function fake(handle: Handler): Promise<Fake> {
  const f = { seen: [], handle, abandoned: 0 } as unknown as Fake;
  f.server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      f.seen.push({ what: `${req.method} ${req.url}`, at: performance.now(), headers: req.headers });
      res.on('close', () => {
        if (!res.writableEnded) f.abandoned++;
      });
      f.handle(req, body, res);
    });
  });
  await new Promise<void>((resolve) => f.server.listen(0, '127.0.0.1', resolve));
  f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
  fakes.push(f);
  return f;
}

function errorBody(code: string, message = `${code.toLowerCase()} from fake`): unknown {
  return { error: { code, message } };
}

const notFound = (id: string) => errorBody('LEASE_NOT_FOUND', `lease ${id} not found: it does not exist (never granted, revoked or expired)`);

/**
 * A scripted node holding leases in memory: grant, keepalive, revoke, get, list. `keepalive` decides
 * each keepalive's fate ('ok', 'not-found', 'no-leader', 'hang', 'reset').
 */
function leaseNode(opts: { ttlMs?: number; keepalive?: (n: number) => 'ok' | 'not-found' | 'no-leader' | 'hang' | 'reset' } = {}): Handler {
  let next = 7;
  let keepalives = 0;
  const leases = new Map<string, number>();
  return (req, body, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/leases') {
      const { ttlMs } = JSON.parse(body) as { ttlMs: number };
      if (ttlMs < 100) return json(res, 400, errorBody('INVALID_TTL', 'ttlMs must be an integer from 100 to 86400000 (24 h)'));
      const id = `l-${next}`;
      leases.set(id, opts.ttlMs ?? ttlMs);
      json(res, 201, { id, ttlMs: opts.ttlMs ?? ttlMs, index: next++ });
      return;
    }
    const m = /^\/leases\/(l-\d+)(\/keepalive)?(\?.*)?$/.exec(url);
    if (m) {
      const id = m[1];
      if (req.method === 'POST' && m[2]) {
        const fate = opts.keepalive?.(++keepalives) ?? 'ok';
        if (fate === 'hang') return;
        if (fate === 'reset') return req.socket.destroy();
        if (fate === 'no-leader') return json(res, 503, errorBody('NO_LEADER'));
        if (fate === 'not-found' || !leases.has(id)) return json(res, 404, notFound(id));
        return json(res, 200, { id, ttlMs: leases.get(id), remainingMs: leases.get(id) });
      }
      if (!leases.has(id)) return json(res, 404, notFound(id));
      if (req.method === 'DELETE') {
        leases.delete(id);
        return json(res, 200, { id, revoked: true, index: next++, deleted: ['locks/a'] });
      }
      if (req.method === 'GET') return json(res, 200, { id, ttlMs: leases.get(id), grantedIndex: 7, ...(m[3]?.includes('keys=true') ? { keys: ['locks/a'] } : {}) });
    }
    if (req.method === 'GET' && url.startsWith('/leases')) {
      return json(res, 200, { index: next, leases: [...leases].map(([id, ttlMs]) => ({ id, ttlMs, remainingMs: ttlMs - 1 })) });
    }
    json(res, 404, errorBody('NOT_FOUND'));
  };
}

const fast = { backoffBaseMs: 5, backoffMaxMs: 20 };

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function keepalives(f: Fake): number[] {
  return f.seen.filter((s) => s.what.endsWith('/keepalive')).map((s) => s.at);
}

describe('client leases: grant, keepalive, revoke, list and the self-renewing handle (scripted servers)', () => {
  const handles: LeaseHandle[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) h.close();
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

  it('grantLease posts {"ttlMs"} and returns the id, TTL and index; INVALID_TTL is typed and not retried', async () => {
    const a = await fake(leaseNode());
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    expect(await client.grantLease(5000)).to.deep.equal({ id: 'l-7', ttlMs: 5000, index: 7 });
    const err = await rejection(client.grantLease(50));
    expect(err).to.be.instanceOf(InvalidTtlError);
    expect((err as InvalidTtlError).code).to.equal('INVALID_TTL');
    expect(a.seen.map((s) => s.what)).to.deep.equal(['POST /leases', 'POST /leases']);
    // Bad input never leaves the client.
    expect(await rejection(client.grantLease(1.5))).to.be.instanceOf(BadRequestError);
    expect(await rejection(client.keepAliveLease('7'))).to.be.instanceOf(BadRequestError);
    expect(await rejection(client.revokeLease('l-0'))).to.be.instanceOf(BadRequestError);
    expect(await rejection(client.set('k', 'v', { lease: 'lease-7' }))).to.be.instanceOf(BadRequestError);
    expect(a.seen).to.have.length(2);
  });

  it('a grant, keepalive or revoke whose answer was lost is retried (harmless to repeat), unlike a put', async () => {
    let n = 0;
    const node = leaseNode();
    const a = await fake((req, body, res) => (n++ === 0 ? req.socket.destroy() : node(req, body, res)));
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    expect((await client.grantLease(1000)).id).to.equal('l-7');
    expect(n).to.equal(2);
    n = 0;
    expect((await client.keepAliveLease('l-7')).id).to.equal('l-7');
    n = 0;
    // The retried revoke answers 404 (this fake forgot nothing, but a real node would have revoked on the
    // lost attempt): after a lost answer, LEASE_NOT_FOUND means "gone", not a failure.
    a.handle = (req, _body, res) => (n++ === 0 ? req.socket.destroy() : json(res, 404, notFound('l-7')));
    expect(await client.revokeLease('l-7')).to.deep.equal({ id: 'l-7', revoked: true, index: null, deleted: null });
    // Without an earlier doubtful attempt LEASE_NOT_FOUND is an error naming the lease.
    const err = await rejection(client.revokeLease('l-8'));
    expect(err).to.be.instanceOf(LeaseNotFoundError);
    expect((err as LeaseNotFoundError).leaseId).to.equal('l-8');
    // A put through a dropped connection stays outcome-unknown.
    n = 0;
    expect(await rejection(client.set('k', 'v', { lease: 'l-7' }))).to.be.instanceOf(OutcomeUnknownError);
  });

  it('writes attach with ?lease=ID (set, a conditional set, setMany); LEASE_NOT_FOUND at apply is LeaseNotFoundError', async () => {
    const seen: string[] = [];
    const a = await fake((req, body, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers['if-none-match'] ?? ''}`.trim());
      if (req.url?.includes('l-99')) return json(res, 404, errorBody('LEASE_NOT_FOUND', 'lease l-99 not found: it does not exist (never granted, revoked or expired)'));
      if (req.headers['if-none-match'] === '*' && req.url?.startsWith('/key/held')) {
        return json(res, 412, { error: { code: 'PRECONDITION_FAILED', message: 'held', details: { current: { key: 'held', index: 12 } } } });
      }
      json(res, 200, JSON.parse(body) as unknown, { 'x-raft-index': '20' });
    });
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    await client.set('svc/a', '1', { lease: 'l-7' });
    await client.setMany({ 'svc/b': '2', 'svc/c': '3' }, { lease: 'l-7' });
    await client.set('locks/x', 'me', { ifNoneMatch: '*', lease: 'l-7' });
    const held = await rejection(client.set('held', 'me', { ifNoneMatch: '*', lease: 'l-7' }));
    expect(held).to.be.instanceOf(PreconditionFailedError);
    expect((held as PreconditionFailedError).current).to.deep.equal({ key: 'held', index: 12 });
    const gone = await rejection(client.set('svc/d', '4', { lease: 'l-99' }));
    expect(gone).to.be.instanceOf(LeaseNotFoundError);
    expect((gone as LeaseNotFoundError).leaseId).to.equal('l-99');
    expect(seen).to.deep.equal(['POST /key?lease=l-7', 'POST /key?lease=l-7', 'PUT /key/locks%2Fx?lease=l-7 *', 'PUT /key/held?lease=l-7 *', 'POST /key?lease=l-99']);
  });

  it('getLease and listLeases parse the answers (remainingMs null from a follower)', async () => {
    const a = await fake(leaseNode());
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    await client.grantLease(3000);
    expect(await client.getLease('l-7', { keys: true })).to.deep.equal({ id: 'l-7', ttlMs: 3000, grantedIndex: 7, remainingMs: null, keys: ['locks/a'] });
    expect(await client.listLeases()).to.deep.equal({ index: 8, leases: [{ id: 'l-7', ttlMs: 3000, remainingMs: 2999 }] });
    expect(await rejection(client.getLease('l-9'))).to.be.instanceOf(LeaseNotFoundError);
    expect(a.seen.map((s) => s.what)).to.deep.equal(['POST /leases', 'GET /leases/l-7?keys=true', 'GET /leases', 'GET /leases/l-9']);
  });

  it('a handle keeps its lease alive every ttl/3, and close() stops it and aborts its signal without resolving lost', async () => {
    const a = await fake(leaseNode());
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const h = await client.lease(600);
    handles.push(h);
    expect(h.id).to.equal('l-7');
    expect(h.keepAliveIntervalMs).to.equal(200);
    await waitFor('four keepalives', () => h.keepAlives >= 4, 20_000, 10);
    expect(h.isAlive).to.equal(true);
    expect(h.remainingMs()).to.be.greaterThan(0);
    expect(h.lastRemainingMs).to.equal(600);
    const times = keepalives(a);
    // Never more often than the interval (a generous lower bound: timers fire late, never early).
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).to.be.greaterThan(150);
    let lost = false;
    void h.lost.then(() => (lost = true));
    h.close();
    expect(h.isAlive).to.equal(false);
    expect(h.signal.aborted).to.equal(true);
    expect(h.signal.reason).to.be.instanceOf(AbortedError);
    const sent = keepalives(a).length;
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(keepalives(a).length).to.equal(sent);
    expect(lost).to.equal(false);
    h.close(); // idempotent
  });

  it('keepalives fail over: a refused endpoint, one that hangs past the interval, and NO_LEADER are skipped for one that answers', async () => {
    const node = leaseNode();
    // The grant lands on the first endpoint, which then hangs on every keepalive.
    const hang = await fake((req, body, res) => (req.url === '/leases' ? node(req, body, res) : undefined));
    const noLeader = await fake((_req, _body, res) => json(res, 503, errorBody('NO_LEADER')));
    const good = await fake(node);
    const client = new RaftKvClient({ endpoints: [hang.url, await refused(), noLeader.url, good.url], ...fast });
    const h = await client.lease(900);
    handles.push(h);
    await waitFor('three acknowledged keepalives', () => h.keepAlives >= 3 || !h.isAlive, 20_000, 10);
    expect(h.isAlive, String(h.lastError)).to.equal(true);
    expect(keepalives(good).length).to.be.greaterThan(2);
    // The hanging attempt was abandoned after the interval, not left open.
    await waitFor('the hung request to be abandoned', () => hang.abandoned >= 1 || keepalives(hang).length === 0, 10_000, 10);
  });

  it('LEASE_NOT_FOUND on a keepalive loses the lease: lost resolves with reason not-found, the signal aborts, onLost runs once, keepalives stop', async () => {
    const a = await fake(leaseNode({ keepalive: (n) => (n >= 3 ? 'not-found' : 'ok') }));
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const told: LeaseLostError[] = [];
    const h = await client.lease(300, { onLost: (e) => told.push(e) });
    handles.push(h);
    const e = await h.lost;
    expect(e).to.be.instanceOf(LeaseLostError);
    expect(e.reason).to.equal('not-found');
    expect(e.leaseId).to.equal('l-7');
    expect(e.cause).to.be.instanceOf(LeaseNotFoundError);
    expect(e.message).to.match(/l-7 is gone/);
    expect(h.signal.aborted).to.equal(true);
    expect(h.signal.reason).to.equal(e);
    expect(h.isAlive).to.equal(false);
    expect(h.remainingMs()).to.equal(0);
    const sent = keepalives(a).length;
    expect(sent).to.equal(3);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(keepalives(a).length).to.equal(sent);
    expect(told).to.deep.equal([e]);
  });

  it('no keepalive acknowledged for ttl: lost (reason expired) once ttl has passed since the last acknowledged one was sent, never before', async () => {
    const a = await fake(leaseNode({ keepalive: (n) => (n <= 1 ? 'ok' : n % 2 === 0 ? 'no-leader' : 'reset') }));
    const client = new RaftKvClient({ endpoints: [a.url], ...fast, retries: 1 });
    const h = await client.lease(600);
    handles.push(h);
    const e = await h.lost;
    const at = performance.now();
    expect(e.reason).to.equal('expired');
    expect(e.message).to.match(/may have expired: no keepalive was acknowledged within its TTL \(600 ms\)/);
    expect(e.cause).to.not.equal(null);
    const times = keepalives(a);
    // The first keepalive (acknowledged) was sent no earlier than times[0]: the lease lives until at least then + ttl.
    expect(at).to.be.at.least(times[0] + 600 - 5);
    expect(times.length).to.be.greaterThan(2); // retried in the meantime
  });

  it('revoke() stops the keepalives and revokes; an already gone lease resolves null; an in-flight keepalive is abandoned', async () => {
    let isHanging = false;
    const node = leaseNode();
    const a = await fake((req, body, res) => (isHanging && req.url?.endsWith('/keepalive') ? undefined : node(req, body, res)));
    const client = new RaftKvClient({ endpoints: [a.url], ...fast });
    const h = await client.lease(300);
    isHanging = true;
    await waitFor('a keepalive in flight', () => keepalives(a).length >= 1, 10_000, 5);
    isHanging = false;
    expect(await h.revoke()).to.deep.equal({ id: 'l-7', revoked: true, index: 8, deleted: ['locks/a'] });
    await waitFor('the in-flight keepalive to be abandoned', () => a.abandoned === 1, 10_000, 5);
    expect(h.isAlive).to.equal(false);
    const sent = keepalives(a).length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(keepalives(a).length).to.equal(sent);
    const h2 = await client.lease(300);
    await client.revokeLease(h2.id);
    expect(await h2.revoke()).to.equal(null);
  });
});
