import { expect } from 'chai';
import {
  BadRequestError,
  ClusterUnavailableError,
  KeyNotFoundError,
  NodeNotFoundError,
  OutcomeUnknownError,
  PreconditionFailedError,
  RaftKvClient,
  RaftKvClientError,
} from '../../../src/index.js';
import { startNode, stopNode, waitFor, waitForLeader, type NodeProc } from '../../support/procs.js';
import { nodeEnv, startThreeNodes, type ThreeNodes } from './three-nodes.js';

/** A port nothing listens on (the cluster's own range is base+1..base+13). */
function deadEndpoint(c: ThreeNodes): string {
  return `http://127.0.0.1:${c.port + 99}`;
}

async function expectRejects<E extends Error>(p: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(type);
    return err as E;
  }
  throw new Error(`expected ${type.name}, but the call succeeded`);
}

describe('client library against a real three-node cluster', function () {
  this.timeout(240_000);
  let c: ThreeNodes;

  before(async () => {
    c = await startThreeNodes();
  });

  after(async () => {
    await c?.stop();
  });

  it('set, get (linearizable and stale), setMany, delete with typed results', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints });
    const w = await client.set('greeting', 'hello');
    expect(w.index).to.be.a('number').greaterThan(0);
    expect(c.nodes.map((n) => n.id)).to.include(w.leaderId);
    expect(await client.get('greeting')).to.deep.equal({ key: 'greeting', value: 'hello', index: w.index });
    const stale = await client.get('greeting', { consistency: 'stale' });
    expect(stale.value).to.equal('hello');
    const many = await client.setMany({ a: '1', 'b/ü ?': '2' });
    expect(many.index).to.be.greaterThan(w.index ?? 0);
    expect((await client.get('b/ü ?')).value).to.equal('2');
    const d = await client.delete('a');
    expect(d.deleted).to.equal('a');
    expect(d.index).to.be.greaterThan(many.index ?? 0);
    await expectRejects(client.get('a'), KeyNotFoundError);
  });

  it('conditional set and delete: PreconditionFailedError carries the current index; create-only batches are atomic', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints });
    const first = await client.set('cas/x', 'a', { ifNoneMatch: '*' });
    const again = await expectRejects(client.set('cas/x', 'b', { ifNoneMatch: '*' }), PreconditionFailedError);
    expect(again.current).to.deep.equal({ key: 'cas/x', index: first.index });
    expect(again.status).to.equal(412);
    const second = await client.set('cas/x', 'b', { ifMatch: first.index as number });
    const stale = await expectRejects(client.set('cas/x', 'c', { ifMatch: first.index as number }), PreconditionFailedError);
    expect(stale.current).to.deep.equal({ key: 'cas/x', index: second.index });
    expect((await client.get('cas/x')).value).to.equal('b');
    const wrongDelete = await expectRejects(client.delete('cas/x', { ifMatch: first.index as number }), PreconditionFailedError);
    expect(wrongDelete.current?.index).to.equal(second.index);
    await client.delete('cas/x', { ifMatch: second.index as number });
    const absent = await expectRejects(client.delete('cas/x', { ifMatch: second.index as number }), PreconditionFailedError);
    expect(absent.current).to.equal(null);
    await client.set('cas/y', 'exists');
    const batch = await expectRejects(client.setMany({ 'cas/y': '1', 'cas/z': '1' }, { ifNoneMatch: '*' }), PreconditionFailedError);
    expect(batch.existing.map((e) => e.key)).to.deep.equal(['cas/y']);
    await expectRejects(client.get('cas/z'), KeyNotFoundError);
    await expectRejects(client.set('cas/y', 'v', { ifMatch: 0 }), BadRequestError);
  });

  it('txn() runs a branch atomically; list() iterates a prefix page by page in byte order', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints });
    const w = await client.set('t/a', '1');
    const r = await client.txn({ compare: [{ key: 't/a', index: w.index as number }], success: [{ op: 'set', key: 't/b', value: '2' }, { op: 'get', key: 't/a' }], failure: [] });
    expect(r.succeeded).to.equal(true);
    expect(r.results).to.deep.equal([{ op: 'set', key: 't/b', index: r.index }, { op: 'get', key: 't/a', value: '1', index: w.index }]);
    const ro = await client.txn({ compare: [{ key: 't/b', value: 'nope' }], success: [], failure: [{ op: 'get', key: 't/b' }] });
    expect(ro).to.deep.include({ succeeded: false, results: [{ op: 'get', key: 't/b', value: '2', index: r.index }] });
    const pairs: Record<string, string> = {};
    for (let i = 0; i < 23; i++) pairs[`l/${String(i).padStart(2, '0')}`] = String(i);
    await client.setMany(pairs);
    const listed: string[] = [];
    for await (const item of client.list('l/', { pageSize: 5 })) listed.push(`${item.key}=${item.value}`);
    expect(listed).to.deep.equal(Object.entries(pairs).map(([k, v]) => `${k}=${v}`));
    const page = await client.listPage('l/', { pageSize: 20, keysOnly: true, count: true });
    expect(page.items).to.have.length(20);
    expect(page.count).to.equal(23);
    expect(page.continue).to.be.a('string');
    expect(page.items[0]).to.not.have.property('value');
  });

  it('remembers the leader from X-Raft-Leader and maps it to its endpoint', async () => {
    const leader = await waitForLeader(c.nodes);
    const follower = c.nodes.find((n) => n !== leader) as NodeProc;
    // The follower is listed first, so the first request goes there and names the leader.
    const client = new RaftKvClient({ endpoints: [follower.api, ...c.endpoints.filter((e) => e !== follower.api)] });
    const w = await client.set('leader-probe', 'x');
    expect(client.knownLeader).to.equal(w.leaderId);
    // Once mapped, requests go straight to the leader: the answering node is the leader itself
    // (polled, in case a loaded machine causes an election in between).
    await waitFor('cluster() answered by the leader', async () => {
      await client.set('leader-probe', 'y');
      const after = await client.cluster();
      return after.leader !== null && after.id === after.leader.id && after.endpoint === c.nodes.find((n) => n.id === after.id)?.api;
    }, 30_000);
  });

  it('cluster() lists every node with role, term, indexes, lag, last contact and health', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints });
    await client.set('for-cluster', 'v');
    const info = await waitFor('every node ok and caught up', async () => {
      const i = await client.cluster();
      return i.nodes.every((n) => n.health === 'ok' && n.lag === 0) ? i : null;
    });
    expect(info.nodes.map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    expect(info.nodes.filter((n) => n.role === 'leader')).to.have.length(1);
    for (const n of info.nodes) {
      expect(n.suffrage).to.equal('voter');
      expect(n.reachable).to.equal(true);
      expect(n.term).to.equal(info.term);
      expect(n.matchIndex).to.be.a('number');
      expect(n.commitIndex).to.be.a('number');
      expect(n.appliedIndex).to.be.a('number');
      expect(n.lastContactMs).to.be.a('number');
    }
  });

  it('an endpoint that is down is skipped for reads and writes', async () => {
    const client = new RaftKvClient({ endpoints: [deadEndpoint(c), ...c.endpoints], retries: 6 });
    for (let i = 0; i < 10; i++) await client.set(`down-${i}`, `v${i}`);
    for (let i = 0; i < 10; i++) expect((await client.get(`down-${i}`)).value).to.equal(`v${i}`);
    const info = await client.cluster();
    expect(info.nodes).to.have.length(3);
  });

  it('with every endpoint down: ClusterUnavailableError after the retries, for reads and writes', async () => {
    const client = new RaftKvClient({ endpoints: [deadEndpoint(c), `http://127.0.0.1:${c.port + 98}`], retries: 3, backoffBaseMs: 10 });
    const r = await expectRejects(client.get('x'), ClusterUnavailableError);
    expect(r.attempts).to.have.length(4);
    expect(r.message).to.contain('ECONNREFUSED');
    // A refused connection proves the write was never sent, so it is retried too and still says "unavailable".
    const w = await expectRejects(client.set('x', 'y'), ClusterUnavailableError);
    expect(w.attempts).to.have.length(4);
  });

  it('errors are typed after the server codes', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints });
    const nf = await expectRejects(client.get('missing-key'), KeyNotFoundError);
    expect(nf.key).to.equal('missing-key');
    expect(nf.code).to.equal('KEY_NOT_FOUND');
    expect(nf.status).to.equal(404);
    await expectRejects(client.delete('missing-key'), KeyNotFoundError);
    const big = await expectRejects(client.set('k'.repeat(2000), 'v'), BadRequestError);
    expect(big.code).to.equal('BAD_REQUEST');
    expect(big.status).to.equal(400);
    const nn = await expectRejects(client.removeNode('ghost'), NodeNotFoundError);
    expect(nn.nodeId).to.equal('ghost');
    await expectRejects(client.setMany({}), BadRequestError);
  });

  it('removeNode removes a member that joined', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints });
    const fourth = startNode('app4', nodeEnv(c.port, 4, 2));
    c.nodes.push(fourth);
    await waitFor('app4 to become a voter', async () => {
      const info = await client.cluster();
      return info.nodes.some((n) => n.id === 'app4' && n.suffrage === 'voter');
    }, 60_000);
    const r = await client.removeNode('app4');
    expect(r.removed).to.equal('app4');
    expect(r.nodes.map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    await stopNode(fourth, 'SIGKILL');
    c.nodes.pop();
    expect((await client.cluster()).nodes.map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
  });

  it('leader SIGKILLed mid-run: operations keep succeeding after failover and no acknowledged write is lost', async () => {
    const client = new RaftKvClient({ endpoints: c.endpoints, timeoutMs: 8000, retries: 10 });
    const acked = new Map<string, string>();
    const unknown: string[] = [];
    let seq = 0;
    async function writeOne(): Promise<void> {
      const key = `run-${seq}`;
      const value = `v${seq++}`;
      try {
        await client.set(key, value);
        acked.set(key, value);
      } catch (err) {
        // Only "may or may not have applied" is acceptable; anything else fails the test.
        if (!(err instanceof OutcomeUnknownError)) throw err;
        unknown.push(key);
      }
    }
    for (let i = 0; i < 30; i++) await writeOne();
    const leader = await waitForLeader(c.nodes);
    const killedAt = Date.now();
    const writing = (async () => {
      while (Date.now() - killedAt < 1500 || acked.size < 60) await writeOne();
    })();
    await stopNode(leader, 'SIGKILL');
    await writing;
    const survivors = c.nodes.filter((n) => n !== leader);
    const newLeader = await waitForLeader(survivors);
    expect(newLeader.id).to.not.equal(leader.id);
    console.log(`      client: ${acked.size} writes acknowledged, ${unknown.length} outcome unknown, leader ${leader.id} -> ${newLeader.id}`);
    expect(acked.size).to.be.at.least(60);
    for (const [k, v] of acked) expect((await client.get(k)).value, k).to.equal(v);
    // An unknown outcome is either applied in full or not at all.
    for (const k of unknown) {
      try {
        expect((await client.get(k)).value).to.match(/^v\d+$/);
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err;
      }
    }
    const info = await client.cluster();
    expect(info.leader?.id).to.be.oneOf(survivors.map((n) => n.id));
    expect(info.nodes.find((n) => n.id === leader.id)?.health).to.equal('unreachable');
    expect(info.nodes.find((n) => n.id === leader.id)?.reachable).to.equal(false);
  });

  it('every error the client throws is a RaftKvClientError with a code', async () => {
    const client = new RaftKvClient({ endpoints: [deadEndpoint(c)], retries: 0 });
    const e = await expectRejects(client.get('x'), RaftKvClientError);
    expect(e.code).to.equal('CLUSTER_UNAVAILABLE');
  });
});
