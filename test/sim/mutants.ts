/**
 * Mutation testing of the simulator: each mutant is a textual patch of one src/raft/core file. The
 * core is copied to a temp dir, patched, imported, and run for up to MUTANT_SEEDS seeds; the mutant is
 * killed when any seed reports a violation. A state-machine mutant (`file: ''`) patches nothing: it
 * plants a bug in the simulated state machine through SimOptions.smMutant (storage.ts SmMutant) or in
 * the simulated lease driver through SimOptions.leaseMutant.  `npm run sim:mutants [name...]`
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CORE_DIR, loadRaft } from './cluster.js';
import { runSeed, nodesForSeed } from './run.js';
import type { RaftModule, SimOptions } from './cluster.js';

/** Seed budget per mutant for `npm run sim:mutants`. */
export const MUTANT_SEEDS = 200;

/**
 * A planted bug: replace `search` (which must occur exactly once) in `file` of src/raft/core. `sim`
 * overrides simulator options (the interleaving mode for bugs only a live core between ready() and
 * advance() can show).
 */
export interface Mutant { name: string; file: string; search: string; replace: string; sim?: Partial<SimOptions> }

/**
 * Each mutant replaces the code right after its `// MUTATION-POINT: <name>` marker in src/raft/core;
 * `search` must match exactly once (the marker line is part of it, so a drifted core is reported as
 * broken-patch rather than silently unmutated).
 */
export const MUTANTS: Mutant[] = [
  {
    // The vote is granted in memory and sent, but HardState is not flagged dirty: not persisted first.
    name: 'persist-vote',
    file: 'raft.ts',
    search: '      // MUTATION-POINT: persist-vote\n      this.isHardStateDirty = true;\n',
    replace: '      // MUTATION-POINT: persist-vote (mutant: vote kept in memory only)\n',
  },
  {
    // The leader commits the highest index on a majority even when it is of an earlier term (Figure 8).
    name: 'figure8-commit',
    file: 'raft.ts',
    search: '    // MUTATION-POINT: figure8-commit\n    if (n > this.commitIndex && this.log.termAt(n) === this.term) {',
    replace: '    // MUTATION-POINT: figure8-commit (mutant: any term)\n    if (n > this.commitIndex) {',
  },
  {
    // The follower truncates at the first entry it already holds, conflicting or not, so a stale or
    // duplicated AppendEntries chops entries it has acknowledged.
    name: 'truncate-on-conflict',
    file: 'log.ts',
    search: '      if (existing === e.term) continue;\n      if (existing !== undefined) {\n        // MUTATION-POINT: truncate-on-conflict\n',
    replace: '      if (existing !== undefined) {\n        // MUTATION-POINT: truncate-on-conflict (mutant: no term comparison)\n',
  },
  {
    // The leader serves ReadIndex at once, without waiting for a quorum to confirm its leadership.
    name: 'readindex-quorum',
    file: 'read-index.ts',
    search: '    // MUTATION-POINT: readindex-quorum\n    const confirmedCtx = quorumMin(acked);',
    replace: '    // MUTATION-POINT: readindex-quorum (mutant: no quorum round)\n    const confirmedCtx = acked.length >= 0 ? this.roundCtx : 0;',
  },
  {
    // A second membership change is accepted while the first is still uncommitted.
    name: 'one-conf-change',
    file: 'membership.ts',
    search: '    // MUTATION-POINT: one-conf-change\n    return this.currentIndex > commitIndex;\n',
    replace: '    // MUTATION-POINT: one-conf-change (mutant: no pending check)\n    return commitIndex < 0;\n',
  },
  {
    // Snapshot data serialised at a newer applied index is attached to the older snapshot's metadata
    // instead of compacting at that index: followers install state that does not match its index.
    name: 'supply-index',
    file: 'raft.ts',
    search: '    // MUTATION-POINT: supply-index\n    if (index === held.meta.lastIndex) this.snapshot = { meta: held.meta, data };\n',
    replace: '    // MUTATION-POINT: supply-index (mutant: any index)\n    if (index >= held.meta.lastIndex) this.snapshot = { meta: held.meta, data };\n',
  },
  {
    // Thesis §10.2.1: the leader counts its own log toward the commit quorum before its own fsync
    // (it sends first). Only the interleaving mode lets followers answer while that write is in flight.
    name: 'leader-self-stable',
    file: 'raft.ts',
    search: '    // MUTATION-POINT: leader-self-stable\n    const matches = this.membership.voterIds().map((id) => (id === this.id ? this.log.stableIndex :',
    replace: '    // MUTATION-POINT: leader-self-stable (mutant: unsynced entries count)\n    const matches = this.membership.voterIds().map((id) => (id === this.id ? this.log.lastIndex :',
    sim: { interleave: true },
  },
  {
    // The stable index moves only when the last entry of the acknowledged Ready is still in the log
    // (the code before issue 14 §1): a truncation stepped in during the fsync leaves the persisted
    // prefix unstable, behind the applied index, and it is written again.
    name: 'stable-prefix',
    file: 'log.ts',
    search: '    // MUTATION-POINT: stable-prefix\n    for (const e of entries) {',
    replace: '    // MUTATION-POINT: stable-prefix (mutant: all or nothing)\n    const lastE = entries[entries.length - 1];\n    if (this.termAt(lastE.index) === lastE.term) stable = Math.max(stable, lastE.index);\n    for (const e of [] as Entry[]) {',
    sim: { interleave: true },
  },
  {
    // A voter drops every message from an incarnation of a member that its configuration does not
    // record yet (the rule before docs/cluster-identity.md "Votes and lagging voters"): a voter lagging
    // behind the entry recording a rejoined node's new incarnation never votes for it nor follows it.
    name: 'unrecorded-incarnation-requests',
    file: 'raft.ts',
    search: "      // MUTATION-POINT: unrecorded-incarnation-requests\n      if (m.type === 'RequestVote' || m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot' || m.type === 'TimeoutNow') return true;\n",
    replace: '      // MUTATION-POINT: unrecorded-incarnation-requests (mutant: dropped)\n',
    sim: { scenarios: ['amnesia'] },
  },
  {
    // A learner is promoted before it holds the committed log: an empty node becomes a voter that does
    // not know it is one, and never answers a vote request until some leader reaches it.
    name: 'promote-caught-up',
    file: 'membership.ts',
    search: "      // MUTATION-POINT: promote-caught-up\n      if (change.id !== ctx.selfId && (match === undefined || match < ctx.commitIndex)) return { ok: false, reason: 'not-caught-up' };\n",
    replace: '      // MUTATION-POINT: promote-caught-up (mutant: any learner)\n',
    sim: { scenarios: ['amnesia'] },
  },
  {
    // Issue 16: the proposing leader decides a conditional write's condition against what it has
    // applied, the entry carries the verdict, and apply trusts it (entries still in flight ignored).
    name: 'propose-time-condition',
    file: '',
    search: '',
    replace: '',
    sim: { smMutant: 'propose-verdict' },
  },
  {
    // Issue 16: apply ignores If-None-Match on multi-key conditional writes (create-only batches).
    name: 'multi-create-ignored',
    file: '',
    search: '',
    replace: '',
    sim: { smMutant: 'multi-create' },
  },
  {
    // Issue 17: apply ignores lease-expire's term fence, so an expiry a deposed leader appended is
    // carried out when a later leader commits it (a lease renewed through the new leader is deleted).
    name: 'expiry-term-fence',
    file: '',
    search: '',
    replace: '',
    sim: { leases: true, smMutant: 'no-term-fence' },
  },
  {
    // Issue 17: every replica also expires leases on its own clock (grant or checkpoint applied +
    // remaining time) instead of waiting for the leader's lease-expire entry.
    name: 'expiry-own-clock',
    file: '',
    search: '',
    replace: '',
    sim: { leases: true, leaseMutant: 'own-clock' },
  },
  {
    // Issue 17: a new leader gives every inherited lease its full TTL again (ignores the checkpoints),
    // so a lease nobody renews outlives the documented bound when leaders change.
    name: 'lease-reset-on-election',
    file: '',
    search: '',
    replace: '',
    sim: { leases: true, leaseMutant: 'reset-on-election' },
  },
];

