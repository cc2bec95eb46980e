/**
 * Runs ONE fault scenario inside the private network namespace made by netns.ts: starts the
 * cluster, the clients, a /cluster monitor and the nemesis, then heals, waits for convergence and
 * checks the history. Prints `RESULT <json>` and the summary line. Refuses to run outside a
 * namespace named by RAFTKV_FAULT_NS, so its iptables rules can never touch the host.
 *
 * Usage (via netns.ts): node --import tsx test/faults/scenario.ts '<json ScenarioArgs>'
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { makeRng } from '../sim/rng.js';
import { NsCluster, type FaultNode } from './cluster.js';
import { checkLinearizable, countLostAcked, countStaleReads, type HistoryOp } from './linearizability.js';
import { Workload, classifyWrite, raceCreateOnly, type RaceResult } from './workload.js';
import { ACK_BEFORE_SYNC_MODULE, DECIDE_AT_PROPOSE_MODULE, LEASE_NOFENCE_MODULE, PowerDisks, WATCH_SKIP_MODULE } from './power.js';
import { buildReference, checkReference, checkStreams } from './watch-check.js';
import { readMemberLog, Watchers, WATCH_PROGRESS_INTERVAL_MS } from './watchers.js';
import { checkLeases, LEASE_TTL_MS, LeaseProbe, type LeaderSpan } from './lease-check.js';
import { waitFor } from '../support/procs.js';
import type { LocalClusterView } from '../../src/api/cluster-types.js';

/** Every scenario the suite knows. */
export const FAULTS = [
  'leader-partition',
  'majority-split',
  'leader-oneway',
  'kill-leader',
  'kill-all',
  'power-loss-all',
  'power-loss-leader',
  'power-loss-control',
  'pause-leader',
  'follower-snapshot',
  'membership',
  'random',
  'stale-read-control',
  'propose-control',
  'watch-control',
  'lease-churn',
  'lease-control',
  'amnesia',
  'amnesia-memory',
  'foreign-bootstrap',
] as const;

/** One fault scenario's name. */
export type FaultName = (typeof FAULTS)[number];

/** What one run is asked to do. */
export interface ScenarioArgs {
  fault: FaultName;
  nodes: number;
  durS: number;
  seed: number;
  /** the workload's operation mix (workload.ts OP_MIXES); default when absent */
  ops?: 'default' | 'extended';
}

/** What one run measured. */
export interface ScenarioResult {
  fault: FaultName;
  nodes: number;
  /** The seed of this run: `make faults FAULTS_ARGS='--only <fault> --nodes <nodes> --seed <seed>'` replays its schedule. */
  seed: number;
  durS: number;
  ok: number;
  fail: number;
  unknown: number;
  lostAcked: number;
  staleReads: number;
  linearizable: boolean | 'unknown';
  badKey?: string;
  converged: boolean;
  unavailableMaxS: number;
  recoveryAfterHealS: number | null;
  leaderChanges: number;
  /** Times a leader was seen counting a member for entries that member's process does not hold (Monitor). */
  phantomMatch: number;
  /** create-only races run during the load (N clients, one key each): how many, and how many had not exactly one winner */
  races: number;
  raceViolations: number;
  snapshotInstalled: boolean | null;
  faultsInjected: number;
  cutsVerified: number;
  /** The watch check (watch-check.ts): watchers run, change messages they received, and whether every stream equals the committed log filtered to its prefix. */
  watchStreams: number;
  watchEvents: number;
  watchOk: boolean;
  /** Why watchOk is false (the first few problems, reference first); empty when it is true. */
  watchProblems: string[];
  /** The lease check (lease-check.ts): kept-alive leases never lost, orphans expired within the documented bound. */
  leaseOk: boolean;
  /** keepalives acknowledged, kept generations, orphan leases and how many of them were seen expired */
  leaseKeepalives: number;
  leaseKept: number;
  leaseOrphans: number;
  leaseExpired: number;
  /** the latest an orphan was seen gone past its TTL after its grant's answer, seconds (null: none expired) */
  leaseMaxLateS: number | null;
  leaseProblems: string[];
  notes: string[];
}

/** The issue's summary line. */
export function summaryLine(r: ScenarioResult): string {
  const rec = r.recoveryAfterHealS === null ? 'n/a' : `${r.recoveryAfterHealS.toFixed(2)}s`;
  return (
    `fault=${r.fault} nodes=${r.nodes} seed=${r.seed} dur=${r.durS}s ops ok=${r.ok} fail=${r.fail} unknown=${r.unknown} ` +
    `lost_acked=${r.lostAcked} stale_reads=${r.staleReads} linearizable=${String(r.linearizable)} converged=${r.converged} ` +
    `unavailable_max=${r.unavailableMaxS.toFixed(2)}s recovery_after_heal=${rec} leader_changes=${r.leaderChanges} phantom_match=${r.phantomMatch} races=${r.races} race_violations=${r.raceViolations} ` +
    `watch_streams=${r.watchStreams} watch_events=${r.watchEvents} watch_ok=${r.watchOk} ` +
    `lease_keepalives=${r.leaseKeepalives} lease_kept=${r.leaseKept} lease_expired=${r.leaseExpired}/${r.leaseOrphans} ` +
    `lease_max_late=${r.leaseMaxLateS === null ? 'n/a' : `${r.leaseMaxLateS.toFixed(2)}s`} lease_ok=${r.leaseOk}`
  );
}

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
/**
 * One roaming watcher per prefix: everything, the workload's keys, one of them (a quiet prefix that
 * lives on progress events), and the create-only races' keys; and one sticky watcher of the
 * workload's keys on each member (watchers.ts).
 */
