/**
 * Issue 14 §3 with real processes: a follower that needs a snapshot catches up while writes continue
 * and the leader keeps compacting (SNAPSHOT_THRESHOLD=10: a compaction every 10 entries, many during
 * one transfer and during the install). The leader keeps the entries after the snapshot it is sending,
 * and after the transfer those the follower still needs, so the follower installs exactly one
 * snapshot and continues by AppendEntries; without those holds it is sent snapshot after snapshot
 * (33-45 in one run). The figures for a million keys come from `BENCH_ONLY=catchup make bench`
 * (bench/catchup.ts); this test asserts no speed.
 */
import { expect } from 'chai';
import { basePort, clusterView, http, nodeEnv, removeDir, restartNode, startNode, stopNode, tempDir, waitFor, waitForLeader, type NodeProc } from '../support/procs.js';

async function snapshotsInstalled(n: NodeProc): Promise<number> {
  const r = await http('GET', `${n.api}/metrics`);
  const m = /^raftkv_raft_snapshots_installed_total(?:\{[^}]*\})? (\S+)$/m.exec(r.text);
  if (!m) throw new Error(`no raftkv_raft_snapshots_installed_total in ${n.id}'s metrics (status ${r.status})`);
  return Number(m[1]);
}

describe('integration: snapshot catch-up under steady writes (SNAPSHOT_THRESHOLD=10, real nodes)', function () {
  this.timeout(240_000);
  const port = basePort();
  let dir = '';
  const nodes: NodeProc[] = [];

  before(async () => {
    dir = tempDir('raftkv-it-catchup-');
    const env = (i: number) => nodeEnv(port, i, { name: 'cu', join: i === 1 ? null : `127.0.0.1:${port + 1}`, extra: { RAFT_DIR: dir, SNAPSHOT_THRESHOLD: '10' } });
    nodes.push(startNode('cu1', env(1)));
    await waitForLeader([nodes[0]]);
    nodes.push(startNode('cu2', env(2)), startNode('cu3', env(3)));
    await waitFor('three voters', async () => {
      const v = await clusterView(nodes[0]);
      return v && v.nodes.filter((n) => n.suffrage === 'voter').length === 3;
    }, 60_000);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    removeDir(dir);
  });

  it('a follower that needs a snapshot installs one and reaches the commit index while the leader keeps writing and compacting', async () => {
    const leader = await waitForLeader(nodes);
    const follower = nodes.find((n) => n !== leader) as NodeProc;
    // A state of a few MB (several 512 KB chunks): 20,000 keys of 200 bytes.
    const value = 'v'.repeat(200);
    for (let b = 0; b < 20; b++) {
      const pairs: Record<string, string> = {};
      for (let i = 0; i < 1000; i++) pairs[`k${b}-${i}`] = value;
      const r = await http('POST', `${leader.api}/key`, pairs);
      expect(r.status, r.text).to.equal(200);
    }
    const before = await clusterView(follower);
    expect(before, 'the follower answers').to.not.equal(null);
    await stopNode(follower, 'SIGTERM');

    // Steady writes from 4 clients until the end of the test.
    let isWriting = true;
    let writesOk = 0;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; isWriting; i++) {
        const r = await http('POST', `${leader.api}/key`, { [`w${w}-${i % 500}`]: value });
        if (r.status === 200) writesOk++;
        else await new Promise((res) => setTimeout(res, 20));
      }
    });
    try {
      await waitFor('the leader to compact past the stopped follower', async () => ((await clusterView(leader))?.snapshotIndex ?? 0) > (before?.lastIndex ?? 0) + 100, 60_000);
      restartNode(follower);
      let caughtUp: { applied: number; commit: number } | null = null;
      let last = '';
      await waitFor('the follower to reach the leader\'s commit index while writes continue', async () => {
        const lv = await clusterView(leader);
        const fv = await clusterView(follower);
        last = `leader commit=${lv?.commitIndex} snapshot=${lv?.snapshotIndex}; follower applied=${fv?.appliedIndex} snapshot=${fv?.snapshotIndex}`;
        if (!lv || !fv || fv.appliedIndex < lv.commitIndex) return false;
        caughtUp = { applied: fv.appliedIndex, commit: lv.commitIndex };
        return true;
      }, 120_000, 50).catch(async (err: unknown) => {
        const installed = await snapshotsInstalled(follower).catch(() => NaN);
        throw new Error(`${(err as Error).message} (${last}; snapshots installed ${installed}; writes ok ${writesOk})\n${follower.output.join('').split('\n').slice(-15).join('\n')}`);
      });
      expect(caughtUp).to.not.equal(null);
      const written = writesOk;
      // Writes went on during the catch-up, and it took exactly one snapshot.
      await waitFor('more writes after the catch-up', async () => writesOk > written + 20, 30_000);
      expect(await snapshotsInstalled(follower), 'snapshots the follower installed').to.equal(1);
    } finally {
      isWriting = false;
      await Promise.all(writers);
    }
    // Still replicating by AppendEntries afterwards.
    expect((await http('POST', `${leader.api}/key`, { 'after-catchup': 'yes' })).status).to.equal(200);
    await waitFor('the follower to apply a write after the catch-up', async () => (await http('GET', `${follower.api}/key/after-catchup?consistency=stale`)).status === 200, 30_000);
    expect(await snapshotsInstalled(follower), 'snapshots the follower installed').to.equal(1);
  });
});
