/**
 * Issue 19 (low): TLS 1.2 accepted AES128-SHA (no forward secrecy), and an expired certificate was
 * loaded without complaint. Now both servers offer only ECDHE with AEAD ciphers on TLS 1.2 (TLS 1.3
 * allowed; TLS_MIN_VERSION/TLS_CIPHERS configurable), a node refuses to start with an expired
 * certificate, and the expiry is exported as raftkv_tls_cert_expiry_timestamp_seconds.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { removeDir, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { agent, call, dumpOnFailure, freeBasePort, makeCerts } from './helpers.js';


/** The negotiated protocol, or the handshake error's message. */
function handshake(port: number, opts: ConnectionOptions): Promise<{ protocol: string | null; error: string | null }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      const protocol = s.getProtocol();
      s.end();
      resolve({ protocol, error: null });
    });
    s.on('error', (err) => resolve({ protocol: null, error: err.message }));
  });
}

describe('security: TLS policy (ciphers, versions) and certificate expiry on a real node', function () {
  this.timeout(120_000);
  let port = 0;
  let dir = '';
  let n: NodeProc;
  let base = '';
  let ca: Buffer;
  let client: { cert: Buffer; key: Buffer };
  const env = (certName: string, extra: Record<string, string> = {}): Record<string, string> => ({
    NODE_ID: 'solo',
    PORT: String(port),
    HOST: '127.0.0.1',
    RAFT_BIND_ADDR: `127.0.0.1:${port + 1}`,
    TLS_CERT_FILE: join(dir, `${certName}.pem`),
    TLS_KEY_FILE: join(dir, `${certName}-key.pem`),
    TLS_CA_FILE: join(dir, 'ca.pem'),
    RAFT_TLS_CERT_FILE: join(dir, 'app1.pem'),
    RAFT_TLS_KEY_FILE: join(dir, 'app1-key.pem'),
    RAFT_TLS_CA_FILE: join(dir, 'ca.pem'),
    ...extra,
  });

  before(async () => {
    port = await freeBasePort();
    base = `https://127.0.0.1:${port}`;
    dir = tempDir('raftkv-tlspolicy-');
    makeCerts(dir, ['app1']);
    makeCerts(dir, ['expired'], undefined, { CERT_DAYS: '-1' });
    ca = readFileSync(join(dir, 'ca.pem'));
    client = { cert: readFileSync(join(dir, 'app1.pem')), key: readFileSync(join(dir, 'app1-key.pem')) };
    n = startNode('solo', env('app1'));
    const trusted = agent(join(dir, 'ca.pem'));
    await dumpOnFailure([n], () => waitFor('node ready', async () => (await call('GET', `${base}/ready`, { dispatcher: trusted })).status === 200, 60_000));
    await trusted.close();
  });

  after(async () => {
    await stopNode(n, 'SIGKILL');
    removeDir(dir);
  });

  it('a TLS 1.2 client offering only AES128-SHA is refused on the API and the peer port; ECDHE-GCM and TLS 1.3 are accepted', async () => {
    for (const p of [port, port + 1]) {
      const weak = await handshake(p, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' });
      expect(weak.error, `port ${p}`).to.not.equal(null);
      const rsaKx = await handshake(p, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' });
      expect(rsaKx.error, `port ${p}: static RSA key exchange`).to.not.equal(null);
      expect(await handshake(p, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).to.deep.equal({ protocol: 'TLSv1.2', error: null });
      expect(await handshake(p, { ca, ...client })).to.deep.equal({ protocol: 'TLSv1.3', error: null });
    }
  });

  it('exports when the API and peer certificates expire', async () => {
    const trusted = agent(join(dir, 'ca.pem'));
    const r = await call('GET', `${base}/metrics`, { dispatcher: trusted });
    await trusted.close();
    const want = Date.parse(new X509Certificate(client.cert).validTo) / 1000;
    for (const cert of ['api', 'peer']) {
      const m = new RegExp(`^raftkv_tls_cert_expiry_timestamp_seconds\\{[^}]*cert="${cert}"[^}]*\\} (\\d+)$`, 'm').exec(r.text);
      expect(m, `${cert} in\n${r.text.slice(0, 300)}`).to.not.equal(null);
      expect(Number(m?.[1])).to.equal(want);
    }
  });

  it('a node refuses to start with an expired certificate, saying so; TLS_MIN_VERSION=TLSv1.3 refuses TLS 1.2', async () => {
    const p2 = await freeBasePort();
    const expired = startNode('expired', { ...env('expired'), PORT: String(p2), RAFT_BIND_ADDR: `127.0.0.1:${p2 + 1}` });
    try {
      const code = await waitFor('the node to exit', () => (expired.proc?.exitCode ?? null) !== null && expired.proc?.exitCode, 30_000);
      expect(code).to.equal(1);
      expect(expired.output.join('')).to.match(/expired\.pem expired on/);
    } finally {
      // On a node that wrongly starts, do not leave it running.
      await stopNode(expired, 'SIGKILL');
    }
    const strict = startNode('strict', { ...env('app1', { TLS_MIN_VERSION: 'TLSv1.3' }), PORT: String(p2 + 2), RAFT_BIND_ADDR: `127.0.0.1:${p2 + 3}` });
    try {
      await dumpOnFailure([strict], () => waitFor('strict node up', async () => (await handshake(p2 + 2, { ca, ...client })).protocol === 'TLSv1.3', 60_000));
      expect((await handshake(p2 + 2, { ca, ...client, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).error).to.not.equal(null);
    } finally {
      await stopNode(strict, 'SIGKILL');
    }
  });
});
