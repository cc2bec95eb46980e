import { expect } from 'chai';
import { RaftNode } from '../../../src/raft/node/node.js';
import { openStorage } from '../../../src/storage/index.js';
import type { Message } from '../../../src/raft/core/types.js';

describe('driver start-up (found by the ops suites under load)', () => {
  it('a peer message arriving before start() has loaded the log is dropped, not a crash', async () => {
    // main.ts starts the peer server before raftNode.start(); a restarted node's peers keep sending.
    const node = new RaftNode(
      { nodeId: 'n1', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2', tickMs: 10, electionTimeoutTicks: 10, heartbeatTicks: 2, requestTimeoutMs: 1000, bootstrapIfEmpty: false },
      await openStorage(undefined, 'n1'),
      { send: () => undefined, close: async () => undefined },
    );
    const hb: Message = { type: 'Heartbeat', from: 'n2', to: 'n1', term: 5, commit: 0, ctx: 0 };
    expect(() => node.receive([hb], '127.0.0.1:3')).to.not.throw();
    await node.start();
    // (addressed to the incarnation the node made at start: a message for another one is dropped)
    node.receive([{ ...hb, toInc: node.identity().incarnation }], '127.0.0.1:3');
    expect(node.status().term).to.equal(5);
    await node.stop();
  });
});
