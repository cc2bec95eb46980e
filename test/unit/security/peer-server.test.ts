import { expect } from 'chai';
import { connect } from 'node:net';
import { request } from 'undici';
import { startPeerServer } from '../../../src/transport/http/server.js';
import { HttpTransport } from '../../../src/transport/http/client.js';
import { signRequest } from '../../../src/security/hmac.js';
import type { Message } from '../../../src/raft/core/types.js';
import { waitFor } from '../../support/procs.js';

const SECRET = 'unit-test-cluster-secret';
const hb: Message = { type: 'Heartbeat', from: 'a', to: 'b', term: 1, commit: 0, ctx: 0 };

describe('security: peer server with RAFT_CLUSTER_SECRET and a body timeout', () => {
  it('answers 401 to unsigned or badly signed requests without calling the handler, and delivers signed ones', async () => {
    const got: Message[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: (m) => got.push(...m), clusterSecret: SECRET });
    const body = JSON.stringify({ from: 'a', messages: [hb] });
    const post = async (headers: Record<string, string>) => {
      const res = await request(`http://127.0.0.1:${srv.port}/raft/messages`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      return { status: res.statusCode, text: await res.body.text() };
    };
    const unsigned = await post({});
    expect(unsigned.status).to.equal(401);
    expect(JSON.parse(unsigned.text).error.code).to.equal('UNAUTHORIZED');
    expect((await post(signRequest('wrong-secret-wrong-secret', 'POST', '/raft/messages', body))).status).to.equal(401);
    expect(got).to.deep.equal([]);
    expect((await post(signRequest(SECRET, 'POST', '/raft/messages', body))).status).to.equal(204);
    expect(got).to.deep.equal([hb]);
    // The transport signs what it sends.
    const t = new HttpTransport({ clusterSecret: SECRET });
    t.send({ id: 'b', raftAddr: `127.0.0.1:${srv.port}` }, [hb]);
    await waitFor('signed delivery', async () => got.length === 2, 5000, 10);
    await t.close();
    await srv.close();
  });

  it('answers 408 with the error body to a body that stops arriving', async () => {
    let calls = 0;
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: () => calls++, bodyTimeoutMs: 300 });
    const text = await new Promise<string>((resolve) => {
      let out = '';
      const s = connect(srv.port, '127.0.0.1', () => s.write('POST /raft/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"from"'));
      s.on('data', (b) => (out += b.toString()));
      s.on('close', () => resolve(out));
    });
    expect(text).to.match(/^HTTP\/1\.1 408 /);
    expect(text).to.include('"code":"REQUEST_TIMEOUT"');
    expect(calls).to.equal(0);
    await srv.close();
  });
});