const WATCH_PREFIXES = ['', 'k', 'k3', 'faults-race-'];
const WATCH_STICKY_PREFIX = 'k';
const SNAPSHOT_THRESHOLD = 100;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Proves a cut: a connection from `a`'s address to `b`'s raft port must not complete. */
function canConnect(fromIp: string, toIp: string, timeoutMs = 400): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: toIp, port: 7000, localAddress: fromIp });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Polls /cluster on every live node: counts leader changes (of the cluster n1 founded; a foreign
 * one-node cluster does not count) and phantom matches. A phantom match is a leader counting a
 * member for entries the member's process does not hold (issue 14 §2): either the leader's
 * matchIndex for the member exceeds the member's own lastIndex while both name the same incarnation
 * and the member follows that leader in that term (its log only grows under one leader, and its
 * view is read after the leader's), or the leader's matchIndex for an incarnation that no longer
 * runs (the process behind the id lost its state) still grows.
 */
class Monitor {
  readonly leaderTerms = new Map<number, string>();
  /** Each term's leader with the first and last time it was seen (the lease check's leader timeline). */
  readonly spans = new Map<number, LeaderSpan>();
  readonly phantoms: string[] = [];
  private clusterId: string | null = null;
  /** leader|term|member|recorded incarnation -> matchIndex first seen once another incarnation ran. */
  private readonly staleMatch = new Map<string, number>();
  private isStopping = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly cluster: NsCluster,
    private readonly now: () => number,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.isStopping) {
        const askedMs = this.now(); // a leader seen was leader at some time in [askedMs, seenMs]
        const infos = await Promise.all(this.cluster.nodes.map((n) => this.cluster.info(n, 500)));
        this.clusterId ??= infos[0]?.clusterId ?? null;
        const seenMs = this.now();
        for (const i of infos) {
          if (!i || i.role !== 'leader' || i.clusterId !== this.clusterId) continue;
          this.leaderTerms.set(i.term, i.id);
          const span = this.spans.get(i.term);
          // Conservative for the bound: a term starts no earlier than seen, and ends no earlier than asked.
          if (span) span.lastMs = Math.max(span.lastMs, askedMs);
          else this.spans.set(i.term, { term: i.term, id: i.id, firstMs: seenMs, lastMs: askedMs });
        }
        for (const l of infos) if (l && l.role === 'leader' && l.clusterId === this.clusterId) await this.checkPhantoms(l);
        await sleep(100);
      }
    })();
  }

  private async checkPhantoms(lv: LocalClusterView): Promise<void> {
    const owns = await Promise.all(this.cluster.nodes.map((n) => (n.id === lv.id ? Promise.resolve(null) : this.cluster.info(n, 500))));
    for (const own of owns) {
      const row = own && lv.nodes.find((m) => m.id === own.id);
      if (!own || !row || row.matchIndex === undefined) continue;
      const key = `${lv.id}|${lv.term}|${own.id}|${row.incarnation ?? ''}`;
      if ((row.incarnation ?? '') !== (own.incarnation ?? '')) {
        const first = this.staleMatch.get(key);
        if (first === undefined) this.staleMatch.set(key, row.matchIndex);
        else if (row.matchIndex > first) this.phantoms.push(`${lv.id} (term ${lv.term}) raised ${own.id}'s match to ${row.matchIndex} for incarnation ${row.incarnation ?? "''"}, which no longer runs`);
        continue;
      }
      if (own.term !== lv.term || own.leader?.id !== lv.id || own.clusterId !== lv.clusterId) continue;
      if (row.matchIndex > own.lastIndex) this.phantoms.push(`${lv.id} (term ${lv.term}) matchIndex ${row.matchIndex} for ${own.id} > its lastIndex ${own.lastIndex}`);
    }
  }

  async stop(): Promise<void> {
    this.isStopping = true;
    await this.loop;
  }

  /** Leader changes seen: distinct terms that had a leader, minus the first. */
  changes(): number {
    return Math.max(0, this.leaderTerms.size - 1);
  }
}

/** Shared state of a running scenario. */
class Ctx {
  readonly rng: () => number;
  /** Voting members, in the order nodes were added; clients talk to these. */
  members: FaultNode[] = [];
  heals: number[] = [];
  faults = 0;
  cutsVerified = 0;
  notes: string[] = [];
  endAt = 0;
  /** follower-snapshot: whether every other member had compacted past the isolated follower at heal */
  snapshotForced = false;
  snapshotFollower: FaultNode | null = null;
  /** power-loss-*: every node's lazyfs disk */
  disks: PowerDisks | null = null;
  /** power-loss-*: files with unsynced data that the cuts dropped (proof that a cut had something to lose) */
  droppedFiles = 0;
  /** power-loss-*: witness writes made (values w1, w2, ...) and acknowledged */
  witnessSeq = 0;
  witnessAcked = 0;

  constructor(
    readonly cluster: NsCluster,
    readonly workload: Workload,
    seed: number,
  ) {
    this.rng = makeRng(seed);
  }

  now(): number {
    return this.workload.now();
  }

  pick<T>(xs: T[]): T {
    return xs[Math.floor(this.rng() * xs.length)];
  }

