import { expect } from 'chai';
import { LeaseNotFoundError, RaftKvClient, type WatchMessage } from '../../../src/index.js';
import { stopNode, waitFor, waitForLeader, type NodeProc } from '../../support/procs.js';
import { exists, startThreeNodes, type ThreeNodes } from './three-nodes.js';

const TTL_MS = 8000;

describe('client.lease against a real three-node cluster', function () {
  this.timeout(240_000);
  let c: ThreeNodes;

  before(async () => {
    c = await startThreeNodes();
  });

  after(async () => {
    await c?.stop();
  });

  it('a handle keeps its lease (and its key) alive across a SIGKILL of the leader; after close() the lease expires and its key goes', async () => {
    const leader = await waitForLeader(c.nodes);
    const others = c.nodes.filter((n) => n !== leader) as NodeProc[];
    // The handle starts on the leader's endpoint, so the kill hits the node its keepalives go to.
    const client = new RaftKvClient({ endpoints: [leader.api, ...others.map((n) => n.api)], backoffBaseMs: 20, backoffMaxMs: 300, retries: 20 });
    const h = await client.lease(TTL_MS);
    let lostEarly: Error | null = null;
    void h.lost.then((e) => (lostEarly = e));
    const put = await client.set('svc/web-1', '10.0.0.5:80', { lease: h.id });
    // The control: a lease of the same TTL granted at the same time, never renewed.
    const bare = await client.grantLease(TTL_MS);
    await client.set('svc/bare', 'x', { lease: bare.id });
    expect((await client.getLease(h.id, { keys: true })).keys).to.deep.equal(['svc/web-1']);

    await stopNode(leader, 'SIGKILL');
    const killedAt = performance.now();
    const acksAtKill = h.keepAlives;
    const reader = new RaftKvClient({ endpoints: others.map((n) => n.api), backoffBaseMs: 20, backoffMaxMs: 300, retries: 20 });
    await waitForLeader(others, 60_000);
    // Two TTLs after the kill, and the unrenewed control gone: without keepalives through the new leader the handle's lease would be too.
    await waitFor('two TTLs after the kill', () => performance.now() - killedAt > 2 * TTL_MS || lostEarly !== null, 60_000, 100);
    await waitFor('the unrenewed control lease to expire', async () => !(await exists(reader, 'svc/bare')), 60_000, 200);
    expect(lostEarly, String(lostEarly)).to.equal(null);
    expect(h.isAlive).to.equal(true);
    expect(h.keepAlives).to.be.greaterThan(acksAtKill + 2);
    expect(await reader.get('svc/web-1')).to.include({ value: '10.0.0.5:80' });
    const info = await reader.getLease(h.id, { keys: true });
    expect(info.keys).to.deep.equal(['svc/web-1']);

    // The owner stops renewing: the key stays while the lease certainly lives, then goes with it.
    expect(h.remainingMs()).to.be.greaterThan(0);
    h.close();
    expect(await exists(reader, 'svc/web-1')).to.equal(true);
    await waitFor('the lease to expire and take its key', async () => !(await exists(reader, 'svc/web-1')), 90_000, 200);
    let gone: unknown = null;
    try {
      await reader.getLease(h.id);
    } catch (err) {
      gone = err;
    }
    expect(gone).to.be.instanceOf(LeaseNotFoundError);
    expect(lostEarly, 'close() is not a loss').to.equal(null);
    // The delete came from the expiry, and says so.
    const ac = new AbortController();
    let expiry: WatchMessage | null = null;
    for await (const m of reader.watch('svc/', { from: (put.index as number) + 1, signal: ac.signal })) {
      if (m.type === 'change' && m.events.some((e) => e.key === 'svc/web-1')) {
        expiry = m;
        break;
      }
    }
    expect(expiry).to.deep.include({ type: 'change' });
    const ev = (expiry as Extract<WatchMessage, { type: 'change' }>).events;
    expect(ev).to.deep.equal([{ type: 'delete', key: 'svc/web-1', prevIndex: put.index, reason: 'lease-expired', lease: h.id }]);
  });
});
