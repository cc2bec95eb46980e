import { expect } from 'chai';
import { connect, createServer, type Socket } from 'node:net';
import { HttpTransport } from '../../../../src/transport/http/client.js';
import { startPeerServer } from '../../../../src/transport/http/server.js';
import { CLUSTER_HEADER, FROM_HEADER, LineSplitter, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, TO_HEADER, frameLine, upgradeSignedBody } from '../../../../src/transport/http/stream-protocol.js';
import { signRequest } from '../../../../src/security/hmac.js';
import type { Message } from '../../../../src/raft/core/types.js';
import { waitFor } from '../../../support/procs.js';

const SECRET = 'unit-test-cluster-secret';
const hb = (i: number): Message => ({ type: 'Heartbeat', from: 'a', to: 'b', term: 1, commit: i, ctx: 0 });
const NONCE = '00112233445566778899aabbccddeeff';
/** What an upgrade's signature covers: the nonce, the cluster id and both ends. */
const SIGNED = upgradeSignedBody(NONCE, '', 'a', 'b');

/** Opens a raw peer stream by hand; resolves with the socket and the server's first answer. */
function rawStream(port: number, headers: Record<string, string>): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      // Every upgrade names the sender, the receiver and the cluster id ('' here: no identity checks).
      const lines = Object.entries({ host: 'x', connection: 'Upgrade', upgrade: STREAM_PROTOCOL, [FROM_HEADER]: 'a', [TO_HEADER]: 'b', [CLUSTER_HEADER]: '', ...headers }).map(([k, v]) => `${k}: ${v}`);
      socket.write(`GET ${STREAM_PATH} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.once('data', (b) => resolve({ socket, head: b.toString() }));
    socket.once('error', reject);
  });
}

const closed = (s: Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('peer transport: the long-lived stream', () => {
  it('splits lines across chunk boundaries and refuses an over-long line', () => {
    const got: string[] = [];
    const sp = new LineSplitter(8);
    expect(sp.push(Buffer.from('ab\ncd'), (l) => got.push(l.toString()))).to.equal(true);
    expect(sp.push(Buffer.from('ef\n\ngh'), (l) => got.push(l.toString()))).to.equal(true);
    expect(got).to.deep.equal(['ab', 'cdef', '']);
    expect(sp.push(Buffer.from('123456789'), () => undefined)).to.equal(false);
  });

  it('delivers thousands of batches in order over one connection', async () => {
    const got: number[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: (msgs) => got.push(...msgs.map((m) => (m as { commit: number }).commit)) });
    const t = new HttpTransport({ selfAddr: '127.0.0.1:1' });
    const to = { id: 'b', raftAddr: `127.0.0.1:${srv.port}` };
    for (let i = 0; i < 5000; i++) t.send(to, [hb(i)]);
    await waitFor('all batches', async () => got.length === 5000, 10_000, 10);
    expect(got).to.deep.equal([...Array(5000).keys()]);
    expect(Object.keys(t.stats())).to.deep.equal([to.raftAddr]);
    expect(t.stats()[to.raftAddr]).to.deep.equal({ sent: 5000, failed: 0 });
    await t.close();
    await srv.close();
  });

  it('closes a stream on a malformed line without passing any of that line or later ones on', async () => {
    const got: Message[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: (msgs) => got.push(...msgs) });
    const { socket, head } = await rawStream(srv.port, { [NONCE_HEADER]: NONCE });
    expect(head).to.match(/^HTTP\/1\.1 101 /);
    socket.write(`${JSON.stringify({ from: 'a', messages: [hb(1)] })}\n`);
    socket.write('{"messages": [{"type": "Heartbeat", "from": "a", "to": "b", "term": -1, "commit": 0, "ctx": 0}]}\n');
    socket.write(`${JSON.stringify({ from: 'a', messages: [hb(3)] })}\n`);
    await closed(socket);
    expect(got).to.deep.equal([hb(1)]);
    for (const garbage of ['not json\n', '[]\n', '\n']) {
      const r = await rawStream(srv.port, { [NONCE_HEADER]: NONCE });
      r.socket.write(garbage);
      await closed(r.socket);
    }
    expect(got).to.deep.equal([hb(1)]);
    await srv.close();
  });

  it('refuses upgrades to other paths, protocols or without a nonce, with an error body', async () => {
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: () => undefined });
    const noNonce = await rawStream(srv.port, {});
    expect(noNonce.head).to.match(/^HTTP\/1\.1 400 /);
    expect(noNonce.head).to.include('"code":"BAD_REQUEST"');
    const wrong = await rawStream(srv.port, { upgrade: 'websocket', [NONCE_HEADER]: NONCE });
    expect(wrong.head).to.match(/^HTTP\/1\.1 400 /);
    await srv.close();
  });

  it('with a cluster secret: refuses an unsigned upgrade (401), and closes a stream on a forged or replayed line', async () => {
    const got: Message[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: (msgs) => got.push(...msgs), clusterSecret: SECRET });
    const unsigned = await rawStream(srv.port, { [NONCE_HEADER]: NONCE });
    expect(unsigned.head).to.match(/^HTTP\/1\.1 401 /);
    const wrongKey = await rawStream(srv.port, { [NONCE_HEADER]: NONCE, ...signRequest('wrong-secret-wrong-secret', 'GET', STREAM_PATH, SIGNED) });
    expect(wrongKey.head).to.match(/^HTTP\/1\.1 401 /);

    const { socket, head } = await rawStream(srv.port, { [NONCE_HEADER]: NONCE, ...signRequest(SECRET, 'GET', STREAM_PATH, SIGNED) });
    expect(head).to.match(/^HTTP\/1\.1 101 /);
    const line = (i: number, seq: number, key = SECRET) => frameLine(JSON.stringify({ from: 'a', messages: [hb(i)] }), { secret: key, nonce: NONCE, seq });
    socket.write(line(1, 1));
    socket.write(line(2, 2));
    socket.write(line(3, 2)); // replays sequence number 2: refused, stream closed
    socket.write(line(4, 4));
    await closed(socket);
    expect(got).to.deep.equal([hb(1), hb(2)]);

    const s2 = await rawStream(srv.port, { [NONCE_HEADER]: NONCE, ...signRequest(SECRET, 'GET', STREAM_PATH, SIGNED) });
    s2.socket.write(line(5, 1, 'wrong-secret-wrong-secret'));
    await closed(s2.socket);
    const s3 = await rawStream(srv.port, { [NONCE_HEADER]: NONCE, ...signRequest(SECRET, 'GET', STREAM_PATH, SIGNED) });
    s3.socket.write(`${JSON.stringify({ from: 'a', messages: [hb(6)] })}\n`); // no MAC at all
    await closed(s3.socket);
    expect(got).to.deep.equal([hb(1), hb(2)]);

    // The transport signs the upgrade and every line.
    const t = new HttpTransport({ clusterSecret: SECRET });
    for (let i = 10; i < 20; i++) t.send({ id: 'b', raftAddr: `127.0.0.1:${srv.port}` }, [hb(i)]);
    await waitFor('signed delivery', async () => got.length === 12, 5000, 10);
    expect(got.slice(2)).to.deep.equal([...Array(10).keys()].map((i) => hb(i + 10)));
    await t.close();
    await srv.close();
  });

  it('replaces a stream whose lines are never acknowledged (a stalled peer) within the timeout', async () => {
    // A peer that completes the upgrade and then reads nothing and acknowledges nothing.
    const sockets: Socket[] = [];
    const stalled = createServer((s) => {
      sockets.push(s);
      s.once('data', () => s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n\r\n`));
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', () => r()));
    const port = (stalled.address() as { port: number }).port;
    const t = new HttpTransport({ timeoutMs: 1000 });
    const to = { id: 'b', raftAddr: `127.0.0.1:${port}` };
    t.send(to, [hb(1)]);
    await waitFor('first stream', async () => sockets.length === 1, 5000, 10);
    await new Promise((r) => setTimeout(r, 100));
    t.send(to, [hb(2)]);
    expect(sockets.length).to.equal(1);
    await new Promise((r) => setTimeout(r, 1200));
    t.send(to, [hb(3)]);
    await waitFor('a second stream', async () => sockets.length === 2, 5000, 10);
    await closed(sockets[0]);
    expect(t.stats()[to.raftAddr].failed).to.be.greaterThan(0);
    await t.close();
    for (const s of sockets) s.destroy();
    stalled.close();
  });
});
