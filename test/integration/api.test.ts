import { expect } from 'chai';
import { basePort, http, startNode, stopNode, waitFor, type NodeProc } from '../support/procs.js';

describe('client API of a single in-memory node: every status code', function () {
  this.timeout(60_000);
  let n: NodeProc;

  before(async () => {
    const port = basePort();
    n = startNode('solo', { NODE_ID: 'solo', PORT: String(port), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${port + 1}`, MAX_VALUE_BYTES: '100', MAX_KEY_BYTES: '16', MAX_BODY_BYTES: '1000' });
    await waitFor('node ready', async () => (await http('GET', `${n.api}/ready`)).status === 200);
  });

  after(async () => {
    await stopNode(n);
  });

  const expectError = (r: { status: number; body: unknown }, status: number, code: string) => {
    expect(r.status).to.equal(status);
    const err = (r.body as { error?: { code?: string; message?: unknown } }).error;
    expect(err?.code).to.equal(code);
    expect(err?.message).to.be.a('string');
  };

  it('POST /key sets several pairs atomically, echoes them and reports the index', async () => {
    const r = await http('POST', `${n.api}/key`, { a: '1', b: '2' });
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ a: '1', b: '2' });
    expect(Number(r.headers['x-raft-index'])).to.be.greaterThan(0);
    expect(r.headers['x-raft-leader']).to.equal('solo');
    const g = await http('GET', `${n.api}/key/b`);
    expect(g.body).to.deep.equal({ b: '2' });
    expect(g.headers.etag).to.equal(`"${r.headers['x-raft-index']}"`);
  });

  it('GET with consistency=stale reads local state; a bad consistency is a 400', async () => {
    await http('POST', `${n.api}/key`, { s: 'x' });
    expect((await http('GET', `${n.api}/key/s?consistency=stale`)).body).to.deep.equal({ s: 'x' });
    expectError(await http('GET', `${n.api}/key/s?consistency=eventual`), 400, 'BAD_REQUEST');
  });

  it('keys are any UTF-8 string, URL-encoded in the path', async () => {
    const key = 'ünï/cøde ?&';
    expect((await http('POST', `${n.api}/key`, { [key]: 'v' })).status).to.equal(200);
    expect((await http('GET', `${n.api}/key/${encodeURIComponent(key)}`)).body).to.deep.equal({ [key]: 'v' });
  });

  it('bad bodies are 400 and change nothing', async () => {
    expectError(await http('POST', `${n.api}/key`, '{not json'), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, '[1,2]'), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, '"str"'), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, {}), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, { bad: 1 }), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, { ok: 'fine', bad: null }), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, { ['k'.repeat(17)]: 'v' }), 400, 'BAD_REQUEST');
    expectError(await http('POST', `${n.api}/key`, { big: 'v'.repeat(101) }), 400, 'BAD_REQUEST');
    expect((await http('GET', `${n.api}/key/ok`)).status).to.equal(404);
  });

  it('a body over the limit is 413', async () => {
    expectError(await http('POST', `${n.api}/key`, { x: 'y'.repeat(2000) }), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('GET and DELETE of an absent key are 404 KEY_NOT_FOUND', async () => {
    expectError(await http('GET', `${n.api}/key/missing`), 404, 'KEY_NOT_FOUND');
    expectError(await http('DELETE', `${n.api}/key/missing`), 404, 'KEY_NOT_FOUND');
  });

  it('DELETE removes a key', async () => {
    await http('POST', `${n.api}/key`, { gone: 'soon' });
    const d = await http('DELETE', `${n.api}/key/gone`);
    expect(d.status).to.equal(200);
    expect(d.body).to.deep.equal({ deleted: 'gone' });
    expectError(await http('GET', `${n.api}/key/gone`), 404, 'KEY_NOT_FOUND');
  });

  it('unknown routes are 404 and wrong methods 405, with an error body where we produce one', async () => {
    expectError(await http('GET', `${n.api}/nope`), 404, 'NOT_FOUND');
    expect((await http('PUT', `${n.api}/key`)).status).to.equal(405);
  });

  it('/cluster, /health, /ready and /metrics answer', async () => {
    const c = await http('GET', `${n.api}/cluster`);
    expect(c.status).to.equal(200);
    expect(c.body).to.deep.include({ id: 'solo', role: 'leader' });
    expect((await http('GET', `${n.api}/health`)).status).to.equal(200);
    expect((await http('GET', `${n.api}/ready`)).status).to.equal(200);
    const m = await http('GET', `${n.api}/metrics`);
    expect(m.text).to.contain('raftkv_raft_term');
    expect(m.text).to.contain('raftkv_raft_is_leader{node="solo"} 1');
  });

  it('a bad join request is a 400', async () => {
    expectError(await http('POST', `${n.api}/cluster/join`, { id: 'x y', raftAddr: 'nope', apiAddr: 'a:1' }), 400, 'BAD_REQUEST');
  });

  it('SIGTERM exits 0', async () => {
    expect(await stopNode(n, 'SIGTERM')).to.equal(0);
  });
});
