import { expect } from 'chai';
import { request } from 'undici';
import { HttpTransport } from '../../src/transport/http/client.js';
import { startPeerServer } from '../../src/transport/http/server.js';
import type { Message } from '../../src/raft/core/types.js';
import { basePort, waitFor } from '../support/procs.js';

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
    const ae: Message = { type: 'AppendEntries', from: 'a', to: 'b', term: 2, prevLogIndex: 4, prevLogTerm: 1, leaderCommit: 3, entries: [{ index: 5, term: 2, type: 'normal', data: 'x' }, { index: 6, term: 2, type: 'noop' }] };
    t.send({ id: 'b', raftAddr: `127.0.0.1:${srv.port}` }, [ae, hb(1)]);
    await waitFor('delivery', async () => got.length === 1, 5000, 10);
    expect(got[0]).to.deep.equal({ msgs: [ae, hb(1)], from: '127.0.0.1:1' });
    await t.close();
    await srv.close();
  });

  it('rejects malformed requests with 400 and never calls the handler', async () => {
    let calls = 0;
    const srv = await startPeerServer({ host: '127.0.0.1', port: 0, onMessages: () => calls++, maxBodyBytes: 10_000 });
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
    for (const b of bad) expect(await post(srv.port, b), b).to.equal(400);
    expect(await post(srv.port, JSON.stringify({ messages: [], pad: 'x'.repeat(20_000) }))).to.equal(413);
    expect(calls).to.equal(0);
    await srv.close();
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
