/**
 * Behaviour guard for refactors of the core and the simulator: for each seed and mode it prints the
 * step count, a digest of every node's final state (core status, the core's in-memory log, the
 * simulated disk, the state machine), a digest of the full event trace, and any violation. Two runs of
 * the same code give byte-identical output; a refactor that claims "no behaviour change" must too.
 *   npx tsx test/sim/trace-digest.ts [--seeds 1000] [--start 1] [--modes atomic,interleave] > out.txt
 */
import { createHash } from 'node:crypto';
import { SimCluster, loadRaft } from './cluster.js';
import { nodesForSeed } from './run.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The core's in-memory log, read through entryAt (a method of the real Raft, not of RaftLike). */
function coreLog(raft: unknown, from: number, to: number): unknown[] {
  const r = raft as { entryAt?: (i: number) => unknown };
  const out: unknown[] = [];
  if (typeof r.entryAt !== 'function') return out;
  for (let i = from; i <= to; i++) out.push(r.entryAt(i));
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const count = Number(flag(args, 'seeds') ?? 1000);
  const start = Number(flag(args, 'start') ?? 1);
  const modes = (flag(args, 'modes') ?? 'atomic,interleave').split(',');
  const raft = await loadRaft();
  for (const mode of modes) {
    for (let seed = start; seed < start + count; seed++) {
      const trace = createHash('sha256');
      const c = new SimCluster(seed, nodesForSeed(seed), { raft, steps: 3000, interleave: mode === 'interleave', trace: (l) => trace.update(l).update('\n') });
      const violations = c.run();
      const state = createHash('sha256');
      for (const n of c.nodes) {
        const st = n.raft?.status();
        state.update(JSON.stringify({
          id: n.id, up: n.raft !== null, retired: n.retired, incarnation: n.incarnation, amnesia: n.amnesia,
          status: st ?? null,
          coreLog: st ? coreLog(n.raft, st.snapshotIndex + 1, st.lastIndex) : null,
          disk: { hardState: n.hardState, snapshot: n.snapshot, snapshotSm: n.snapshotSm, logBase: n.logBase, log: n.log },
          applied: n.appliedIndex, kv: [...n.sm.entries()], lastCommit: n.lastCommit,
        }));
        state.update('\n');
      }
      const v = violations.map((x) => `${x.step}:${x.msg}`).join(' | ');
      console.log(`${mode} seed=${seed} steps=${c.step} state=${state.digest('hex').slice(0, 16)} trace=${trace.digest('hex').slice(0, 16)} stats=${JSON.stringify(c.stats)} violations=${violations.length}${v ? ` ${v}` : ''}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(2); });
