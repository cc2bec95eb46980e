/**
 * Every error answer goes through the one registry (src/errors.ts): the API's answers, driven here
 * through each of its rejection paths against a stub node, carry a registered code with its status;
 * and no source file outside the registry writes an error body by hand. Issue 15: DELETE
 * /cluster/nodes/:id of a non-member answered 404 KEY_NOT_FOUND ("key not found: <id>").
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createApp } from '../../../src/api/app.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/errors.js';
import { encodeContinue, type KeyRange, type RangeQuery } from '../../../src/kv/listing.js';
import type { RaftNode } from '../../../src/raft/node/node.js';
import type { Member } from '../../../src/raft/core/types.js';
import { TokenStore } from '../../../src/security/tokens.js';
import { http } from '../../support/procs.js';

const SRC = join(import.meta.dirname, '../../../src');

/** A one-member leader ('L'); `get` of 'boom' throws a plain Error (a bug: 500 INTERNAL). */
function stubLeader(changes: unknown[]): RaftNode {
  const members: Member[] = [{ id: 'L', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2', suffrage: 'voter' }];
  const stub = {
    leaderId: () => 'L',
    members: () => members,
    identity: () => ({ clusterId: 'c', incarnation: 'i' }),
    linearizableBarrier: () => Promise.resolve(),
    get: (key: string) => (key === 'boom' ? Promise.reject(new Error('a bug')) : Promise.resolve(null)),
    deleteKey: () => Promise.resolve({ index: 3, existed: false }),
    write: () => Promise.resolve(2),
    changeMembership: (c: unknown) => {
      changes.push(c);
      return Promise.resolve();
    },
    isHealthy: () => true,
    writeRefusal: () => null,
    isReady: () => true,
    // The watch history starts after index 5 (applied: 9).
    readHistory: () => Promise.resolve({ floor: 5, appliedIndex: 9, entries: [], upTo: 9 }),
    appliedIndex: () => 9,
    minLeaseTtlMs: () => 1000,
    lease: () => Promise.resolve(undefined),
    onAppliedIndex: () => () => undefined,
    // A listing at an index below the floor (5) cannot be undone any more; one above 9 is not applied yet.
    listRange: (q: RangeQuery) =>
      Promise.resolve(
        q.atIndex === null || q.atIndex === undefined
          ? { index: 9, items: [], more: false }
          : { index: q.atIndex, items: [], more: false, unavailable: { reason: q.atIndex < 5 ? 'expired' : 'behind', floor: 5, appliedIndex: 9 } },
      ),
  };
  return stub as unknown as RaftNode;
}

const prefixRange = (prefix: string): KeyRange => ({ start: prefix, end: null, prefix });

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('api: every error answer is a code of the registry (src/errors.ts)', () => {
  let server: Server;
  let base = '';
  const changes: unknown[] = [];
  const tokens = TokenStore.parse(JSON.stringify({ 'reader-token-1': { role: 'read' }, 'admin-token-01': { role: 'admin' } }));

  before(async () => {
    const app = createApp({
      node: stubLeader(changes),
      nodeId: 'L',
      limits: { maxKeyBytes: 16, maxValueBytes: 100, maxBodyBytes: 1000, maxKeysPerRequest: 2 },
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      requestTimeoutMs: 1000,
      security: { tokens: () => tokens, clusterSecret: null, isMetricsAuthRequired: false, reload: () => ({ isOk: false, errors: ['tokens: unreadable'] }) },
      maxConcurrentRequests: 10,
    });
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const admin = { authorization: 'Bearer admin-token-01' };

  it('DELETE /cluster/nodes/:id of a non-member is 404 NODE_NOT_FOUND, not KEY_NOT_FOUND, and changes nothing', async () => {
    const r = await http('DELETE', `${base}/cluster/nodes/ghost`, undefined, admin);
    expect(r.status).to.equal(404);
    expect(r.body).to.deep.equal({ error: { code: 'NODE_NOT_FOUND', message: 'no member with id ghost' } });
    expect(changes).to.deep.equal([]);
  });

  it('a join whose raftAddr or apiAddr is not host:port with port 1-65535 is 400 and adds nobody (node:http would throw on port 99999)', async () => {
    const join = (raftAddr: string, apiAddr = '127.0.0.1:8082') => http('POST', `${base}/cluster/join`, { id: 'n2', raftAddr, apiAddr, incarnation: 'i2' }, admin);
    for (const bad of ['127.0.0.1:99999', '127.0.0.1:0', '::1:7000', ':7000', 'n2']) {
      const r = await join(bad);
      expect(r.status, bad).to.equal(400);
      expect(r.body, bad).to.have.nested.property('error.code', 'BAD_REQUEST');
    }
    expect((await join('127.0.0.1:7002', '127.0.0.1:65536')).status).to.equal(400);
    expect(changes).to.deep.equal([]);
    expect((await join('[::1]:7002', '[::1]:8082')).status).to.equal(200);
    expect(changes).to.have.length(1);
    changes.length = 0;
  });

  it('each rejection path answers a registered code with the registry status', async () => {
    const cases: [string, string, unknown, Record<string, string>, ErrorCode][] = [
      ['POST', '/key', '{not json', admin, 'BAD_REQUEST'],
      ['POST', '/key', { a: 'x'.repeat(2000) }, admin, 'PAYLOAD_TOO_LARGE'],
      ['GET', '/key/absent', undefined, admin, 'KEY_NOT_FOUND'],
      ['DELETE', '/key/absent', undefined, admin, 'KEY_NOT_FOUND'],
      ['DELETE', '/cluster/nodes/ghost', undefined, admin, 'NODE_NOT_FOUND'],
      ['GET', '/nope', undefined, admin, 'NOT_FOUND'],
      ['PUT', '/key', undefined, admin, 'METHOD_NOT_ALLOWED'],
      ['GET', '/key/x', undefined, {}, 'UNAUTHORIZED'],
      ['POST', '/key', { a: 'b' }, { authorization: 'Bearer reader-token-1' }, 'FORBIDDEN'],
      ['POST', '/admin/reload', undefined, admin, 'RELOAD_FAILED'],
      ['GET', '/key/boom', undefined, admin, 'INTERNAL'],
      ['GET', '/watch?from=5', undefined, admin, 'COMPACTED'],
      ['GET', '/watch?from=x', undefined, admin, 'BAD_REQUEST'],
      ['POST', '/leases', { ttlMs: 1 }, admin, 'INVALID_TTL'],
      ['GET', '/leases/l-99', undefined, admin, 'LEASE_NOT_FOUND'],
      ['DELETE', '/leases/nope', undefined, admin, 'LEASE_NOT_FOUND'],
      ['PUT', '/key/x?lease=bad', { value: 'v' }, admin, 'BAD_REQUEST'],
      ['GET', `/keys?prefix=p%2F&continue=${encodeContinue(prefixRange('p/'), 'p/a', 4)}`, undefined, admin, 'CONTINUE_EXPIRED'],
      ['GET', `/keys?prefix=p%2F&continue=${encodeContinue(prefixRange('p/'), 'p/a', 12)}&consistency=stale`, undefined, admin, 'UNAVAILABLE'],
      ['GET', `/keys?prefix=q%2F&continue=${encodeContinue(prefixRange('p/'), 'p/a', 4)}`, undefined, admin, 'BAD_REQUEST'],
    ];
    for (const [method, path, body, headers, code] of cases) {
      const r = await http(method, `${base}${path}`, body, headers);
      const what = `${method} ${path}: ${r.text}`;
      expect(r.body, what).to.have.nested.property('error.code', code);
      expect(r.status, what).to.equal(ERROR_CODES[code]);
      expect((r.body as { error: { message: unknown } }).error.message, what).to.be.a('string');
    }
  });

  it('no source file outside src/errors.ts writes an error body or an error code by hand', () => {
    // The CLI's --json output and the client library (which must not import server code) are clients.
    const exempt = new Set(['errors.ts', 'cli/main.ts', 'cli/backup.ts', 'client/errors.ts', 'client/client.ts']);
    const codes = Object.keys(ERROR_CODES).join('|');
    const literalCode = new RegExp(`['"](${codes})['"]`);
    for (const file of sourceFiles(SRC)) {
      const name = relative(SRC, file);
      if (exempt.has(name)) continue;
      const text = readFileSync(file, 'utf8');
      expect(text, name).to.not.match(/error:\s*\{\s*code/);
      expect(text, name).to.not.match(literalCode);
    }
  });
});