/** What happened to one mutant: killed (with the first seed that caught it), survived, or the patch did not apply. */
export type MutantOutcome =
  | { name: string; status: 'killed'; seed: number; nodes: number; step: number; msg: string }
  | { name: string; status: 'survived'; seeds: number }
  | { name: string; status: 'broken-patch'; detail: string };

function countOccurrences(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** Copies the core to a temp dir, applies the mutant, and runs seeds 1..maxSeeds until one reports a violation. */
export async function runMutant(m: Mutant, maxSeeds = MUTANT_SEEDS, steps = 3000): Promise<MutantOutcome> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `raft-mutant-${m.name}-`));
  try {
    for (const f of fs.readdirSync(CORE_DIR)) if (f.endsWith('.ts')) fs.copyFileSync(path.join(CORE_DIR, f), path.join(dir, f));
    if (m.file === '') return runSeedsOf(m, await loadRaft(), maxSeeds, steps);
    const target = path.join(dir, m.file);
    if (!fs.existsSync(target)) return { name: m.name, status: 'broken-patch', detail: `no file ${m.file}` };
    const src = fs.readFileSync(target, 'utf8');
    const n = countOccurrences(src, m.search);
    if (n !== 1) return { name: m.name, status: 'broken-patch', detail: `search matched ${n} times` };
    fs.writeFileSync(target, src.replace(m.search, () => m.replace));
    let raft;
    try { raft = await loadRaft(path.join(dir, 'raft.ts')); } catch (e) {
      return { name: m.name, status: 'broken-patch', detail: `import failed: ${(e as Error).message}` };
    }
    return runSeedsOf(m, raft, maxSeeds, steps);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function runSeedsOf(m: Mutant, raft: RaftModule, maxSeeds: number, steps: number): MutantOutcome {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const nodes = nodesForSeed(seed);
    const r = runSeed(raft, seed, steps, nodes, undefined, m.sim ?? {});
    if (r.violations.length) return { name: m.name, status: 'killed', seed, nodes, step: r.violations[0]!.step, msg: r.violations[0]!.msg };
  }
  return { name: m.name, status: 'survived', seeds: maxSeeds };
}

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  let killed = 0, counted = 0;
  for (const m of MUTANTS) {
    if (only.length > 0 && !only.includes(m.name)) continue;
    const t0 = Date.now();
    const o = await runMutant(m);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    counted++;
    if (o.status === 'killed') {
      killed++;
      console.log(`mutant ${m.name}: killed by seed ${o.seed} (nodes=${o.nodes}) at step ${o.step} in ${secs}s: ${o.msg}`);
    } else if (o.status === 'survived') console.log(`mutant ${m.name}: SURVIVED ${o.seeds} seeds (${secs}s)`);
    else console.log(`mutant ${m.name}: broken-patch (${o.detail})`);
  }
  console.log(`mutants: killed=${killed}/${counted}`);
  process.exitCode = killed === counted ? 0 : 1;
}

if (/[\\/]test[\\/]sim[\\/]mutants\.(ts|js)$/.test(process.argv[1] ?? '')) {
  main().catch((e) => { console.error(e); process.exit(2); });
}
