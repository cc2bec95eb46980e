import { expect } from 'chai';
import { signRequest } from '../../../src/security/hmac.js';
import { startNode, stopNode, waitFor, type NodeProc } from '../../support/procs.js';
import { call, forgedAppend, freeBasePort, nodeEnv, startThreeVoters, view, waitLeader } from './helpers.js';

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

  it('a forged AppendEntries without, with a wrong or with a stale HMAC is 401 and leaves the follower unchanged', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)]);
    const f = leader === 0 ? 2 : 1;
    const before = await view(api(f));
    expect(before).to.not.equal(null);
    const b = before as NonNullable<typeof before>;
    const body = forgedAppend(`app${f}`, b.term, b.lastIndex);
    const path = '/raft/messages';
    const attempts: [string, Record<string, string>][] = [
      ['no signature', {}],
      ['wrong secret', signRequest('mallory guessed this one', 'POST', path, body)],
      ['stale timestamp', signRequest(SECRET, 'POST', path, body, Date.now() - 10 * 60_000)],
      ['signature of another body', signRequest(SECRET, 'POST', path, body.replace('evil', 'good'))],
      ['signature of another path', signRequest(SECRET, 'POST', '/raft/other', body)],
      ['garbage signature', { 'x-raftkv-timestamp': String(Date.now()), 'x-raftkv-signature': 'zz' }],
    ];
    for (const [what, headers] of attempts) {
      const r = await call('POST', `${raft(f)}${path}`, { body, headers });
      expect(r.status, `${what}: ${r.text}`).to.equal(401);
      expect((r.body as { error: { code: string } }).error.code, what).to.equal('UNAUTHORIZED');
    }
    const after = await view(api(f));
    expect({ term: after?.term, lastIndex: after?.lastIndex, commitIndex: after?.commitIndex }).to.deep.equal({ term: b.term, lastIndex: b.lastIndex, commitIndex: b.commitIndex });
    expect((await call('GET', `${api(f)}/key/forged?consistency=stale`)).status).to.equal(404);
  });

  it('control: the same forged AppendEntries signed with the secret is accepted, so the 401 above is what protected the log', async () => {
    const leader = await waitLeader([api(1), api(2), api(3)]);
    const f = leader === 0 ? 2 : 1;
    const b = (await view(api(f))) as NonNullable<Awaited<ReturnType<typeof view>>>;
    const body = forgedAppend(`app${f}`, b.term, b.lastIndex);
    const r = await call('POST', `${raft(f)}/raft/messages`, { body, headers: signRequest(SECRET, 'POST', '/raft/messages', body) });
    expect(r.status, r.text).to.equal(204);
    await waitFor('the follower to adopt the forged term', async () => ((await view(api(f)))?.term ?? 0) >= b.term + 100, 10_000);
  });
});
