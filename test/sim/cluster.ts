/**
 * Deterministic in-process Raft cluster simulator: virtual time, a faulty network (network.ts: delay,
 * loss, duplication, late replays, reordering, symmetric and one-way partitions), crashes that lose
 * what was not persisted (storage.ts), process stalls, membership changes, log compaction and
 * snapshot installs, and targeted nemesis schedules mixed into the random ones. Invariants
 * (checker.ts) are checked after every step. This file is the simulated driver, the fault schedule,
 * the clients and operators, and the scenarios. The Raft constructor is a parameter so mutated copies
 * of the core can be plugged in (mutants.ts).
 */
import type {
  ClusterConfig, ConfChange, Entry, HeldSnapshot, Message, ProposeResult, RaftInitialState, RaftOptions, RaftStatus, Ready, Snapshot,
  TransferResult,
} from '../../src/raft/core/types.js';
import { InvariantChecker, majority, votersOf } from './checker.js';
import { SimNetwork, describe } from './network.js';
import { makeRng, randInt } from './rng.js';
import { applyToSm, decodeSm, encodeSm, entryCommand, expireOnOwnClock, leasesOf, newSimNode, persistCompaction, persistEntries, storeSnapshot, wipe, type Pending, type SimNode, type SmMutant } from './storage.js';
import { keepaliveNeedsCheckpoint, LeaseDeadlines } from '../../src/kv/lease-deadlines.js';
import type { EntryOutcome } from '../../src/kv/types.js';
import { encodeKvCommand, type KeyCondition, type KvCommand } from '../../src/kv/commands.js';
import type { Compare, TxnOp } from '../../src/kv/txn.js';
import type { KvOp } from '../../src/kv/types.js';
import { pathToFileURL, fileURLToPath } from 'node:url';
import * as path from 'node:path';

/** The surface of the core the simulator drives. */
export interface RaftLike {
  bootstrap(config: ClusterConfig): void;
  campaign(): void;
  tick(): void;
  step(m: Message): void;
  propose(data: string): ProposeResult;
  proposeConfChange(change: ConfChange): ProposeResult;
  readIndex(id: string): void;
  compact(index: number, data: string | null): HeldSnapshot | null;
  readonly needsSnapshotData: boolean;
  supplySnapshotData(index: number, data: string): HeldSnapshot | null;
  transferLeadership(to?: string): TransferResult;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  status(): RaftStatus;
}
/** Constructor of a Raft core (the real one or a mutant). */
export type RaftCtor = new (options: RaftOptions, initial: RaftInitialState) => RaftLike;
/** What the simulator needs from a core module. */
export interface RaftModule {
  Raft: RaftCtor;
  defaultRaftOptions: (id: string, rng: () => number) => RaftOptions;
}

/** The targeted nemesis schedules; each is a script that watches the cluster and strikes at the sharp moment. */
export type ScenarioName = 'vote-crash' | 'figure8' | 'stale-append' | 'stale-leader-read' | 'conf-burst' | 'catch-up-takeover' | 'amnesia' | 'foreign-bootstrap';
/** Every targeted schedule of the atomic mode, in the order they are described in the README. */
export const SCENARIOS: ScenarioName[] = ['vote-crash', 'figure8', 'stale-append', 'stale-leader-read', 'conf-burst', 'amnesia'];
/** The schedules of the interleaving mode: those above plus the ones that strike inside a Ready. */
export const INTERLEAVE_SCENARIOS: ScenarioName[] = [...SCENARIOS, 'catch-up-takeover'];

/** Knobs of one simulated run; defaults are what `npm run sim` uses. */
export interface SimOptions {
  raft: RaftModule;
  /** Fault-phase steps (one step = one tick of every live node plus deliveries). */
  steps?: number;
  /** Bound on the liveness phase, in steps. */
  livenessSteps?: number;
  maxDelay?: number;
  dropProb?: number;
  dupProb?: number;
  /** Probability that a sent message is also replayed much later (a stale duplicate). */
  lateDupProb?: number;
  partitionProb?: number;
  crashProb?: number;
  /** Probability per step that a node stalls (stops ticking and processing, like a GC pause). */
  stallProb?: number;
  /** Probability per step that the leader is asked for a random membership change. */
  confChangeProb?: number;
  /** Probability per step that the leader hands over (TimeoutNow) before a graceful restart. */
  transferProb?: number;
  /** Probability per node and step of compacting the log at the applied index (0 in some seeds). */
  compactProb?: number;
  writeProb?: number;
  readProb?: number;
  keys?: number;
  /** Node ids beyond the initial members that can join as learners. */
  spares?: number;
  /** Targeted schedules that may run (default all). */
  scenarios?: ScenarioName[];
  /** Called with one line per event when set (replay mode). */
  trace?: (line: string) => void;
  /** Stop at the first violation (default true). */
  stopOnViolation?: boolean;
  /**
   * Interleaving mode: each Ready is handled in the real driver's steps (src/raft/node/node.ts
   * handleReady) with the core live in between, as on every await of the driver: ready() (a leader
   * whose Ready changes no term, vote or snapshot sends at once, before its own fsync) → save the
   * received snapshot → write entries and hard state (synced) → send → install and apply → advance().
   * Messages, ticks, proposals and reads are stepped between these steps, and a crash can land between
   * any two of them (losing what was not yet synced). Off by default: the atomic mode keeps its seeds.
   */
  interleave?: boolean;
  /**
   * NEGATIVE CONTROL (never on in a normal run): a node that lost all its storage comes back under
   * its old identity as a voter (no incarnations; it restarts with the configuration as if it were
   * still a member), as raftkv did before docs/cluster-identity.md. The 'amnesia' scenario must then
   * lose an acknowledged write (or break log matching), and the checker must flag it.
   */
  amnesiaLegacy?: boolean;
  /** A planted state-machine bug (storage.ts SmMutant; mutants.ts only). */
  smMutant?: SmMutant;
  /** Share of client writes that are conditional writes or transactions (the rest are plain sets). */
  condProb?: number;
  /**
   * Leases (issue 17 §7; off by default so the seeds of the runs before them keep their traces,
   * `--leases` in run.ts): clients
   * grant leases with TTLs in ticks, attach keys, keep some alive through the leader and abandon the
   * rest; each leader runs the pure lease clock (src/kv/lease-deadlines.ts) with the step as time and
   * proposes expiries and checkpoints as the real driver does. See SimCluster.leaseOps.
   */
  leases?: boolean;
  /**
   * A planted lease bug (mutants.ts only): 'reset-on-election' — a new leader arms every inherited
   * lease with its full TTL; 'own-clock' — every replica also expires leases on its own clock (grant
   * or checkpoint applied + remaining time, keepalives unseen) while applying, outside the log.
   */
  leaseMutant?: 'none' | 'reset-on-election' | 'own-clock';
}

/** A lease as its client and the checks know it (SimOptions.leases). */
interface SimLease {
  id: string;
  ttl: number;
  /** orphan: granted but the grant was never acknowledged (nobody keeps it); keep: renewed until the faults end; abandon/revoke: renewed until stopAt, then left to expire / revoked at revokeAt. */
  mode: 'orphan' | 'keep' | 'abandon' | 'revoke';
  stopAt: number;
  revokeAt: number;
  nextKeepAt: number;
  /** The grant's proposal step, or the step a leader took the last acknowledged keepalive: the lease may not be expired by an entry proposed before lastAcked + ttl. */
  lastAcked: number;
  /** The last step a leader renewed it (acknowledged or not) or applied its grant: the upper bound starts there. */
  lastSent: number;
  /** Ticks lost to leader changes: Σ over leaders that armed it of (arming step - step the inherited remaining time was recorded). */
  loss: number;
  /** [index, step]: the entries that recorded its remaining time (grant, checkpoints) and when each was proposed. */
  records: Array<[number, number]>;
  gone: boolean;
  /** Its client renews late, at ttl/2-0.8 ttl (keepaliveGap). */
  isLazy: boolean;
}

/** One node's lease driver (volatile: a restart starts it afresh), as src/raft/node would run it. */
interface LeaseDriver {
  /** Leading with the clock armed: set once the leader applied an entry of its own term (its table then holds everything committed before). */
  armed: boolean;
  term: number;
  d: LeaseDeadlines;
  /** Lease commands waiting to be proposed (a failed proposal is retried while this node lives; expiries across terms, checkpoints only in their term). */
  queue: Array<{ cmd: KvCommand; term: number; createdAt: number; readyAt: number; dropAt: number }>;
  /** Expiries handed out by the clock and not applied yet: id -> step. */
  expiring: Map<string, number>;
  /** Grants proposed for a client: index -> what the client will do with the lease. */
  grants: Map<number, { term: number; mode: SimLease['mode']; stopAt: number; revokeAt: number; isLazy: boolean }>;
  /** Keepalives waiting for their ReadIndex: read id -> lease, step renewed, read index. */
  kaReads: Map<string, { id: string; k: number; index: number | null }>;
  /** Keepalives waiting for their checkpoint entry (the durable-keepalive rule): index -> lease, term, step renewed. */
  kaCkpt: Map<number, { term: number; id: string; k: number }>;
  /** Checkpoints proposed and not applied here yet: index -> what they record. */
  ckptInflight: Map<number, Array<[string, number]>>;
}

/** Ticks between two checkpoints of a lease (lease-deadlines caps it at a quarter of the TTL). */
const LEASE_CHECKPOINT_TICKS = 20;

/** A broken invariant: the step it was seen at and what broke. */
export interface Violation { step: number; msg: string }

type Script = Generator<void, void, void>;

/** Steps between two join requests of a node that came back empty (main.ts retries every 0.2-2 s). */
const JOIN_RETRY_STEPS = 10;

/** One seeded cluster run: construct, then run(); the same seed always gives the same run. */
export class SimCluster {
  readonly rng: () => number;
  readonly ids: string[];
  readonly nodes: SimNode[] = [];
  readonly violations: Violation[] = [];
  readonly config: ClusterConfig;
  step = 0;
  /** The wire between the nodes. */
  private readonly network: SimNetwork;
  /** The global record and the invariants checked against it. */
  private readonly checker: InvariantChecker;
  /** What network, checker and disk operations see of this run: step, counters, trace, violations. */
  private readonly host: {
    readonly step: number; readonly faults: boolean; readonly nodes: SimNode[]; readonly isInterleaved: boolean; readonly hasLeases: boolean;
    stats: SimCluster['stats']; trace(f: () => string): void; violate(msg: string): void; runningIncarnation(x: SimNode): string;
  };
  private readonly opts: Required<Omit<SimOptions, 'trace'>> & Pick<SimOptions, 'trace'>;
  private readonly coreOpts: Partial<RaftOptions>;
  /** The configuration of the committed log (the operator retires nodes it removed). */
  private committedConfig: ClusterConfig;
  private writeSeq = 0;
  private readSeq = 0;
  /** Reads served in the liveness phase: id -> index of the write returned. */
  private servedReads = new Map<string, number>();
  stats = {
    writes: 0, condWrites: 0, acked: 0, reads: 0, readsDone: 0, crashes: 0, partitions: 0, stalls: 0, delivered: 0, dropped: 0,
    confChanges: 0, transfers: 0, compactions: 0, snapshotsSupplied: 0, snapshotsInstalled: 0, scenarios: 0,
  };
  private faults = true;
  // leases (SimOptions.leases)
  private readonly leases = new Map<string, SimLease>();
  private readonly leaseDrivers = new Map<SimNode, LeaseDriver>();
  /** MUTANT own-clock: each replica's own lease deadlines (leaseMutant). */
  private readonly ownClocks = new Map<SimNode, Map<string, number>>();
  /** The step each lease command was made at (decided by the clock or the client), by `${index}/${term}` of its entry. */
  private readonly leaseProposedAt = new Map<string, number>();
  private keepaliveSeq = 0;
  /** The election timeout the lease clock uses (becomeLeader's slack and the durable-keepalive rule). */
  private leaseEt = 0;
  leaseStats = { leaseGrants: 0, leaseKeepalives: 0, leaseKeepalivesDurable: 0, leaseExpired: 0, leaseFenced: 0, leaseRevoked: 0, leaseArmings: 0 };
  // targeted nemesis state
  private script: { name: ScenarioName; gen: Script } | null = null;
  private nextScriptAt: number;
  private crashAfterVote = 0;
  private pendingVoteCrash = new Set<SimNode>();
  /** Nodes to shut down (and restart) after a leadership transfer: node -> step. */
  private shutdowns = new Map<SimNode, number>();
  /** Nodes that came back empty and retry their join until the committed configuration records them. */
  private joiners = new Set<SimNode>();

