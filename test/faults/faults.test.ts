/**
 * The short fault slice run by `make test`: leader isolation, SIGKILL of the leader with restart,
 * a node that lost its disk rejoining (amnesia), and the negative controls (watch and lease ones included), a few seconds each, in private network namespaces. `make faults` runs
 * the full suite. Skips (with the reason) only when not root or `ip`/`iptables` are missing.
 */
import { expect } from 'chai';
import { summaryLine, type FaultName } from './scenario.js';
import { cannotRunReason, runInNamespace } from './netns.js';
import { lazyFsUnavailable } from './lazyfs/lazyfs.js';

const DUR_S = 6;
/** FAULTS_SEED=N replays the slice with seed N; otherwise each run picks one and prints it. */
const FIXED_SEED = process.env.FAULTS_SEED === undefined ? null : Number(process.env.FAULTS_SEED);

describe('fault injection (short slice; `make faults` runs every scenario)', function () {
  this.timeout(180_000);

  before(function () {
    const reason = cannotRunReason();
    if (reason) {
      process.stdout.write(`    SKIPPED fault slice: ${reason}\n`);
      this.skip();
    }
  });

  const run = async (fault: FaultName) => {
    const seed = FIXED_SEED ?? 1 + Math.floor(Math.random() * 100_000);
    const { result } = await runInNamespace({ fault, nodes: 3, durS: DUR_S, seed });
    process.stdout.write(`      ${summaryLine(result)}\n`);
    process.stdout.write(`      replay: make faults FAULTS_ARGS='--only ${fault} --nodes 3 --dur ${DUR_S} --seed ${seed}'\n`);
    expect(result.faultsInjected, 'faults injected').to.be.greaterThan(0);
    expect(result.ok, 'successful operations').to.be.greaterThan(0);
    return result;
  };

  it('leader isolation: linearizable, no acknowledged write lost, replicas converge, a new leader is elected', async () => {
    const r = await run('leader-partition');
    expect(r.cutsVerified, 'partitions verified by TCP probes').to.equal(r.faultsInjected);
    expect(r.leaderChanges, 'the isolation must force a new election').to.be.greaterThan(0);
    expect(r.linearizable, `history not linearizable (key ${r.badKey ?? '?'})`).to.equal(true);
    expect(r.lostAcked).to.equal(0);
    expect(r.raceViolations, 'create-only races with other than one winner').to.equal(0);
    expect(r.converged, r.notes.join('; ')).to.equal(true);
    expect(r.watchOk, `watch streams differ from the committed log: ${r.watchProblems.join('; ')}`).to.equal(true);
    expect(r.leaseOk, `lease check: ${r.leaseProblems.join('; ')}`).to.equal(true);
  });

  it('SIGKILL of the leader and restart: linearizable, no acknowledged write lost, replicas converge', async () => {
    const r = await run('kill-leader');
    expect(r.leaderChanges).to.be.greaterThan(0);
    expect(r.linearizable, `history not linearizable (key ${r.badKey ?? '?'})`).to.equal(true);
    expect(r.lostAcked).to.equal(0);
    expect(r.raceViolations, 'create-only races with other than one winner').to.equal(0);
    expect(r.converged, r.notes.join('; ')).to.equal(true);
    expect(r.watchOk, `watch streams differ from the committed log: ${r.watchProblems.join('; ')}`).to.equal(true);
    expect(r.leaseOk, `lease check: ${r.leaseProblems.join('; ')}`).to.equal(true);
  });

  it('power cut of every node (lazyfs drops all unsynced data) and restart: linearizable, no acknowledged write lost, replicas converge', async function () {
    const reason = lazyFsUnavailable();
    if (reason) {
      process.stdout.write(`      SKIPPED power loss: ${reason}\n`);
      this.skip();
    }
    const r = await run('power-loss-all');
    expect(r.linearizable, `history not linearizable (key ${r.badKey ?? '?'})`).to.equal(true);
    expect(r.lostAcked).to.equal(0);
    expect(r.raceViolations, 'create-only races with other than one winner').to.equal(0);
    expect(r.converged, r.notes.join('; ')).to.equal(true);
    expect(r.watchOk, `watch streams differ from the committed log: ${r.watchProblems.join('; ')}`).to.equal(true);
    expect(r.leaseOk, `lease check: ${r.leaseProblems.join('; ')}`).to.equal(true);
  });

  it('amnesia: a node of the acknowledging majority loses its RAFT_DIR and rejoins; it never votes empty, nothing acknowledged is lost, no phantom match', async () => {
    const r = await run('amnesia');
    expect(r.linearizable, `history not linearizable (key ${r.badKey ?? '?'})`).to.equal(true);
    expect(r.lostAcked).to.equal(0);
    expect(r.raceViolations, 'create-only races with other than one winner').to.equal(0);
    expect(r.phantomMatch, r.notes.join('; ')).to.equal(0);
    expect(r.converged, r.notes.join('; ')).to.equal(true);
    expect(r.watchOk, `watch streams differ from the committed log: ${r.watchProblems.join('; ')}`).to.equal(true);
    expect(r.leaseOk, `lease check: ${r.leaseProblems.join('; ')}`).to.equal(true);
  });

  it('negative control: a watch stream that skips one event is flagged (watch_ok=false)', async () => {
    const r = await run('watch-control');
    expect(r.notes.some((n) => n === 'control_hooked=3/3'), r.notes.join('; ')).to.equal(true);
    expect(r.watchOk, 'the watch check must catch a skipped change event').to.equal(false);
    expect(r.watchProblems.some((p) => p.startsWith('stream ') && /never sent/.test(p)), r.watchProblems.join('; ')).to.equal(true);
  });

  it('negative control: lease expiry without the term fence (a deposed leader\'s stale expiry applied) is flagged (lease_ok=false)', async () => {
    const r = await run('lease-control');
    expect(r.notes.some((n) => n === 'control_hooked=3/3'), r.notes.join('; ')).to.equal(true);
    expect(r.leaseOk, 'the lease check must catch a kept-alive lease expired by the paused old leader').to.equal(false);
    expect(r.leaseProblems.some((p) => /expired early|gone at the end/.test(p)), r.leaseProblems.join('; ')).to.equal(true);
  });

  it('negative control: stale reads during a leader partition are detected', async () => {
    const r = await run('stale-read-control');
    expect(r.linearizable === false || r.staleReads > 0, 'the checker must catch ?consistency=stale reads from an isolated leader').to.equal(true);
  });

  it('negative control: conditions decided by the leader at propose time (not at apply) are detected', async () => {
    const r = await run('propose-control');
    expect(r.notes.some((n) => n === 'control_hooked=3/3'), r.notes.join('; ')).to.equal(true);
    expect(r.linearizable === false || r.raceViolations > 0, 'the checker or the create-only races must catch CAS decided before apply').to.equal(true);
  });
});
