import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { json } from '../../support/fake-http.js';
import { EXIT, run } from '../../../src/cli/main.js';

const servers: Server[] = [];

/** A scripted node: `handle` answers; `seen` records "METHOD url body". */
async function fake(handle: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}${body ? ` ${body}` : ''}`);
      handle(req, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function cli(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env: {} });
  return { code, out, err };
}

const gone = { error: { code: 'LEASE_NOT_FOUND', message: 'lease l-9 not found: it does not exist (never granted, revoked or expired)' } };

describe('raftkv lease and lock (CLI, scripted servers and usage errors)', () => {
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    })));
  });

  it('lease grant prints the id; revoke lists the deleted keys; ls is a table; a gone lease exits 1; INVALID_TTL exits 2', async () => {
    const a = await fake((req, body, res) => {
      if (req.method === 'POST' && req.url === '/leases') {
        const { ttlMs } = JSON.parse(body) as { ttlMs: number };
        return ttlMs < 4000 ? json(res, 400, { error: { code: 'INVALID_TTL', message: 'ttlMs must be an integer from 4000' } }) : json(res, 201, { id: 'l-3', ttlMs, index: 3 });
      }
      if (req.method === 'DELETE' && req.url === '/leases/l-3') return json(res, 200, { id: 'l-3', revoked: true, index: 7, deleted: ['svc/a', 'svc/b'] });
      if (req.method === 'GET' && req.url === '/leases') return json(res, 200, { index: 8, leases: [{ id: 'l-3', ttlMs: 60000, remainingMs: 59000 }, { id: 'l-12', ttlMs: 5000 }] });
      json(res, 404, gone);
    });
    const e = ['--endpoints', a.url];
    expect(await cli(['lease', 'grant', '60000', ...e])).to.deep.equal({ code: 0, out: ['l-3'], err: [] });
    expect((await cli(['lease', 'grant', '60000', '--json', ...e])).out).to.deep.equal(['{"id":"l-3","ttlMs":60000,"index":3}']);
    expect(await cli(['lease', 'revoke', 'l-3', ...e])).to.deep.equal({ code: 0, out: ['revoked l-3 (deleted 2 keys: svc/a, svc/b)'], err: [] });
    expect((await cli(['lease', 'ls', ...e])).out).to.deep.equal(['ID      TTL_MS  REMAINING_MS', 'l-3      60000         59000', 'l-12      5000             -']);
    const g = await cli(['lease', 'revoke', 'l-9', ...e]);
    expect(g.code).to.equal(EXIT.notFound);
    expect(g.err[0]).to.contain('lease l-9 not found');
    const k = await cli(['lease', 'keepalive', 'l-9', '--once', '--json', ...e]);
    expect(k.code).to.equal(EXIT.notFound);
    expect(JSON.parse(k.err[0])).to.deep.include({ error: { code: 'LEASE_NOT_FOUND', message: gone.error.message } });
    expect((await cli(['lease', 'grant', '100', ...e])).code).to.equal(EXIT.usage);
    expect(a.seen).to.deep.equal([
      'POST /leases {"ttlMs":60000}',
      'POST /leases {"ttlMs":60000}',
      'DELETE /leases/l-3',
      'GET /leases',
      'DELETE /leases/l-9',
      'POST /leases/l-9/keepalive',
      'POST /leases {"ttlMs":100}',
    ]);
  });

  it('usage errors exit 2 before any request', async () => {
    const a = await fake((_req, _body, res) => json(res, 500, {}));
    const e = ['--endpoints', a.url];
    const cases: [string[], RegExp][] = [
      [['lease'], /needs a subcommand/],
      [['lease', 'renew', 'l-3'], /unknown lease subcommand: renew/],
      [['lease', 'grant', '10s'], /TTL_MS must be a positive integer/],
      [['lease', 'revoke', '3'], /not a lease id: 3/],
      [['lease', 'revoke'], /takes 1 argument/],
      [['lease', 'ls', '--once'], /--once only applies/],
      [['set', 'k', 'v', '--lease', 'x'], /--lease must be a lease id/],
      [['get', 'k', '--lease', 'l-3'], /--lease only applies to "set"/],
      [['get', 'k', '--ttl', '5000'], /--ttl and --max-wait only apply to "lock"/],
      [['lock', 'job'], /lock needs a command after "--"/],
      [['lock', 'job', '--'], /lock needs a command after "--"/],
      [['lock', '--', 'true'], /"lock" takes 1 argument/],
      [['lock', 'job', '--ttl', '0', '--', 'true'], /--ttl must be a positive integer/],
      [['lock', 'job', '--max-wait', 'soon', '--', 'true'], /--max-wait must be an integer/],
    ];
    for (const [argv, message] of cases) {
      const r = await cli([...e, ...argv]);
      expect(r.code, argv.join(' ')).to.equal(EXIT.usage);
      expect(r.err.join('\n'), argv.join(' ')).to.match(message);
    }
    expect(a.seen).to.deep.equal([]);
  });

  it('lock waits through a watch from the holder index + 1 for the delete of exactly its key, then takes it and runs the command with the fencing index', async () => {
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/raftkv-lock-unit-`);
    let puts = 0;
    const a = await fake((req, _body, res) => {
      const url = req.url ?? '';
      if (req.method === 'POST' && url === '/leases') return json(res, 201, { id: 'l-3', ttlMs: 5000, index: 3 });
      if (req.method === 'PUT' && url.startsWith('/key/locks%2Fjob?')) {
        if (++puts === 1) return json(res, 412, { error: { code: 'PRECONDITION_FAILED', message: 'held', details: { current: { key: 'locks/job', index: 5 } } } });
        res.writeHead(200, { 'content-type': 'application/json', 'x-raft-index': '10', etag: '"10"' });
        return res.end('{}');
      }
      if (req.method === 'GET' && url === '/key/locks%2Fjob') return json(res, 200, { 'locks/job': '{"holder":"other:1","lease":"l-2"}' });
      if (req.method === 'GET' && url.startsWith('/watch?')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const change = (index: number, events: unknown[]) => `id: ${index}\nevent: change\ndata: ${JSON.stringify({ index, events })}\n\n`;
        // A delete of another key under the same prefix first: it must not count.
        res.write(change(7, [{ type: 'delete', key: 'locks/jobs', prevIndex: 6 }]) + change(9, [{ type: 'delete', key: 'locks/job', prevIndex: 5, reason: 'lease-expired', lease: 'l-2' }]));
        return;
      }
      if (req.method === 'DELETE' && url === '/leases/l-3') return json(res, 200, { id: 'l-3', revoked: true, index: 11, deleted: ['locks/job'] });
      json(res, 404, gone);
    });
    try {
      const r = await cli(['lock', 'job', '--endpoints', a.url, '--', 'sh', '-c', `echo "$RAFTKV_LOCK_KEY $RAFTKV_LEASE $RAFTKV_LOCK_INDEX" > ${dir}/env; exit 5`]);
      expect(r.code, r.err.join('\n')).to.equal(5);
      expect(r.err).to.deep.equal(['raftkv: locks/job is held (by other:1, lease l-2); waiting']);
      expect(readFileSync(`${dir}/env`, 'utf8')).to.equal('locks/job l-3 10\n');
      expect(a.seen.filter((x) => x.startsWith('GET /watch'))).to.deep.equal(['GET /watch?prefix=locks%2Fjob&from=6']);
      expect(puts).to.equal(2);
      expect(a.seen[a.seen.length - 1]).to.equal('DELETE /leases/l-3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lock passes everything after "--" to the command unparsed (options of its own included)', async () => {
    // A held lock with --max-wait 0 gives up at once: enough to see that "--json"/"-c" after "--" were not raftkv's.
    const a = await fake((req, _body, res) => {
      if (req.method === 'POST' && req.url === '/leases') return json(res, 201, { id: 'l-3', ttlMs: 5000, index: 3 });
      if (req.method === 'PUT') return json(res, 412, { error: { code: 'PRECONDITION_FAILED', message: 'held', details: { current: { key: 'locks/job', index: 2 } } } });
      if (req.method === 'DELETE') return json(res, 200, { id: 'l-3', revoked: true, index: 4, deleted: [] });
      json(res, 404, gone);
    });
    const r = await cli(['lock', 'job', '--max-wait', '0', '--endpoints', a.url, '--', 'sh', '-c', 'exit 9', '--json']);
    expect(r.code).to.equal(4);
    expect(r.err.join('\n')).to.match(/locks\/job is still held after --max-wait 0 ms/);
    expect(a.seen).to.deep.equal([
      'POST /leases {"ttlMs":10000}',
      `PUT /key/locks%2Fjob?lease=l-3 {"value":${JSON.stringify(JSON.stringify({ holder: `${(await import('node:os')).hostname()}:${process.pid}`, lease: 'l-3' }))}}`,
      'DELETE /leases/l-3',
    ]);
  });
});
