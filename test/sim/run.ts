/**
 * Simulator CLI.
 *   npm run sim -- --seeds 1000 [--start S] [--steps K] [--nodes 3|5] [--interleave] [--leases]
 *   SEED=<n> npm run sim [-- --interleave]   replays one seed with a readable trace
 *   npm run sim -- --seeds 50 --only-amnesia      only the storage-loss scenario
 *   npm run sim -- --seeds 50 --amnesia-legacy    negative control: must report violations
 *   npm run sim -- --seeds 50 --only-foreign      a member restarted empty without RAFT_JOIN_ADDR (add --amnesia-legacy for its control)
 */
import { SimCluster, type RaftModule, type SimOptions, type Violation } from './cluster.js';
import { loadRaft } from './cluster.js';

/** The outcome of one seed: steps run, violations found and event counts. */
export interface SeedResult { seed: number; nodes: number; steps: number; violations: Violation[]; stats: Record<string, number> }

export function nodesForSeed(seed: number, fixed?: number): number {
  return fixed ?? (seed % 2 === 0 ? 3 : 5);
}

/** Runs one seed; `extra` overrides simulator options. */
export function runSeed(raft: RaftModule, seed: number, steps: number, nodes: number, trace?: (l: string) => void, extra: Partial<SimOptions> = {}): SeedResult {
  const c = new SimCluster(seed, nodes, { ...extra, raft, steps, trace });
  const violations = c.run();
  return { seed, nodes, steps: c.step, violations, stats: extra.leases === true ? { ...c.stats, ...c.leaseStats } : { ...c.stats } };
}

/** Runs seeds start..start+count-1 (odd seeds 5 nodes, even seeds 3) and collects the failing ones. */
export function runSeeds(raft: RaftModule, start: number, count: number, steps: number, fixedNodes?: number,
  onFail?: (r: SeedResult) => void, extra: Partial<SimOptions> = {}): { totalSteps: number; failing: SeedResult[]; stats: Record<string, number> } {
  let totalSteps = 0;
  const stats: Record<string, number> = {};
  const failing: SeedResult[] = [];
  for (let s = start; s < start + count; s++) {
    const r = runSeed(raft, s, steps, nodesForSeed(s, fixedNodes), undefined, extra);
    totalSteps += r.steps;
    for (const [k, v] of Object.entries(r.stats)) stats[k] = (stats[k] ?? 0) + v;
    if (r.violations.length) { failing.push(r); onFail?.(r); }
  }
  return { totalSteps, failing, stats };
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const steps = Number(flag(args, 'steps') ?? 3000);
  const nodesFlag = flag(args, 'nodes');
  const fixedNodes = nodesFlag ? Number(nodesFlag) : undefined;
  if (fixedNodes !== undefined && fixedNodes !== 3 && fixedNodes !== 5) throw new Error('--nodes must be 3 or 5');
  // --interleave: the driver's steps between ready() and advance() interleave with the cluster (SimOptions.interleave)
  const extra: Partial<SimOptions> = args.includes('--interleave') ? { interleave: true } : {};
  // --leases: clients grant, renew, abandon and revoke leases; leaders expire and checkpoint them
  // (SimOptions.leases; off by default so the seeds of the runs before them keep their traces).
  if (args.includes('--leases')) extra.leases = true;
  // Negative control: only the 'amnesia' scenario, and an amnesiac node returns under its old identity as a voter.
  if (args.includes('--amnesia-legacy')) {
    extra.amnesiaLegacy = true;
    extra.scenarios = ['amnesia'];
    console.log('sim: NEGATIVE CONTROL --amnesia-legacy: a node that lost its storage returns under its old identity as a voter; violations are expected');
  }
  if (args.includes('--only-amnesia')) extra.scenarios = ['amnesia'];
  // 'foreign-bootstrap' is opt-in: with --amnesia-legacy too it is the legacy control for it.
  if (args.includes('--only-foreign')) extra.scenarios = ['foreign-bootstrap'];
  const raft = await loadRaft();
  if (process.env.SEED !== undefined && process.env.SEED !== '') {
    const seed = Number(process.env.SEED);
    const r = runSeed(raft, seed, steps, nodesForSeed(seed, fixedNodes), (l) => console.log(l), extra);
    for (const v of r.violations) console.log(`seed ${seed}: step ${v.step}: ${v.msg}`);
    console.log(`sim stats: ${Object.entries(r.stats).map(([k, n]) => `${k}=${n}`).join(' ')}`);
    console.log(`sim: seeds=1 steps=${r.steps} violations=${r.violations.length}`);
    process.exitCode = r.violations.length ? 1 : 0;
    return;
  }
  const count = Number(flag(args, 'seeds') ?? 100);
  const start = Number(flag(args, 'start') ?? 1);
  let v = 0;
  const { totalSteps, stats } = runSeeds(raft, start, count, steps, fixedNodes, (r) => {
    v += r.violations.length;
    const f = r.violations[0]!;
    console.log(`seed ${r.seed} (nodes=${r.nodes}): step ${f.step}: ${f.msg}${r.violations.length > 1 ? ` (+${r.violations.length - 1} more)` : ''}`);
  }, extra);
  console.log(`sim stats: ${Object.entries(stats).map(([k, n]) => `${k}=${n}`).join(' ')}`);
  console.log(`sim: seeds=${count} steps=${totalSteps} violations=${v}${extra.interleave ? ' (interleaving mode)' : ''}${extra.leases === true ? ' (leases)' : ''}`);
  process.exitCode = v > 0 ? 1 : 0;
}

if (/[\\/]test[\\/]sim[\\/]run\.(ts|js)$/.test(process.argv[1] ?? '')) {
  main().catch((e) => { console.error(e); process.exit(2); });
}
