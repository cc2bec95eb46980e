/**
 * The rebuild procedure of docs/power-loss.md, done for real: three RocksDB nodes on loopback, one
 * member's write-ahead log damaged so that it refuses to start, then the documented steps (move the
 * directory aside, start the node empty with RAFT_JOIN_ADDR) until it is a caught-up voter again
 * under a new incarnation, serving every acknowledged write.
 */
import { expect } from 'chai';
import { closeSync, openSync, readdirSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { basePort, clusterView, http, nodeEnv, removeDir, restartNode, startNode, stopNode, tempDir, waitFor, waitForLeader, type NodeProc } from '../support/procs.js';

describe('rebuilding a damaged member from the others (docs/power-loss.md)', function () {
  this.timeout(180_000);
  const nodes: NodeProc[] = [];
  let dir = '';
  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    if (dir) removeDir(dir);
  });

  it('a member whose WAL is damaged refuses to start; moved aside and restarted with RAFT_JOIN_ADDR it rejoins as a new incarnation, catches up (snapshot) and serves every acknowledged write', async () => {
    dir = tempDir('raftkv-rebuild-');
    const port = basePort();
    const extra = { RAFT_DIR: dir, SNAPSHOT_THRESHOLD: '50', REQUEST_TIMEOUT_MS: '3000' };
    nodes.push(startNode('app1', nodeEnv(port, 1, { extra })));
    await waitForLeader([nodes[0]], 60_000);
    for (const i of [2, 3]) {
      nodes.push(startNode(`app${i}`, nodeEnv(port, i, { join: `127.0.0.1:${port + 1}`, extra })));
      await waitFor(`${i} voters`, async () => (await clusterView(nodes[0]))?.nodes.filter((n) => n.suffrage === 'voter').length === i, 60_000);
    }
    const [, , app3] = nodes;
    const acked = new Map<string, string>();
    const write = async (k: string, v: string) => {
      const leader = await waitForLeader(nodes.filter((n) => n.proc !== null), 30_000);
      const r = await http('POST', `${leader.api}/key`, { [k]: v });
      expect(r.status, r.text).to.equal(200);
      acked.set(k, v);
    };
    for (let i = 0; i < 40; i++) await write(`k${i}`, `v${i}`);
    const before = await clusterView(app3);

    // Damage app3's WAL in the middle (it holds the entries since the last flush): it must refuse.
    await stopNode(app3, 'SIGKILL');
    const db = join(dir, 'app3');
    const wal = readdirSync(db).filter((f) => f.endsWith('.log')).sort().pop();
    expect(wal, readdirSync(db).join(' ')).to.be.a('string');
    const fd = openSync(join(db, wal!), 'r+');
    writeSync(fd, Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa]), 0, 6, Math.floor(statSync(join(db, wal!)).size / 2));
    closeSync(fd);
    app3.output.length = 0;
    restartNode(app3);
    const code = await new Promise<number | null>((resolve) => app3.proc!.once('exit', (c) => resolve(c)));
    app3.proc = null;
    expect(code, app3.output.join('').slice(-1500)).to.equal(1);
    expect(app3.output.join('')).to.match(/refusing to start rather than serve wrong data.*docs\/power-loss.md/);

    // The cluster keeps going on two of three meanwhile.
    for (let i = 40; i < 120; i++) await write(`k${i}`, `v${i}`);

    // The procedure: move the directory aside, start the node empty with RAFT_JOIN_ADDR.
    renameSync(db, `${db}.damaged`);
    app3.env = { ...app3.env, RAFT_JOIN_ADDR: `127.0.0.1:${port + 1}` };
    restartNode(app3);
    const rejoined = await waitFor('app3 to be a caught-up voter under a new incarnation', async () => {
      const v = await clusterView(app3);
      const self = v?.nodes.find((n) => n.id === 'app3');
      const leader = await waitForLeader(nodes, 5000).catch(() => null);
      const lv = leader ? await clusterView(leader) : null;
      const row = lv?.nodes.find((n) => n.id === 'app3');
      return v !== null && self?.suffrage === 'voter' && self.incarnation === v.incarnation && row?.suffrage === 'voter' && row.lag === 0 ? v : null;
    }, 90_000);
    expect(rejoined.incarnation).to.not.equal(before?.incarnation);
    expect(rejoined.clusterId).to.equal(before?.clusterId);
    expect(rejoined.nodes.filter((n) => n.suffrage === 'voter').map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);

    for (let i = 120; i < 130; i++) await write(`k${i}`, `v${i}`);
    await waitFor('app3 to have applied everything', async () => {
      for (const [k, v] of acked) {
        const r = await http('GET', `${app3.api}/key/${k}?consistency=stale`);
        if (r.status !== 200 || JSON.stringify(r.body) !== JSON.stringify({ [k]: v })) return false;
      }
      return true;
    }, 30_000);
    // And it counts in the quorum again: with app1 gone, app2 and app3 still commit.
    await stopNode(nodes[0], 'SIGKILL');
    await write('after', 'x');
    for (const [k, v] of acked) expect((await http('GET', `${app3.api}/key/${k}`)).body, k).to.deep.equal({ [k]: v });
    expect(app3.output.join('')).to.match(/snapshot received from the leader and installed/);
  });
});
