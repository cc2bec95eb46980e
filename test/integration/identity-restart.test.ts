/**
 * The README quickstart's restart, as a user does it (issue 14 §2, "phantom replica"): three in-memory
 * nodes on loopback, node 1 stopped with Ctrl-C and started again with the same command. Before
 * cluster ids and incarnations, the restarted node bootstrapped a one-node cluster of its own, the old
 * cluster's leader probed it, the follower-side shortcut answered "success" and the leader counted it
 * as caught up (matchIndex beyond anything it held). Now the old cluster refuses the foreign node at
 * the handshake and never counts it; started with RAFT_JOIN_ADDR it rejoins as a new member and
 * converges.
 */
import { expect } from 'chai';
import { basePort, clusterView, http, nodeEnv, restartNode, startNode, stopNode, waitFor, waitForLeader, type NodeProc } from '../support/procs.js';
import type { LocalClusterView } from '../../src/api/cluster-types.js';

/** Members the leader claims hold entries their own process does not (same incarnation, matchIndex > its lastIndex). */
async function phantomMatches(leader: NodeProc, nodes: NodeProc[]): Promise<string[]> {
  // The leader's view first, then each member's own: a member's log only grows under one leader, so
  // its later lastIndex is at least the match the leader recorded earlier.
  const lv = await clusterView(leader);
  if (!lv || lv.role !== 'leader') return [];
  const out: string[] = [];
  for (const n of nodes) {
    if (n === leader || n.proc === null) continue;
    const own: LocalClusterView | null = await clusterView(n);
    const row = lv.nodes.find((m) => m.id === n.id);
    if (!own || !row || row.matchIndex === undefined) continue;
    if ((row.incarnation ?? '') !== (own.incarnation ?? '')) continue; // the leader's record is of another process
    if (row.matchIndex > own.lastIndex) out.push(`${n.id}: leader matchIndex ${row.matchIndex} > its lastIndex ${own.lastIndex}`);
  }
  return out;
}

describe('quickstart restart of an in-memory node (cluster identity)', function () {
  this.timeout(180_000);
  const nodes: NodeProc[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  });

  it('a node restarted empty with the same command is refused by its old cluster and never counted; with RAFT_JOIN_ADDR it rejoins as a new member and converges', async () => {
    const port = basePort();
    const join = `127.0.0.1:${port + 1}`;
    nodes.push(startNode('app1', nodeEnv(port, 1)));
    await waitForLeader([nodes[0]], 60_000);
    for (const i of [2, 3]) {
      nodes.push(startNode(`app${i}`, nodeEnv(port, i, { join })));
      await waitFor(`${i} voters`, async () => (await clusterView(nodes[0]))?.nodes.filter((n) => n.suffrage === 'voter').length === i, 60_000);
    }
    const [app1, app2, app3] = nodes;
    for (let i = 0; i < 5; i++) expect((await http('POST', `${app2.api}/key`, { [`k${i}`]: `v${i}` })).status).to.equal(200);
    const oldCluster = (await clusterView(app2))?.clusterId;

    // Ctrl-C, then the same command again: a new one-node cluster.
    await stopNode(app1, 'SIGINT');
    restartNode(app1);
    await waitFor('app1 to answer again', async () => (await clusterView(app1)) !== null, 30_000);

    // The old cluster keeps committing with app2 and app3, and never counts app1 for anything.
    const seen: string[] = [];
    const until = Date.now() + 5000;
    for (let i = 5; Date.now() < until; i++) {
      const leader = await waitForLeader([app2, app3], 30_000);
      expect((await http('POST', `${leader.api}/key`, { [`k${i}`]: `v${i}` })).status).to.equal(200);
      seen.push(...(await phantomMatches(leader, nodes)));
    }
    expect([...new Set(seen)], [...new Set(seen)].join('; ')).to.deep.equal([]);
    const foreign = await clusterView(app1);
    expect(foreign?.clusterId).to.be.a('string').and.not.equal(oldCluster);
    expect(foreign?.role).to.equal('leader'); // of its own one-node cluster
    expect((await http('GET', `${app1.api}/key/k0?consistency=stale`)).status).to.equal(404); // nothing of the old history

    // The command the node's warning names: start it empty with RAFT_JOIN_ADDR. It replaces its old
    // incarnation as a learner, catches up, is promoted, and converges.
    await stopNode(app1, 'SIGINT');
    app1.env = { ...app1.env, RAFT_JOIN_ADDR: `127.0.0.1:${port + 2}` };
    restartNode(app1);
    await waitFor('app1 to rejoin as a voter of the old cluster', async () => {
      const v = await clusterView(app1);
      return v !== null && v.clusterId === oldCluster && v.nodes.find((n) => n.id === 'app1')?.suffrage === 'voter' && v.nodes.find((n) => n.id === 'app1')?.incarnation === v.incarnation;
    }, 60_000);
    const leader = await waitForLeader([app1, app2, app3], 30_000);
    expect((await http('POST', `${leader.api}/key`, { last: 'x' })).status).to.equal(200);
    await waitFor('every member to apply the same index', async () => {
      const views = await Promise.all([app1, app2, app3].map((n) => clusterView(n)));
      return views.every((v) => v !== null && v.appliedIndex === views[0]?.appliedIndex && v.appliedIndex === v.commitIndex);
    }, 30_000);
    for (const k of ['k0', 'k4', 'last']) expect((await http('GET', `${app1.api}/key/${k}?consistency=stale`)).status, k).to.equal(200);
    expect(await phantomMatches(await waitForLeader([app1, app2, app3], 30_000), nodes)).to.deep.equal([]);
  });
});
