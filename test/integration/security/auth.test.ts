import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { removeDir, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { call, dumpOnFailure, freeBasePort, nodeEnv, startThreeVoters, waitLeader } from './helpers.js';

const TOKENS = {
  'admin-token-0001': { role: 'admin' },
  'write-token-0001': { role: 'write' },
  'read-token-00001': { role: 'read' },
  'team-write-00001': { role: 'write', prefix: 'teamA.' },
  'team-read-000001': { role: 'read', prefix: 'teamA.' },
};
type Who = 'none' | 'bogus' | 'admin' | 'write' | 'read' | 'teamW' | 'teamR';
const TOKEN_OF: Record<Who, string | null> = {
  none: null,
  bogus: 'not-a-real-token',
  admin: 'admin-token-0001',
  write: 'write-token-0001',
  read: 'read-token-00001',
  teamW: 'team-write-00001',
  teamR: 'team-read-000001',
};
const auth = (who: Who): Record<string, string> => (TOKEN_OF[who] ? { authorization: `Bearer ${TOKEN_OF[who]}` } : {});
const SECRET = 'the cluster secret for auth tests';

describe('security: client tokens with roles and key prefixes (AUTH_TOKENS_FILE)', function () {
  this.timeout(240_000);
  let port = 0;
  const nodes: NodeProc[] = [];
  let dir = '';
  const api = (i: number) => `http://127.0.0.1:${port + i}`;
  const env = (i: number, extra: Record<string, string> = {}): Record<string, string> =>
    nodeEnv(port, i, {
      AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
      RAFT_CLUSTER_SECRET: SECRET,
      // Request logs (debug) on the followers, so the token check below sees them; app1 stays readable.
      LOG_LEVEL: i > 1 ? 'debug' : 'info',
      ...extra,
    });
  const admin = { headers: auth('admin') };

  before(async () => {
    port = await freeBasePort();
    dir = tempDir('raftkv-auth-');
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
    await startThreeVoters(nodes, env, api(1), admin);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    removeDir(dir);
  });

  it('401 without a valid token, 403 without the right, 200 with it — on the leader and through a follower', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)], admin);
    const follower = leader === 0 ? 2 : 1;
    for (const base of [api(leader + 1), api(follower)]) {
      expect((await call('POST', `${base}/key`, { body: { x: 'seed', 'teamA.x': 'seed' }, headers: auth('admin') })).status).to.equal(200);
      const matrix: [string, string, object | undefined, Record<Who, number>][] = [
        ['GET', '/key/x', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['GET', '/key/teamA.x', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['POST', '/key', { x: 'new' }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['POST', '/key', { 'teamA.y': 'new' }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 200, teamR: 403 }],
        ['POST', '/key', { 'teamA.z': 'new', other: 'new' }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['DELETE', '/key/absent', undefined, { none: 401, bogus: 401, read: 403, write: 404, admin: 404, teamW: 403, teamR: 403 }],
        ['DELETE', '/key/teamA.absent', undefined, { none: 401, bogus: 401, read: 403, write: 404, admin: 404, teamW: 404, teamR: 403 }],
        ['PUT', '/key/x', { value: 'put' }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['PUT', '/key/teamA.p', { value: 'put' }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 200, teamR: 403 }],
        // A transaction needs read to be served, write when it writes, and every key it names under the token's prefix.
        ['POST', '/txn', { success: [{ op: 'get', key: 'x' }] }, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['POST', '/txn', { success: [{ op: 'set', key: 'x', value: 't' }] }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['POST', '/txn', { compare: [{ key: 'teamA.x', exists: true }], success: [{ op: 'get', key: 'teamA.x' }] }, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['POST', '/txn', { success: [{ op: 'set', key: 'teamA.t', value: 't' }] }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 200, teamR: 403 }],
        ['POST', '/txn', { compare: [{ key: 'x', exists: true }], success: [{ op: 'set', key: 'teamA.t', value: 't' }] }, { none: 401, bogus: 401, read: 403, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        // A listing must lie inside the token's prefix.
        ['GET', '/keys?prefix=teamA.', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['GET', '/keys?start=teamA.a&end=teamA.z', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['GET', '/keys', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['GET', '/keys?prefix=team', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        ['GET', '/keys?start=teamA.a', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 403, teamR: 403 }],
        // Leases: grant, keepalive and revoke need write; reads need read; attaching is a write of the key.
        ['POST', '/leases', { ttlMs: 60_000 }, { none: 401, bogus: 401, read: 403, write: 201, admin: 201, teamW: 201, teamR: 403 }],
        ['GET', '/leases', undefined, { none: 401, bogus: 401, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['GET', '/leases/l-999999', undefined, { none: 401, bogus: 401, read: 404, write: 404, admin: 404, teamW: 404, teamR: 404 }],
        ['POST', '/leases/l-999999/keepalive', undefined, { none: 401, bogus: 401, read: 403, write: 404, admin: 404, teamW: 404, teamR: 403 }],
        ['DELETE', '/leases/l-999999', undefined, { none: 401, bogus: 401, read: 403, write: 404, admin: 404, teamW: 404, teamR: 403 }],
        ['PUT', '/key/x?lease=l-999999', { value: 'leased' }, { none: 401, bogus: 401, read: 403, write: 404, admin: 404, teamW: 403, teamR: 403 }],
        ['PUT', '/key/teamA.l?lease=l-999999', { value: 'leased' }, { none: 401, bogus: 401, read: 403, write: 404, admin: 404, teamW: 404, teamR: 403 }],
        ['GET', '/backup?consistency=stale', undefined, { none: 401, bogus: 401, read: 403, write: 403, admin: 200, teamW: 403, teamR: 403 }],
        ['GET', '/cluster', undefined, { none: 401, bogus: 401, read: 403, write: 403, admin: 200, teamW: 403, teamR: 403 }],
        ['DELETE', '/cluster/nodes/nobody', undefined, { none: 401, bogus: 401, read: 403, write: 403, admin: 404, teamW: 403, teamR: 403 }],
        ['GET', '/health', undefined, { none: 200, bogus: 200, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['GET', '/ready', undefined, { none: 200, bogus: 200, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
        ['GET', '/metrics', undefined, { none: 200, bogus: 200, read: 200, write: 200, admin: 200, teamW: 200, teamR: 200 }],
      ];
      for (const [method, path, body, want] of matrix) {
        for (const who of Object.keys(want) as Who[]) {
          const r = await call(method, `${base}${path}`, { body, headers: auth(who) });
          expect(r.status, `${method} ${path} as ${who} via ${base}: ${r.text}`).to.equal(want[who]);
          if (r.status >= 400) {
            const code = (r.body as { error?: { code?: string } }).error?.code;
            expect(code, `${method} ${path} as ${who}`).to.equal({ 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: path.startsWith('/cluster/nodes/') ? 'NODE_NOT_FOUND' : path.includes('lease') ? 'LEASE_NOT_FOUND' : 'KEY_NOT_FOUND' }[r.status]);
          }
        }
      }
    }
  });

  it('a refused write changes nothing', async () => {
    expect((await call('POST', `${api(1)}/key`, { body: { keep: 'original' }, headers: auth('write') })).status).to.equal(200);
    for (const who of ['none', 'bogus', 'read', 'teamW'] as Who[]) {
      expect((await call('POST', `${api(2)}/key`, { body: { keep: `by-${who}` }, headers: auth(who) })).status).to.be.oneOf([401, 403]);
      expect((await call('DELETE', `${api(3)}/key/keep`, { headers: auth(who) })).status).to.be.oneOf([401, 403]);
    }
    for (const i of [1, 2, 3]) expect((await call('GET', `${api(i)}/key/keep`, { headers: auth('read') })).body).to.deep.equal({ keep: 'original' });
  });

  it('only the Bearer scheme counts, and an admin token alone does not replace the cluster signature on join', async () => {
    expect((await call('GET', `${api(1)}/key/x`, { headers: { authorization: `Basic ${TOKEN_OF.read}` } })).status).to.equal(401);
    expect((await call('GET', `${api(1)}/key/x`, { headers: { authorization: `bearer ${TOKEN_OF.read}` } })).status).to.equal(200);
    expect((await call('GET', `${api(1)}/key/x`, { headers: { authorization: `Bearer ${TOKEN_OF.read}x` } })).status).to.equal(401);
    const join = await call('POST', `${api(1)}/cluster/join`, { body: { id: 'x', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2' }, headers: auth('admin') });
    expect(join.status, join.text).to.equal(401);
  });

  it('tokens never appear in the logs, even at debug level', async () => {
    const logs = nodes.map((n) => n.output.join('')).join('');
    expect(logs).to.include('"msg":"request"');
    for (const t of Object.keys(TOKENS)) expect(logs.includes(t), t).to.equal(false);
  });
});

/** Opens a raw connection that sends the headers of a POST and only part of its body, then stalls. */
function stalledPost(port: number, token: string): Promise<{ socket: Socket; response: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"slow":`);
      const response = new Promise<string>((res) => {
        let text = '';
        socket.on('data', (b) => {
          text += b.toString();
          // One complete JSON error response is all we wait for (a 429 keeps the connection open).
          if (/\r\n\r\n\{.*\}$/s.test(text)) socket.destroy();
        });
        socket.on('close', () => res(text));
        socket.on('error', () => res(text));
      });
      resolve({ socket, response });
    });
    socket.on('error', reject);
  });
}

describe('security: limits (keys per request, concurrent requests, slow bodies) and METRICS_AUTH', function () {
  this.timeout(120_000);
  let port = 0;
  let dir = '';
  let n: NodeProc;
  let base = '';

  before(async () => {
    port = await freeBasePort();
    base = `http://127.0.0.1:${port}`;
    dir = tempDir('raftkv-limits-');
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
    n = startNode('solo', {
      NODE_ID: 'solo',
      PORT: String(port),
      HOST: '127.0.0.1',
      RAFT_BIND_ADDR: `127.0.0.1:${port + 1}`,
      AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
      METRICS_AUTH: 'true',
      MAX_KEYS_PER_REQUEST: '3',
      LOG_LEVEL: 'debug',
      MAX_CONCURRENT_REQUESTS: '2',
      BODY_TIMEOUT_MS: '5000',
    });
    await dumpOnFailure([n], () => waitFor('node ready', async () => (await call('GET', `${base}/ready`)).status === 200));
  });

  after(async () => {
    await stopNode(n, 'SIGKILL');
    removeDir(dir);
  });

  it('METRICS_AUTH=true puts /metrics behind a token; /health and /ready stay open', async () => {
    expect((await call('GET', `${base}/metrics`)).status).to.equal(401);
    expect((await call('GET', `${base}/metrics`, { headers: auth('read') })).status).to.equal(200);
    expect((await call('GET', `${base}/health`)).status).to.equal(200);
  });

  it('more pairs than MAX_KEYS_PER_REQUEST is a 400 and writes nothing', async () => {
    const r = await call('POST', `${base}/key`, { body: { a: '1', b: '2', c: '3', d: '4' }, headers: auth('write') });
    expect(r.status, r.text).to.equal(400);
    expect((r.body as { error: { code: string } }).error.code).to.equal('BAD_REQUEST');
    expect((await call('GET', `${base}/key/a`, { headers: auth('read') })).status).to.equal(404);
    expect((await call('POST', `${base}/key`, { body: { a: '1', b: '2', c: '3' }, headers: auth('write') })).status).to.equal(200);
  });

  it('beyond MAX_CONCURRENT_REQUESTS a request gets 429; stalled bodies end in 408 with the error body; then the node serves again', async () => {
    // Two stalled bodies hold both slots. A poll racing with a stalled request's headers can take a
    // slot for a moment and get that stalled request a 429; such a one is replaced.
    const stalled = [await stalledPost(port, TOKEN_OF.write as string), await stalledPost(port, TOKEN_OF.write as string)];
    const answered = stalled.map((s) => {
      const state = { text: null as string | null };
      void s.response.then((t) => (state.text = t));
      return state;
    });
    await waitFor('the limit to be reached', async () => {
      for (let i = 0; i < stalled.length; i++) {
        if (answered[i].text?.startsWith('HTTP/1.1 429')) {
          stalled[i] = await stalledPost(port, TOKEN_OF.write as string);
          answered[i] = { text: null };
          const state = answered[i];
          void stalled[i].response.then((t) => (state.text = t));
        }
      }
      return (await call('GET', `${base}/key/a`, { headers: auth('read') })).status === 429;
    }, 4000, 20);
    const r = await call('GET', `${base}/key/a`, { headers: auth('read') });
    expect(r.status).to.equal(429);
    expect((r.body as { error: { code: string } }).error.code).to.equal('TOO_MANY_REQUESTS');
    expect((await call('GET', `${base}/health`)).status).to.equal(200);
    for (const s of stalled) {
      const text = await s.response;
      expect(text).to.match(/^HTTP\/1\.1 408 /);
      expect(text).to.include('"code":"REQUEST_TIMEOUT"');
    }
    expect((await call('GET', `${base}/key/slow`, { headers: auth('read') })).status).to.equal(404);
    expect((await call('GET', `${base}/key/a`, { headers: auth('read') })).body).to.deep.equal({ a: '1' });
  });
});
