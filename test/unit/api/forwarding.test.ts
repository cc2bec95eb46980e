import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createApp } from '../../../src/api/app.js';
import type { RaftNode } from '../../../src/raft/node/node.js';
import { http } from '../../support/procs.js';

/** A follower whose leader lives at `leaderAddr`; only what the forwarding path touches. */
function followerOf(leaderAddr: string): RaftNode {
  const stub = { leaderId: () => 'L', memberApiAddr: (id: string) => (id === 'L' ? leaderAddr : null) };
  return stub as unknown as RaftNode;
}

async function listen(s: Server): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as AddressInfo).port;
}

describe('forwarded writes tell "never sent" (503) from "outcome unknown" (504)', () => {
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  async function follower(leaderAddr: string): Promise<string> {
    const app = createApp({ node: followerOf(leaderAddr), nodeId: 'F', limits: { maxKeyBytes: 100, maxValueBytes: 100, maxBodyBytes: 1000 }, logger: pino({ level: 'silent' }), registry: new Registry(), requestTimeoutMs: 1000 });
    const s = createServer(app.callback());
    servers.push(s);
    return `http://127.0.0.1:${await listen(s)}`;
  }

  it('a refused connection to the leader is 503 NO_LEADER (safe to retry)', async () => {
    const probe = createServer();
    const port = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const f = await follower(`127.0.0.1:${port}`);
    const r = await http('POST', `${f}/key`, { k: 'v' });
    expect(r.status).to.equal(503);
    expect((r.body as { error: { code: string } }).error.code).to.equal('NO_LEADER');
  });

  it('a leader that drops the connection after receiving the write is 504 TIMEOUT (outcome unknown)', async () => {
    let received = 0;
    const leader = createServer((req) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        received++;
        req.socket.destroy();
      });
    });
    servers.push(leader);
    const f = await follower(`127.0.0.1:${await listen(leader)}`);
    const r = await http('POST', `${f}/key`, { k: 'v' });
    expect(received).to.equal(1);
    expect(r.status).to.equal(504);
    expect((r.body as { error: { code: string } }).error.code).to.equal('TIMEOUT');
  });
});