  shuffle<T>(xs: T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  /** Milliseconds of scenario time left. */
  left(): number {
    return this.endAt - this.now();
  }

  healed(): void {
    this.heals.push(this.now());
  }

  async leader(): Promise<FaultNode> {
    return this.cluster.waitLeader(this.members.filter((n) => this.cluster.isUp(n)), 20_000);
  }

  /** Partitions and checks with TCP probes that the cut is real in both directions. */
  async partition(a: FaultNode[], b: FaultNode[]): Promise<void> {
    this.cluster.partition(a, b);
    this.faults++;
    const x = a[0];
    const y = b[0];
    if ((await canConnect(x.ip, y.ip)) || (await canConnect(y.ip, x.ip))) throw new Error(`partition ${x.id}|${y.id} does not cut traffic`);
    if (!(await canConnect('127.0.0.1', y.ip))) throw new Error(`partition cut client traffic to ${y.id}`);
    this.cutsVerified++;
  }

  async partitionOneWay(from: FaultNode[], to: FaultNode[]): Promise<void> {
    this.cluster.partitionOneWay(from, to);
    this.faults++;
    const x = from[0];
    const y = to[0];
    if (await canConnect(x.ip, y.ip)) throw new Error(`one-way partition ${x.id}->${y.id} does not cut traffic`);
    if (!(await canConnect(y.ip, x.ip))) throw new Error(`one-way partition ${x.id}->${y.id} also cuts the other direction`);
    this.cutsVerified++;
  }

  async heal(): Promise<void> {
    this.cluster.heal();
    if (this.cluster.ruleCount() !== 0) throw new Error('heal left rules behind');
    this.healed();
  }
}

type Nemesis = (ctx: Ctx) => Promise<void>;

/** Runs `round` repeatedly with gaps until the scenario's fault window ends. */
async function rounds(ctx: Ctx, round: () => Promise<void>, minLeftMs = 4000): Promise<void> {
  while (ctx.left() > minLeftMs) {
    await round();
    await sleep(1500);
  }
}

const faultMs = 2500;

const nemeses: Record<FaultName, Nemesis> = {
  'leader-partition': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      await ctx.partition([l], ctx.members.filter((n) => n !== l));
      await sleep(faultMs);
      await ctx.heal();
    }),
  'stale-read-control': (ctx) => nemeses['leader-partition'](ctx),
  // Conditions decided at propose time (decide-at-propose.mjs) under the plainest load: leader kills.
  'propose-control': (ctx) => nemeses['kill-leader'](ctx),
  // One watch event skipped per node process (watch-skip.mjs) while leaders are killed and watchers resume elsewhere.
  'watch-control': (ctx) => nemeses['kill-leader'](ctx),
  // A leader change every TTL/2 (the lease check's TTL is 4 s): SIGKILL the leader and restart it at
  // once, every 2 s or as soon as the next leader is elected, whichever is later.
  'lease-churn': async (ctx) => {
    while (ctx.left() > 2500) {
      const started = ctx.now();
      const l = await ctx.leader();
      await ctx.cluster.kill(l);
      ctx.faults++;
      await sleep(300);
      ctx.cluster.start(l);
      ctx.healed();
      await sleep(Math.max(0, started + LEASE_TTL_MS / 2 - ctx.now()));
    }
  },
  // Deposed leaders forward stale expiries and apply ignores the term fence (lease-nofence.mjs), with the leader paused past the TTL's reach.
  'lease-control': (ctx) => nemeses['pause-leader'](ctx),
  'majority-split': (ctx) =>
    rounds(ctx, async () => {
      const s = ctx.shuffle(ctx.members);
      const minority = s.slice(0, Math.floor(s.length / 2));
      await ctx.partition(minority, s.slice(minority.length));
      await sleep(faultMs);
      await ctx.heal();
    }),
  'leader-oneway': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      await ctx.partitionOneWay([l], ctx.members.filter((n) => n !== l));
      await sleep(faultMs);
      await ctx.heal();
    }),
  'kill-leader': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      await ctx.cluster.kill(l);
      ctx.faults++;
      await sleep(1500);
      ctx.cluster.start(l);
      ctx.healed();
    }),
  'kill-all': (ctx) =>
    rounds(ctx, async () => {
      await Promise.all(ctx.members.map((n) => ctx.cluster.kill(n)));
      ctx.faults++;
      await sleep(1000);
      for (const n of ctx.members) ctx.cluster.start(n);
      ctx.healed();
      await ctx.leader();
      await sleep(1500);
    }, 6000),
  // Power cut of every node: SIGKILL, then each disk drops all it had not synced; restart. Each cut
  // comes right after an acknowledged witness write, which a linearizable read checks after the restart.
  'power-loss-all': (ctx) =>
    rounds(ctx, async () => {
      await witnessWrite(ctx);
      await powerCut(ctx, ctx.members);
      await sleep(500);
      for (const n of ctx.members) ctx.cluster.start(n);
      ctx.healed();
      await ctx.leader();
      await witnessRead(ctx);
      await sleep(1500);
    }, 3000), // a round even in the short slice of `make test` (the load phase is extended to cover it)
  // power-loss-all with nodes that acknowledge before fsync: each cut right after the witness write
  // loses it on every node, and the read after the restart sees the older value, so every round is a
  // violation the checker must flag (whatever the random clients happened to read).
  'power-loss-control': (ctx) => nemeses['power-loss-all'](ctx),
  // Power cut of the leader while the clients' writes stream in; it restarts after a second.
  'power-loss-leader': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      await sleep(200 + Math.floor(ctx.rng() * 600));
      await powerCut(ctx, [l]);
      await sleep(1000);
      ctx.cluster.start(l);
      ctx.healed();
    }),
  'pause-leader': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      ctx.cluster.pause(l);
      ctx.faults++;
      await sleep(faultMs); // > 2 x the longest election timeout (2 x 15 ticks x 20 ms)
      ctx.cluster.resume(l);
      ctx.healed();
    }),
  'follower-snapshot': async (ctx) => {
    const l = await ctx.leader();
    const f = ctx.pick(ctx.members.filter((n) => n !== l));
    await ctx.partition([f], ctx.members.filter((n) => n !== f));
    const fLast = (await ctx.cluster.info(f))?.lastIndex ?? 0;
    // Keep it out until every other member has compacted its log past f's last entry, so the
    // only way back for f is InstallSnapshot (Raft §7).
    const others = ctx.members.filter((n) => n !== f);
    const isCompacted = await waitFor('the others to compact past the isolated follower', async () => {
      const infos = await Promise.all(others.map((n) => ctx.cluster.info(n)));
      return infos.every((i) => i !== null && (i.snapshotIndex ?? 0) > fLast);
    }, Math.max(3000, ctx.left() - 4000), 200).catch(() => false);
    await sleep(Math.max(0, Math.min(faultMs, ctx.left() - 4000))); // and out for a while longer anyway
    await ctx.heal();
    ctx.snapshotForced = isCompacted === true;
    ctx.snapshotFollower = f;
    ctx.notes.push(`isolated=${f.id} its_last_index=${fLast}`);
    if (!isCompacted) ctx.notes.push('the others did not compact past the isolated follower in time (SNAPSHOT_THRESHOLD unsupported?)');
  },
  membership: async (ctx) => {
    // Phase 1: a follower is isolated while a new node joins and is promoted.
    const l = await ctx.leader();
    const f = ctx.pick(ctx.members.filter((n) => n !== l));
    await ctx.partition([f], ctx.members.filter((n) => n !== f));
    const spare = ctx.cluster.nodes[ctx.cluster.nodes.length - 1];
    ctx.cluster.start(spare, ctx.pick(ctx.members.filter((n) => n !== f)));
    await ctx.cluster.waitVoter(spare, Math.max(5000, ctx.left()));
    ctx.members.push(spare);
    await sleep(1000);
    await ctx.heal();
    // Phase 2: the leader is killed, and the once-isolated follower is removed through a survivor.
    const l2 = await ctx.leader();
    await ctx.cluster.kill(l2);
    ctx.faults++;
    const survivors = ctx.members.filter((n) => n !== l2 && n !== f);
    if (f === l2) throw new Error('unreachable: the isolated follower cannot lead while isolated');
    await waitFor(`removal of ${f.id}`, async () => {
      const via = ctx.pick(survivors);
      const r = await ctx.cluster.http('DELETE', `${via.api}/cluster/nodes/${f.id}`, undefined, 4000);
      return r.status === 200 || r.status === 404;
    }, Math.max(8000, ctx.left()), 300);
    ctx.members = ctx.members.filter((n) => n !== f);
    await ctx.cluster.kill(f, 'SIGTERM');
    ctx.notes.push(`added=${spare.id} removed=${f.id}`);
    await sleep(1000);
    ctx.cluster.start(l2);
    ctx.healed();
  },
  // Issue 14 §2's lost write, for real: a bare majority Q acknowledges writes while the rest R is cut
  // off; Q's other members crash, and b in Q loses its whole RAFT_DIR and is started empty with
  // RAFT_JOIN_ADDR; R returns. R plus b is a majority of nodes, but b must not vote: it is a new
  // incarnation and no member until its join commits, which needs Q's others back (they restart
  // with their disks). b rejoins as a learner, catches up and is promoted before the next round.
  amnesia: (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      const others = ctx.shuffle(ctx.members.filter((n) => n !== l));
      const q = [l, ...others.slice(0, Math.floor(ctx.members.length / 2))];
      const r = ctx.members.filter((n) => !q.includes(n));
      const b = q[q.length - 1];
      await ctx.partition(q, r);
      await sleep(1500);
      await Promise.all(q.map((n) => ctx.cluster.kill(n)));
      ctx.cluster.wipe(b);
      ctx.faults++;
      await ctx.heal();
      ctx.cluster.startEmpty(b, ctx.pick(r));
      await sleep(1500);
      for (const n of q) if (n !== b) ctx.cluster.start(n);
      ctx.healed();
      await ctx.cluster.waitRejoined(b, Math.max(20_000, ctx.left()));
      ctx.notes.push(`wiped=${b.id}`);
    }, 4000), // a round even in the short slice of `make test`
  // Every node in memory (no RAFT_DIR), as in the README quickstart: any restart is a node without
  // state. One member (the leader a third of the time) is killed and started again with
  // RAFT_JOIN_ADDR; it must rejoin as a new incarnation before the next round.
  'amnesia-memory': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      const b = ctx.rng() < 0.35 ? l : ctx.pick(ctx.members.filter((n) => n !== l));
      await ctx.cluster.kill(b);
      ctx.faults++;
      await sleep(800);
      ctx.cluster.startEmpty(b, ctx.pick(ctx.members.filter((n) => n !== b)));
      ctx.healed();
      await ctx.cluster.waitRejoined(b, Math.max(20_000, ctx.left()));
      ctx.notes.push(`restarted=${b.id}`);
    }, 4000),
  // A member loses its RAFT_DIR and is started with its original command, without RAFT_JOIN_ADDR:
  // it bootstraps a one-node cluster of its own (clients of the old cluster stop using it). The old
  // cluster must refuse it at the handshake and never count it (phantom_match=0), and keep serving.
  // Then the README's fix: stop it, wipe it, start it with RAFT_JOIN_ADDR; it rejoins and converges.
  'foreign-bootstrap': (ctx) =>
    rounds(ctx, async () => {
      const l = await ctx.leader();
      const b = ctx.pick(ctx.members.filter((n) => n !== l && n.index !== 1));
      const all = ctx.members;
      const oldCluster = (await ctx.cluster.info(l))?.clusterId;
      await ctx.cluster.kill(b);
      ctx.cluster.wipe(b);
      ctx.faults++;
      ctx.members = all.filter((n) => n !== b);
      ctx.cluster.startEmpty(b, null);
      const foreign = await waitFor(`${b.id} to lead a cluster of its own`, async () => {
        const v = await ctx.cluster.info(b);
        return v?.role === 'leader' ? v : null;
      }, 20_000, 100);
      if (!foreign.clusterId || foreign.clusterId === oldCluster) throw new Error(`${b.id} restarted without RAFT_JOIN_ADDR kept cluster id ${String(foreign.clusterId)}`);
      await sleep(2500);
      await ctx.cluster.kill(b, 'SIGTERM');
      ctx.cluster.wipe(b);
      ctx.cluster.startEmpty(b, ctx.pick(ctx.members));
      ctx.healed();
      await ctx.cluster.waitRejoined(b, Math.max(20_000, ctx.left()));
      ctx.members = all;
      ctx.notes.push(`foreign=${b.id}`);
    }, 6000),
  random: (ctx) =>
    rounds(ctx, async () => {
      const kind = ctx.pick(['partition', 'oneway', 'kill', 'pause', 'kill-leader'] as const);
      const victims = ctx.shuffle(ctx.members).slice(0, 1 + Math.floor(ctx.rng() * Math.floor((ctx.members.length - 1) / 2)));
      const rest = ctx.members.filter((n) => !victims.includes(n));
      const hold = 800 + Math.floor(ctx.rng() * 2500);
      if (kind === 'partition') await ctx.partition(victims, rest);
      else if (kind === 'oneway') await ctx.partitionOneWay(victims, rest);
      else if (kind === 'pause') {
        for (const v of victims) ctx.cluster.pause(v);
        ctx.faults++;
      } else {
        const vs = kind === 'kill-leader' ? [await ctx.leader()] : victims;
        await Promise.all(vs.map((v) => ctx.cluster.kill(v)));
        ctx.faults++;
      }
      await sleep(hold);
      ctx.cluster.heal();
      for (const n of ctx.members) {
        if (n.isPaused) ctx.cluster.resume(n);
        if (!ctx.cluster.isUp(n)) ctx.cluster.start(n);
      }
      ctx.healed();
    }),
};

