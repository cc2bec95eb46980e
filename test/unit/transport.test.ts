import { expect } from 'chai';
import { request } from 'undici';
import { HttpTransport } from '../../src/transport/http/client.js';
import { startPeerServer } from '../../src/transport/http/server.js';
import type { Message } from '../../src/raft/core/types.js';
import { basePort, waitFor } from '../support/procs.js';
import { encodeCommand } from '../../src/kv/commands.js';
import { connect } from 'node:net';
import { CLUSTER_HEADER, FROM_HEADER, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, TO_HEADER } from '../../src/transport/http/stream-protocol.js';

const hb = (i: number): Message => ({ type: 'Heartbeat', from: 'a', to: 'b', term: 1, commit: i, ctx: 0 });

async function post(port: number, body: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}/raft/messages`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  await res.body.dump();
  return res.statusCode;
}

describe('peer transport (JSON over HTTP)', () => {
  it('delivers messages unchanged, with the sender address', async () => {
    const got: { msgs: Message[]; from: string | null }[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: (msgs, from) => got.push({ msgs, from }) });
    const t = new HttpTransport({ selfAddr: '127.0.0.1:1' });
    const ae: Message = { type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 4, prevLogTerm: 1, leaderCommit: 3, entries: [{ index: 5, term: 2, type: 'normal', data: encodeCommand([{ op: 'set', key: 'k', value: 'v' }]) }, { index: 6, term: 2, type: 'noop' }] };
    t.send({ id: 'b', raftAddr: `127.0.0.1:${srv.port}` }, [ae, hb(1)]);
    await waitFor('delivery', async () => got.length === 1, 5000, 10);
    expect(got[0]).to.deep.equal({ msgs: [ae, hb(1)], from: '127.0.0.1:1' });
    await t.close();
    await srv.close();
  });

  it('closes a stream on a malformed line (including a command apply could not decode) and never calls the handler; POST /raft/messages is gone (404)', async () => {
    let calls = 0;
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: () => calls++, maxLineBytes: 10_000 });
    // One raw stream per line: the server must close it without passing anything on.
    const sendLine = (line: string) =>
      new Promise<void>((resolve, reject) => {
        const s = connect(srv.port, '127.0.0.1', () => {
          const h = { host: 'x', connection: 'Upgrade', upgrade: STREAM_PROTOCOL, [NONCE_HEADER]: '00112233445566778899aabbccddeeff', [FROM_HEADER]: 'a', [TO_HEADER]: 'b', [CLUSTER_HEADER]: '' };
          s.write(`GET ${STREAM_PATH} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
          s.write(`${line}\n`);
        });
        s.on('data', () => undefined);
        s.once('close', () => resolve());
        s.once('error', reject);
      });
    const bad = [
      'not json',
      '[]',
      '{"messages": 5}',
      '{"messages": [{"type": "Nope", "from": "a", "to": "b", "term": 1}]}',
      '{"messages": [{"type": "Heartbeat", "from": "a", "to": "b", "term": -1, "commit": 0, "ctx": 0}]}',
      '{"messages": [{"type": "Heartbeat", "from": "a", "to": "b", "term": "1", "commit": 0, "ctx": 0}]}',
      '{"messages": [{"type": "AppendEntries", "from": "a", "to": "b", "term": 1, "prevLogIndex": 0, "prevLogTerm": 0, "leaderCommit": 0, "entries": [{"index": 3, "term": 1, "type": "noop"}]}]}',
      '{"messages": [{"type": "AppendEntries", "from": "a", "to": "b", "term": 1, "prevLogIndex": 0, "prevLogTerm": 0, "leaderCommit": 0, "entries": [{"index": 1, "term": 1, "type": "normal"}]}]}',
    ];
    bad.push('{"messages": [{"type": "AppendEntries", "from": "a", "to": "b", "term": 1, "prevLogIndex": 0, "prevLogTerm": 0, "leaderCommit": 0, "entries": [{"index": 1, "term": 1, "type": "normal", "data": "not a command"}]}]}');
    bad.push(JSON.stringify({ messages: [], pad: 'x'.repeat(20_000) }));
    for (const b of bad) await sendLine(b);
    expect(calls).to.equal(0);
    for (const b of bad.slice(0, 2)) expect(await post(srv.port, b), b).to.equal(404);
    await srv.close();
  });

  it('a member address that is not host:port (port 0, 99999, garbage) is counted as failed, never thrown from send', async () => {
    const t = new HttpTransport({ timeoutMs: 500 });
    for (const raftAddr of ['127.0.0.1:99999', '127.0.0.1:0', 'nocolon', '::1:7000', '']) {
      expect(() => t.send({ id: 'b', raftAddr }, [hb(1)]), raftAddr).to.not.throw();
      expect(t.stats()[raftAddr], raftAddr).to.deep.equal({ sent: 0, failed: 1 });
    }
    await t.close();
  });

  it('reaches a peer again after it was down, even after many failed sends', async () => {
    const port = basePort() + 77;
    const t = new HttpTransport({ timeoutMs: 500 });
    for (let i = 0; i < 50; i++) t.send({ id: 'b', raftAddr: `127.0.0.1:${port}` }, [hb(i)]);
    await waitFor('failures to be counted', async () => (t.stats()[`127.0.0.1:${port}`]?.failed ?? 0) >= 8, 5000, 10);
    const got: Message[] = [];
    const srv = await startPeerServer({ host: '127.0.0.1', port, onMessages: (msgs) => got.push(...msgs) });
    await waitFor('delivery after the peer came up', async () => {
      t.send({ id: 'b', raftAddr: `127.0.0.1:${port}` }, [hb(999)]);
      return got.length > 0;
    }, 10_000, 50);
    await t.close();
    await srv.close();
  });
});
