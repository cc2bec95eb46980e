/**
 * Issue 19 (medium): CLIENT_CERT_AUTH=true (etcd's --client-cert-auth) makes the client API require
 * a certificate signed by TLS_CA_FILE, and a certificate's name listed as `cert:<name>` in
 * AUTH_TOKENS_FILE is a role subject like a token, also through a follower that forwards the write.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, stopNode, tempDir, type NodeProc } from '../../support/procs.js';
import { agent, call, freeBasePort, makeCerts, nodeEnv, startThreeVoters, waitLeader } from './helpers.js';

const TOKENS = {
  'cert:alice': { role: 'write' },
  'cert:bob': { role: 'read' },
  'cert:ops': { role: 'admin' },
  'admin-token-0001': { role: 'admin' },
};

describe('security: client certificates as role subjects (CLIENT_CERT_AUTH)', function () {
  this.timeout(240_000);
  let port = 0;
  let dir = '';
  let certs = '';
  let other = '';
  const nodes: NodeProc[] = [];
  const api = (i: number) => `https://127.0.0.1:${port + i}`;
  const as = (name: string, from = certs) => agent(join(certs, 'ca.pem'), { dir: from, name });
  let alice: ReturnType<typeof agent>;
  let bob: ReturnType<typeof agent>;
  let admin: ReturnType<typeof agent>;

  before(async () => {
    port = await freeBasePort();
    dir = tempDir('raftkv-clientcert-');
    certs = join(dir, 'certs');
    other = join(dir, 'other');
    makeCerts(certs, ['app1', 'app2', 'app3', 'alice', 'bob', 'carol', 'ops'], 'raftkv client-cert CA');
    makeCerts(other, ['alice'], 'another CA');
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
    alice = as('alice');
    bob = as('bob');
    admin = as('ops');
    const env = (i: number) =>
      nodeEnv(port, i, {
        TLS_CERT_FILE: join(certs, `app${i}.pem`),
        TLS_KEY_FILE: join(certs, `app${i}-key.pem`),
        TLS_CA_FILE: join(certs, 'ca.pem'),
        CLIENT_CERT_AUTH: 'true',
        AUTH_TOKENS_FILE: join(dir, 'tokens.json'),
        RAFT_CLUSTER_SECRET: 'client-cert test cluster secret',
      });
    await startThreeVoters(nodes, env, api(1), { dispatcher: admin });
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    await Promise.all([alice, bob, admin].map((a) => a?.close()));
    removeDir(dir);
  });

  it('without a client certificate, or with one from another CA, the handshake is refused (even with a valid token)', async () => {
    const noCert = agent(join(certs, 'ca.pem'));
    const foreign = as('alice', other);
    try {
      const r = await call('GET', `${api(1)}/health`, { dispatcher: noCert, headers: { authorization: 'Bearer admin-token-0001' } });
      expect(r.status, r.text).to.equal(0);
      const f = await call('POST', `${api(1)}/key`, { dispatcher: foreign, body: { foreign: 'x' } });
      expect(f.status, f.text).to.equal(0);
    } finally {
      await noCert.close();
      await foreign.close();
    }
    expect((await call('GET', `${api(1)}/key/foreign`, { dispatcher: bob })).status).to.equal(404);
  });

  it('the certificate name gets its role: alice (write) writes on the leader and through a follower, bob (read) reads only', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)], { dispatcher: admin });
    const follower = leader === 0 ? 2 : 1;
    for (const [i, base] of [api(leader + 1), api(follower)].entries()) {
      const w = await call('POST', `${base}/key`, { dispatcher: alice, body: { [`by-alice-${i}`]: 'ok' } });
      expect(w.status, `${base}: ${w.text}`).to.equal(200);
      const r = await call('POST', `${base}/key`, { dispatcher: bob, body: { [`by-bob-${i}`]: 'no' } });
      expect(r.status, r.text).to.equal(403);
      expect((await call('GET', `${base}/key/by-alice-${i}`, { dispatcher: bob })).body).to.deep.equal({ [`by-alice-${i}`]: 'ok' });
      expect((await call('GET', `${base}/key/by-bob-${i}`, { dispatcher: bob })).status).to.equal(404);
      expect((await call('GET', `${base}/cluster`, { dispatcher: alice })).status).to.equal(403);
    }
  });

  it('a valid certificate whose name is not in the tokens file is 401; a Bearer token on such a connection still counts', async () => {
    const carol = as('carol');
    try {
      const r = await call('GET', `${api(1)}/key/by-alice-0`, { dispatcher: carol });
      expect(r.status, r.text).to.equal(401);
      const t = await call('GET', `${api(1)}/cluster`, { dispatcher: carol, headers: { authorization: 'Bearer admin-token-0001' } });
      expect(t.status, t.text).to.equal(200);
      // A client cannot vouch for another subject: only members' certificates may.
      const v = await call('POST', `${api(1)}/key`, { dispatcher: bob, body: { vouched: 'no' }, headers: { 'x-raftkv-forwarded-subject': 'alice' } });
      expect(v.status, v.text).to.equal(403);
    } finally {
      await carol.close();
    }
  });
});
