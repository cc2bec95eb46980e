import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { removeDir, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { agent, call, forgedAppend, freeBasePort, makeCerts, nodeEnv, startThreeVoters, view, waitLeader } from './helpers.js';

/** The serial number of the certificate served on 127.0.0.1:`port` (optionally presenting a client certificate). */
async function servedSerial(port: number, ca: Buffer, client?: { cert: Buffer; key: Buffer }): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, ...(client ?? {}) }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial.toUpperCase());
    });
    s.on('error', reject);
  });
}

describe('security: HTTPS client API and mutual TLS between peers', function () {
  this.timeout(300_000);
  let port = 0;
  const nodes: NodeProc[] = [];
  let dir = '';
  let good = '';
  let evil = '';
  const api = (i: number) => `https://127.0.0.1:${port + i}`;
  const raftUrl = (i: number) => `https://127.0.0.1:${port + 10 + i}`;
  const env = (i: number, certDir: string, extra: Record<string, string> = {}): Record<string, string> =>
    nodeEnv(port, i, {
      TLS_CERT_FILE: join(certDir, `app${i}.pem`),
      TLS_KEY_FILE: join(certDir, `app${i}-key.pem`),
      TLS_CA_FILE: join(good, 'ca.pem'),
      RAFT_TLS_CERT_FILE: join(certDir, `app${i}.pem`),
      RAFT_TLS_KEY_FILE: join(certDir, `app${i}-key.pem`),
      RAFT_TLS_CA_FILE: join(certDir, 'ca.pem'),
      ...extra,
    });
  let trusted: ReturnType<typeof agent>;

  before(async () => {
    port = await freeBasePort();
    dir = tempDir('raftkv-tls-');
    good = join(dir, 'good');
    evil = join(dir, 'evil');
    makeCerts(good, ['app1', 'app2', 'app3'], 'raftkv test cluster CA');
    makeCerts(evil, ['app4', 'app2'], 'mallory CA');
    trusted = agent(join(good, 'ca.pem'));
    await startThreeVoters(nodes, (i) => env(i, good), api(1), { dispatcher: trusted });
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    await trusted.close();
    removeDir(dir);
  });

  it('the whole-cluster view (/cluster?view=all) reaches every member over HTTPS', async () => {
    await waitLeader([api(1), api(2), api(3)], { dispatcher: trusted });
    const r = await call('GET', `${api(1)}/cluster?view=all`, { dispatcher: trusted });
    expect(r.status, r.text).to.equal(200);
    const members = (r.body as { nodes: { id: string; reachable: boolean }[] }).nodes;
    expect(members.map((m) => [m.id, m.reachable]).sort()).to.deep.equal([['app1', true], ['app2', true], ['app3', true]]);
  });

  it('serves the API over HTTPS to a client trusting the CA, forwards a follower write over HTTPS, and refuses untrusted or plain clients', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)], { dispatcher: trusted });
    const f = leader === 0 ? 2 : 1;
    const w = await call('POST', `${api(f)}/key`, { body: { secure: 'yes' }, dispatcher: trusted });
    expect(w.status, w.text).to.equal(200);
    for (const i of [1, 2, 3]) {
      const r = await call('GET', `${api(i)}/key/secure`, { dispatcher: trusted });
      expect(r.body, `app${i}`).to.deep.equal({ secure: 'yes' });
    }
    const untrusted = await call('GET', `${api(1)}/health`);
    expect(untrusted.status).to.equal(0);
    expect(untrusted.text).to.match(/certificate/i);
    const plain = await call('GET', `http://127.0.0.1:${port + 1}/health`);
    expect(plain.status).to.not.equal(200);
  });

  it('a node whose peer certificate comes from another CA cannot join', async () => {
    // It trusts the cluster's API certificate, so its join request arrives; its raft identity is mallory's.
    const rogue = startNode('app4', { ...env(4, evil), TLS_CA_FILE: join(good, 'ca.pem') });
    nodes.push(rogue);
    await waitFor('the rogue join to be refused', async () => rogue.output.join('').includes('"status":403'), 60_000);
    const v = await view(api(1), { dispatcher: trusted });
    expect(v?.nodes.map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    await stopNode(rogue, 'SIGKILL');
  });

  it('a forged AppendEntries from a client with a wrong-CA certificate (or none) is refused at the handshake and changes nothing', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)], { dispatcher: trusted });
    const f = leader === 0 ? 2 : 1;
    const before = (await view(api(f), { dispatcher: trusted })) as NonNullable<Awaited<ReturnType<typeof view>>>;
    const body = forgedAppend(`app${f}`, before.term, before.lastIndex);
    const wrongCa = agent(null, { dir: evil, name: 'app2' }, { rejectUnauthorized: false });
    const noCert = agent(join(good, 'ca.pem'));
    const r1 = await call('POST', `${raftUrl(f)}/raft/messages`, { body, dispatcher: wrongCa });
    const r2 = await call('POST', `${raftUrl(f)}/raft/messages`, { body, dispatcher: noCert });
    expect(r1.status, r1.text).to.equal(0);
    expect(r2.status, r2.text).to.equal(0);
    const after = await view(api(f), { dispatcher: trusted });
    expect({ term: after?.term, lastIndex: after?.lastIndex, commitIndex: after?.commitIndex }).to.deep.equal({ term: before.term, lastIndex: before.lastIndex, commitIndex: before.commitIndex });
    expect((await call('GET', `${api(f)}/key/forged?consistency=stale`, { dispatcher: trusted })).status).to.equal(404);
    // Control: a client with a cluster-CA certificate gets through the same door (the handshake
    // completes; POST /raft/messages itself is gone, peers use streams: docs/cluster-identity.md).
    const member = agent(join(good, 'ca.pem'), { dir: good, name: 'app3' });
    const ok = await call('GET', `${raftUrl(f)}/raft/health`, { dispatcher: member });
    expect(ok.status, ok.text).to.equal(200);
    await Promise.all([wrongCa.close(), noCert.close(), member.close()]);
  });

  it('SIGHUP re-reads the certificate files: the new certificate is served on both ports, and the cluster keeps working', async () => {
    const ca = readFileSync(join(good, 'ca.pem'));
    const client = { cert: readFileSync(join(good, 'app3.pem')), key: readFileSync(join(good, 'app3-key.pem')) };
    const oldSerial = new X509Certificate(readFileSync(join(good, 'app1.pem'))).serialNumber.toUpperCase();
    expect(await servedSerial(port + 1, ca)).to.equal(oldSerial);
    makeCerts(good, ['app1']);
    const newSerial = new X509Certificate(readFileSync(join(good, 'app1.pem'))).serialNumber.toUpperCase();
    expect(newSerial).to.not.equal(oldSerial);
    nodes[0].proc?.kill('SIGHUP');
    await waitFor('the new API certificate', async () => (await servedSerial(port + 1, ca)) === newSerial, 10_000);
    expect(await servedSerial(port + 11, ca, client)).to.equal(newSerial);
    expect(nodes[0].proc?.exitCode).to.equal(null);
    await waitFor('a write through app1 after the reload', async () => (await call('POST', `${api(1)}/key`, { body: { reloaded: 'yes' }, dispatcher: trusted })).status === 200, 30_000);
    for (const i of [1, 2, 3]) await waitFor(`app${i} to read it`, async () => (await call('GET', `${api(i)}/key/reloaded`, { dispatcher: trusted })).status === 200, 30_000);
  });
});
