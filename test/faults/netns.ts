/**
 * The outside half of the fault suite: creates a private network namespace per scenario (loopback
 * only: no veth, no routes), runs scenario.ts inside it, and always removes every process in it,
 * the namespace and the data directory, also on failure and Ctrl-C. Used by run.ts and the mocha slice.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { removeDir, tempDir } from '../support/procs.js';
import type { ScenarioArgs, ScenarioResult } from './scenario.js';

const root = join(import.meta.dirname, '../..');

/** Why the fault suite cannot run here, or null when it can (root, `ip` and `iptables` present). */
export function cannotRunReason(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root (network namespaces and iptables need root)';
  for (const tool of ['ip', 'iptables']) {
    const r = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `\`${tool}\` is not installed (Debian: apt-get install iproute2 iptables)`;
  }
  return null;
}

interface Active {
  ns: string;
  dir: string;
}

const active = new Set<Active>();
let isSigintHooked = false;

function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

/** Kills every process left in the namespace, deletes it and the data directory. Synchronous, so it also works from a signal handler. */
function cleanup(a: Active): void {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pids = run('ip', ['netns', 'pids', a.ns]).out.split(/\s+/).filter((p) => /^\d+$/.test(p));
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    spawnSync('sleep', ['0.1']);
  }
  const del = run('ip', ['netns', 'del', a.ns]);
  if (!del.ok && !/No such file/.test(del.out)) process.stderr.write(`faults: could not delete namespace ${a.ns}: ${del.out}\n`);
  removeDir(a.dir);
  active.delete(a);
}

function hookSigint(): void {
  if (isSigintHooked) return;
  isSigintHooked = true;
  const onSignal = (signal: NodeJS.Signals) => {
    for (const a of [...active]) cleanup(a);
    process.stderr.write(`faults: ${signal}: namespaces and processes removed\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/** Output of one scenario run: its result and what it printed on stderr. */
export interface NamespaceRun {
  result: ScenarioResult;
  stderr: string;
}

/** Runs one scenario in a fresh namespace and tears everything down afterwards. */
export async function runInNamespace(args: ScenarioArgs, opts: { verbose?: boolean } = {}): Promise<NamespaceRun> {
  const reason = cannotRunReason();
  if (reason) throw new Error(`fault suite cannot run: ${reason}`);
  const a: Active = { ns: `raftkv-f-${process.pid}-${randomBytes(3).toString('hex')}`, dir: tempDir('raftkv-faults-') };
  hookSigint();
  active.add(a);
  try {
    const add = run('ip', ['netns', 'add', a.ns]);
    if (!add.ok) throw new Error(`ip netns add ${a.ns} failed: ${add.out}`);
    const up = run('ip', ['-n', a.ns, 'link', 'set', 'lo', 'up']);
    if (!up.ok) throw new Error(`ip -n ${a.ns} link set lo up failed: ${up.out}`);
    const child = spawn('ip', ['netns', 'exec', a.ns, process.execPath, '--import', 'tsx', join(root, 'test/faults/scenario.ts'), JSON.stringify(args)], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', RAFTKV_FAULT_NS: a.ns, RAFTKV_FAULT_DIR: a.dir, RAFTKV_FAULT_DUMP: process.env.RAFTKV_FAULT_DUMP ?? '', RAFTKV_LEASE_CONTROL_KEEP_FENCE: process.env.RAFTKV_LEASE_CONTROL_KEEP_FENCE ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (opts.verbose) process.stderr.write(b);
    });
    const limitMs = args.durS * 1000 + 180_000;
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (code !== 0 || !line) throw new Error(`scenario ${args.fault} nodes=${args.nodes} exited ${code}: ${stderr.split('\n').slice(-30).join('\n')}`);
    return { result: JSON.parse(line.slice('RESULT '.length)) as ScenarioResult, stderr };
  } finally {
    cleanup(a);
  }
}

/** Whether a scenario result meets the suite's acceptance (the control must instead be detected). */
export function verdict(r: ScenarioResult): { pass: boolean; why: string } {
  if (r.fault === 'power-loss-control') {
    const isDetected = r.lostAcked > 0 || r.linearizable === false;
    return { pass: isDetected, why: isDetected ? 'acknowledging before fsync loses acknowledged writes, as it must' : 'negative control NOT detected: a power cut cannot see writes acknowledged before fsync' };
  }
  if (r.fault === 'propose-control') {
    const isDetected = r.linearizable === false || r.raceViolations > 0;
    return { pass: isDetected, why: isDetected ? 'conditions decided at propose time break linearizability, as they must' : 'negative control NOT detected: the checker cannot see a condition decided before apply' };
  }
  if (r.fault === 'watch-control') {
    const isDetected = r.watchOk === false && r.watchProblems.some((p) => p.startsWith('stream '));
    return { pass: isDetected, why: isDetected ? `a watch stream that skips an event is flagged, as it must be (${r.watchProblems[0]})` : 'negative control NOT detected: the watch check cannot see a skipped event' };
  }
  if (r.fault === 'lease-control') {
    const isDetected = r.leaseOk === false && r.leaseProblems.some((p) => /expired early|gone at the end/.test(p));
    return { pass: isDetected, why: isDetected ? `expiry without the term fence is flagged, as it must be (${r.leaseProblems[0]})` : 'negative control NOT detected: the lease check cannot see a stale leader\'s expiry applied without the term fence' };
  }
  if (r.fault === 'stale-read-control') {
    const isDetected = r.linearizable === false || r.staleReads > 0;
    return { pass: isDetected, why: isDetected ? 'stale reads detected, as they must be' : 'negative control NOT detected: the checker cannot see stale reads' };
  }
  const bad: string[] = [];
  if (r.linearizable !== true) bad.push(`linearizable=${String(r.linearizable)}${r.badKey ? ` (key ${r.badKey})` : ''}`);
  if (r.lostAcked !== 0) bad.push(`lost_acked=${r.lostAcked}`);
  if (r.raceViolations !== 0) bad.push(`race_violations=${r.raceViolations} (a create-only race without exactly one winner)`);
  if (!r.converged) bad.push('converged=false');
  if (r.faultsInjected === 0) bad.push('no fault was injected');
  if (r.phantomMatch !== 0) bad.push(`phantom_match=${r.phantomMatch}`);
  if (r.watchOk !== true) bad.push(`watch_ok=false (${r.watchProblems.slice(0, 3).join('; ')})`);
  if (r.leaseOk !== true) bad.push(`lease_ok=false (${r.leaseProblems.slice(0, 3).join('; ')})`);
  return { pass: bad.length === 0, why: bad.join(', ') };
}
