import { expect } from 'chai';
import { connect } from 'node:net';
import { request } from 'undici';
import { startPeerServer } from '../../../src/transport/http/server.js';
import { HttpTransport } from '../../../src/transport/http/client.js';
import { signRequest } from '../../../src/security/hmac.js';
import { CLUSTER_HEADER, FROM_HEADER, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, TO_HEADER, upgradeSignedBody } from '../../../src/transport/http/stream-protocol.js';
import type { Message } from '../../../src/raft/core/types.js';
import { waitFor } from '../../support/procs.js';

const SECRET = 'unit-test-cluster-secret';
const hb: Message = { type: 'Heartbeat', from: 'a', to: 'b', term: 1, commit: 0, ctx: 0 };
const NONCE = '00112233445566778899aabbccddeeff';

describe('security: peer server with RAFT_CLUSTER_SECRET and a body timeout', () => {
  it('refuses unsigned or badly signed stream upgrades (401) without calling the handler, and delivers signed ones; POST /raft/messages is gone (404)', async () => {
    const got: Message[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: (m) => got.push(...m), clusterSecret: SECRET });
    const body = JSON.stringify({ from: 'a', messages: [hb] });
    const post = async (headers: Record<string, string>) => {
      const res = await request(`http://127.0.0.1:${srv.port}/raft/messages`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      return { status: res.statusCode, text: await res.body.text() };
    };
    // The old single-request route is gone, signed or not.
    expect((await post({})).status).to.equal(404);
    expect((await post(signRequest(SECRET, 'POST', '/raft/messages', body))).status).to.equal(404);
    const upgrade = (headers: Record<string, string>) =>
      new Promise<string>((resolve) => {
        let out = '';
        const s = connect(srv.port, '127.0.0.1', () => {
          const h = { host: 'x', connection: 'Upgrade', upgrade: STREAM_PROTOCOL, [NONCE_HEADER]: NONCE, [FROM_HEADER]: 'a', [TO_HEADER]: 'b', [CLUSTER_HEADER]: '', ...headers };
          s.write(`GET ${STREAM_PATH} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
        });
        s.once('data', (b) => {
          out += b.toString();
          s.destroy();
        });
        s.on('close', () => resolve(out));
      });
    const unsigned = await upgrade({});
    expect(unsigned).to.match(/^HTTP\/1\.1 401 /);
    expect(unsigned).to.include('"code":"UNAUTHORIZED"');
    expect(await upgrade(signRequest('wrong-secret-wrong-secret', 'GET', STREAM_PATH, upgradeSignedBody(NONCE, '', 'a', 'b')))).to.match(/^HTTP\/1\.1 401 /);
    // A signature over the nonce alone (today's format) or for another receiver does not open a stream.
    expect(await upgrade(signRequest(SECRET, 'GET', STREAM_PATH, NONCE))).to.match(/^HTTP\/1\.1 401 /);
    expect(await upgrade(signRequest(SECRET, 'GET', STREAM_PATH, upgradeSignedBody(NONCE, '', 'a', 'c')))).to.match(/^HTTP\/1\.1 401 /);
    expect(got).to.deep.equal([]);
    // The transport signs what it sends.
    const t = new HttpTransport({ clusterSecret: SECRET });
    t.send({ id: 'b', raftAddr: `127.0.0.1:${srv.port}` }, [hb]);
    await waitFor('signed delivery', async () => got.length === 1, 5000, 10);
    await t.close();
    await srv.close();
  });

  it('answers a request with a body that stops arriving at once (404, connection closed): nothing waits for or buffers it', async () => {
    let calls = 0;
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: () => calls++, bodyTimeoutMs: 300 });
    const text = await new Promise<string>((resolve) => {
      let out = '';
      const s = connect(srv.port, '127.0.0.1', () => s.write('POST /raft/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"from"'));
      s.on('data', (b) => (out += b.toString()));
      s.on('close', () => resolve(out));
    });
    expect(text).to.match(/^HTTP\/1\.1 404 /);
    expect(text).to.include('"code":"NOT_FOUND"');
    expect(calls).to.equal(0);
    await srv.close();
  });
});