  constructor(readonly seed: number, readonly nodeCount: number, opts: SimOptions) {
    this.rng = makeRng(seed);
    this.opts = {
      steps: 3000, livenessSteps: 3000, maxDelay: 6, dropProb: 0.08, dupProb: 0.05, lateDupProb: 0.01, partitionProb: 0.02,
      crashProb: 0.008, stallProb: 0.004, confChangeProb: 0.004, transferProb: 0.003, compactProb: 0.01, writeProb: 0.5, readProb: 0.3, keys: 2,
      spares: 3, scenarios: opts.interleave ? INTERLEAVE_SCENARIOS : SCENARIOS, stopOnViolation: true, interleave: false, amnesiaLegacy: false, smMutant: 'none', condProb: 0.5, leases: false, leaseMutant: 'none', ...opts,
    };
    const self = this;
    const host = {
      get step(): number { return self.step; },
      get faults(): boolean { return self.faults; },
      get nodes(): SimNode[] { return self.nodes; },
      get isInterleaved(): boolean { return self.opts.interleave; },
      get hasLeases(): boolean { return self.opts.leases; },
      stats: this.stats,
      trace: (f: () => string): void => this.trace(f),
      violate: (msg: string): void => this.violate(msg),
      runningIncarnation: (x: SimNode): string => (x.foreign ? x.foreignInc : (this.incarnationField(x.id, x.amnesia).incarnation ?? '')),
    };
    this.host = host;
    this.network = new SimNetwork(this.rng, this.opts, host);
    this.checker = new InvariantChecker(host);
    // Per-seed core tunables: small batches and windows make partial replication (Figure 8) and
    // reordering within a pipeline common; small chunks make every snapshot a multi-chunk transfer.
    const r = this.rng;
    const smallBatches = r() < 0.5;
    this.coreOpts = {
      maxEntriesPerAppend: smallBatches ? randInt(r, 1, 3) : 64,
      maxInflight: randInt(r, 2, 16),
      maxSnapshotChunkBytes: randInt(r, 8, 96),
      compactionTailEntries: r() < 0.5 ? 0 : randInt(r, 1, 5),
      maxUncommittedEntries: randInt(r, 32, 256),
      compactionTailBytes: r() < 0.5 ? 1 << 20 : randInt(r, 10, 200),
    };
    // Without compaction a follower that was down long catches up entry by entry; keep that to big batches.
    if (!smallBatches && r() < 0.4) this.opts.compactProb = 0;
    this.nextScriptAt = randInt(r, 50, 300);
    this.ids = Array.from({ length: nodeCount + this.opts.spares }, (_, i) => `n${i + 1}`);
    this.config = { members: this.ids.slice(0, nodeCount).map((id) => ({ id, suffrage: 'voter' as const, raftAddr: '', apiAddr: '', ...this.incarnationField(id, 0) })) };
    this.committedConfig = this.config;
    if (this.opts.leases) this.leaseEt = this.opts.raft.defaultRaftOptions('lease-clock', () => 0).electionTimeoutTicks;
    this.trace(() => `seed ${seed}: ${nodeCount} voters, spares ${this.ids.slice(nodeCount).join(',')}, core ${JSON.stringify(this.coreOpts)}`);
    this.ids.forEach((id, i) => {
      const n = newSimNode(id);
      this.nodes.push(n);
      if (i < nodeCount) this.start(n, true);
    });
    // The initial members' bootstrap is on disk before the run starts, as a node's is before it serves
    // (a real node that crashed before that restarts empty, as a new incarnation): atomic in both modes.
    for (const n of this.nodes) this.processReadyAtomic(n);
    this.checkInvariants();
  }

  private trace(f: () => string): void {
    if (this.opts.trace) this.opts.trace(`[${this.step}] ${f()}`);
  }
  private violate(msg: string): void {
    this.violations.push({ step: this.step, msg });
    this.trace(() => `VIOLATION ${msg}`);
  }

  private start(n: SimNode, bootstrap: boolean): void {
    const rng = makeRng((this.seed * 7919 + n.incarnation * 131 + this.ids.indexOf(n.id)) >>> 0);
    const o: RaftOptions = { ...this.opts.raft.defaultRaftOptions(n.id, rng), ...this.coreOpts, incarnation: this.incarnationField(n.id, n.amnesia).incarnation ?? '' };
    const snap = n.snapshot;
    n.started = true;
    n.raft = new this.opts.raft.Raft(o, { hardState: { ...n.hardState }, snapshot: snap, entries: n.log.slice(), applied: snap?.meta.lastIndex ?? 0 });
    n.sm = snap ? decodeSm(snap.data ?? n.snapshotSm) : new Map();
    n.appliedIndex = snap?.meta.lastIndex ?? 0;
    n.lastCommit = 0; n.pending = new Map(); n.reads = new Map(); n.stalledUntil = 0;
    n.lastRole = 'follower';
    n.inflight = null;
    n.checkedCommit = { term: 0, commit: 0 };
    if (this.opts.leases) {
      this.leaseDrivers.set(n, {
        armed: false, term: 0, d: new LeaseDeadlines(), queue: [], expiring: new Map(), grants: new Map(), kaReads: new Map(), kaCkpt: new Map(), ckptInflight: new Map(),
      });
    }
    if (bootstrap) n.raft.bootstrap(this.config);
  }

  /** The member field naming incarnation `k` of node `id` (none in the legacy control, as before incarnations). */
  private incarnationField(id: string, k: number): { incarnation?: string } {
    return this.opts.amnesiaLegacy ? {} : { incarnation: `${id}#${k}` };
  }

  private isUp(n: SimNode): boolean { return n.raft !== null && n.stalledUntil <= this.step; }

  // ------------------------------------------------------------------ driver: persist → send → apply → advance
  private processReady(n: SimNode): void {
    if (this.opts.interleave) { this.driveInterleaved(n); return; }
    this.processReadyAtomic(n);
  }

  private processReadyAtomic(n: SimNode): void {
    for (let guard = 0; n.raft && n.stalledUntil <= this.step && n.raft.hasReady() && guard < 100; guard++) {
      const r = n.raft;
      const rd = r.ready();
      this.checkCampaignerIsVoter(n, r, rd);
      // persist
      if (rd.snapshot) this.persistSnapshot(n, rd.snapshot);
      if (rd.entries.length > 0) persistEntries(this.host, n, rd.entries);
      if (rd.hardState) n.hardState = { ...rd.hardState };
      // send, once what the messages depend on is stable
      this.sendReady(n, rd);
      // apply
      this.applyReady(n, rd);
      this.finishReady(n, r, rd);
    }
  }

  /** Sends a Ready's messages, checking that what each depends on is stable (Raft Fig. 2). */
  private sendReady(n: SimNode, rd: Ready): void {
    for (const m of rd.messages) {
      this.checker.checkSend(n, m);
      // 'vote-crash': the node crashes right after its granted vote went out
      if (m.type === 'RequestVoteResponse' && m.granted && !m.preVote && this.crashAfterVote > 0 && this.rng() < this.crashAfterVote) this.pendingVoteCrash.add(n);
    }
    for (const m of rd.messages) this.network.send(m);
  }

  /** Installs a Ready's snapshot into the state machine, applies its committed entries and takes its read states. */
  private applyReady(n: SimNode, rd: Ready): void {
    if (rd.snapshot) this.installSnapshot(n, rd.snapshot);
    for (const e of rd.committedEntries) this.apply(n, e, rd.softState.term);
    for (const rs of rd.readStates) {
      const pr = n.reads.get(rs.id);
      if (pr) { pr.index = rs.index; this.trace(() => `${n.id} readState ${rs.id} index=${rs.index}`); }
      const ka = this.opts.leases ? this.leaseDrivers.get(n)?.kaReads.get(rs.id) : undefined;
      if (ka) { ka.index = rs.index; this.trace(() => `${n.id} readState ${rs.id} (keepalive ${ka.id}) index=${rs.index}`); }
    }
    for (const f of rd.readFailures) {
      n.reads.delete(f.id);
      if (this.opts.leases) this.leaseDrivers.get(n)?.kaReads.delete(f.id);
      this.trace(() => `${n.id} readFailure ${f.id} ${f.reason}`);
    }
  }

  /** advance(), then what the driver does between Readies: serve reads, compact, supply snapshot data. */
  /**
   * A node campaigns only as a voter of its own configuration, checked when the Ready reporting the
   * campaign is taken: in the interleaving mode an AppendEntries stepped in before advance() may
   * truncate the uncommitted entry that made it a voter, and its configuration then is not the one
   * it campaigned under.
   */
  private checkCampaignerIsVoter(n: SimNode, r: RaftLike, rd: Ready): void {
    const st = rd.softState;
    if (st.role === n.lastRole || (st.role !== 'precandidate' && st.role !== 'candidate')) return;
    if (!votersOf(r.status().config).includes(n.id)) this.violate(`${n.id} campaigned (${st.role}, term ${st.term}) although it is not a voter in its own configuration`);
  }

  private finishReady(n: SimNode, r: RaftLike, rd: Ready): void {
    r.advance(rd);
    this.checker.checkCommitDurable(n);
    this.serveReads(n);
    this.maybeCompact(n);
    this.maybeSupplySnapshot(n);
    const st = rd.softState;
    if (st.role !== n.lastRole) {
      const prev = n.lastRole; n.lastRole = st.role;
      this.trace(() => `${n.id} role ${prev} -> ${st.role} term=${st.term}`);
    }
    if (rd.commitIndex !== n.lastCommit) {
      if (rd.commitIndex < n.lastCommit) this.violate(`${n.id}: commit index decreased ${n.lastCommit} -> ${rd.commitIndex}`);
      const prev = n.lastCommit; n.lastCommit = rd.commitIndex;
      this.trace(() => `${n.id} commit ${prev} -> ${rd.commitIndex}`);
    }
    if (this.pendingVoteCrash.has(n)) {
      this.pendingVoteCrash.delete(n);
      this.crash(n, this.step + randInt(this.rng, 1, 4), 'right after granting a vote');
    }
  }

  /**
   * Interleaving mode: runs the node's driver for a random number of its steps (each ends where the
   * real driver awaits I/O), so the rest of the cluster, the network and the clock move in between.
   */
  private driveInterleaved(n: SimNode): void {
    for (let guard = 0; guard < 200; guard++) {
      if (!n.raft || n.stalledUntil > this.step) return;
      if (n.inflight === null && !n.raft.hasReady()) return;
      const before = n.inflight;
      this.driverStep(n);
      // the awaited I/O has not completed yet
      if (before !== null && n.inflight === before && before.doneAt > this.step) return;
      // the await resolves later: messages, ticks and client requests reach the core first
      if (this.rng() < 0.4) return;
    }
  }

