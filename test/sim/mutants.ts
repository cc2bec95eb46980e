/**
 * Mutation testing of the simulator: each mutant is a textual patch of one src/raft/core file. The
 * core is copied to a temp dir, patched, imported, and run for up to 300 seeds; the mutant is killed
 * when any seed reports a violation.  `npm run sim:mutants`
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CORE_DIR, loadRaft } from './cluster.js';
import { runSeed, nodesForSeed } from './run.js';

export interface Mutant { name: string; file: string; search: string; replace: string }

/**
 * TODO(core author): fill `search`/`replace` for each mutant. Each must match exactly once in `file`,
 * at the code next to the marker comment `// MUTATION-POINT: <name>` in src/raft/core/raft.ts.
 * Mutants with an empty `search` are reported as "todo" and not counted.
 */
export const MUTANTS: Mutant[] = [
  // TODO: MUTATION-POINT: persist-vote — do not report the vote in Ready.hardState (vote not persisted before the grant is sent).
  { name: 'persist-vote', file: 'raft.ts', search: '', replace: '' },
  // TODO: MUTATION-POINT: figure8-commit — leader commits by counting replicas of an entry from an earlier term (drop the "entry term == current term" check).
  { name: 'figure8-commit', file: 'raft.ts', search: '', replace: '' },
  // TODO: MUTATION-POINT: truncate-on-conflict — follower does not truncate its log on a term conflict (or truncates without checking).
  { name: 'truncate-on-conflict', file: 'raft.ts', search: '', replace: '' },
  // TODO: MUTATION-POINT: readindex-quorum — leader answers ReadIndex without a heartbeat-quorum confirmation.
  { name: 'readindex-quorum', file: 'raft.ts', search: '', replace: '' },
];

export type MutantOutcome =
  | { name: string; status: 'killed'; seed: number; msg: string }
  | { name: string; status: 'survived'; seeds: number }
  | { name: string; status: 'broken-patch'; detail: string }
  | { name: string; status: 'todo' };

function countOccurrences(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

export async function runMutant(m: Mutant, maxSeeds = 300, steps = 3000): Promise<MutantOutcome> {
  if (!m.search) return { name: m.name, status: 'todo' };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `raft-mutant-${m.name}-`));
  try {
    for (const f of fs.readdirSync(CORE_DIR)) if (f.endsWith('.ts')) fs.copyFileSync(path.join(CORE_DIR, f), path.join(dir, f));
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
    for (let seed = 1; seed <= maxSeeds; seed++) {
      const r = runSeed(raft, seed, steps, nodesForSeed(seed));
      if (r.violations.length) return { name: m.name, status: 'killed', seed, msg: r.violations[0]!.msg };
    }
    return { name: m.name, status: 'survived', seeds: maxSeeds };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let killed = 0, counted = 0;
  for (const m of MUTANTS) {
    const o = await runMutant(m);
    if (o.status === 'todo') { console.log(`mutant ${m.name}: TODO (no search/replace yet)`); continue; }
    counted++;
    if (o.status === 'killed') { killed++; console.log(`mutant ${m.name}: killed by seed ${o.seed}: ${o.msg}`); }
    else if (o.status === 'survived') console.log(`mutant ${m.name}: SURVIVED ${o.seeds} seeds`);
    else console.log(`mutant ${m.name}: broken-patch (${o.detail})`);
  }
  console.log(`mutants: killed=${killed}/${counted}`);
  process.exit(killed === counted ? 0 : 1);
}

if (/[\\/]test[\\/]sim[\\/]mutants\.(ts|js)$/.test(process.argv[1] ?? '')) {
  main().catch((e) => { console.error(e); process.exit(2); });
}
