import { expect } from 'chai';
import { basePort, clusterView, http, nodeEnv, removeDir, restartNode, startNode, stopNode, tempDir, waitFor, waitForLeader, type NodeProc } from '../support/procs.js';

/** The last log lines of every node, so a failed start-up carries the nodes' own account of it. */
function lastLogs(nodes: NodeProc[]): string {
  return nodes.map((n) => `--- ${n.id} (exit ${String(n.proc?.exitCode)}):\n${n.output.join('').split('\n').slice(-15).join('\n')}`).join('\n');
}

/**
 * Registers the enclosing suite's hooks: before, start `${name}1`, wait until it leads, start
 * `${name}2` and `${name}3` joining it (by host name) and wait for three voters (the nodes' logs on
 * failure); after, SIGKILL every node in `nodes` and remove the data dir. `envFor` builds the
 * environment of node `i` (with `extra`), also for nodes a test adds.
 */
function threeVoters(name: string, dirPrefix: string, extra: Record<string, string> = {}): { nodes: NodeProc[]; envFor: (i: number, join: boolean) => Record<string, string> } {
  const port = basePort();
  let dir = '';
  const nodes: NodeProc[] = [];
  const envFor = (i: number, join: boolean): Record<string, string> => nodeEnv(port, i, { name, join: join ? `localhost:${port + 1}` : null, extra: { RAFT_DIR: dir, ...extra } });
  const start = (i: number, join: boolean): NodeProc => startNode(`${name}${i}`, envFor(i, join));

  before(async () => {
    dir = tempDir(dirPrefix);
    nodes.push(start(1, false));
    await waitForLeader([nodes[0]]);
    nodes.push(start(2, true), start(3, true));
    try {
      await waitFor('three voters', async () => {
        const v = await clusterView(nodes[0]);
        return v && v.nodes.filter((n) => n.suffrage === 'voter').length === 3;
      }, 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${lastLogs(nodes)}`);
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    removeDir(dir);
  });

  return { nodes, envFor };
}

describe('integration: three real nodes on loopback with RocksDB', function () {
  this.timeout(180_000);
  const { nodes, envFor } = threeVoters('app', 'raftkv-it-');
  const acked = new Map<string, string>();

  async function setKey(n: NodeProc, k: string, v: string): Promise<number> {
    const r = await http('POST', `${n.api}/key`, { [k]: v });
    if (r.status === 200) acked.set(k, v);
    return r.status;
  }

  it('a write sent to a follower is forwarded, and every node reads it linearizably', async () => {
    const leader = await waitForLeader(nodes);
    const follower = nodes.find((n) => n !== leader) as NodeProc;
    const w = await http('POST', `${follower.api}/key`, { greeting: 'hello' });
    expect(w.status, w.text).to.equal(200);
    expect(w.body).to.deep.equal({ greeting: 'hello' });
    expect(w.headers['x-raft-leader']).to.equal(leader.id);
    acked.set('greeting', 'hello');
    for (const n of nodes) {
      const r = await http('GET', `${n.api}/key/greeting`);
      expect(r.status, `${n.id}: ${r.text}`).to.equal(200);
      expect(r.body).to.deep.equal({ greeting: 'hello' });
      expect(r.headers.etag).to.equal(`"${w.headers['x-raft-index']}"`);
    }
  });

  it('after SIGKILL of the leader a new leader takes writes, and the old one restarts with its data and catches up', async () => {
    for (let i = 0; i < 20; i++) expect(await setKey(nodes[i % 3], `before-${i}`, `v${i}`)).to.equal(200);
    const leader = await waitForLeader(nodes);
    const killedAt = Date.now();
    await stopNode(leader, 'SIGKILL');
    const others = nodes.filter((n) => n !== leader);
    await waitFor('a write after the leader was killed', async () => (await setKey(others[0], 'after-kill', 'yes')) === 200, 60_000, 50);
    const ms = Date.now() - killedAt;
    console.log(`      integration: leader SIGKILL to first successful write = ${ms} ms`);
    restartNode(leader);
    await waitFor('the restarted node to catch up', async () => {
      const r = await http('GET', `${leader.api}/key/after-kill?consistency=stale`);
      return r.status === 200;
    }, 60_000);
    for (let i = 0; i < 20; i++) {
      const r = await http('GET', `${leader.api}/key/before-${i}?consistency=stale`);
      expect(r.body).to.deep.equal({ [`before-${i}`]: `v${i}` });
    }
  });

  it('SIGTERM of the whole cluster and a restart keeps every acknowledged key', async () => {
    for (let i = 0; i < 30; i++) await setKey(nodes[i % 3], `k${i}`, `value-${i}`);
    const codes = await Promise.all(nodes.map((n) => stopNode(n, 'SIGTERM')));
    expect(codes).to.deep.equal([0, 0, 0]);
    for (const n of nodes) restartNode(n);
    await waitForLeader(nodes, 60_000);
    for (const [k, v] of acked) {
      const r = await waitFor(`key ${k}`, async () => {
        const res = await http('GET', `${nodes[0].api}/key/${encodeURIComponent(k)}`);
        return res.status === 200 ? res : null;
      });
      expect(r.body).to.deep.equal({ [k]: v });
    }
  });

  it('a fourth node joins through a follower, becomes a voter, and is then removed', async () => {
    const leader = await waitForLeader(nodes);
    const follower = nodes.find((n) => n !== leader) as NodeProc;
    const fourth = startNode('app4', { ...envFor(4, false), RAFT_JOIN_ADDR: `127.0.0.1:${follower.apiPort}` });
    nodes.push(fourth);
    await waitFor('four voters', async () => {
      const v = await clusterView(leader);
      return v && v.nodes.filter((n) => n.suffrage === 'voter').length === 4;
    }, 60_000);
    await waitFor('app4 to serve reads', async () => (await http('GET', `${fourth.api}/key/greeting`)).status === 200);
    const del = await http('DELETE', `${follower.api}/cluster/nodes/app4`);
    expect(del.status, del.text).to.equal(200);
    const v = await clusterView(leader);
    expect(v?.nodes.map((n) => n.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    expect(await setKey(follower, 'after-remove', 'ok')).to.equal(200);
  });
});

describe('integration: snapshots and leadership transfer with three real nodes (SNAPSHOT_THRESHOLD=50)', function () {
  this.timeout(180_000);
  const { nodes } = threeVoters('snap', 'raftkv-it-snap-', { SNAPSHOT_THRESHOLD: '50' });

  it('a follower SIGKILLed while the leader compacts past it restarts and catches up via InstallSnapshot with every key', async () => {
    const leader = await waitForLeader(nodes);
    const follower = nodes.find((n) => n !== leader) as NodeProc;
    await stopNode(follower, 'SIGKILL');
    const total = 300;
    const keys = Array.from({ length: total }, (_, i) => `snapkey-${i}`);
    for (let i = 0; i < total; i += 10) {
      const codes = await Promise.all(keys.slice(i, i + 10).map((k) => http('POST', `${leader.api}/key`, { [k]: `value-of-${k}` }).then((r) => r.status)));
      expect(codes.every((c) => c === 200), `writes ${i}..${i + 9}: ${codes.join(',')}`).to.equal(true);
    }
    const lv = await clusterView(leader);
    expect(lv?.snapshotIndex, 'the leader compacted its log').to.be.greaterThan(200);
    follower.output.length = 0;
    restartNode(follower);
    await waitFor('the restarted follower to apply the last write', async () => {
      const r = await http('GET', `${follower.api}/key/${keys[total - 1]}?consistency=stale`);
      return r.status === 200;
    }, 60_000);
    expect(follower.output.join(''), 'the follower installed a snapshot from the leader').to.contain('snapshot received from the leader and installed');
    for (const k of keys) {
      const r = await http('GET', `${follower.api}/key/${k}?consistency=stale`);
      expect(r.status, `${k}: ${r.text}`).to.equal(200);
      expect(r.body).to.deep.equal({ [k]: `value-of-${k}` });
    }
    // The follower keeps replicating normally after the snapshot.
    expect((await http('POST', `${leader.api}/key`, { 'after-snapshot': 'yes' })).status).to.equal(200);
    await waitFor('the follower to apply a write after the snapshot', async () => (await http('GET', `${follower.api}/key/after-snapshot?consistency=stale`)).status === 200);
  });

  it('SIGTERM of the leader hands leadership over: another node leads by the time the old process exits 0', async () => {
    const leader = await waitForLeader(nodes);
    const before = await clusterView(leader);
    const others = nodes.filter((n) => n !== leader);
    const started = Date.now();
    const code = await stopNode(leader, 'SIGTERM');
    const exitMs = Date.now() - started;
    expect(code).to.equal(0);
    // No waiting here: a transfer completes before the old leader exits; without one, the followers
    // would still be within their election timeout and nobody would lead yet.
    const views = await Promise.all(others.map((n) => clusterView(n)));
    const newLeader = views.find((v) => v?.role === 'leader');
    expect(newLeader, `views at exit: ${JSON.stringify(views)}`).to.not.equal(undefined);
    expect(newLeader?.term).to.be.greaterThan(before?.term ?? 0);
    expect(leader.output.join('')).to.contain('leadership handed over');
    console.log(`      integration: leader SIGTERM to exit (leadership handed over) = ${exitMs} ms`);
    expect((await http('POST', `${others[0].api}/key`, { 'after-transfer': 'ok' })).status).to.equal(200);
  });
});
