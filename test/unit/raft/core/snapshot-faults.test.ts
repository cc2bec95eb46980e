/**
 * Snapshots under faults, through the unit harness: random compaction on every node, message loss,
 * duplication, reordering and long delays, partitions and crash-restarts from persisted state. Checks that no two
 * nodes ever hold different commands at one state-machine position and that all converge after healing.
 * (The full invariant suite lives in the simulator; this is a focused regression net for Raft §7.)
 * Commit indices must never go back (except across a restart).
 */
import { expect } from 'chai';
import { Raft, defaultRaftOptions } from '../../../../src/raft/core/raft.js';
import type { Message } from '../../../../src/raft/core/types.js';
import { makeRng } from '../../../sim/rng.js';
import { TestNet, testNode } from './harness.js';

/** Runs one seed; returns the number of snapshots installed from a leader, or throws on a violation. */
function runSeed(seed: number): number {
  const r = makeRng(seed);
  const ids = ['a', 'b', 'c'];
  const chunk = 1 + Math.floor(r() * 40);
  const tail = Math.floor(r() * 3);
  const net = new TestNet(ids, { tune: (o) => { o.maxSnapshotChunkBytes = chunk; o.compactionTailEntries = tail; } });
  const seen = new Map<number, string>();
  const lastCommit = new Map<string, number>();
  let installs = 0;
  let written = 0;
  let late: { at: number; m: Message }[] = [];
  const check = (when: string): void => {
    for (const id of ids) {
      const commit = net.raft(id).status().commitIndex;
      if (commit < (lastCommit.get(id) ?? 0)) throw new Error(`seed ${seed} ${when}: ${id} commit index went back from ${lastCommit.get(id)} to ${commit}`);
      lastCommit.set(id, commit);
      const sm = net.node(id).sm;
      for (let i = 0; i < sm.length; i++) {
        const other = seen.get(i);
        if (other === undefined) seen.set(i, sm[i]);
        else if (other !== sm[i]) throw new Error(`seed ${seed} ${when}: ${id} holds ${sm[i]} at ${i}, another node ${other}`);
      }
    }
  };
  for (let step = 0; step < 400; step++) {
    for (const id of ids) net.raft(id).tick();
    const leader = net.leaders()[0];
    if (leader && r() < 0.5) net.raft(leader).propose(`v${written++}`);
    if (r() < 0.05) {
      // Half the compactions keep no data (the state machine holds it), as the RocksDB driver does.
      const id = ids[Math.floor(r() * 3)];
      if (r() < 0.5) net.compact(id);
      else net.compactWithoutData(id);
    }
    // A leader asking for snapshot data gets it some time later.
    for (const id of ids) if (net.raft(id).needsSnapshotData && r() < 0.3) net.supplySnapshot(id);
    if (r() < 0.02) net.isolate(ids[Math.floor(r() * 3)]);
    if (r() < 0.05) net.heal();
    if (r() < 0.01) {
      // Crash and restart one node from what it persisted.
      const id = ids[Math.floor(r() * 3)];
      const old = net.node(id);
      installs += old.installed.length;
      const o = defaultRaftOptions(id, makeRng(seed * 31 + step));
      o.maxSnapshotChunkBytes = chunk;
      o.compactionTailEntries = tail;
      const snap = old.persistedSnapshot;
      const fresh = testNode(new Raft(o, { hardState: old.persistedHardState, snapshot: snap, entries: old.persistedEntries, applied: snap?.meta.lastIndex ?? 0 }));
      fresh.persistedHardState = old.persistedHardState;
      fresh.persistedEntries = old.persistedEntries;
      fresh.persistedSnapshot = snap;
      fresh.persistedSm = old.persistedSm;
      if (snap) {
        fresh.sm = snap.data === null ? [...old.persistedSm] : (JSON.parse(snap.data) as string[]);
        fresh.smIndex = snap.meta.lastIndex;
      }
      net.nodes.set(id, fresh);
      lastCommit.delete(id);
    }
    for (let round = 0; round < 3; round++) {
      net.processAll();
      const batch: Message[] = net.inFlight;
      net.inFlight = [];
      for (let i = batch.length - 1; i > 0; i--) {
        if (r() < 0.3) {
          const j = Math.floor(r() * (i + 1));
          [batch[i], batch[j]] = [batch[j], batch[i]];
        }
      }
      // Some messages arrive much later (stale chunks, acks of old rounds).
      const due = late.filter((l) => l.at <= step);
      late = late.filter((l) => l.at > step);
      batch.push(...due.map((l) => l.m));
      for (const m of batch) {
        if (net.blocked.has(`${m.from}->${m.to}`) || r() < 0.1) continue;
        if (r() < 0.05) {
          late.push({ at: step + 1 + Math.floor(r() * 20), m });
          continue;
        }
        const to = net.nodes.get(m.to);
        if (!to) continue;
        to.raft.step(m);
        if (r() < 0.05) to.raft.step(m);
        const commit = to.raft.status().commitIndex;
        if (commit < (lastCommit.get(m.to) ?? 0)) throw new Error(`seed ${seed} step ${step}: ${m.to} commit index went back from ${lastCommit.get(m.to)} to ${commit} on ${m.type}`);
        lastCommit.set(m.to, commit);
      }
    }
    check(`step ${step}`);
  }
  // Heal and let every node converge, then commit one more write everywhere.
  net.heal();
  const supplyAsked = (): void => {
    for (const id of ids) if (net.raft(id).needsSnapshotData) net.supplySnapshot(id);
  };
  for (let i = 0; i < 200; i++) {
    for (const id of ids) net.raft(id).tick();
    supplyAsked();
    net.deliverAll(20_000);
  }
  const leader = net.leaders()[0];
  if (!leader) throw new Error(`seed ${seed}: no leader after healing`);
  net.raft(leader).propose('final');
  for (let i = 0; i < 30; i++) {
    for (const id of ids) net.raft(id).tick();
    supplyAsked();
    net.deliverAll(20_000);
  }
  check('after healing');
  const sms = ids.map((id) => JSON.stringify(net.node(id).sm));
  if (sms.some((s) => s !== sms[0]) || !sms[0].endsWith('"final"]')) {
    throw new Error(`seed ${seed}: nodes did not converge: ${ids.map((id) => `${id} applied ${net.node(id).smIndex}`).join(', ')}`);
  }
  return installs + ids.reduce((n, id) => n + net.node(id).installed.length, 0);
}

describe('raft core: snapshots under loss, reordering, partitions and crashes (Raft §7)', function () {
  this.timeout(120_000);
  it('200 seeds: no two nodes apply different commands at one position, and all converge after healing', () => {
    let installs = 0;
    const failures: string[] = [];
    for (let seed = 1; seed <= 200; seed++) {
      try {
        installs += runSeed(seed);
      } catch (err) {
        failures.push((err as Error).message.slice(0, 300));
      }
    }
    expect(failures).to.deep.equal([]);
    // The seeds really do exercise InstallSnapshot, not just compaction.
    expect(installs).to.be.greaterThan(50);
  });
});