  /** One step of the simulated driver: from one await of node.ts handleReady/runLoop to the next. */
  private driverStep(n: SimNode): void {
    const r = n.raft!;
    if (this.faults && !this.script && this.rng() < 0.0005 && this.canCrashOne()) {
      const f0 = n.inflight;
      const where = f0 === null ? 'between Readies' : `awaiting ${f0.awaiting}${f0.isSendFirst ? ' (its messages already sent)' : ''}`;
      this.crash(n, this.step + randInt(this.rng, 1, 30), `inside the driver, ${where}`);
      return;
    }
    const f = n.inflight;
    if (f === null) {
      const rd = r.ready();
      this.checkCampaignerIsVoter(n, r, rd);
      // node.ts: a leader sends before its own fsync unless the Ready changes term, vote or snapshot
      const isSendFirst = rd.softState.role === 'leader' && rd.hardState === null && rd.snapshot === null;
      if (isSendFirst) this.sendReady(n, rd);
      n.inflight = { rd, isSendFirst, awaiting: rd.snapshot ? 'persist-snapshot' : 'persist', doneAt: this.ioDoneAt() };
      // no write, no await: the driver goes straight on to send
      if (!rd.snapshot && rd.hardState === null && rd.entries.length === 0) this.afterPersist(n);
      return;
    }
    if (this.step < f.doneAt) return;
    const rd = f.rd;
    switch (f.awaiting) {
      case 'persist-snapshot':
        this.persistSnapshot(n, rd.snapshot!);
        this.trace(() => `${n.id} synced the received snapshot through ${rd.snapshot!.meta.lastIndex}`);
        if (rd.hardState !== null || rd.entries.length > 0) { f.awaiting = 'persist'; f.doneAt = this.ioDoneAt(); } else this.afterPersist(n);
        return;
      case 'persist':
        if (rd.entries.length > 0) persistEntries(this.host, n, rd.entries);
        if (rd.hardState) n.hardState = { ...rd.hardState };
        this.trace(() => `${n.id} synced${rd.entries.length ? ` entries ${rd.entries[0]!.index}..${rd.entries[rd.entries.length - 1]!.index}` : ''}${rd.hardState ? ` term=${rd.hardState.term} vote=${rd.hardState.votedFor}` : ''}`);
        this.afterPersist(n);
        return;
      case 'apply':
        this.applyReady(n, rd);
        n.inflight = null;
        this.finishReady(n, r, rd);
        return;
      default:
        throw new Error(`unexpected driver state ${String(f.awaiting)}`);
    }
  }

  /** After the synced write: send (unless sent first), then install and apply, awaited only when there is something to do. */
  private afterPersist(n: SimNode): void {
    const f = n.inflight!;
    const rd = f.rd;
    if (!f.isSendFirst) this.sendReady(n, rd);
    const isInstall = rd.snapshot !== null && rd.snapshot.meta.lastIndex > n.appliedIndex;
    const isApply = rd.committedEntries.some((e) => e.index > n.appliedIndex);
    if (isInstall || isApply) { f.awaiting = 'apply'; f.doneAt = this.ioDoneAt(); return; }
    this.applyReady(n, rd);
    n.inflight = null;
    this.finishReady(n, n.raft!, rd);
  }

  /** When an awaited write completes: now (the next driver step) or a few steps later, like a slow fsync. */
  private ioDoneAt(): number {
    return this.rng() < 0.5 ? this.step : this.step + randInt(this.rng, 1, 4);
  }

  /** Interleaving mode, after a message was stepped into `n`: sometimes its driver's pending await resolves now. */
  private maybeDriverStep(n: SimNode): void {
    if (!this.opts.interleave || !n.raft || n.stalledUntil > this.step || this.rng() >= 0.25) return;
    if (n.inflight !== null || n.raft.hasReady()) this.driverStep(n);
  }

  /** The bound maybeCrash keeps: a crash only while fewer than a majority of the members are down. */
  private canCrashOne(): boolean {
    const ms = this.members();
    return ms.filter((m) => !m.raft).length < majority(ms.length);
  }

  /** Stores a snapshot received from a leader (Ready.snapshot) once the checker accepts it. */
  private persistSnapshot(n: SimNode, s: Snapshot): void {
    const shadow = this.checker.checkReceivedSnapshot(n, s);
    if (shadow) storeSnapshot(n, s, shadow.terms, shadow.hash);
  }

  private apply(n: SimNode, e: Entry, term: number): void {
    const idx = n.appliedIndex + 1;
    if (e.index !== idx) { this.violate(`${n.id}: applied index ${e.index} out of order (expected ${idx})`); return; }
    n.appliedIndex = idx;
    const isFirst = this.checker.recordApplied(n, e, term);
    if (isFirst && e.type === 'config') this.onConfigCommitted(e.config);
    this.checker.checkAckedWrite(n, e);
    let out = applyToSm(n.sm, e, this.opts.smMutant);
    if (this.opts.leaseMutant === 'own-clock') out = this.expireOnOwnClock(n, e, out);
    if (this.opts.leases) this.checker.checkLeases(n, e, out);
    this.checker.checkOutcome(n, e, out);
    if (this.opts.leases) this.onLeaseApplied(n, e, out, isFirst);
    const p: Pending | undefined = n.pending.get(idx);
    if (p) {
      n.pending.delete(idx);
      if (p.term === e.term) this.checker.ack(n, idx, p, out);
    }
  }

  private installSnapshot(n: SimNode, s: Snapshot): void {
    const L = s.meta.lastIndex;
    this.stats.snapshotsInstalled++;
    this.trace(() => `${n.id} installs snapshot through ${L} (term ${s.meta.lastTerm}, ${s.data.length} chars)`);
    this.checker.checkInstalledSnapshot(n, s, this.config);
    n.sm = decodeSm(s.data);
    n.appliedIndex = L;
  }

  private maybeCompact(n: SimNode): void {
    if (!n.raft || this.opts.compactProb === 0 || this.rng() >= this.opts.compactProb) return;
    const base = n.snapshot?.meta.lastIndex ?? 0;
    if (n.appliedIndex - base < 3) return;
    // Half the compactions keep no data: the state machine holds it, as with the RocksDB driver.
    const isWithoutData = this.rng() < 0.5;
    const data = encodeSm(n.sm);
    persistCompaction(this.host, n, n.raft.compact(n.appliedIndex, isWithoutData ? null : data), data, 'compact');
  }

  /** A leader asked for its snapshot's data: answer (some steps later) with the state at the applied index. */
  private maybeSupplySnapshot(n: SimNode): void {
    if (!n.raft || !n.raft.needsSnapshotData || this.rng() >= 0.3) return;
    const data = encodeSm(n.sm);
    const want = encodeSm(this.checker.stateAt(n.appliedIndex));
    if (data !== want) this.violate(`${n.id}: state machine at ${n.appliedIndex} differs from the committed state there`);
    this.stats.snapshotsSupplied++;
    this.trace(() => `${n.id} supplies snapshot data at ${n.appliedIndex}`);
    persistCompaction(this.host, n, n.raft.supplySnapshotData(n.appliedIndex, data), data, 'supplySnapshotData');
    if (n.raft.needsSnapshotData) this.violate(`${n.id}: still asks for snapshot data after it was supplied at ${n.appliedIndex}`);
  }

  private serveReads(n: SimNode): void {
    for (const pr of [...n.reads.values()]) {
      if (pr.index === null || n.appliedIndex < pr.index) continue;
      n.reads.delete(pr.id);
      this.stats.readsDone++;
      const got = n.sm.get(pr.key);
      const gotIdx = got?.index ?? 0;
      if (!this.faults) this.servedReads.set(pr.id, gotIdx);
      this.trace(() => `${n.id} read ${pr.id} ${pr.key}=${got?.value ?? '<none>'} (write index ${gotIdx}, required >= ${pr.minIndex})`);
      this.checker.checkRead(n, pr, gotIdx);
    }
  }

  private onConfigCommitted(c: ClusterConfig): void {
    const now = new Set(c.members.map((m) => m.id));
    for (const m of this.committedConfig.members) {
      if (now.has(m.id)) continue;
      const n = this.node(m.id);
      // The operator shuts a removed node down some time after the removal is acknowledged.
      if (n && n.retireAt === Infinity) n.retireAt = this.step + randInt(this.rng, 20, 200);
    }
    this.committedConfig = c;
    this.trace(() => `config committed: ${c.members.map((m) => `${m.id}${m.suffrage === 'learner' ? '(l)' : ''}`).join(',')}`);
  }

  // ------------------------------------------------------------------ network
  /** Hands every message due now to its receiver (random order among them), unless it is down, stalled or cut off. */
  private deliverDue(): void {
    for (const f of this.network.takeDue()) {
      const { m } = f;
      const to = this.node(m.to);
      if (to && to.raft && to.stalledUntil > this.step) {
        // A stalled process does not read its socket: the message waits.
        this.network.requeue(f);
        continue;
      }
      if (to && to.foreign && !this.network.isBlocked(m.from, m.to)) {
        this.stats.delivered++;
        this.trace(() => `deliver to the FOREIGN ${to.id}: ${describe(m)}`);
        to.foreign.step(m);
        this.drainForeign(to);
        continue;
      }
      if (!to || !to.raft || this.network.isBlocked(m.from, m.to)) {
        this.stats.dropped++;
        this.trace(() => `drop ${m.type} ${m.from}->${m.to} t${m.term}${to && !to.raft ? ' (down)' : ' (partition)'}`);
        continue;
      }
      this.stats.delivered++;
      this.trace(() => `deliver ${describe(m)}`);
      to.raft.step(m);
      if ((m.type === 'AppendEntriesResponse' || m.type === 'InstallSnapshotResponse') && to.lastRole === 'leader') this.checker.checkCommitDurable(to);
      this.maybeDriverStep(to);
    }
  }

  private node(id: string): SimNode | undefined { return this.nodes.find((n) => n.id === id); }
  private members(): SimNode[] { return this.nodes.filter((n) => n.started && !n.retired); }