/** power-loss-*: a key only the nemesis writes (never the clients), so nothing but a cut can change it. */
const WITNESS_KEY = 'faults-witness';

/**
 * Writes a fresh value to WITNESS_KEY through the leader until one write is acknowledged, recording
 * every attempt in the history (client -2) like a client's. A power cut right after it must keep it.
 */
async function witnessWrite(ctx: Ctx): Promise<void> {
  const deadline = ctx.now() + 20_000;
  while (ctx.now() < deadline) {
    const l = await ctx.leader();
    const value = `w${++ctx.witnessSeq}`;
    const op: HistoryOp = { client: -2, kind: 'set', key: WITNESS_KEY, value, invokeMs: ctx.now(), completeMs: null, ok: true };
    const r = await ctx.cluster.http('POST', `${l.api}/key`, { [WITNESS_KEY]: value });
    const e = (r.body as { error?: { code?: string; message?: string } } | null)?.error;
    const outcome = r.status === 0 ? 'unknown' : classifyWrite(r.status, e?.code ?? null, e?.message ?? '');
    op.completeMs = outcome === 'unknown' ? null : ctx.now();
    op.ok = outcome !== 'fail';
    ctx.workload.history.push(op);
    if (outcome === 'ok') {
      ctx.witnessAcked++;
      return;
    }
    await sleep(100);
  }
  throw new Error('no witness write was acknowledged within 20 s');
}

