/**
 * Issue 19, "peers trust any message that passes the secret": an insider holding RAFT_CLUSTER_SECRET
 * (and the cluster id) still cannot depose the leader as a non-member, plant a command that crashes
 * every node on apply, talk for another cluster, or (with mutual TLS) speak under another member's
 * id; an unsigned 60 MB body is not buffered; the old single-request route is gone.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { expect } from 'chai';
import { request } from 'undici';
import { signRequest } from '../../../src/security/hmac.js';
import { removeDir, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { call, freeBasePort, makeCerts, nodeEnv, startThreeVoters, view, waitLeader } from './helpers.js';
import { openRawStream } from './peer-stream.js';

const SECRET = 'peer trust test secret 0123456789';

function rssKb(n: NodeProc): number {
  const status = readFileSync(`/proc/${n.proc?.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

describe('security: peers trust only members of this cluster (issue 19)', function () {
  this.timeout(240_000);
  let port = 0;
  const nodes: NodeProc[] = [];
  const api = (i: number) => `http://127.0.0.1:${port + i}`;
  const raftPort = (i: number) => port + 10 + i;
  const env = (i: number): Record<string, string> => nodeEnv(port, i, { RAFT_CLUSTER_SECRET: SECRET });

  before(async () => {
    port = await freeBasePort();
    await startThreeVoters(nodes, env, api(1));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  });

  it('a signed AppendEntries from non-member "evil" at term+100 neither deposes the leader nor overwrites a key', async () => {
    const l = (await waitLeader([api(1), api(2), api(3)])) + 1;
    expect((await call('POST', `${api(l)}/key`, { body: { target: 'good' } })).status).to.equal(200);
    const before = (await view(api(l)))!;
    const s = await openRawStream({ port: raftPort(l), from: 'evil', to: `app${l}`, clusterId: before.clusterId as string, secret: SECRET });
    expect(s.status, s.head).to.equal(101); // the secret opens the door; membership is what refuses
    const data = JSON.stringify({ ops: [{ op: 'set', key: 'target', value: 'evil' }] });
    const msg = { type: 'AppendEntries', from: 'evil', to: `app${l}`, term: before.term + 100, prevLogIndex: before.lastIndex, prevLogTerm: before.term, entries: [{ index: before.lastIndex + 1, term: before.term + 100, type: 'normal', data }], leaderCommit: before.lastIndex + 1 };
    s.send(JSON.stringify({ from: 'evil', fromAddr: '127.0.0.1:1', messages: [msg] }));
    s.send(JSON.stringify({ from: 'evil', messages: [{ type: 'RequestVote', from: 'evil', to: `app${l}`, term: before.term + 101, preVote: false, lastLogIndex: 999, lastLogTerm: 999, transfer: true }] }));
    // Give it time to do harm, while writes keep committing.
    for (let i = 0; i < 5; i++) expect((await call('POST', `${api(l)}/key`, { body: { [`after${i}`]: 'x' } })).status).to.equal(200);
    const after = (await view(api(l)))!;
    expect({ role: after.role, term: after.term }).to.deep.equal({ role: 'leader', term: before.term });
    expect((await call('GET', `${api(l)}/key/target`)).body).to.deep.equal({ target: 'good' });
    s.socket.destroy();
  });

  it('a malformed command from a member is refused at the stream (closed), appended nowhere, and crashes nobody', async () => {
    const l = (await waitLeader([api(1), api(2), api(3)])) + 1;
    const f = l === 1 ? 2 : 1;
    const before = (await view(api(f)))!;
    const s = await openRawStream({ port: raftPort(f), from: `app${l}`, to: `app${f}`, clusterId: before.clusterId as string, secret: SECRET });
    expect(s.status, s.head).to.equal(101);
    const msg = { type: 'AppendEntries', from: `app${l}`, to: `app${f}`, term: before.term, prevLogIndex: before.lastIndex, prevLogTerm: before.term, entries: [{ index: before.lastIndex + 1, term: before.term, type: 'normal', data: '{"ops":[{"op":"explode"}]}' }], leaderCommit: before.lastIndex + 1 };
    s.send(JSON.stringify({ from: `app${l}`, messages: [msg] }));
    await s.closed;
    expect((await call('POST', `${api(l)}/key`, { body: { afterPoison: 'ok' } })).status).to.equal(200);
    for (const i of [1, 2, 3]) {
      expect((await call('GET', `${api(i)}/health`)).status, `app${i} health`).to.equal(200);
      await waitFor(`app${i} to apply the next write`, async () => (await call('GET', `${api(i)}/key/afterPoison?consistency=stale`)).status === 200, 10_000);
    }
  });

  it('a peer of another cluster is refused at the handshake (409), and a stream for another node (421)', async () => {
    const own = (await view(api(1)))!;
    const other = await openRawStream({ port: raftPort(1), from: 'app2', to: 'app1', clusterId: 'another-cluster-id', secret: SECRET });
    expect(other.status, other.head).to.equal(409);
    expect(other.head).to.include('WRONG_CLUSTER');
    const wrongNode = await openRawStream({ port: raftPort(1), from: 'app2', to: 'app3', clusterId: own.clusterId as string, secret: SECRET });
    expect(wrongNode.status, wrongNode.head).to.equal(421);
    // A signature made for another receiver does not open this one's stream.
    const moved = await openRawStream({
      port: raftPort(1),
      from: 'app2',
      to: 'app1',
      clusterId: own.clusterId as string,
      headers: signRequest(SECRET, 'GET', '/raft/stream', `feedfacecafebeef0011223344556677\n${own.clusterId}\napp2\napp3`),
    });
    expect(moved.status, moved.head).to.equal(401);
  });

  it('the old single-request route is gone: a signed (replayable) POST /raft/messages is 404 and changes nothing', async () => {
    const before = (await view(api(2)))!;
    const body = JSON.stringify({ from: 'app1', messages: [{ type: 'Heartbeat', from: 'app1', to: 'app2', term: before.term + 50, commit: 0, ctx: 0 }] });
    const signed = signRequest(SECRET, 'POST', '/raft/messages', body);
    for (let i = 0; i < 2; i++) {
      const r = await call('POST', `http://127.0.0.1:${raftPort(2)}/raft/messages`, { body, headers: signed });
      expect(r.status, r.text).to.equal(404);
    }
    expect((await view(api(2)))!.term).to.be.lessThan(before.term + 50);
  });

  it('four unsigned 60 MB bodies are answered at once and never buffered (RSS grows by far less than they weigh)', async () => {
    const n = nodes[1];
    const rssBefore = rssKb(n);
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const big = async () => {
      // A body generator: 60 chunks of 1 MiB; the server answers before most of it is sent.
      async function* gen() {
        for (let i = 0; i < 60; i++) yield chunk;
      }
      try {
        const res = await request(`http://127.0.0.1:${raftPort(2)}/raft/messages`, { method: 'POST', body: Readable.from(gen()), headers: { 'content-type': 'application/json', 'content-length': String(60 << 20) } });
        await res.body.dump();
        return res.statusCode;
      } catch {
        return 0; // the server closed the connection while we were still sending: also not buffered
      }
    };
    const statuses = await Promise.all([big(), big(), big(), big()]);
    for (const s of statuses) expect([0, 404]).to.include(s);
    const grownMb = (rssKb(n) - rssBefore) / 1024;
    expect(grownMb, `RSS grew by ${grownMb.toFixed(1)} MB`).to.be.lessThan(60);
    expect((await call('GET', `${api(2)}/health`)).status).to.equal(200);
  });
});

describe('security: with mutual TLS the peer certificate must be issued to the sender id', function () {
  this.timeout(120_000);
  let port = 0;
  let dir = '';
  const nodes: NodeProc[] = [];

  before(async () => {
    port = await freeBasePort();
    dir = tempDir('raftkv-peer-trust-');
    makeCerts(dir, ['app1', 'app2']);
    const tls = { RAFT_TLS_CERT_FILE: join(dir, 'app1.pem'), RAFT_TLS_KEY_FILE: join(dir, 'app1-key.pem'), RAFT_TLS_CA_FILE: join(dir, 'ca.pem') };
    nodes.push(startNode('app1', nodeEnv(port, 1, tls)));
    await waitLeader([`http://127.0.0.1:${port + 1}`]);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    removeDir(dir);
  });

  it('app2\'s certificate may open a stream as app2 but not as app3 (403); without the name bound, anyone with a cluster certificate could speak as any member', async () => {
    const own = (await view(`http://127.0.0.1:${port + 1}`))!;
    const tls = { cert: readFileSync(join(dir, 'app2.pem')), key: readFileSync(join(dir, 'app2-key.pem')), ca: readFileSync(join(dir, 'ca.pem')) };
    const as3 = await openRawStream({ port: port + 11, from: 'app3', to: 'app1', clusterId: own.clusterId as string, tls });
    expect(as3.status, as3.head).to.equal(403);
    const as2 = await openRawStream({ port: port + 11, from: 'app2', to: 'app1', clusterId: own.clusterId as string, tls });
    expect(as2.status, as2.head).to.equal(101);
    as2.socket.destroy();
  });
});
