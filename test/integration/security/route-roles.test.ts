/**
 * Issue 19 (critical): the role a request needs comes from the route it matched, and routing is
 * case-sensitive and strict. Before the fix the role was decided from `ctx.path` compared
 * case-sensitively (unknown paths needing only `read`) while the router matched case-insensitively,
 * so a read token could write with `POST /KEY`, delete with `DELETE /KEY/y`, remove a member with
 * `DELETE /Cluster/Nodes/app3` and add one with `POST /CLUSTER/JOIN` (tokens only, no secret).
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { call, dumpOnFailure, freeBasePort, rawRequest, view } from './helpers.js';

const TOKENS = {
  'admin-token-0001': { role: 'admin' },
  'write-token-0001': { role: 'write' },
  'read-token-00001': { role: 'read' },
};
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const admin = bearer('admin-token-0001');
const read = bearer('read-token-00001');

describe('security: the required role comes from the matched route (letter case, tokens only)', function () {
  this.timeout(120_000);
  let port = 0;
  let dir = '';
  let n: NodeProc;
  let base = '';
  const members = async (): Promise<string[]> => ((await view(base, { headers: admin }))?.nodes ?? []).map((m) => m.id).sort();

  before(async () => {
    port = await freeBasePort();
    base = `http://127.0.0.1:${port}`;
    dir = tempDir('raftkv-route-roles-');
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
    n = startNode('solo', { NODE_ID: 'solo', PORT: String(port), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${port + 1}`, AUTH_TOKENS_FILE: join(dir, 'tokens.json') });
    await dumpOnFailure([n], () => waitFor('node ready', async () => (await call('GET', `${base}/ready`)).status === 200, 60_000));
    expect((await call('POST', `${base}/key`, { body: { y: 'kept' }, headers: admin })).status).to.equal(200);
    // A learner at an address nobody serves: learners do not count for quorum, so the solo node keeps leading.
    const j = await call('POST', `${base}/cluster/join`, { body: { id: 'app3', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2' }, headers: admin });
    expect(j.status, j.text).to.equal(200);
  });

  after(async () => {
    await stopNode(n, 'SIGKILL');
    removeDir(dir);
  });

  it('a read token cannot write with POST /KEY', async () => {
    const r = await call('POST', `${base}/KEY`, { body: { upper: 'evil' }, headers: read });
    expect(r.status, r.text).to.be.oneOf([403, 404]);
    expect((await call('GET', `${base}/key/upper`, { headers: read })).status).to.equal(404);
  });

  it('a read token cannot delete with DELETE /KEY/y', async () => {
    const r = await call('DELETE', `${base}/KEY/y`, { headers: read });
    expect(r.status, r.text).to.be.oneOf([403, 404]);
    expect((await call('GET', `${base}/key/y`, { headers: read })).body).to.deep.equal({ y: 'kept' });
  });

  it('a read token cannot remove a member with DELETE /Cluster/Nodes/app3', async () => {
    const r = await call('DELETE', `${base}/Cluster/Nodes/app3`, { headers: read });
    expect(r.status, r.text).to.be.oneOf([403, 404]);
    expect(await members()).to.deep.equal(['app3', 'solo']);
  });

  it('a read token cannot add a member with POST /CLUSTER/JOIN', async () => {
    const r = await call('POST', `${base}/CLUSTER/JOIN`, { body: { id: 'evil', raftAddr: '127.0.0.1:3', apiAddr: '127.0.0.1:4' }, headers: read });
    expect(r.status, r.text).to.be.oneOf([403, 404]);
    expect(await members()).to.deep.equal(['app3', 'solo']);
  });

  it('a path that matches no route is a 404 NOT_FOUND for every token, never a handler', async () => {
    const paths = [['POST', '/key/'], ['POST', '//key'], ['GET', '/Key/y'], ['DELETE', '/key/y/'], ['GET', '/CLUSTER'], ['POST', '/k%65y'], ['DELETE', '/key/../cluster/nodes/app3'], ['POST', '/cluster/./join'], ['DELETE', '/cluster/nodes/app3/.']];
    for (const [method, path] of paths) {
      for (const headers of [read, admin, {}]) {
        const r = await rawRequest(port, method, path, headers, method === 'POST' ? JSON.stringify({ z: 'evil', id: 'evil', raftAddr: '127.0.0.1:3', apiAddr: '127.0.0.1:4' }) : '');
        expect(r.status, `${method} ${path}: ${r.text}`).to.equal(404);
        expect(r.code).to.equal('NOT_FOUND');
      }
    }
    expect((await call('GET', `${base}/key/z`, { headers: read })).status).to.equal(404);
    expect((await call('GET', `${base}/key/y`, { headers: read })).body).to.deep.equal({ y: 'kept' });
    expect(await members()).to.deep.equal(['app3', 'solo']);
  });
});