/** Reads WITNESS_KEY linearizably through the leader until it answers, recording the read (client -2). */
async function witnessRead(ctx: Ctx): Promise<void> {
  const deadline = ctx.now() + 20_000;
  while (ctx.now() < deadline) {
    const l = await ctx.leader();
    const invokeMs = ctx.now();
    const r = await ctx.cluster.http('GET', `${l.api}/key/${WITNESS_KEY}`);
    if (r.status === 200 || r.status === 404) {
      const v = r.status === 200 ? (r.body as Record<string, unknown>)[WITNESS_KEY] : null;
      ctx.workload.history.push({ client: -2, kind: 'get', key: WITNESS_KEY, result: typeof v === 'string' ? v : null, invokeMs, completeMs: ctx.now(), ok: true });
      return;
    }
    await sleep(100);
  }
  throw new Error('the witness key could not be read within 20 s of the restart');
}

async function powerCut(ctx: Ctx, nodes: FaultNode[]): Promise<void> {
  if (!ctx.disks) throw new Error('power cut without lazyfs disks');
  for (const line of await ctx.disks.cut(ctx.cluster, nodes)) ctx.droppedFiles += Number(/dirty_files_dropped=(\d+)/.exec(line)?.[1] ?? 0);
  ctx.faults++;
}

