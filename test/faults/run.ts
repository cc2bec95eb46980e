/**
 * `make faults`: runs every fault scenario on 3- and 5-node clusters, each in its own namespace,
 * and prints one summary line per scenario. Exits 1 when a scenario breaks a guarantee, the
 * negative control goes undetected, or the suite cannot run at all.
 *
 *   tsx test/faults/run.ts [--only leader-partition,kill-all] [--nodes 3,5] [--dur 15] [--seed 1] [--ops default|extended] [--verbose]
 *
 * Every run uses the seed given (random when absent) and prints it in its summary line, so
 * `--only <fault> --nodes <n> --dur <s> --seed <seed>` replays one run's schedule (the nemesis's
 * choices and the clients' operations; the processes' timing is real and varies).
 * `--ops extended` adds conditional writes and transactions to the workload.
 */
import { FAULTS, summaryLine, type FaultName } from './scenario.js';
import { cannotRunReason, runInNamespace, verdict } from './netns.js';
import { OP_MIXES } from './workload.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const reason = cannotRunReason();
  if (reason) {
    process.stderr.write(`faults: cannot run: ${reason}\n`);
    return 1;
  }
  const only = arg('only')?.split(',') ?? [...FAULTS];
  for (const f of only) {
    if (!(FAULTS as readonly string[]).includes(f)) {
      process.stderr.write(`faults: unknown scenario ${f}; known: ${FAULTS.join(', ')}\n`);
      return 1;
    }
  }
  const sizes = (arg('nodes') ?? '3,5').split(',').map(Number);
  const durS = Number(arg('dur') ?? '15');
  const seed = Number(arg('seed') ?? String(Date.now() % 100000));
  if (!Number.isSafeInteger(seed) || seed < 0) {
    process.stderr.write(`faults: --seed must be a non-negative integer, got ${arg('seed') ?? ''}\n`);
    return 1;
  }
  const isVerbose = process.argv.includes('--verbose');
  const ops = arg('ops') ?? 'extended';
  if (!(OP_MIXES as readonly string[]).includes(ops)) {
    process.stderr.write(`faults: unknown --ops ${ops}; known: ${OP_MIXES.join(', ')}\n`);
    return 1;
  }
  process.stdout.write(`faults: seed=${seed} dur=${durS}s scenarios=${only.length} sizes=${sizes.join(',')} ops=${ops}\n`);
  const started = Date.now();
  let failures = 0;
  for (const fault of only as FaultName[]) {
    // The negative control needs one size only: it exists to prove the checker can fail.
    for (const nodes of fault === 'stale-read-control' || fault === 'power-loss-control' || fault === 'propose-control' || fault === 'watch-control' || fault === 'lease-control' ? [3] : sizes) {
      try {
        const { result } = await runInNamespace({ fault, nodes, durS, seed, ops: ops as (typeof OP_MIXES)[number] }, { verbose: isVerbose });
        const v = verdict(result);
        process.stdout.write(`${summaryLine(result)}\n`);
        const extra = [`faults_injected=${result.faultsInjected}`, `cuts_verified=${result.cutsVerified}`];
        if (result.snapshotInstalled !== null) extra.push(`snapshot_installed=${result.snapshotInstalled}`);
        extra.push(...result.notes);
        process.stdout.write(`  ${v.pass ? 'PASS' : 'FAIL'} ${v.why} [${extra.join(' ')}]\n`);
        if (!v.pass) failures++;
      } catch (err) {
        failures++;
        process.stdout.write(`fault=${fault} nodes=${nodes} seed=${seed} ERROR ${(err as Error).message}\n`);
      }
    }
  }
  process.stdout.write(`faults: ${failures === 0 ? 'all scenarios passed' : `${failures} scenario(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)}s (seed=${seed})\n`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`faults: ${String(err)}\n`);
    process.exit(1);
  },
);
