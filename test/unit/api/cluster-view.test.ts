import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fullClusterView, LAGGING_ENTRIES, NO_CONTACT_MS } from '../../../src/api/cluster-view.js';
import type { RaftNode } from '../../../src/raft/node/node.js';
import type { RaftStatus } from '../../../src/raft/core/types.js';

/** A member's own /cluster answer, served over real HTTP. */
async function serve(body: unknown): Promise<{ addr: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function view(id: string, role: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id, role, leader: { id: 'a', apiAddr: null }, term: 7, commitIndex: 2000, appliedIndex: 1990, lastIndex: 2000, nodes: [], ...extra };
}

describe('/cluster?view=all merges each member\'s own report with the leader\'s progress', () => {
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  });

  it('roles and indexes from each member, match/lag/last contact from the leader, health from both', async () => {
    const deadPort = await (async () => {
      const s = createServer();
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      const p = (s.address() as AddressInfo).port;
      await new Promise<void>((resolve) => s.close(() => resolve()));
      return p;
    })();
    const c = await serve(view('c', 'follower', { appliedIndex: 900 }));
    const d = await serve(view('d', 'follower'));
    const leaderNodes = [
      { id: 'a', role: 'leader', matchIndex: 2000, lag: 0, lastContactMs: 0 },
      { id: 'b', role: 'follower', matchIndex: 2000, lag: 0, lastContactMs: 50 },
      { id: 'c', role: 'follower', matchIndex: 900, lag: 2000 - 900, lastContactMs: 50 },
      { id: 'd', role: 'follower', matchIndex: 2000, lag: 0, lastContactMs: NO_CONTACT_MS + 1 },
      { id: 'e', role: 'follower', matchIndex: 0, lag: 2000, lastContactMs: 9000 },
    ];
    const a = await serve(view('a', 'leader', { nodes: leaderNodes }));
    servers.push(a.server, c.server, d.server);
    const members = [
      { id: 'a', apiAddr: a.addr }, { id: 'b', apiAddr: '127.0.0.1:1' }, { id: 'c', apiAddr: c.addr }, { id: 'd', apiAddr: d.addr }, { id: 'e', apiAddr: `127.0.0.1:${deadPort}` },
    ].map((m) => ({ ...m, raftAddr: 'x:1', suffrage: 'voter' as const }));
    const status: RaftStatus = {
      id: 'b', role: 'follower', term: 7, votedFor: 'a', leaderId: 'a', commitIndex: 2000, appliedIndex: 2000, lastIndex: 2000, snapshotIndex: 0, config: { members }, peers: [],
    };
    const node = { status: () => status, memberApiAddr: (id: string) => members.find((m) => m.id === id)?.apiAddr ?? null, appliedIndex: () => 2000, identity: () => ({ clusterId: 'c1', incarnation: 'i1' }) } as unknown as RaftNode;

    const v = await fullClusterView(node, 'b', 50);
    expect(v.view).to.equal('all');
    expect(v.leader).to.deep.equal({ id: 'a', apiAddr: a.addr });
    const row = (id: string) => v.nodes.find((n) => n.id === id)!;
    expect(row('a')).to.include({ role: 'leader', reachable: true, term: 7, matchIndex: 2000, health: 'ok' });
    expect(row('b')).to.include({ role: 'follower', reachable: true, appliedIndex: 2000, lag: 0, lastContactMs: 50, health: 'ok' });
    expect(1100).to.be.greaterThan(LAGGING_ENTRIES);
    expect(row('c')).to.include({ appliedIndex: 900, lag: 1100, health: 'lagging' });
    expect(row('d')).to.include({ reachable: true, health: 'no-contact' });
    expect(row('e')).to.include({ reachable: false, term: null, role: 'follower', health: 'unreachable' });
    expect(row('e').error).to.equal('ECONNREFUSED');
  });
});