  private shuffle<T>(xs: T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(this.rng() * (i + 1)); [a[i], a[j]] = [a[j]!, a[i]!]; }
    return a;
  }

  private partition(a: string[], b: string[], desc: string): void {
    this.network.partition(a, b, desc);
  }

  private heal(why: string): void {
    this.network.heal(why);
  }

  // ------------------------------------------------------------------ random faults
  private randomFaults(): void {
    const chaos = this.faults && !this.script;
    if (chaos) {
      if (this.network.isPartitioned && this.step >= this.network.partitionUntil) {
        this.heal(this.network.partitionDesc);
      } else if (!this.network.isPartitioned && this.rng() < this.opts.partitionProb) {
        this.randomPartition();
      }
      if (this.rng() < this.opts.stallProb) {
        const live = this.members().filter((n) => this.isUp(n));
        const ldr = live.find((n) => n.lastRole === 'leader');
        const n = ldr && this.rng() < 0.5 ? ldr : live[randInt(this.rng, 0, live.length - 1)];
        if (n) this.stall(n, this.step + randInt(this.rng, 5, 40));
      }
    }
    for (const [n, at] of this.shutdowns) {
      if (at > this.step) continue;
      this.shutdowns.delete(n);
      if (this.faults) this.crash(n, this.step + randInt(this.rng, 2, 20), 'graceful restart after a transfer');
    }
    for (const n of this.nodes) {
      if (!n.retired && n.retireAt <= this.step) {
        // The operator shuts down only a node still removed: its join loop may have put it back
        // (a join proposed in the step its removal committed; seed 832 once the leases were on).
        if (this.committedConfig.members.some((m) => m.id === n.id)) { n.retireAt = Infinity; this.trace(() => `${n.id} not retired: a member again`); } else this.retire(n);
      }
      if (n.started && !n.retired && !n.raft && this.step >= n.downUntil) this.restart(n);
      if (n.raft && n.stalledUntil > 0 && n.stalledUntil <= this.step) { n.stalledUntil = 0; this.trace(() => `${n.id} resumes`); }
    }
  }

  private randomPartition(): void {
    const ids = this.members().map((n) => n.id);
    const net = this.network;
    net.partitionUntil = this.step + randInt(this.rng, 10, 150);
    const shuffled = this.shuffle(ids);
    // half the time put the current leader in the minority (the interesting case for stale leaders)
    const ldr = this.members().find((n) => n.raft && n.lastRole === 'leader');
    if (ldr && this.rng() < 0.5) { shuffled.splice(shuffled.indexOf(ldr.id), 1); shuffled.unshift(ldr.id); }
    if (this.rng() < 0.6) {
      const k = randInt(this.rng, 1, Math.max(1, Math.floor(ids.length / 2)));
      this.partition(shuffled.slice(0, k), shuffled.slice(k), `symmetric until ${net.partitionUntil}`);
    } else {
      net.clearBlocks();
      const links: string[] = [];
      const nLinks = randInt(this.rng, 1, ids.length);
      for (let i = 0; i < nLinks; i++) {
        const x = ids[randInt(this.rng, 0, ids.length - 1)]!, y = ids[randInt(this.rng, 0, ids.length - 1)]!;
        if (x !== y) { net.block(x, y); links.push(`${x}->${y}`); }
      }
      this.stats.partitions++;
      net.partitionDesc = `one-way ${links.join(' ')}`;
      this.trace(() => `partition ${net.partitionDesc} until ${net.partitionUntil}`);
    }
  }

  private maybeCrash(): void {
    if (!this.faults || this.script) return;
    const ms = this.members();
    const down = ms.filter((n) => !n.raft).length;
    if (down >= majority(ms.length)) return;
    if (this.rng() >= this.opts.crashProb * ms.length) return;
    const n = ms[randInt(this.rng, 0, ms.length - 1)]!;
    if (!n.raft) return;
    this.crash(n, this.step + randInt(this.rng, 5, 100), 'random');
  }

  private crash(n: SimNode, until: number, why: string): void {
    if (!n.raft) return;
    this.stats.crashes++;
    n.raft = null;
    n.inflight = null;
    n.downUntil = until;
    n.stalledUntil = 0;
    this.network.dropTo(n.id);
    this.trace(() => `crash ${n.id} (${why}; down until ${until}; stable term=${n.hardState.term} vote=${n.hardState.votedFor} last=${n.terms.length - 1} snapshot=${n.logBase})`);
  }

  private restart(n: SimNode): void {
    n.incarnation++;
    this.start(n, false);
    this.trace(() => `restart ${n.id} from term=${n.hardState.term} vote=${n.hardState.votedFor} snapshot=${n.logBase} log=${n.terms.length - 1}`);
  }

  private retire(n: SimNode): void {
    n.retired = true;
    n.raft = null;
    n.inflight = null;
    this.network.dropTo(n.id);
    this.trace(() => `retire ${n.id} (removed from the cluster; shut down)`);
  }

  private stall(n: SimNode, until: number): void {
    this.stats.stalls++;
    n.stalledUntil = until;
    this.trace(() => `stall ${n.id} until ${until === Infinity ? 'resumed' : until}`);
  }

  // ------------------------------------------------------------------ clients and operators
  private clientOps(): void {
    const live = this.members().filter((n) => this.isUp(n));
    if (live.length === 0) return;
    const leaders = live.filter((n) => n.lastRole === 'leader');
    // no new client writes once healed: the liveness phase must drain the pending ones
    if (this.faults && this.rng() < this.opts.writeProb && leaders.length > 0) {
      const l = leaders[randInt(this.rng, 0, leaders.length - 1)]!;
      if (this.rng() < this.opts.condProb) this.proposeConditional(l); else this.propose(l);
    }
    if (this.rng() < this.opts.readProb) {
      const n = live[randInt(this.rng, 0, live.length - 1)]!;
      this.read(n, `k${randInt(this.rng, 0, this.opts.keys - 1)}`);
    }
    if (this.faults && !this.script && leaders.length > 0 && this.rng() < this.opts.confChangeProb) {
      this.randomConfChange(leaders[randInt(this.rng, 0, leaders.length - 1)]!);
    }
    if (this.faults && !this.script && leaders.length > 0 && this.rng() < this.opts.transferProb) {
      this.gracefulRestart(leaders[randInt(this.rng, 0, leaders.length - 1)]!);
    }
  }

  private read(n: SimNode, key: string): string {
    const id = `r${++this.readSeq}`;
    this.stats.reads++;
    n.reads.set(id, { id, key, start: this.step, minIndex: this.checker.lastAckedIndex(key), index: null });
    this.trace(() => `${n.id} readIndex ${id} ${key}`);
    n.raft!.readIndex(id);
    return id;
  }

  private propose(n: SimNode, key?: string): ProposeResult {
    const k = key ?? `k${randInt(this.rng, 0, this.opts.keys - 1)}`;
    const writeId = ++this.writeSeq;
    this.stats.writes++;
    const res = n.raft!.propose(encodeKvCommand({ kind: 'ops', ops: [{ op: 'set', key: k, value: `w${writeId}` }], conditions: [] }));
    this.trace(() => `${n.id} propose w${writeId} ${k} -> ${res.ok ? `index=${res.index} term=${res.term}` : `rejected ${res.reason}`}`);
    if (res.ok) n.pending.set(res.index, { term: res.term, writeId, key: k });
    return res;
  }

  /**
   * A client's conditional write or transaction (issue 16), decided at apply on every replica: CAS
   * (If-Match on the index the client read from the leader's state machine, or a random one), create
   * only (If-None-Match: *) on one or two keys, a conditional delete, or a transaction with compares on
   * index/exists/value and set/delete/get in both branches. They use keys c0..c2 (plain sets and the
   * stale-read check keep k*); transactions also compare and get k* keys. The command carries the
   * write's id (`"id":"w<n>"`, a field the decoder ignores) so the checker can find it in the log.
   */
  private proposeConditional(n: SimNode): ProposeResult {
    const rng = this.rng;
    const writeId = ++this.writeSeq;
    this.stats.writes++;
    this.stats.condWrites++;
    const val = `w${writeId}`;
    const ckey = (): string => `c${randInt(rng, 0, 2)}`;
    const last = n.raft!.status().lastIndex;
    // the index a client read (GET on the leader, not linearizable), or any index
    const seenIndex = (k: string): number => { const cur = n.sm.get(k); return cur && rng() < 0.7 ? cur.index : randInt(rng, 0, last + 1); };
    const kind = randInt(rng, 0, 4);
    let cmd: KvCommand;
    if (kind === 0) {
      const k = ckey();
      cmd = { kind: 'ops', ops: [{ op: 'set', key: k, value: val }], conditions: [{ key: k, pre: { kind: 'index', indexes: [seenIndex(k)] } }] };
    } else if (kind === 1 || kind === 2) {
      const k1 = ckey();
      const keys = kind === 2 ? [k1, `c${(Number(k1.slice(1)) + randInt(rng, 1, 2)) % 3}`] : [k1];
      cmd = { kind: 'ops', ops: keys.map((k): KvOp => ({ op: 'set', key: k, value: val })), conditions: keys.map((k): KeyCondition => ({ key: k, pre: { kind: 'absent' } })) };
    } else if (kind === 3) {
      const k = ckey();
      cmd = { kind: 'ops', ops: [{ op: 'delete', key: k }], conditions: [{ key: k, pre: rng() < 0.7 ? { kind: 'index', indexes: [seenIndex(k)] } : { kind: 'exists' } }] };
    } else {
      const anyKey = (): string => (rng() < 0.75 ? ckey() : `k${randInt(rng, 0, this.opts.keys - 1)}`);
      const compare: Compare[] = [];
      for (let i = randInt(rng, 1, 2); i > 0; i--) {
        const k = anyKey();
        const c = randInt(rng, 0, 3);
        compare.push(c === 0 ? { key: k, index: seenIndex(k) } : c === 1 ? { key: k, exists: rng() < 0.5 }
          : c === 2 ? { key: k, value: n.sm.get(k)?.value ?? `w${randInt(rng, 1, writeId)}` } : { key: k, index: { lt: randInt(rng, 1, last + 2) } });
      }
      const branch = (): TxnOp[] => {
        const ops: TxnOp[] = [];
        const written = new Set<string>();
        for (let i = randInt(rng, 1, 3); i > 0; i--) {
          const o = randInt(rng, 0, 2);
          if (o === 2) { ops.push({ op: 'get', key: anyKey() }); continue; }
          const k = ckey();
          if (written.has(k)) continue;
          written.add(k);
          ops.push(o === 0 ? { op: 'set', key: k, value: val } : { op: 'delete', key: k });
        }
        return ops;
      };
      cmd = { kind: 'txn', txn: { compare, success: branch(), failure: branch() } };
    }
    let data = `{"id":"${val}",${encodeKvCommand(cmd).slice(1)}`;
    if (this.opts.smMutant === 'propose-verdict' && cmd.kind === 'ops') {
      // MUTANT: the leader decides the condition now, against what it has applied, and the entry carries it
      const verdict = cmd.conditions.every((c) => { const cur = n.sm.get(c.key); return c.pre.kind === 'absent' ? !cur : c.pre.kind === 'exists' ? !!cur : !!cur && c.pre.indexes.includes(cur.index); });
      data = `{"verdict":${verdict},${data.slice(1)}`;
    }
    const res = n.raft!.propose(data);
    this.trace(() => `${n.id} propose ${val} ${data} -> ${res.ok ? `index=${res.index} term=${res.term}` : `rejected ${res.reason}`}`);
    if (res.ok) n.pending.set(res.index, { term: res.term, writeId, key: null });
    return res;
  }

  private proposeConf(l: SimNode, change: ConfChange): boolean {
    const res = l.raft!.proposeConfChange(change);
    const what = change.op === 'addLearner' ? `addLearner ${change.member.id}` : `${change.op} ${change.id}`;
    this.trace(() => `${l.id} conf change ${what} -> ${res.ok ? `index=${res.index} term=${res.term}` : `rejected ${res.reason}`}`);
    if (!res.ok) return false;
    this.stats.confChanges++;
    if (change.op === 'addLearner') {
      // The operator starts the new node empty; it learns everything from the leader.
      const n = this.node(change.member.id)!;
      if (!n.started) { this.start(n, false); this.trace(() => `start ${n.id} (empty, joining)`); }
    }
    return true;
  }

  /** The changes that make sense for `l`'s current configuration, one of each kind. */
  private confChoices(l: SimNode, minVoters: number, removeLeaderProb: number): ConfChange[] {
    const cfg = l.raft!.status().config.members;
    const voters = cfg.filter((m) => m.suffrage === 'voter').map((m) => m.id);
    const learners = cfg.filter((m) => m.suffrage === 'learner').map((m) => m.id);
    const out: ConfChange[] = [];
    const spare = this.nodes.find((n) => !n.started);
    if (spare && cfg.length < 7) out.push({ op: 'addLearner', member: { id: spare.id, suffrage: 'learner', raftAddr: '', apiAddr: '', ...this.incarnationField(spare.id, spare.amnesia) } });
    if (learners.length > 0) out.push({ op: 'promote', id: learners[randInt(this.rng, 0, learners.length - 1)]! });
    if (voters.length > minVoters) {
      const others = voters.filter((v) => v !== l.id);
      const victim = this.rng() < removeLeaderProb || others.length === 0 ? l.id : others[randInt(this.rng, 0, others.length - 1)]!;
      out.push({ op: 'remove', id: victim });
    }
    if (learners.length > 0 && this.rng() < 0.3) out.push({ op: 'remove', id: learners[0]! });
    return out;
  }

  /** Rolling-restart step: the leader hands over to a voter (thesis §3.10), then shuts down a little later. */
  private gracefulRestart(l: SimNode): void {
    const res = l.raft!.transferLeadership();
    this.trace(() => `${l.id} transferLeadership -> ${res.ok ? `to ${res.to}` : `rejected ${res.reason}`}`);
    if (!res.ok) return;
    this.stats.transfers++;
    this.shutdowns.set(l, this.step + randInt(this.rng, 3, 30));
  }

  private randomConfChange(l: SimNode): void {
    const choices = this.confChoices(l, 3, 0.25);
    if (choices.length > 0) this.proposeConf(l, choices[randInt(this.rng, 0, choices.length - 1)]!);
  }

  // ------------------------------------------------------------------ targeted nemesis schedules
  private leaders(): SimNode[] {
    return this.members().filter((n) => this.isUp(n) && n.lastRole === 'leader');
  }

  /** The leader of the highest term that has committed an entry of its own term (so it serves reads and changes). */
  private stableLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.leaders()) {
      const st = n.raft!.status();
      if (st.term > bestTerm && n.terms[st.commitIndex] === st.term) { best = n; bestTerm = st.term; }
    }
    return best;
  }

  private termOf(n: SimNode): number { return n.raft ? n.raft.status().term : n.hardState.term; }

  private *waitSteps(k: number): Generator<void, void, void> { for (let i = 0; i < k; i++) yield; }

  private *waitFor<T>(f: () => T | undefined, max: number): Generator<void, T | undefined, void> {
    for (let i = 0; i < max; i++) {
      const v = f();
      if (v !== undefined) return v;
      yield;
    }
    return f();
  }

  private startScript(): void {
    const name = this.opts.scenarios[randInt(this.rng, 0, this.opts.scenarios.length - 1)]!;
    this.stats.scenarios++;
    this.heal('scenario starts');
    this.trace(() => `--- scenario ${name} ---`);
    const gen = name === 'vote-crash' ? this.voteCrash()
      : name === 'figure8' ? this.figure8()
        : name === 'stale-append' ? this.staleAppend()
          : name === 'stale-leader-read' ? this.staleLeaderRead()
            : name === 'catch-up-takeover' ? this.catchUpTakeover()
            : name === 'amnesia' ? this.amnesia()
            : name === 'foreign-bootstrap' ? this.foreignBootstrap()
              : this.confBurst();
    this.script = { name, gen };
  }

  private endScript(): void {
    const name = this.script?.name;
    this.script = null;
    this.crashAfterVote = 0;
    this.network.lateDupBoost = 0;
    this.heal(`scenario ${name} ends`);
    for (const n of this.nodes) if (n.foreign) this.endForeign(n);
    for (const n of this.nodes) {
      if (n.stalledUntil > this.step) { n.stalledUntil = 0; this.trace(() => `${n.id} resumes`); }
      if (n.started && !n.retired && !n.raft && n.downUntil === Infinity) n.downUntil = this.step + randInt(this.rng, 1, 20);
    }
    this.nextScriptAt = this.step + randInt(this.rng, 50, 300);
    this.trace(() => `--- scenario ${name} done ---`);
  }

  private runScript(): void {
    if (!this.faults) return;
    if (!this.script) {
      if (this.opts.scenarios.length === 0 || this.step < this.nextScriptAt || this.step > this.opts.steps - 150) return;
      this.startScript();
    }
    if (this.script!.gen.next().done) this.endScript();
  }

  /**
   * Crash a node right after it sends a granted vote (after its Ready was persisted) and restart it
   * at once, while forcing split elections: the leader crashes and several voters with different
   * logs campaign in the same step (campaign() skips PreVote, as after TimeoutNow), so voters often
   * learn a term from a candidate they reject before granting another. A vote that was not durable
   * then lets the restarted node vote again in the same term.
   */
  private *voteCrash(): Script {
    this.crashAfterVote = 0.7;
    for (let round = 0; round < 3; round++) {
      const l = yield* this.waitFor(() => this.stableLeader(), 150);
      // the leader restarts at once: with no leader known it has no lease and votes, so there are
      // more voters than candidates
      if (l) this.crash(l, this.step + randInt(this.rng, 1, 4), 'vote-crash: force an election');
      // past the voters' leader lease (an election timeout without a heartbeat), or they ignore candidates
      yield* this.waitSteps(randInt(this.rng, 10, 16));
      const voters = this.members().filter((n) => this.isUp(n) && votersOf(n.raft!.status().config).includes(n.id));
      // the most and least up-to-date voters, plus a random one
      voters.sort((a, b) => (a.terms[a.terms.length - 1]! - b.terms[b.terms.length - 1]!) || (a.terms.length - b.terms.length));
      const picks = new Set<SimNode>();
      if (voters.length > 0) { picks.add(voters[0]!); picks.add(voters[voters.length - 1]!); picks.add(voters[randInt(this.rng, 0, voters.length - 1)]!); }
      for (const n of picks) { this.trace(() => `${n.id} campaigns now`); n.raft!.campaign(); }
      yield* this.waitSteps(randInt(this.rng, 20, 60));
    }
  }

  /**
   * Raft Figure 8: a leader's entries reach only a minority; a leader of a higher term appends its own
   * entry there and vanishes; the first leader's side elects again and replicates the old entries; it
   * crashes right after its commit index moves; the vanished leader returns and may win.
   */
  private *figure8(): Script {
    const l1 = yield* this.waitFor(() => (this.members().every((n) => this.isUp(n)) ? this.stableLeader() : undefined), 200);
    if (!l1) return;
    const t1 = this.termOf(l1);
    const ids = this.members().map((n) => n.id);
    const voters = votersOf(l1.raft!.status().config).filter((id) => ids.includes(id));
    const minority = Math.max(1, Math.floor((voters.length - 1) / 2));
    const others = this.shuffle(voters.filter((id) => id !== l1.id));
    const g = [l1.id, ...others.slice(0, minority - 1)];
    this.partition(g, ids.filter((id) => !g.includes(id)), 'figure8: old leader with a minority');
    for (let k = randInt(this.rng, 2, 5); k > 0; k--) this.propose(l1);
    const l2 = yield* this.waitFor(() => this.leaders().find((n) => !g.includes(n.id) && this.termOf(n) > t1), 200);
    if (!l2) return;
    const t2 = this.termOf(l2);
    // The new leader has persisted its no-op; it vanishes before anyone receives it.
    this.crash(l2, Infinity, 'figure8: new leader vanishes before replicating');
    this.network.dropFrom(l2.id);
    this.heal('figure8: old side rejoins');
    const l3 = yield* this.waitFor(() => this.leaders().find((n) => this.termOf(n) > t2), 200);
    if (!l3 || !g.includes(l3.id)) return;
    const t3 = this.termOf(l3);
    const c0 = l3.lastCommit;
    yield* this.waitFor(() => (l3.raft === null || l3.lastCommit > c0 ? true : undefined), 40);
    this.crash(l3, Infinity, 'figure8: leader crashes right after its commit index moved');
    l2.downUntil = this.step + 1;
    yield* this.waitFor(() => this.leaders().find((n) => this.termOf(n) > t3), 200);
    yield* this.waitSteps(20);
    l3.downUntil = this.step + randInt(this.rng, 1, 20);
  }

  /**
   * A node loses all its storage (a wiped RAFT_DIR, an in-memory restart) at the worst moment (issue
   * 14 §2): a write W is acknowledged by a bare majority Q while the rest R is cut off; every node of Q
   * but one (B) crashes and B is wiped; R returns. R ∪ {B} is a majority, and only B ever held W. B
   * comes back empty as a new incarnation: it never votes and is not a member until the operator's
   * join puts it in place of its old incarnation as a learner (once a leader can commit that), so W
   * survives. Under amnesiaLegacy it comes back as the old member and voter, R elects a leader
   * without W, and the checker must flag the lost write.
   */
  private *amnesia(): Script {
    // Losing a disk uses up one node of the failure budget until that node is a voter again under its
    // new incarnation: a second loss before that can leave no majority of intact voters, which no
    // protocol can recover from without losing writes (it must then stay unavailable, not lose them).
    const isRecovered = (): boolean => this.joiners.size === 0 && this.committedConfig.members.every((m) => m.suffrage === 'learner' || m.incarnation === this.incarnationField(m.id, this.node(m.id)!.amnesia).incarnation);
    const a = yield* this.waitFor(() => (isRecovered() && this.members().every((n) => this.isUp(n)) ? this.stableLeader() : undefined), 200);
    if (!a) return;
    const ids = this.members().map((n) => n.id);
    const voters = votersOf(a.raft!.status().config).filter((id) => ids.includes(id));
    if (voters.length < 3) return;
    const others = this.shuffle(voters.filter((id) => id !== a.id));
    const q = [a.id, ...others.slice(0, majority(voters.length) - 1)];
    const b = this.node(q[q.length - 1]!)!;
    if (b === a) return;
    this.partition(q, ids.filter((id) => !q.includes(id)), 'amnesia: the write reaches a bare majority only');
    const acked0 = this.stats.acked;
    for (let k = randInt(this.rng, 1, 3); k > 0; k--) if (a.raft) this.propose(a);
    yield* this.waitFor(() => (this.stats.acked > acked0 ? true : undefined), 100);
    for (const id of q) if (id !== b.id) this.crash(this.node(id)!, Infinity, 'amnesia: the rest of the majority crashes');
    this.crash(b, Infinity, 'amnesia: about to lose its storage');
    wipe(this.host, b);
    this.heal('amnesia: the cut-off side returns');
    this.start(b, false);
    if (this.opts.amnesiaLegacy) {
      // The old behaviour: the empty node is "already a member" and a voter.
      b.raft!.bootstrap(this.config);
      this.trace(() => `restart ${b.id} EMPTY under its old identity as a voter (negative control)`);
    } else {
      this.trace(() => `restart ${b.id} EMPTY as incarnation ${b.id}#${b.amnesia} (joining)`);
    }
    // The node was started with RAFT_JOIN_ADDR: it asks to join (as main.ts does) until the
    // committed configuration records its new incarnation.
    if (!this.opts.amnesiaLegacy) { this.joiners.add(b); b.nextJoinAt = this.step; }
    yield* this.waitSteps(randInt(this.rng, 60, 150));
    for (const id of q) if (id !== b.id) this.node(id)!.downUntil = this.step + randInt(this.rng, 1, 20);
  }

  /**
   * The join loop of every node that came back empty (main.ts joinCluster): while it runs, every
   * JOIN_RETRY_STEPS it asks the current leader to put its incarnation in place of the old one, until
   * the committed configuration records it; it stays in `joiners` until promoted. Runs in the
   * liveness phase too.
   */
  private retryJoins(): void {
    for (const n of this.joiners) {
      const inc = `${n.id}#${n.amnesia}`;
      const committed = this.committedConfig.members.find((m) => m.id === n.id);
      // Done once a voter again (the leader promotes it when caught up); the join itself ends once recorded.
      // (An operator who removes the node shuts it down: its join loop ends with it.)
      if (n.retired || n.retireAt !== Infinity || (committed?.incarnation === inc && committed.suffrage === 'voter')) { this.joiners.delete(n); continue; }
      if (committed?.incarnation === inc || !n.raft || this.step < n.nextJoinAt) continue;
      const l = this.stableLeader();
      if (!l) continue;
      n.nextJoinAt = this.step + JOIN_RETRY_STEPS;
      const rec = l.raft!.status().config.members.find((m) => m.id === n.id);
      if (rec?.incarnation === inc) continue; // appended, not committed yet
      this.proposeConf(l, { op: 'addLearner', member: { id: n.id, suffrage: 'learner', raftAddr: '', apiAddr: '', incarnation: inc } });
    }
  }

  /**
   * A member loses all its storage and is started with its original command, without RAFT_JOIN_ADDR
   * (issue 14 §2, "phantom replica"): it bootstraps a one-node cluster of its own, leads it and takes
   * writes, while the old cluster's messages still reach it (the simulator does not model the
   * transport's cluster-id handshake, so the core's own defences are what is tested). The old cluster
   * must never count it (the phantom-match invariant) and keep its guarantees. Then the operator's
   * fix: it is stopped, wiped, and started with RAFT_JOIN_ADDR (a joiner, as in 'amnesia').
   */
  private *foreignBootstrap(): Script {
    const isRecovered = (): boolean => this.joiners.size === 0 && this.committedConfig.members.every((m) => m.suffrage === 'learner' || m.incarnation === this.incarnationField(m.id, this.node(m.id)!.amnesia).incarnation);
    const l = yield* this.waitFor(() => (isRecovered() && this.members().every((n) => this.isUp(n)) ? this.stableLeader() : undefined), 200);
    if (!l) return;
    // Losing a disk needs a failure budget: at least three voters.
    if (votersOf(l.raft!.status().config).length < 3) return;
    const others = votersOf(l.raft!.status().config).filter((id) => id !== l.id && this.node(id)?.raft);
    if (others.length === 0) return;
    const b = this.node(others[randInt(this.rng, 0, others.length - 1)]!)!;
    this.crash(b, Infinity, 'foreign-bootstrap: about to lose its storage');
    wipe(this.host, b);
    const inc = this.incarnationField(b.id, b.amnesia).incarnation ?? '';
    const rng = makeRng((this.seed * 104729 + b.amnesia * 31 + this.ids.indexOf(b.id)) >>> 0);
    const f = new this.opts.raft.Raft({ ...this.opts.raft.defaultRaftOptions(b.id, rng), ...this.coreOpts, incarnation: inc },
      { hardState: { term: 0, votedFor: null }, snapshot: null, entries: [], applied: 0 });
    f.bootstrap({ members: [{ id: b.id, suffrage: 'voter', raftAddr: '', apiAddr: '', ...this.incarnationField(b.id, b.amnesia) }] });
    f.campaign();
    b.foreign = f;
    b.foreignInc = inc;
    this.trace(() => `restart ${b.id} EMPTY without RAFT_JOIN_ADDR: a FOREIGN one-node cluster (incarnation ${inc || "''"})`);
    for (let i = randInt(this.rng, 80, 200); i > 0; i--) {
      if (this.rng() < 0.3 && b.foreign) b.foreign.propose(encodeKvCommand({ kind: 'ops', ops: [{ op: 'set', key: 'foreign', value: `f${i}` }], conditions: [] }));
      yield;
    }
    this.endForeign(b);
  }

  /** The operator's fix for a foreign node: stop it, wipe it, start it with RAFT_JOIN_ADDR (a joiner). */
  private endForeign(b: SimNode): void {
    if (!b.foreign) return;
    b.foreign = null;
    wipe(this.host, b);
    this.start(b, false);
    this.trace(() => `${b.id}: the foreign cluster is stopped; restart EMPTY as incarnation ${b.id}#${b.amnesia} with RAFT_JOIN_ADDR`);
    if (!this.opts.amnesiaLegacy) { this.joiners.add(b); b.nextJoinAt = this.step; }
    else b.raft!.bootstrap(this.config);
  }

  /** Hands a foreign node's messages to the network and acknowledges its Readies (its storage is not the cluster's). */
  private drainForeign(n: SimNode): void {
    const f = n.foreign;
    for (let guard = 0; f && f.hasReady() && guard < 100; guard++) {
      const rd = f.ready();
      for (const m of rd.messages) this.network.send(m);
      f.advance(rd);
    }
  }

  /** Replays AppendEntries long after they were sent while leaders change under them. */
  private *staleAppend(): Script {
    this.network.lateDupBoost = 0.3;
    yield* this.waitSteps(randInt(this.rng, 40, 100));
    const l = this.stableLeader();
    if (l) this.crash(l, this.step + randInt(this.rng, 5, 30), 'stale-append: leader change');
    yield* this.waitSteps(randInt(this.rng, 40, 100));
  }

  /**
   * A leader stalls (a long pause, so its own clock does not run out its CheckQuorum); the rest elect
   * a new leader that acknowledges writes; the old leader resumes behind a one-way partition (it can
   * send but hears nothing) and is asked for reads.
   */
  private *staleLeaderRead(): Script {
    const l1 = yield* this.waitFor(() => this.stableLeader(), 200);
    if (!l1) return;
    const t1 = this.termOf(l1);
    this.stall(l1, Infinity);
    const acked0 = this.stats.acked;
    yield* this.waitFor(() => (this.leaders().some((n) => n !== l1 && this.termOf(n) > t1) && this.stats.acked >= acked0 + 2 ? true : undefined), 250);
    l1.stalledUntil = 0;
    this.trace(() => `${l1.id} resumes`);
    if (!l1.raft) return;
    for (const o of this.members()) if (o !== l1) this.network.block(o.id, l1.id);
    this.network.partitionDesc = `one-way: nobody reaches ${l1.id}`;
    this.trace(() => `partition ${this.network.partitionDesc}`);
    for (let i = randInt(this.rng, 20, 60); i > 0; i--) {
      if (l1.raft && i % 3 === 0) this.read(l1, `k${randInt(this.rng, 0, this.opts.keys - 1)}`);
      yield;
    }
  }

  /**
   * Membership changes proposed back to back; then, if the leader's configuration and the committed
   * one have disjoint majorities (impossible with one change at a time, thesis §4.1), partition the
   * cluster exactly along them; otherwise partition at random.
   */
  private *confBurst(): Script {
    const l = yield* this.waitFor(() => (this.members().every((n) => this.isUp(n)) ? this.stableLeader() : undefined), 200);
    if (!l) return;
    for (let k = randInt(this.rng, 2, 3); k > 0 && l.raft; k--) {
      const choices = this.confChoices(l, 2, 0.2);
      if (choices.length > 0) this.proposeConf(l, choices[randInt(this.rng, 0, choices.length - 1)]!);
    }
    let split: string[] | undefined;
    for (let i = 0; i < 80 && !split && l.raft; i++) {
      split = this.disjointMajorities(l);
      if (!split) yield;
    }
    const ids = this.members().map((n) => n.id);
    if (split) {
      const s = split;
      this.partition(s, ids.filter((id) => !s.includes(id)), 'conf-burst: along disjoint majorities');
    } else {
      this.randomPartition();
    }
    yield* this.waitSteps(randInt(this.rng, 60, 150));
  }

  /**
   * Interleaving mode (issue 14 §1): a follower that fell behind gets a catch-up append whose leader
   * commit covers part of it; its disk is slow to sync that Ready; meanwhile its leader loses the others
   * (the follower still hears both sides), they elect a leader that lacks the old leader's uncommitted
   * tail, and that leader's first append truncates the follower's log above its commit index while the
   * write is still in flight. Needs a majority without the old leader and the follower (5 voters).
   */
  private *catchUpTakeover(): Script {
    const l1 = yield* this.waitFor(() => (this.members().every((n) => this.isUp(n)) ? this.stableLeader() : undefined), 200);
    if (!l1) return;
    const ids = this.members().map((n) => n.id);
    const voters = votersOf(l1.raft!.status().config).filter((id) => ids.includes(id) && id !== l1.id);
    if (voters.length < 4) return;
    const f = this.node(voters[randInt(this.rng, 0, voters.length - 1)]!)!;
    this.partition([f.id], ids.filter((id) => id !== f.id), 'catch-up-takeover: a follower falls behind');
    const lag = randInt(this.rng, 3, 12);
    yield* this.waitFor(() => (!l1.raft || l1.lastCommit >= f.terms.length - 1 + lag ? true : undefined), 200);
    if (!l1.raft || l1.lastRole !== 'leader') return;
    // The follower hears both sides; the old leader and the rest no longer hear each other.
    this.network.clearBlocks();
    for (const id of ids) if (id !== l1.id && id !== f.id) { this.network.block(l1.id, id); this.network.block(id, l1.id); }
    this.network.partitionDesc = `catch-up-takeover: ${l1.id} reaches only ${f.id}`;
    this.stats.partitions++;
    this.trace(() => `partition ${this.network.partitionDesc}`);
    for (let k = randInt(this.rng, 2, 6); k > 0; k--) this.propose(l1);
    // the catch-up Ready that carries committed entries and entries beyond the commit index
    const hit = yield* this.waitFor(() => {
      const fl = f.inflight;
      if (!fl || fl.awaiting !== 'persist' || fl.rd.committedEntries.length === 0 || fl.rd.entries.length === 0) return undefined;
      return fl.rd.entries[fl.rd.entries.length - 1]!.index > fl.rd.commitIndex ? fl : undefined;
    }, 120);
    if (!hit) return;
    hit.doneAt = this.step + randInt(this.rng, 40, 80);
    this.trace(() => `${f.id}: slow disk, the write of entries ${hit.rd.entries[0]!.index}..${hit.rd.entries[hit.rd.entries.length - 1]!.index} (commit ${hit.rd.commitIndex}) syncs at step ${hit.doneAt}`);
    yield* this.waitFor(() => (f.inflight !== hit ? true : undefined), 100);
    yield* this.waitSteps(randInt(this.rng, 5, 20));
  }

  /** A set holding `l` and a majority of its configuration whose complement is a majority of the committed configuration. */
  private disjointMajorities(l: SimNode): string[] | undefined {
    if (!l.raft || l.lastRole !== 'leader') return undefined;
    const cNew = votersOf(l.raft.status().config);
    const cOld = votersOf(this.committedConfig);
    const ids = this.members().map((n) => n.id).filter((id) => id !== l.id);
    for (let mask = 0; mask < 1 << ids.length; mask++) {
      const s = [l.id, ...ids.filter((_, i) => mask & (1 << i))];
      const rest = ids.filter((id) => !s.includes(id));
      if (s.filter((id) => cNew.includes(id)).length >= majority(cNew.length) && rest.filter((id) => cOld.includes(id)).length >= majority(cOld.length)) return s;
    }
    return undefined;
  }

  // ------------------------------------------------------------------ leases (SimOptions.leases)
  /**
   * One step of the lease clients and of every node's lease driver (issue 17 §7, docs/leases.md):
   *   driver   a leader arms its clock once it applied an entry of its own term (becomeLeader with the
   *            table it applied then, the step as `now` and the core's election timeout as slack) and
   *            disarms when it stops leading; while armed it hands each expired lease out once
   *            (lease-expire with its term) and checkpoints every LEASE_CHECKPOINT_TICKS (capped at
   *            ttl/4). Proposals wait in a queue a few steps (as behind the real driver's batching) and
   *            an expiry that cannot be proposed is retried for up to 150 steps, even in a later term
   *            of this node (the term fence must then stop it); a checkpoint that cannot be proposed
   *            is dropped, as in node.ts (the next one carries the lease). An expiry not applied 60
   *            steps after it was handed out is handed out again.
   *   clients  grant leases (TTL 40-150 ticks) through the leader of the highest term, renew them
   *            through it every ttl/5-ttl/3 or, one lease in four, late at ttl/2-0.8 ttl (a renewal is acknowledged after a ReadIndex, or after a
   *            checkpoint entry when the durable-keepalive rule asks for one), attach keys to them, and
   *            abandon or revoke some; once the faults end every lease is left to expire.
   * Checks: the lease table and the keys deleted on every replica (checker.checkLeases); an expiry that
   * takes effect was proposed no earlier than ttl after the lease's last acknowledged renewal (a lease
   * kept alive is never expired); no leader's deadline is beyond the documented bound (last renewal +
   * ttl + one election timeout + the ticks lost to leader changes); every abandoned lease is gone
   * before the liveness phase ends.
   */
  private leaseOps(): void {
    const step = this.step;
    for (const n of this.nodes) {
      const drv = this.leaseDrivers.get(n);
      if (!drv || !n.raft || !this.isUp(n)) continue;
      const st = n.raft.status();
      if (drv.armed && (st.role !== 'leader' || st.term !== drv.term)) {
        drv.armed = false;
        drv.d.clear();
        drv.expiring.clear();
        this.trace(() => `${n.id} lease clock disarmed (term ${drv.term} over)`);
      }
      if (drv.armed) {
        this.checkLeaseBounds(n, drv);
        for (const id of drv.d.expired(step)) {
          drv.expiring.set(id, step);
          drv.queue.push({ cmd: { kind: 'lease-expire', id, term: drv.term }, term: drv.term, createdAt: step, readyAt: step + this.leaseQueueDelay(), dropAt: step + 150 });
          this.trace(() => `${n.id} lease clock: ${id} expired at ${step}`);
        }
        for (const [id, at] of drv.expiring) {
          if (step - at > 60 && leasesOf(n.sm).lease(id) !== undefined) { drv.expiring.delete(id); drv.d.retry(id); }
        }
        const ck = drv.d.checkpoint(step, LEASE_CHECKPOINT_TICKS);
        if (ck.length > 0) drv.queue.push({ cmd: { kind: 'lease-checkpoint', remaining: ck }, term: drv.term, createdAt: step, readyAt: step + this.leaseQueueDelay(), dropAt: step + 150 });
      }
      if (drv.queue.length > 0) {
        drv.queue = drv.queue.filter((q) => {
          if (q.readyAt > step) return true;
          // a checkpoint that cannot be proposed is dropped (node.ts: the next one carries the lease again)
          const isCheckpoint = q.cmd.kind === 'lease-checkpoint';
          if (st.role !== 'leader') return !isCheckpoint && step < q.dropAt;
          if (isCheckpoint && q.term !== st.term) return false;
          const res = this.proposeLeaseCommand(n, q.cmd, q.createdAt);
          if (res.ok && q.cmd.kind === 'lease-checkpoint') drv.ckptInflight.set(res.index, q.cmd.remaining);
          return !res.ok && !isCheckpoint && step < q.dropAt;
        });
      }
      for (const [rid, ka] of drv.kaReads) {
        if (ka.index === null || n.appliedIndex < ka.index) continue;
        drv.kaReads.delete(rid);
        this.ackKeepalive(n, ka.id, ka.k, 'ReadIndex');
      }
    }
    // clients: every lease is left to expire once the faults end
    const leader = this.leaderNow();
    const owned = [...this.leases.values()].filter((l) => !l.gone && l.mode !== 'orphan');
    if (this.faults && leader && owned.length < 6 && this.rng() < 0.03) this.grantLease(leader);
    for (const l of owned) {
      const isKeeping = this.faults && (l.mode === 'keep' || step < l.stopAt);
      if (this.faults && l.mode === 'revoke' && step >= l.revokeAt && leader) {
        this.proposeLeaseCommand(leader, { kind: 'lease-revoke', id: l.id });
        l.revokeAt = step + 20;
      }
      if (isKeeping && step >= l.nextKeepAt && leader) {
        const isRenewed = this.leaseKeepalive(leader, l);
        l.nextKeepAt = step + (isRenewed ? this.keepaliveGap(l) : randInt(this.rng, 1, 3));
      }
      if (isKeeping && leader && this.rng() < 0.01) {
        // attach a key to it (or, one time in five, write the key without a lease: detached)
        const key = `e${randInt(this.rng, 0, 5)}`;
        const isAttached = this.rng() < 0.8;
        const res = leader.raft!.propose(encodeKvCommand({ kind: 'ops', ops: [isAttached ? { op: 'set', key, value: `lw${step}`, lease: l.id } : { op: 'set', key, value: `lw${step}` }], conditions: [] }));
        this.trace(() => `${leader.id} propose ${key}${isAttached ? ` with ${l.id}` : ' (detach)'} -> ${res.ok ? `index=${res.index}` : `rejected ${res.reason}`}`);
      }
    }
  }

  /**
   * Ticks until a client's next keepalive: ttl/5-ttl/3 (etcd's clients renew at ttl/3), or for a lazy
   * client (one lease in four) ttl/2-0.8 ttl, so the log's remaining time is low at its keepalives and
   * the durable-keepalive rule matters.
   */
  private keepaliveGap(l: SimLease): number {
    return l.isLazy ? randInt(this.rng, Math.floor(l.ttl / 2), Math.floor(l.ttl * 0.8)) : randInt(this.rng, Math.floor(l.ttl / 5), Math.floor(l.ttl / 3));
  }

  /** Steps a lease proposal waits in the driver's queue: mostly none, sometimes long enough for a leader change. */
  private leaseQueueDelay(): number {
    return this.rng() < 0.7 ? 0 : randInt(this.rng, 1, 30);
  }

  /** Proposes a lease command on `n`, remembering when it was made (`createdAt`: when the clock decided it, for queued ones). */
  private proposeLeaseCommand(n: SimNode, cmd: KvCommand, createdAt = this.step): ProposeResult {
    const res = n.raft!.propose(encodeKvCommand(cmd));
    if (res.ok) this.leaseProposedAt.set(`${res.index}/${res.term}`, createdAt);
    this.trace(() => `${n.id} propose ${encodeKvCommand(cmd)} -> ${res.ok ? `index=${res.index} term=${res.term}` : `rejected ${res.reason}`}`);
    return res;
  }

  private grantLease(leader: SimNode): void {
    const drv = this.leaseDrivers.get(leader)!;
    const ttl = randInt(this.rng, 40, 150);
    const r = this.rng();
    const mode: SimLease['mode'] = r < 0.5 ? 'keep' : r < 0.85 ? 'abandon' : 'revoke';
    const stopAt = mode === 'keep' ? Infinity : this.step + randInt(this.rng, 0, 3 * ttl);
    const revokeAt = mode === 'revoke' ? stopAt + randInt(this.rng, 0, ttl) : Infinity;
    const res = this.proposeLeaseCommand(leader, { kind: 'lease-grant', ttlMs: ttl });
    const isLazy = this.rng() < 0.25;
    if (res.ok) drv.grants.set(res.index, { term: res.term, mode, stopAt, revokeAt, isLazy });
  }

  /** A keepalive reaching `n`: renewed on its clock at once, acknowledged after a ReadIndex or a checkpoint entry. */
  private leaseKeepalive(n: SimNode, l: SimLease): boolean {
    const drv = this.leaseDrivers.get(n)!;
    const rec = leasesOf(n.sm).lease(l.id);
    if (!drv.armed || rec === undefined || drv.d.keepalive(l.id, this.step) === null) {
      this.trace(() => `${n.id} keepalive ${l.id} refused (${!drv.armed ? 'clock not armed' : rec === undefined ? 'unknown lease' : 'expiry pending'})`);
      return false;
    }
    l.lastSent = Math.max(l.lastSent, this.step);
    // What a new leader could inherit: the table's remaining time, or less if a checkpoint of this leader is still on its way.
    let replicated = rec.remainingMs;
    for (const ck of drv.ckptInflight.values()) for (const [id, ms] of ck) if (id === l.id) replicated = Math.min(replicated, ms);
    for (const q of drv.queue) if (q.cmd.kind === 'lease-checkpoint') for (const [id, ms] of q.cmd.remaining) if (id === l.id) replicated = Math.min(replicated, ms);
    if (keepaliveNeedsCheckpoint(replicated, l.ttl, this.leaseEt)) {
      const remaining: Array<[string, number]> = [[l.id, l.ttl]];
      const res = this.proposeLeaseCommand(n, { kind: 'lease-checkpoint', remaining });
      if (!res.ok) return false;
      drv.ckptInflight.set(res.index, remaining);
      drv.kaCkpt.set(res.index, { term: res.term, id: l.id, k: this.step });
      return true;
    }
    const rid = `ka${++this.keepaliveSeq}`;
    drv.kaReads.set(rid, { id: l.id, k: this.step, index: null });
    this.trace(() => `${n.id} keepalive ${l.id} renewed at ${this.step}; readIndex ${rid}`);
    n.raft!.readIndex(rid);
    return true;
  }

  private ackKeepalive(n: SimNode, id: string, k: number, how: string): void {
    const l = this.leases.get(id);
    if (!l) return;
    l.lastAcked = Math.max(l.lastAcked, k);
    this.leaseStats.leaseKeepalives++;
    if (how !== 'ReadIndex') this.leaseStats.leaseKeepalivesDurable++;
    this.trace(() => `${n.id} ack keepalive ${id} (renewed at ${k}, after its ${how})`);
  }

  /**
   * MUTANT own-clock: the replica keeps its own deadline per lease (step a grant or checkpoint was
   * applied here + the time it gives; keepalives, leader memory, are not seen) and, while applying
   * `e`, expires by itself every lease past it, folding the deletions into the entry's outcome.
   */
  private expireOnOwnClock(n: SimNode, e: Entry, out: EntryOutcome | null): EntryOutcome | null {
    let own = this.ownClocks.get(n);
    if (own === undefined) this.ownClocks.set(n, (own = new Map()));
    const cmd = entryCommand(e);
    if (out?.lease?.op === 'grant') own.set(out.lease.id, this.step + out.lease.ttlMs);
    if (cmd?.kind === 'lease-checkpoint') for (const [id, ms] of cmd.remaining) own.set(id, this.step + ms);
    if (out === null) return out;
    let merged = out;
    for (const l of leasesOf(n.sm).list()) {
      const dl = own.get(l.id);
      if (dl === undefined || dl > this.step) continue;
      own.delete(l.id);
      const x = expireOnOwnClock(n.sm, e.index, e.term, l.id);
      this.trace(() => `${n.id} MUTANT own-clock: expires ${l.id} by itself at ${e.index}, deleting ${JSON.stringify(x.effects.map((f) => f.key))}`);
      merged = { ...merged, effects: [...merged.effects, ...x.effects], leaseEffects: [...(merged.leaseEffects ?? []), ...(x.leaseEffects ?? [])] };
    }
    return merged;
  }

  /** A leader arms its lease clock with the table it has applied (everything committed before its term). */
  private armLeases(n: SimNode, drv: LeaseDriver, term: number): void {
    drv.armed = true;
    drv.term = term;
    drv.expiring.clear();
    const isReset = this.opts.leaseMutant === 'reset-on-election';
    // MUTANT reset-on-election: every inherited lease starts again from its full TTL
    const inherited = leasesOf(n.sm).list().map((l) => ({ id: l.id, ttlMs: l.ttlMs, remainingMs: isReset ? l.ttlMs : l.remainingMs }));
    drv.d.becomeLeader(inherited, this.step, this.leaseEt);
    this.leaseStats.leaseArmings++;
    for (const i of inherited) {
      const l = this.leases.get(i.id);
      if (!l) continue;
      let recordedAt = l.records[0]![1];
      for (const [idx, at] of l.records) if (idx <= n.appliedIndex) recordedAt = at;
      l.loss += Math.max(0, this.step - recordedAt);
      // A checkpoint taken while the lease was overdue by its base but inside the old leader's slack
      // (base < t <= base + E) records 0, not base - t < 0: this leader then gives it up to E more
      // than docs/leases.md's sum of (Uᵢ + Gᵢ) says (found by seeds 37 and 102 with --leases).
      if (i.remainingMs === 0) l.loss += this.leaseEt;
    }
    this.trace(() => `${n.id} lease clock armed for term ${term}: ${inherited.map((i) => `${i.id}:${i.remainingMs}/${i.ttlMs}`).join(' ') || 'no leases'}`);
  }

  /** What applying `e` means for leases: the record of each lease, the checks at its expiry, the leader's clock and the clients' answers. */
  private onLeaseApplied(n: SimNode, e: Entry, out: EntryOutcome | null, isFirst: boolean): void {
    const drv = this.leaseDrivers.get(n);
    const st = n.raft?.status();
    if (drv && st && !drv.armed && st.role === 'leader' && e.term === st.term) this.armLeases(n, drv, st.term);
    const cmd = entryCommand(e);
    const dec = out?.lease;
    const at = this.leaseProposedAt.get(`${e.index}/${e.term}`) ?? this.step;
    if (isFirst && dec) {
      if (dec.op === 'grant') {
        this.leaseStats.leaseGrants++;
        this.leases.set(dec.id, { id: dec.id, ttl: dec.ttlMs, mode: 'orphan', stopAt: -1, revokeAt: Infinity, nextKeepAt: Infinity, lastAcked: at, lastSent: at, loss: 0, records: [[e.index, at]], gone: false, isLazy: false });
      } else if (dec.op === 'checkpoint' && cmd?.kind === 'lease-checkpoint') {
        for (const [id] of cmd.remaining) this.leases.get(id)?.records.push([e.index, at]);
      } else if (dec.op === 'expire') {
        const l = this.leases.get(dec.id);
        if (!dec.isApplied) { if (cmd?.kind === 'lease-expire' && cmd.term !== e.term) this.leaseStats.leaseFenced++; } else if (l) {
          this.leaseStats.leaseExpired++;
          l.gone = true;
          if (at < l.lastAcked + l.ttl) {
            this.violate(`lease kept alive was expired: ${dec.id} (ttl ${l.ttl}) expired by the entry at ${e.index} (term ${e.term}) proposed at step ${at}, earlier than ttl after its last acknowledged keepalive at ${l.lastAcked}`);
          }
          this.trace(() => `lease ${dec.id} expired at ${e.index} (proposed at ${at}; last acknowledged renewal ${l.lastAcked}, ttl ${l.ttl}), deleting ${JSON.stringify(dec.deleted)}`);
        }
      } else if (dec.op === 'revoke') {
        const l = this.leases.get(dec.id);
        if (l) { l.gone = true; this.leaseStats.leaseRevoked++; }
      }
    }
    if (!drv) return;
    drv.ckptInflight.delete(e.index);
    if (drv.armed && dec) {
      if (dec.op === 'grant') {
        drv.d.onGrant(dec.id, dec.ttlMs, this.step);
        const l = this.leases.get(dec.id);
        if (l) l.lastSent = Math.max(l.lastSent, this.step);
      } else if (dec.op === 'revoke' || (dec.op === 'expire' && dec.isApplied)) {
        drv.d.forget(dec.id);
        drv.expiring.delete(dec.id);
      } else if (dec.op === 'expire' && leasesOf(n.sm).lease(dec.id) !== undefined) {
        drv.d.retry(dec.id);
        drv.expiring.delete(dec.id);
      }
    }
    const g = drv.grants.get(e.index);
    if (g) {
      drv.grants.delete(e.index);
      const l = dec?.op === 'grant' && g.term === e.term ? this.leases.get(dec.id) : undefined;
      if (l) {
        l.mode = g.mode;
        l.stopAt = g.stopAt;
        l.revokeAt = g.revokeAt;
        l.isLazy = g.isLazy;
        l.nextKeepAt = this.step + this.keepaliveGap(l);
        this.trace(() => `${n.id} ack grant ${l.id} ttl=${l.ttl} (${l.mode}${l.stopAt !== Infinity ? `, renewed until ${l.stopAt}` : ''})`);
      }
    }
    const kc = drv.kaCkpt.get(e.index);
    if (kc) {
      drv.kaCkpt.delete(e.index);
      if (kc.term === e.term) this.ackKeepalive(n, kc.id, kc.k, 'checkpoint');
    }
  }

  /** No deadline on a leader's clock is beyond last renewal + ttl + one election timeout + the ticks lost to leader changes. */
  private checkLeaseBounds(n: SimNode, drv: LeaseDriver): void {
    for (const id of drv.d.ids()) {
      const l = this.leases.get(id);
      if (!l || l.gone || drv.d.isExpiring(id)) continue;
      const left = drv.d.remaining(id, this.step) ?? 0;
      if (left === 0) continue;
      const bound = l.lastSent + l.ttl + this.leaseEt + l.loss;
      if (this.step + left > bound) {
        this.violate(`lease bound: leader ${n.id} (term ${drv.term}) would expire ${id} at ${this.step + left}, after the bound ${bound} (last renewal ${l.lastSent} + ttl ${l.ttl} + election timeout ${this.leaseEt} + ${l.loss} ticks lost to leader changes)`);
      }
    }
  }

  // ------------------------------------------------------------------ steps
  /** One step of virtual time. */
  runStep(): void {
    this.step++;
    this.randomFaults();
    for (const n of this.nodes) if (n.raft && this.isUp(n)) n.raft.tick();
    for (const n of this.nodes) if (n.foreign) { n.foreign.tick(); this.drainForeign(n); }
    this.deliverDue();
    this.clientOps();
    if (this.opts.leases) this.leaseOps();
    this.retryJoins();
    this.maybeCrash();
    for (const n of this.nodes) this.processReady(n);
    this.runScript();
    for (const n of this.nodes) this.processReady(n);
    this.checkInvariants();
  }

  // ------------------------------------------------------------------ invariants
  /** Checks every invariant of checker.ts against the cluster now. */
  checkInvariants(): void {
    this.checker.checkInvariants();
  }

  // ------------------------------------------------------------------ liveness
  private healAll(): void {
    if (this.script) this.endScript();
    this.faults = false;
    this.heal('liveness phase');
    for (const n of this.nodes) {
      if (n.stalledUntil > 0) n.stalledUntil = 0;
      if (n.started && !n.retired && !n.raft) this.restart(n);
    }
    for (const n of this.nodes) this.processReady(n);
  }

  private leaderNow(): SimNode | undefined {
    const leaders = this.leaders();
    // the leader with the highest term (a stale leader may linger until it hears the new term)
    leaders.sort((a, b) => this.termOf(b) - this.termOf(a));
    return leaders[0];
  }

  private runLiveness(): void {
    this.trace(() => `--- liveness phase: healed, all nodes up, no drops ---`);
    this.healAll();
    const deadline = this.step + this.opts.livenessSteps;
    let fresh: { node: SimNode; index: number; term: number } | null = null;
    let freshAcked = false;
    let freshRead: { node: SimNode; id: string } | null = null;
    let readOk = false;
    let why = '';
    while (this.step < deadline) {
      this.runStep();
      if (this.violations.length && this.opts.stopOnViolation) return;
      const leader = this.leaderNow();
      if (!leader) { why = 'no leader'; continue; }
      // a client write, proposed again only when its leader was deposed before acknowledging it
      const isDeposed = (f: { node: SimNode; index: number; term: number }): boolean =>
        !f.node.raft || f.node.lastRole !== 'leader' || this.termOf(f.node) !== f.term || (!f.node.pending.has(f.index) && !this.checker.isAcked(f.index));
      if (!freshAcked && (!fresh || isDeposed(fresh))) {
        const r = this.propose(leader, 'kfresh');
        if (r.ok) fresh = { node: leader, index: r.index, term: r.term };
      }
      if (fresh && this.checker.isAcked(fresh.index)) freshAcked = true;
      if (!freshAcked) { why = 'fresh write not acknowledged'; continue; }
      // a linearizable read of the fresh write on a random member must be served (issued again only
      // when the core reports it failed, e.g. leadership lost)
      const served = freshRead ? this.servedReads.get(freshRead.id) : undefined;
      if (served !== undefined && served >= fresh!.index) readOk = true;
      else if (!freshRead || !freshRead.node.raft || !freshRead.node.reads.has(freshRead.id)) {
        // a member of the leader's configuration (a node whose join never committed is not one)
        const ids = leader.raft!.status().config.members.map((m) => m.id);
        const ms = this.members().filter((n) => n.raft && ids.includes(n.id));
        const n = ms[randInt(this.rng, 0, ms.length - 1)]!;
        freshRead = { node: n, id: this.read(n, 'kfresh') };
      }
      if (!readOk) { why = 'read of the fresh write not served'; continue; }
      const st = leader.raft!.status();
      if (st.commitIndex !== st.lastIndex) { why = `leader ${leader.id} committed ${st.commitIndex} of ${st.lastIndex}`; continue; }
      const need = Math.max(this.checker.maxAckedIndex, fresh!.index, st.commitIndex);
      const members = st.config.members.map((m) => this.node(m.id)!);
      const down = members.filter((n) => !n.raft);
      if (down.length > 0) { why = `members ${down.map((n) => n.id).join(',')} down`; continue; }
      const lagging = members.filter((n) => n.appliedIndex < need);
      if (lagging.length > 0) { why = `members ${lagging.map((n) => `${n.id}:${n.appliedIndex}`).join(' ')} below ${need}`; continue; }
      // every lease is abandoned once healed (leaseOps): each must be expired (or revoked) by now
      const live = this.opts.leases ? [...this.leases.values()].filter((l) => !l.gone) : [];
      if (live.length > 0) { why = `leases not expired: ${live.map((l) => `${l.id}(${l.mode}, ttl ${l.ttl}, last renewed ${l.lastSent})`).join(' ')}`; continue; }
      this.trace(() => `liveness ok: leader ${leader.id} committed everything through ${need}; applied=[${members.map((n) => `${n.id}:${n.appliedIndex}`).join(' ')}]`);
      return;
    }
    const leader = this.leaderNow();
    this.violate(`liveness: after ${this.opts.livenessSteps} healed steps leader=${leader?.id ?? 'none'}: ${why}; applied=[${this.members().map((n) => `${n.id}:${n.appliedIndex}`).join(' ')}] maxAcked=${this.checker.maxAckedIndex}`);
  }

  /** Runs the fault phase then the liveness phase; returns the violations. */
  run(): Violation[] {
    try {
      for (let s = 0; s < this.opts.steps; s++) {
        this.runStep();
        if (this.violations.length && this.opts.stopOnViolation) return this.violations;
      }
      this.runLiveness();
    } catch (err) {
      this.violate(`exception: ${(err as Error)?.stack?.split('\n').slice(0, 3).join(' | ') ?? String(err)}`);
    }
    return this.violations;
  }
}

/** The directory of the real core, copied and patched by the mutation runner. */
export const CORE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/raft/core');

/** Dynamically imports a Raft core module (the real one by default, or a mutated copy). */
export async function loadRaft(file: string = path.join(CORE_DIR, 'raft.ts')): Promise<RaftModule> {
  const mod = (await import(pathToFileURL(file).href)) as Partial<RaftModule>;
  if (typeof mod.Raft !== 'function' || typeof mod.defaultRaftOptions !== 'function') {
    throw new Error(`${file} does not export Raft and defaultRaftOptions`);
  }
  return mod as RaftModule;
}
