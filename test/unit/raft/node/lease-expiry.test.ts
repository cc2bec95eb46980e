/** The driver's lease expiry (src/raft/node/node.ts tickLeases): a refused expiry proposal is proposed again. */
import { expect } from 'chai';
import { RaftNode } from '../../../../src/raft/node/node.js';
import { MemoryKvStore, MemoryLogStore } from '../../../../src/storage/memory/index.js';
import { InsufficientStorageError } from '../../../../src/errors.js';
import { waitFor } from '../../../support/procs.js';

describe('raft node driver: lease expiry', function () {
  this.timeout(30_000);
  let node: RaftNode | null = null;
  afterEach(async () => {
    await node?.stop();
    node = null;
  });

  it('an expiry proposal that fails is proposed again: refused while writes are refused (a keepalive meanwhile fails: expiry pending), the lease expires once they are accepted', async () => {
    let refusal: Error | null = null;
    node = new RaftNode(
      { nodeId: 'n1', raftAddr: 'n1:1', apiAddr: 'n1:2', tickMs: 5, electionTimeoutTicks: 10, heartbeatTicks: 2, requestTimeoutMs: 5000, bootstrapIfEmpty: true, snapshotThreshold: 100_000, leaseCheckpointIntervalMs: 50, writeRefusal: () => refusal },
      { log: new MemoryLogStore(), kv: new MemoryKvStore(), durable: false },
      { send: () => undefined, close: async () => undefined },
    );
    const n = node;
    await n.start();
    await waitFor('n1 to lead', () => n.leaderId() === 'n1', 10_000, 10, false);
    const ttlMs = n.minLeaseTtlMs();
    const { id } = await n.grantLease(ttlMs);
    await n.writeCommand({ kind: 'ops', ops: [{ op: 'set', key: 'job', value: 'running', lease: id }], conditions: [] });
    const exists = async (): Promise<boolean> => (await n.readAtomically(['job'])).values.get('job') !== undefined;
    // Writes refused (as on a nearly full disk): the leader's expiry proposal fails when it comes due.
    refusal = new InsufficientStorageError('test: writes refused');
    const refusedAt = performance.now();
    while (performance.now() - refusedAt < 3 * ttlMs) await new Promise((r) => setTimeout(r, 20));
    expect(await exists(), 'nothing can be proposed while writes are refused').to.equal(true);
    expect((await n.lease(id)) !== undefined).to.equal(true);
    // Its expiry is pending: a keepalive now fails (LEASE_NOT_FOUND) rather than reviving it.
    const k = await n.keepaliveLease(id).then(() => 'renewed', (err: unknown) => (err as { code?: string }).code);
    expect(k).to.equal('LEASE_NOT_FOUND');
    // Accepted again: the expiry is proposed again and applied, without any keepalive or leader change.
    const term = n.status().term;
    refusal = null;
    await waitFor('the lease to expire', async () => !(await exists()), 5000, 10, false);
    expect(await n.lease(id)).to.equal(undefined);
    expect(n.status().term).to.equal(term);
  });
});