/** Brings every member back, waits until all applied the same index, reads every key from each. */
async function converge(ctx: Ctx): Promise<{ converged: boolean; finalState: Map<string, string | null>; appliedIndex: number }> {
  const { cluster } = ctx;
  cluster.heal();
  for (const n of ctx.members) {
    if (n.isPaused) cluster.resume(n);
    if (!cluster.isUp(n)) cluster.start(n);
  }
  const leader = await cluster.waitLeader(ctx.members, 30_000);
  // Commit an entry in the current term so every earlier entry is committed everywhere.
  await waitFor('a write on the healed cluster', async () => (await cluster.http('POST', `${leader.api}/key`, { 'faults-barrier': 'x' })).status === 200, 20_000, 200);
  let applied = 0;
  const isSettled = await waitFor('every member to apply the same index', async () => {
    const infos = await Promise.all(ctx.members.map((n) => cluster.info(n)));
    if (infos.some((i) => i === null)) return false;
    const idx = new Set(infos.map((i) => i?.appliedIndex));
    const commit = new Set(infos.map((i) => i?.commitIndex));
    applied = infos[0]?.appliedIndex ?? 0;
    return idx.size === 1 && commit.size === 1 && applied === infos[0]?.commitIndex;
  }, 30_000, 200).catch(() => false);
  const states: Map<string, string | null>[] = [];
  // The witness key too, when the nemesis wrote it: an acknowledged witness lost shows as lost_acked.
  const finalKeys = ctx.witnessSeq > 0 ? [...KEYS, WITNESS_KEY] : KEYS;
  for (const n of ctx.members) {
    const m = new Map<string, string | null>();
    for (const k of finalKeys) {
      const r = await cluster.http('GET', `${n.api}/key/${k}?consistency=stale`);
      if (r.status === 200) m.set(k, ((r.body as Record<string, string>)[k]) ?? null);
      else if (r.status === 404) m.set(k, null);
      else m.set(k, `<unreadable ${r.status}>`);
    }
    states.push(m);
  }
  const same = states.every((m) => finalKeys.every((k) => m.get(k) === states[0].get(k)));
  for (const [i, n] of ctx.members.entries()) {
    if ([...states[i].values()].some((v) => v?.startsWith('<unreadable'))) {
      process.stderr.write(`faults: ${n.id} unreadable after healing (up=${cluster.isUp(n)}); its last output:\n${cluster.tail(n, 40)}\n`);
    }
  }
  const leaderState = states[ctx.members.indexOf(leader)] ?? states[0];
  if (!isSettled) ctx.notes.push('members did not reach the same applied index');
  if (!same) ctx.notes.push(`replicas differ: ${JSON.stringify(states.map((m) => Object.fromEntries(m)))}`);
  return { converged: isSettled === true && same, finalState: leaderState, appliedIndex: applied };
}

/** Longest stretch of the load phase without any successful operation completing. */
function unavailableMax(history: HistoryOp[], endMs: number, startMs: number): number {
  const done = history.filter((h) => h.ok && h.completeMs !== null).map((h) => h.completeMs as number).sort((a, b) => a - b);
  let prev = startMs;
  let max = 0;
  for (const t of done) {
    max = Math.max(max, t - prev);
    prev = t;
  }
  return Math.max(max, endMs - prev);
}

/** From the last heal to the completion of the first acknowledged write invoked after it. */
function recoveryAfterHeal(history: HistoryOp[], heals: number[]): number | null {
  if (heals.length === 0) return null;
  const h = heals[heals.length - 1];
  const after = history.filter((o) => o.kind !== 'get' && o.ok && o.completeMs !== null && o.invokeMs >= h).map((o) => o.completeMs as number);
  return after.length === 0 ? null : Math.min(...after) - h;
}

