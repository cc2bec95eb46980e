import { expect } from 'chai';
import { signRequest } from '../../../src/security/hmac.js';
import { startNode, stopNode, waitFor, type NodeProc } from '../../support/procs.js';
import { call, forgedAppend, freeBasePort, nodeEnv, startThreeVoters, view, waitLeader } from './helpers.js';
import { openRawStream } from './peer-stream.js';

const SECRET = 'correct horse battery staple 42';

describe('security: RAFT_CLUSTER_SECRET signs every peer RPC and join', function () {
  this.timeout(240_000);
  let port = 0;
  const nodes: NodeProc[] = [];
  const api = (i: number) => `http://127.0.0.1:${port + i}`;
  const raft = (i: number) => `http://127.0.0.1:${port + 10 + i}`;
  const env = (i: number, extra: Record<string, string> = {}): Record<string, string> => nodeEnv(port, i, { RAFT_CLUSTER_SECRET: SECRET, ...extra });

  before(async () => {
    port = await freeBasePort();
    await startThreeVoters(nodes, env, api(1));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  });

  it('a cluster whose nodes share the secret forms and replicates a write sent to a follower', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)]);
    const follower = leader === 0 ? 2 : 1;
    const w = await call('POST', `${api(follower)}/key`, { body: { k: 'v' } });
    expect(w.status, w.text).to.equal(200);
    for (const i of [1, 2, 3]) expect((await call('GET', `${api(i)}/key/k`)).body).to.deep.equal({ k: 'v' });
  });

  it('a join without the secret or with a wrong one is 401 and adds nobody', async () => {
    const body = JSON.stringify({ id: 'intruder', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2' });
    const path = '/cluster/join';
    const unsigned = await call('POST', `${api(2)}${path}`, { body });
    expect(unsigned.status, unsigned.text).to.equal(401);
    expect((unsigned.body as { error: { code: string } }).error.code).to.equal('UNAUTHORIZED');
    const wrong = await call('POST', `${api(2)}${path}`, { body, headers: signRequest('not the cluster secret!!', 'POST', path, body) });
    expect(wrong.status, wrong.text).to.equal(401);
    const otherBody = await call('POST', `${api(2)}${path}`, { body, headers: signRequest(SECRET, 'POST', path, body.replace('intruder', 'other')) });
    expect(otherBody.status, otherBody.text).to.equal(401);
    const stale = await call('POST', `${api(2)}${path}`, { body, headers: signRequest(SECRET, 'POST', path, body, Date.now() - 120_000) });
    expect(stale.status, stale.text).to.equal(401);
    // A real process without the secret keeps retrying and is refused every time.
    const rogue = startNode('app4', { ...env(4), RAFT_CLUSTER_SECRET: '' });
    nodes.push(rogue);
    await waitFor('the rogue join to be refused', async () => rogue.output.join('').includes('"status":401'), 30_000);
    const v = await view(api(1));
    expect(v?.nodes.map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    await stopNode(rogue, 'SIGKILL');
  });

  it('a forged stream upgrade without, with a wrong or with a stale HMAC is 401 and leaves the follower unchanged', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)]);
    const f = leader === 0 ? 2 : 1;
    const before = await view(api(f));
    expect(before).to.not.equal(null);
    const b = before as NonNullable<typeof before>;
    const clusterId = b.clusterId as string;
    const signed = (secret: string, body: string, at?: number) => signRequest(secret, 'GET', '/raft/stream', body, at);
    const good = `feedfacecafebeef0011223344556677\n${clusterId}\nmallory\napp${f}`;
    const attempts: [string, Record<string, string>][] = [
      ['no signature', {}],
      ['wrong secret', signed('mallory guessed this one', good)],
      ['stale timestamp', signed(SECRET, good, Date.now() - 10 * 60_000)],
      ['signature of another receiver', signed(SECRET, good.replace(`app${f}`, 'app9'))],
      ['signature of another path', signRequest(SECRET, 'GET', '/raft/other', good)],
      ['garbage signature', { 'x-raftkv-timestamp': String(Date.now()), 'x-raftkv-signature': 'zz' }],
    ];
    for (const [what, headers] of attempts) {
      const s = await openRawStream({ port: port + 10 + f, from: 'mallory', to: `app${f}`, clusterId, headers });
      expect(s.status, `${what}: ${s.head}`).to.equal(401);
      expect(s.head, what).to.include('UNAUTHORIZED');
      s.socket.destroy();
    }
    // The old single-request route is gone, signed or not.
    const body = forgedAppend(`app${f}`, b.term, b.lastIndex);
    expect((await call('POST', `${raft(f)}/raft/messages`, { body, headers: signRequest(SECRET, 'POST', '/raft/messages', body) })).status).to.equal(404);
    const after = await view(api(f));
    expect({ term: after?.term, lastIndex: after?.lastIndex, commitIndex: after?.commitIndex }).to.deep.equal({ term: b.term, lastIndex: b.lastIndex, commitIndex: b.commitIndex });
    expect((await call('GET', `${api(f)}/key/forged?consistency=stale`)).status).to.equal(404);
  });

  it('control: the same upgrade signed with the secret opens the stream, so the 401 above is what refused it', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)]);
    const f = leader === 0 ? 2 : 1;
    const b = (await view(api(f))) as NonNullable<Awaited<ReturnType<typeof view>>>;
    const s = await openRawStream({ port: port + 10 + f, from: 'mallory', to: `app${f}`, clusterId: b.clusterId as string, secret: SECRET });
    expect(s.status, s.head).to.equal(101);
    s.socket.destroy();
  });
});
