/**
 * Regression (found by the fault suite, kill-leader): main.ts starts the peer server before
 * RaftNode.start() has loaded storage, so a restarted node receiving its leader's heartbeat in that
 * window crashed with "Cannot read properties of undefined (reading 'step')". The one test of this
 * (copies in the driver's and the start-up tests were merged into it).
 */
import { expect } from 'chai';
import { RaftNode } from '../../../../src/raft/node/node.js';
import { MemoryKvStore, MemoryLogStore } from '../../../../src/storage/memory/index.js';
import type { Message } from '../../../../src/raft/core/types.js';
import type { Transport } from '../../../../src/transport/types.js';

describe('RaftNode before start()', () => {
  it('drops peer messages that arrive before start() instead of crashing, then works after start()', async () => {
    const sent: Message[][] = [];
    const transport: Transport = { send: (_to, msgs) => void sent.push(msgs), close: async () => undefined };
    const node = new RaftNode(
      { nodeId: 'b', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2', tickMs: 1000, electionTimeoutTicks: 10, heartbeatTicks: 2, requestTimeoutMs: 1000, bootstrapIfEmpty: false },
      { log: new MemoryLogStore(), kv: new MemoryKvStore(), durable: false },
      transport,
    );
    const hb: Message = { type: 'Heartbeat', from: 'a', to: 'b', term: 5, commit: 0, ctx: 0 };
    expect(() => node.receive([hb], '127.0.0.1:3')).not.to.throw();
    await node.start();
    expect(node.status().term, 'the message that came before start() was dropped, not replayed').to.equal(0);
    // (addressed to the incarnation the node made at start: a message for another one is dropped)
    expect(() => node.receive([{ ...hb, toInc: node.identity().incarnation }], '127.0.0.1:3')).not.to.throw();
    // (b starts empty, as a joining node, so it follows a leader outside its configuration.)
    expect(node.status().term).to.equal(5); // the message after start() reached the core
    await node.stop();
  });
});