/** Runs one scenario end to end and returns its measurements. */
export async function runScenario(args: ScenarioArgs, dataDir: string): Promise<ScenarioResult> {
  const extraEnv: Record<string, string> = { SNAPSHOT_THRESHOLD: String(SNAPSHOT_THRESHOLD), WATCH_PROGRESS_INTERVAL_MS: String(WATCH_PROGRESS_INTERVAL_MS) };
  // The negative control's test-only module (never part of the configuration): acks before fsync.
  if (args.fault === 'power-loss-control') extraEnv.NODE_OPTIONS = `--import tsx --import ${ACK_BEFORE_SYNC_MODULE}`;
  if (args.fault === 'propose-control') extraEnv.NODE_OPTIONS = `--import tsx --import ${DECIDE_AT_PROPOSE_MODULE}`;
  if (args.fault === 'watch-control') extraEnv.NODE_OPTIONS = `--import tsx --import ${WATCH_SKIP_MODULE}`;
  if (args.fault === 'lease-control') {
    extraEnv.NODE_OPTIONS = `--import tsx --import ${LEASE_NOFENCE_MODULE}`;
    if (process.env.RAFTKV_LEASE_CONTROL_KEEP_FENCE === '1') extraEnv.RAFTKV_LEASE_CONTROL_KEEP_FENCE = '1';
  }
  const cluster = new NsCluster(dataDir, extraEnv, args.fault === 'amnesia-memory');
  const readConsistency = args.fault === 'stale-read-control' ? 'stale' : 'linearizable';
  const workload: Workload = new Workload({
    clients: 6,
    keys: KEYS,
    readConsistency,
    timeoutMs: 3500,
    rng: makeRng(args.seed * 7919 + 1),
    targets: () => ctx.members.map((n) => n.api),
    // Every scenario mixes conditional writes and transactions in; the propose control needs them.
    ops: args.fault === 'propose-control' ? 'extended' : (args.ops ?? 'extended'),
  });
  const ctx = new Ctx(cluster, workload, args.seed);
  const monitor = new Monitor(cluster, () => workload.now());
  const watchers = new Watchers(WATCH_PREFIXES, WATCH_STICKY_PREFIX, () => ctx.members, makeRng(args.seed * 104_729 + 3), () => workload.now());
  const leaseProbe = new LeaseProbe((m, u, b, t) => cluster.http(m, u, b, t), () => ctx.members, makeRng(args.seed * 65_537 + 11), () => workload.now());
  try {
    for (let i = 1; i <= args.nodes; i++) cluster.define(i);
    const spare = args.fault === 'membership' ? cluster.define(args.nodes + 1) : null;
    if (args.fault.startsWith('power-loss')) {
      ctx.disks = new PowerDisks(dataDir);
      await ctx.disks.attach(cluster.nodes);
    }
    cluster.start(cluster.nodes[0]);
    await cluster.waitLeader([cluster.nodes[0]], 30_000);
    for (const n of cluster.nodes.slice(1)) {
      if (n === spare) continue;
      cluster.start(n);
      await cluster.waitVoter(n, 30_000);
    }
    ctx.members = cluster.nodes.filter((n) => n !== spare);
    monitor.start();
    watchers.start();
    leaseProbe.start();
    workload.start();
    // Beside the checked workload: N clients race a create-only write on a fresh key, again and
    // again, through any member, while the nemesis works. Exactly one may win each race.
    const races: RaceResult[] = [];
    let isRacing = true;
    const raceLoop = (async () => {
      for (let i = 0; isRacing; i++) {
        races.push(await raceCreateOnly({ targets: ctx.members.map((n) => n.api), key: `faults-race-${i}`, clients: 5, timeoutMs: 3500, deadlineMs: 8000 }));
        await sleep(1000);
      }
    })();
    const loadStart = workload.now();
    ctx.endAt = loadStart + args.durS * 1000;
    await sleep(1000);
    await nemeses[args.fault](ctx);
    // At least 2 s of load on the healed cluster, even when a nemesis overran the nominal duration.
    ctx.endAt = Math.max(ctx.endAt, workload.now() + 2000);
    while (ctx.left() > 0) await sleep(Math.min(200, ctx.left()));
    const loadEnd = workload.now();
    await workload.stop();
    leaseProbe.stopGranting();
    isRacing = false;
    await raceLoop;
    // A violation: two winners, a winner whose value is not the one stored, or a stored value from
    // no client that could have written it. No answer at all (an unavailable stretch) is no verdict.
    const raceViolations = races.filter((r) => r.winners.length > 1 || (r.winners.length === 1 && r.final !== r.winners[0]) || (r.winners.length === 0 && typeof r.final === 'string' && !r.unknown.includes(r.final))).length;
    const { converged, finalState, appliedIndex } = await converge(ctx);
    // Leases: every orphan found gone or read past its bound (the monitor still records leaders), then
    // the kept lease read while its keeper still renews it.
    const leaseWaitStart = performance.now();
    const spans = (): LeaderSpan[] => [...monitor.spans.values()];
    await waitFor('every orphan lease expired or past its bound', () => leaseProbe.orphansSettled(spans()), 30_000, 200).catch(() => ctx.notes.push('lease_orphans_unsettled'));
    const leader = await cluster.leader(ctx.members);
    const keptAtEnd = await leaseProbe.keptAtEnd([...(leader ? [leader.api] : []), ...ctx.members.map((n) => n.api)]);
    await leaseProbe.stop();
    await monitor.stop();
    const lease = checkLeases(leaseProbe.leases, spans(), LEASE_TTL_MS, keptAtEnd);
    if (process.env.RAFTKV_FAULT_DUMP) writeFileSync(join(process.env.RAFTKV_FAULT_DUMP, `${args.fault}-${args.nodes}.leases.json`), JSON.stringify({ leaders: spans(), leases: leaseProbe.leases, keptAtEnd }));
    ctx.notes.push(`lease_wait_ms=${Math.round(performance.now() - leaseWaitStart)}`, `lease_terms=${monitor.spans.size}`);
    if (lease.keepalives === 0) lease.problems.push('no keepalive was acknowledged');
    if (lease.expired === 0 && lease.orphans > 0) lease.problems.push('no orphan lease was seen expired');
    // Every watcher catches up with the converged index; then the members' own histories are the reference.
    const watchStart = performance.now();
    if (!(await watchers.caughtUp(appliedIndex, 15_000))) ctx.notes.push(`watchers_behind=${watchers.behind(appliedIndex).join(',')}`);
    await watchers.stop();
    const refUpTo = Math.max(appliedIndex, watchers.highestSeen());
    const memberLogs = await Promise.all(ctx.members.map((n) => readMemberLog(n, refUpTo)));
    const reference = buildReference(memberLogs, refUpTo);
    const checkedKeys = ctx.witnessSeq > 0 ? [...KEYS, WITNESS_KEY] : KEYS;
    checkReference(reference, workload.history, finalState, checkedKeys);
    const watch = checkStreams(watchers.streams, reference);
    ctx.notes.push(
      `watch_connections=${watch.connections}`,
      `watch_compacted=${watch.compacted}`,
      `watch_unchecked=${watch.unchecked}`,
      `watch_ref=(${reference.floor},${reference.upTo}]:${reference.indexes.length}records/${memberLogs.map((l) => `${l.member}>${l.floor}`).join(',')}`,
      `watch_check_ms=${Math.round(performance.now() - watchStart)}`,
    );
    if (watch.events === 0) watch.problems.push('no watcher received a change event');

    // The converged state as reads at the end: it must be explainable by the history too.
    const history = [...workload.history];
    const tEnd = workload.now();
    for (const k of finalState.keys()) history.push({ client: -1, kind: 'get', key: k, result: finalState.get(k) ?? null, invokeMs: tEnd, completeMs: tEnd + 1, ok: true });
    const dump = process.env.RAFTKV_FAULT_DUMP;
    // The members' log resolves unknown-outcome writes it proves were never applied (only when the
    // members agree on it and it matches every acknowledged write: checkReference above).
    const committed = reference.problems.length === 0 ? { floor: reference.floor, records: reference.records } : undefined;
    if (dump) {
      writeFileSync(join(dump, `${args.fault}-${args.nodes}.json`), JSON.stringify(history));
      if (committed) writeFileSync(join(dump, `${args.fault}-${args.nodes}.log.json`), JSON.stringify({ floor: committed.floor, records: [...committed.records] }));
    }
    const checkStart = performance.now();
    const lin = checkLinearizable(history, 2_000_000, 180_000, committed); // 'unknown' past 3 minutes of search, never a hang
    ctx.notes.push(
      `check=${history.length}ops/${lin.explored}configs/${Math.round(performance.now() - checkStart)}ms`,
      lin.resolved ? `unknown_writes_resolved=never:${lin.resolved.neverApplied},applied:${lin.resolved.applied}` : 'unknown_writes_resolved=no_log',
    );
    // Installed = the others had compacted past the follower's log at heal, and it converged anyway.
    const snapshotInstalled = args.fault === 'follower-snapshot' ? ctx.snapshotForced && converged : null;
    const ops = workload.history;
    const reasons = new Map<string, number>();
    for (const o of ops) if (o.error) reasons.set(`${o.kind}/${o.error}`, (reasons.get(`${o.kind}/${o.error}`) ?? 0) + 1);
    if (ctx.disks) ctx.notes.push(`unsynced_files_dropped=${ctx.droppedFiles}`, `witness_acked_before_cut=${ctx.witnessAcked}`);
    for (const p of [...new Set(monitor.phantoms)].slice(0, 5)) ctx.notes.push(`phantom: ${p}`);
    if (args.fault === 'watch-control') {
      const hooked = ctx.members.filter((n) => (n.proc?.output.join('') ?? '').includes('NEGATIVE CONTROL: one watch'));
      const skips = ctx.members.flatMap((n) => (n.proc?.output.join('') ?? '').match(/skipped change \d+/g) ?? []);
      ctx.notes.push(`control_hooked=${hooked.length}/${ctx.members.length}`, `control_skips=${skips.length}`);
    }
    if (args.fault === 'lease-control') {
      const hooked = ctx.members.filter((n) => (n.proc?.output.join('') ?? '').includes('NEGATIVE CONTROL: deposed leaders'));
      const forwarded = ctx.members.flatMap((n) => (n.proc?.output.join('') ?? '').match(/stale expiry of \S+ \(term \d+\) forwarded/g) ?? []);
      ctx.notes.push(`control_hooked=${hooked.length}/${ctx.members.length}`, `control_forwarded=${forwarded.length}`);
    }
    if (args.fault === 'propose-control') {
      const hooked = ctx.members.filter((n) => (n.proc?.output.join('') ?? '').includes('NEGATIVE CONTROL'));
      ctx.notes.push(`control_hooked=${hooked.length}/${ctx.members.length}`);
    }
    if (args.fault === 'power-loss-control') {
      // Proof the control is in effect: each node prints this line at every start (ack-before-sync.mjs).
      const hooked = ctx.members.filter((n) => (n.proc?.output.join('') ?? '').includes('NEGATIVE CONTROL'));
      ctx.notes.push(`control_hooked=${hooked.length}/${ctx.members.length}`);
    }
    ctx.notes.push(`not_ok=${[...reasons].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k}x${v}`).join(',')}`);
    return {
      fault: args.fault,
      nodes: args.nodes,
      seed: args.seed,
      durS: Math.round((loadEnd - loadStart) / 1000),
      ok: ops.filter((o) => o.ok && o.completeMs !== null).length,
      fail: ops.filter((o) => !o.ok).length,
      unknown: ops.filter((o) => o.ok && o.completeMs === null).length,
      lostAcked: countLostAcked(ops, finalState),
      staleReads: countStaleReads(history),
      linearizable: lin.linearizable,
      badKey: lin.badKey,
      converged,
      unavailableMaxS: unavailableMax(ops, loadEnd, loadStart) / 1000,
      recoveryAfterHealS: (() => {
        const r = recoveryAfterHeal(ops, ctx.heals);
        return r === null ? null : r / 1000;
      })(),
      leaderChanges: monitor.changes(),
      phantomMatch: monitor.phantoms.length,
      races: races.length,
      raceViolations,
      snapshotInstalled,
      faultsInjected: ctx.faults,
      cutsVerified: ctx.cutsVerified,
      watchStreams: watch.streams,
      watchEvents: watch.events,
      watchOk: watch.problems.length === 0,
      watchProblems: watch.problems.slice(0, 6),
      leaseOk: lease.problems.length === 0,
      leaseKeepalives: lease.keepalives,
      leaseKept: lease.kept,
      leaseOrphans: lease.orphans,
      leaseExpired: lease.expired,
      leaseMaxLateS: lease.maxLateMs === null ? null : lease.maxLateMs / 1000,
      leaseProblems: lease.problems.slice(0, 6),
      notes: ctx.notes,
    };
  } finally {
    await workload.stop().catch((err: unknown) => process.stderr.write(`faults: stopping clients: ${String(err)}\n`));
    await watchers.stop().catch((err: unknown) => process.stderr.write(`faults: stopping watchers: ${String(err)}\n`));
    await leaseProbe.stop().catch((err: unknown) => process.stderr.write(`faults: stopping the lease probe: ${String(err)}\n`));
    await monitor.stop();
    await cluster.destroy();
    await ctx.disks?.detach();
  }
}

function assertInsideNamespace(): void {
  const want = process.env.RAFTKV_FAULT_NS;
  if (!process.env.RAFTKV_FAULT_DIR) {
    process.stderr.write('faults: RAFTKV_FAULT_DIR is not set\n');
    process.exit(2);
  }
  const r = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' });
  const got = r.stdout.trim();
  if (!want || got !== want) {
    process.stderr.write(`faults: refusing to run outside the fault namespace (RAFTKV_FAULT_NS=${want ?? ''}, current=${got || 'root'})\n`);
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  assertInsideNamespace();
  const args = JSON.parse(process.argv[2] ?? '{}') as ScenarioArgs;
  if (!FAULTS.includes(args.fault)) {
    process.stderr.write(`faults: unknown fault ${String(args.fault)}\n`);
    process.exit(2);
  }
  runScenario(args, process.env.RAFTKV_FAULT_DIR ?? '').then(
    (r) => {
      process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`faults: scenario ${args.fault} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
