/**
 * The driver around the pure Raft core: owns the real timer and runs the Ready loop
 * (persist → send → apply → advance). Inputs arriving while a Ready is being handled are fed to the
 * core before the next one, so many proposals share one disk sync (group commit). Created by main.ts
 * and by tests; the API layer calls propose/read/join/remove. Beside it: waiters.ts (the requests
 * waiting for an entry to apply or a read to be confirmed), snapshot-policy.ts (when to compact and
 * serialise) and the key-value state machine (src/kv/state-machine.ts), which decides what each
 * applied entry does.
 */
import { Raft, defaultRaftOptions } from '../core/raft.js';
import { entrySize } from '../core/log.js';
import type { ClusterConfig, ConfChange, Entry, Message, NodeId, ProposeResult, RaftStatus, Ready, Snapshot, SnapshotMeta, SoftState } from '../core/types.js';
import type { KvView, NodeStorage } from '../../storage/types.js';
import type { Transport } from '../../transport/types.js';
import type { EntryOutcome, HistoryPage, KvOp, KvOpResult, LeaseRecord, StoredValue } from '../../kv/types.js';
import type { RangePage, RangeQuery } from '../../kv/listing.js';
import { encodeKvCommand, validateCommand, validateOps, type KvCommand } from '../../kv/commands.js';
import { KvStateMachine } from '../../kv/state-machine.js';
import { keepaliveNeedsCheckpoint, LeaseDeadlines } from '../../kv/lease-deadlines.js';
import { BadRequestError, ConflictError, LeaseNotFoundError, NoLeaderError, NotLeaderError, UnavailableError } from '../../errors.js';
import { MemoryIdentityStore, newIdentityId, type IdentityStore, type NodeIdentity } from './identity.js';
import { RequestWaiters, type WriteResult } from './waiters.js';
import { SnapshotPolicy } from './snapshot-policy.js';

export type { WriteResult } from './waiters.js';

/** What the node needs from configuration. */
export interface RaftNodeOptions {
  nodeId: NodeId;
  raftAddr: string;
  apiAddr: string;
  tickMs: number;
  electionTimeoutTicks: number;
  heartbeatTicks: number;
  requestTimeoutMs: number;
  /** Bootstrap a one-node cluster when there is no saved state (no join address configured). */
  bootstrapIfEmpty: boolean;
  /** Take a snapshot once this many entries were applied since the last one (default 10000). */
  snapshotThreshold?: number;
  /** ...or once this many bytes of entry data were applied since the last one (default 64 MiB). */
  snapshotThresholdBytes?: number;
  /** Entries kept in memory behind a snapshot for slightly lagging followers (default min(1000, threshold/2)). */
  compactionTailEntries?: number;
  /** Asked before each client write: an error to refuse it with (e.g. the disk is nearly full), or null. */
  writeRefusal?: () => Error | null;
  /** Where the cluster id and incarnation are kept (default: in memory, so every start is a new incarnation). */
  identityStore?: IdentityStore;
  /** LEASE_CHECKPOINT_INTERVAL_MS: how often the leader records the leases' remaining time (default 5000; capped at ttl/4 per lease). */
  leaseCheckpointIntervalMs?: number;
}

/** Default LEASE_CHECKPOINT_INTERVAL_MS. */
export const DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS = 5000;

/** Callbacks for logs and metrics; all optional. */
export interface RaftNodeObserver {
  onSoftState?(s: SoftState, prev: SoftState | null): void;
  onApplied?(index: number): void;
  /**
   * A snapshot was taken locally and the log compacted behind it ('taken': nothing is serialised,
   * bytes 0), the state machine was serialised for a follower that needs a snapshot ('serialized'),
   * or a snapshot was received from the leader and installed ('installed').
   */
  onSnapshot?(kind: 'taken' | 'serialized' | 'installed', meta: SnapshotMeta, bytes: number): void;
  onError?(err: unknown): void;
  /** A proposal (write or membership change) finished: `err` is null once committed and applied here. */
  onProposalDone?(err: Error | null, seconds: number): void;
  /** A ReadIndex barrier finished: `err` is null once the read may be served locally. */
  onReadIndexDone?(err: Error | null, seconds: number): void;
  /** Taking a snapshot compacted the stored log: `count` entries were deleted. */
  onEntriesCompacted?(count: number): void;
  /** A committed entry whose command could not be decoded was applied as a no-op (it changes nothing). */
  onBadEntry?(index: number, err: Error): void;
  /** An expiry of lease `id` was applied here (its keys were deleted). */
  onLeaseExpired?(id: string, keys: number): void;
}

/** Seeded-from-entropy generator for election jitter (the core only needs numbers in [0,1)). */
function entropyRng(): () => number {
  let x = (Date.now() ^ (process.pid << 16) ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export class RaftNode {
  private raft!: Raft;
  private ticker: NodeJS.Timeout | null = null;
  private isLoopRunning = false;
  private isLoopScheduled = false;
  private isStopped = false;
  /** False until start() has built the core; peer messages arriving earlier are dropped (Raft retransmits). */
  private isStarted = false;
  private failure: Error | null = null;
  /** The key-value state machine over storage.kv: decides and persists what each applied entry does. */
  private readonly kv: KvStateMachine;
  /** Client writes and reads waiting for their entry to apply or their read to be confirmed. */
  private readonly waiters: RequestWaiters;
  /** When to compact the log and serialise the state for a follower. */
  private readonly snapshots: SnapshotPolicy;
  private readSeq = 0;
  /** Raft addresses learned from incoming requests, for peers not (yet) in our configuration. */
  private peerAddrs = new Map<NodeId, string>();
  private applied = 0;
  /** Called after each apply or snapshot install with the new applied index (watch streams wait on it). */
  private readonly appliedListeners = new Set<(index: number) => void>();
  private softState: SoftState | null = null;
  /** Highest commit index this node has heard of (for readiness). */
  private knownCommit = 0;
  /** Cluster id and incarnation; set by start(). */
  private ident: NodeIdentity = { clusterId: null, incarnation: '' };
  /** The leader's lease deadlines (docs/leases.md); armed only while this node leads, in `leaseTerm`. */
  private readonly leaseClock = new LeaseDeadlines();
  /** The term the lease clock is armed for (0: not armed); arming waits for a ReadIndex in the term. */
  private leaseTerm = 0;
  private leaseArming: Promise<void> | null = null;
  private isCheckpointInFlight = false;

  constructor(
    private readonly opts: RaftNodeOptions,
    private readonly storage: NodeStorage,
    private readonly transport: Transport,
    private readonly observer: RaftNodeObserver = {},
  ) {
    this.kv = new KvStateMachine(storage.kv, { onBadEntry: (index, err) => observer.onBadEntry?.(index, err) });
    this.waiters = new RequestWaiters(opts.requestTimeoutMs);
    const node = this;
    this.snapshots = new SnapshotPolicy(opts, {
      get raft() {
        return node.raft;
      },
      get applied() {
        return node.applied;
      },
      get isStopped() {
        return node.isStopped;
      },
      schedule: () => this.schedule(),
      failWith: (err) => this.failWith(err),
      exportState: () => this.kv.exportSnapshot(),
      onSnapshot: (kind, meta, bytes) => observer.onSnapshot?.(kind, meta, bytes),
      onEntriesCompacted: (count) => observer.onEntriesCompacted?.(count),
    }, storage.log);
  }

  /** Loads persisted state, creates the core, bootstraps if configured, and starts ticking. */
  async start(): Promise<{ bootstrapped: boolean; hadState: boolean }> {
    const persisted = await this.storage.log.load();
    const snapshotIndex = persisted.snapshot?.meta.lastIndex ?? 0;
    if (persisted.snapshot && (await this.kv.appliedIndex()) < snapshotIndex) {
      // A snapshot without data stands for the KV store's own state, persisted before it: never behind.
      if (persisted.snapshot.data === null) throw new Error(`storage: the key-value state is behind the snapshot at ${snapshotIndex} that stands for it`);
      // A crash between persisting a received snapshot and importing it: finish the install now.
      await this.kv.restoreSnapshot(persisted.snapshot.data, snapshotIndex);
    }
    const applied = Math.max(await this.kv.appliedIndex(), snapshotIndex);
    const hadState = persisted.hardState.term > 0 || persisted.entries.length > 0 || persisted.snapshot !== null;
    this.ident = await this.resolveIdentity(hadState);
    const options = defaultRaftOptions(this.opts.nodeId, entropyRng());
    options.incarnation = this.ident.incarnation;
    options.electionTimeoutTicks = this.opts.electionTimeoutTicks;
    options.heartbeatTicks = this.opts.heartbeatTicks;
    options.compactionTailEntries = this.opts.compactionTailEntries ?? Math.min(1000, Math.floor(this.snapshots.snapshotThreshold() / 2));
    options.compactionTailBytes = Math.min(8 << 20, Math.floor((this.opts.snapshotThresholdBytes ?? 64 << 20) / 4));
    const lastIndex = persisted.entries.length > 0 ? persisted.entries[persisted.entries.length - 1].index : snapshotIndex;
    this.raft = new Raft(options, { hardState: persisted.hardState, snapshot: persisted.snapshot, entries: persisted.entries, applied: Math.min(applied, lastIndex || applied) });
    this.applied = applied;
    this.isStarted = true;
    let bootstrapped = false;
    if (!hadState && this.opts.bootstrapIfEmpty) {
      this.raft.bootstrap(this.singleNodeConfig());
      this.raft.campaign();
      bootstrapped = true;
    } else if (hadState && this.isSoleVoter()) {
      this.raft.campaign();
    }
    this.ticker = setInterval(() => {
      this.raft.tick();
      this.schedule();
      this.tickLeases();
    }, this.opts.tickMs);
    this.schedule();
    return { bootstrapped, hadState };
  }

  /**
   * A node without Raft state is a new incarnation (docs/cluster-identity.md): whatever it was before,
   * it holds nothing it acknowledged, so it must join as a new member. Saved (synced) before the node
   * sends anything. A node that bootstraps makes the cluster id; a joining node learns it later
   * (adoptClusterId). State from before incarnations existed keeps incarnation '' (as its members).
   */
  private async resolveIdentity(hadState: boolean): Promise<NodeIdentity> {
    const store = this.opts.identityStore ?? (this.opts.identityStore = new MemoryIdentityStore());
    const saved = await store.load();
    if (hadState && saved) return saved;
    const fresh: NodeIdentity = hadState
      ? { clusterId: 'legacy', incarnation: '' }
      : { clusterId: this.opts.bootstrapIfEmpty ? newIdentityId() : null, incarnation: newIdentityId() };
    await store.save(fresh);
    return fresh;
  }

  /** True once start() has loaded the state and resolved the identity (the peer server accepts streams from then on). */
  isStartedForPeers(): boolean {
    return this.isStarted;
  }

  /** This node's cluster id (null until bootstrapped or joined) and incarnation. */
  identity(): NodeIdentity {
    return { ...this.ident };
  }

  /**
   * Records the cluster id a join response named, durably, before this node takes part (the peer
   * server refuses streams until then). Refuses a different id than the one already held.
   */
  async adoptClusterId(clusterId: string): Promise<void> {
    if (this.ident.clusterId === clusterId) return;
    if (this.ident.clusterId !== null) throw new Error(`cluster id ${clusterId} differs from this node's ${this.ident.clusterId}`);
    const next = { ...this.ident, clusterId };
    await (this.opts.identityStore as IdentityStore).save(next);
    this.ident = next;
  }

  private isSoleVoter(): boolean {
    const members = this.raft.currentConfig.members;
    return members.length === 1 && members[0].id === this.opts.nodeId;
  }

  private singleNodeConfig(): ClusterConfig {
    return { members: [{ id: this.opts.nodeId, suffrage: 'voter', raftAddr: this.opts.raftAddr, apiAddr: this.opts.apiAddr, incarnation: this.ident.incarnation }] };
  }

  /**
   * Feeds peer messages to the core (called by the peer server). The sender's address is
   * remembered so a node that is not yet in any configuration (a joiner) can answer its leader.
   */
  receive(msgs: Message[], fromAddr: string | null = null): void {
    // The peer server listens before start() has loaded the log: a peer may already be talking to us.
    if (this.isStopped || !this.isStarted) return;
    if (fromAddr !== null && msgs.length > 0) this.peerAddrs.set(msgs[0].from, fromAddr);
    for (const m of msgs) this.raft.step(m);
    this.schedule();
  }

  /** Replicates `ops` as one entry; resolves with its index once committed and applied here. */
  async write(ops: KvOp[]): Promise<number> {
    return (await this.writeOps(ops)).index;
  }

  /** Replicates `ops` as one entry; resolves with its index and what the state machine saw when applying it. */
  async writeOps(ops: KvOp[]): Promise<WriteResult> {
    // Nothing malformed enters the log: a command that apply could not decode is refused here.
    const problem = validateOps(ops);
    if (problem !== null) throw new BadRequestError(problem);
    return this.proposeCommand({ kind: 'ops', ops, conditions: [] });
  }

  /**
   * Replicates any command (conditional operations, a transaction) as one entry; resolves with what
   * the state machine decided when applying it (its conditions are decided there, on every replica).
   */
  async writeCommand(cmd: KvCommand): Promise<WriteResult> {
    const problem = validateCommand(cmd);
    if (problem !== null) throw new BadRequestError(problem);
    return this.proposeCommand(cmd);
  }

  /** Proposes a validated command and waits for its outcome. */
  private proposeCommand(cmd: KvCommand): Promise<WriteResult> {
    const refusal = this.writeRefusal();
    if (refusal) throw refusal;
    const result = this.proposeAndWait((r) => r.propose(encodeKvCommand(cmd)));
    // Proposed: while it replicates, let the store learn whether the keys exist (apply needs it).
    this.kv.prefetch(cmd);
    return result;
  }

  /**
   * Reads `keys` and the applied index at one point between applies (for a read-only transaction;
   * call linearizableBarrier first for a linearizable one).
   */
  readAtomically(keys: string[]): Promise<{ index: number; values: Map<string, StoredValue | undefined> }> {
    return this.kv.readAtomically(keys);
  }

  /** Deletes `key` through the log; `existed` is false when the key was absent at apply time. */
  async deleteKey(key: string): Promise<{ index: number; existed: boolean }> {
    const res = await this.writeOps([{ op: 'delete', key }]);
    const result: KvOpResult | undefined = res.results[0];
    return { index: res.index, existed: result?.op === 'delete' && result.deleted };
  }

  /** Proposes a membership change on the leader and waits for it to be applied. */
  async changeMembership(change: ConfChange): Promise<number> {
    return (await this.proposeAndWait((r) => r.proposeConfChange(change))).index;
  }

  /**
   * On the leader, hands leadership to the most caught-up voter (thesis §3.10) and waits up to
   * `timeoutMs` for another node to lead. Resolves with the outcome; never throws (used at shutdown).
   */
  async transferLeadership(timeoutMs: number): Promise<{ started: boolean; to: NodeId | null; leaderId: NodeId | null; ms: number }> {
    const started = Date.now();
    if (this.isStopped || this.failure || this.raft.currentLeaderId !== this.opts.nodeId) {
      return { started: false, to: null, leaderId: this.raft.currentLeaderId, ms: 0 };
    }
    const res = this.raft.transferLeadership();
    if (!res.ok) return { started: false, to: null, leaderId: this.raft.currentLeaderId, ms: 0 };
    this.schedule();
    while (Date.now() - started < timeoutMs && !this.isStopped) {
      const leader = this.raft.currentLeaderId;
      if (leader !== null && leader !== this.opts.nodeId) break;
      // Stepped down without a successor in sight (no quorum): waiting longer cannot help.
      const role = this.raft.status().role;
      if (role === 'precandidate' || role === 'candidate') break;
      // The core aborts a transfer after an election timeout; try again while time remains.
      if (leader === this.opts.nodeId && this.raft.leadershipTransferee === null) this.raft.transferLeadership();
      await new Promise((r) => setTimeout(r, 10));
    }
    return { started: true, to: res.to, leaderId: this.raft.currentLeaderId, ms: Date.now() - started };
  }

  private proposeAndWait(propose: (r: Raft) => ProposeResult): Promise<WriteResult> {
    this.assertRunning();
    const startedMs = performance.now();
    let isDone = false;
    const done = (err: Error | null) => {
      if (!isDone) this.observer.onProposalDone?.(err, (performance.now() - startedMs) / 1000);
      isDone = true;
    };
    const res = propose(this.raft);
    if (!res.ok) {
      const err = this.rejection(res.reason, res.leaderId);
      done(err);
      throw err;
    }
    const waiting = this.waiters.waitForWrite(res.index, res.term).then(
      (result) => (done(null), result),
      (err: Error) => {
        done(err);
        throw err;
      },
    );
    this.schedule();
    return waiting;
  }

  private rejection(reason: string, leaderId: NodeId | null): Error {
    if (reason === 'not-leader') {
      if (leaderId === null) return new NoLeaderError('no leader is elected right now');
      return new NotLeaderError(leaderId, this.memberApiAddr(leaderId));
    }
    if (reason === 'transferring') return new NoLeaderError('leadership is being handed to another node; retry shortly');
    if (reason === 'too-many-uncommitted') return new UnavailableError('too many writes are waiting for followers to catch up; retry shortly');
    if (reason === 'conf-change-pending' || reason === 'no-commit-in-term') return new ConflictError(`membership change refused: ${reason}`);
    if (reason === 'already-member') return new ConflictError('already a member');
    if (reason === 'unknown-member') return new ConflictError('no such member');
    return new UnavailableError(reason);
  }

  /** Waits until a linearizable read may be served locally (ReadIndex), then returns. */
  async linearizableBarrier(): Promise<void> {
    this.assertRunning();
    const id = `${this.opts.nodeId}:${++this.readSeq}`;
    const startedMs = performance.now();
    // Observed once: a read that timed out while waiting for apply may still be released later.
    let isDone = false;
    const done = (err: Error | null) => {
      if (!isDone) this.observer.onReadIndexDone?.(err, (performance.now() - startedMs) / 1000);
      isDone = true;
    };
    const waiting = this.waiters.waitForRead(id);
    this.raft.readIndex(id);
    this.schedule();
    await waiting.then(
      () => done(null),
      (err: Error) => {
        done(err);
        throw err;
      },
    );
  }

  /** Linearizable reads in progress: waiting for the leader's confirmation, or confirmed and waiting for apply. */
  pendingReads(): { confirming: number; awaitingApply: number } {
    return this.waiters.pendingReads();
  }

  /** One page of a key range from local state, at one consistent index (call linearizableBarrier first for a linearizable listing). */
  listRange(q: RangeQuery): Promise<RangePage> {
    return this.kv.listRange(q);
  }

  /** The local watch history from index `from` on (GET /watch; see KvStore.readHistory). */
  readHistory(from: number, maxEntries: number): Promise<HistoryPage> {
    return this.kv.readHistory(from, maxEntries);
  }

  /** Calls `fn` with the applied index after every apply and snapshot install; returns the unsubscribe. */
  onAppliedIndex(fn: (index: number) => void): () => void {
    this.appliedListeners.add(fn);
    return () => this.appliedListeners.delete(fn);
  }

  /** Reads a key from local state (call linearizableBarrier first for a linearizable read). */
  async get(key: string): Promise<StoredValue | undefined> {
    return this.kv.get(key);
  }

  /** A point-in-time view of the local key-value state (GET /backup; call linearizableBarrier first for a linearizable one). */
  openKvView(): Promise<KvView> {
    return this.kv.openView();
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  /** The current leader's id, cheap enough for every request. */
  leaderId(): NodeId | null {
    return this.raft.currentLeaderId;
  }

  /** The members of the configuration in force. */
  members(): ClusterConfig['members'] {
    return this.raft.currentConfig.members;
  }

  /** The API address of a member, from the replicated configuration. */
  memberApiAddr(id: NodeId): string | null {
    return this.members().find((m) => m.id === id)?.apiAddr ?? null;
  }

  /** Ready for traffic: a leader is known and we have applied what we last heard committed. */
  isReady(): boolean {
    const isMember = this.members().some((m) => m.id === this.opts.nodeId);
    return !this.isStopped && this.failure === null && isMember && this.leaderId() !== null && this.applied >= this.knownCommit;
  }

  /** Why client writes are refused right now (see RaftNodeOptions.writeRefusal), or null. */
  writeRefusal(): Error | null {
    return this.opts.writeRefusal?.() ?? null;
  }

  isHealthy(): boolean {
    return !this.isStopped && this.failure === null;
  }

  appliedIndex(): number {
    return this.applied;
  }

  // --- Leases (docs/leases.md) ---------------------------------------------------------------------

  /** The longest election timeout in milliseconds (the core randomises in [timeout, 2 × timeout)). */
  maxElectionTimeoutMs(): number {
    return 2 * this.opts.electionTimeoutTicks * this.opts.tickMs;
  }

  /** The shortest TTL a lease may have: two maximum election timeouts. */
  minLeaseTtlMs(): number {
    return 2 * this.maxElectionTimeoutMs();
  }

  /** The replicated lease table as applied here (call linearizableBarrier first for a linearizable read). */
  async leases(): Promise<LeaseRecord[]> {
    return (await this.kv.readLeases()).list();
  }

  /** One lease and its attached keys as applied here, or undefined. */
  async lease(id: string): Promise<{ lease: LeaseRecord; keys: string[] } | undefined> {
    const table = await this.kv.readLeases();
    const lease = table.lease(id);
    return lease === undefined ? undefined : { lease, keys: table.keysOf(id) };
  }

  /** The time left before the leader expires `id`, when this node leads with its lease clock armed. */
  leaseRemainingMs(id: string): number | undefined {
    if (!this.isLeaseClockArmed()) return undefined;
    return this.leaseClock.remaining(id, performance.now());
  }

  /** Grants a lease through the log; resolves with its id once applied here. */
  async grantLease(ttlMs: number): Promise<{ id: string; ttlMs: number; index: number }> {
    const r = await this.writeCommand({ kind: 'lease-grant', ttlMs });
    if (r.lease?.op !== 'grant') throw new Error('lease grant applied without a grant decision');
    return { id: r.lease.id, ttlMs: r.lease.ttlMs, index: r.index };
  }

  /** Revokes a lease through the log: it and its keys are deleted in that one entry. */
  async revokeLease(id: string): Promise<{ index: number; deleted: string[] }> {
    const r = await this.writeCommand({ kind: 'lease-revoke', id });
    if (r.leaseNotFound !== undefined || r.lease?.op !== 'revoke') throw new LeaseNotFoundError(id);
    return { index: r.index, deleted: r.lease.deleted };
  }

  /**
   * Renews a lease on the leader, after ReadIndex confirmed leadership. Fails with LEASE_NOT_FOUND for
   * an unknown lease or one whose expiry is pending. When the log holds too little remaining time for
   * a new leader to honour this keepalive, a checkpoint recording the full TTL is committed first.
   */
  async keepaliveLease(id: string): Promise<{ id: string; ttlMs: number; remainingMs: number }> {
    await this.linearizableBarrier();
    const term = await this.armedLeaseTerm();
    const found = await this.lease(id);
    if (found === undefined) throw new LeaseNotFoundError(id);
    const now = performance.now();
    if (this.leaseClock.remaining(id, now) === undefined && !this.leaseClock.isExpiring(id)) this.leaseClock.onGrant(id, found.lease.ttlMs, now);
    const remainingMs = this.leaseClock.keepalive(id, now);
    if (remainingMs === null) throw new LeaseNotFoundError(id, 'its expiry is pending');
    if (keepaliveNeedsCheckpoint(found.lease.remainingMs, found.lease.ttlMs, this.maxElectionTimeoutMs())) {
      await this.writeCommand({ kind: 'lease-checkpoint', remaining: [[id, found.lease.ttlMs]] });
    }
    if (this.leaseTerm !== term) throw new NoLeaderError('leadership changed during the keepalive; retry');
    return { id, ttlMs: found.lease.ttlMs, remainingMs };
  }

  private isLeaseClockArmed(): boolean {
    return this.leaseTerm !== 0 && this.raft.currentLeaderId === this.opts.nodeId && this.raft.status().term === this.leaseTerm;
  }

  /** Arms the lease clock for the current term if needed (after a ReadIndex, so the table holds every earlier term's entries); resolves with the term. */
  private async armedLeaseTerm(): Promise<number> {
    if (this.isLeaseClockArmed()) return this.leaseTerm;
    await this.armLeaseClock();
    if (!this.isLeaseClockArmed()) throw new NoLeaderError('this node stopped leading; retry');
    return this.leaseTerm;
  }

  private armLeaseClock(): Promise<void> {
    this.leaseArming ??= (async () => {
      try {
        const term = this.raft.status().term;
        // ReadIndex: a commit in this term, applied here, so the table holds every earlier leader's entries.
        await this.linearizableBarrier();
        if (this.raft.currentLeaderId !== this.opts.nodeId || this.raft.status().term !== term) return;
        const table = await this.kv.readLeases();
        if (this.raft.currentLeaderId !== this.opts.nodeId || this.raft.status().term !== term) return;
        this.leaseClock.becomeLeader(table.list(), performance.now(), this.maxElectionTimeoutMs());
        this.leaseTerm = term;
      } finally {
        this.leaseArming = null;
      }
    })();
    return this.leaseArming;
  }

  /** Every tick: arm the clock when leading, then propose due expiries and checkpoints (never blocks the tick). */
  private tickLeases(): void {
    if (this.isStopped || this.failure) return;
    const isLeader = this.raft.currentLeaderId === this.opts.nodeId;
    if (!isLeader) {
      if (this.leaseTerm !== 0) {
        this.leaseTerm = 0;
        this.leaseClock.clear();
      }
      return;
    }
    if (!this.isLeaseClockArmed()) {
      if (this.leaseTerm !== 0) {
        this.leaseTerm = 0;
        this.leaseClock.clear();
      }
      if (this.leaseArming === null) this.armLeaseClock().catch(() => undefined); // retried next tick
      return;
    }
    const now = performance.now();
    const term = this.leaseTerm;
    for (const id of this.leaseClock.expired(now)) {
      // The term fence: applied only if committed in this term (a deposed leader's expiry is a no-op).
      this.writeCommand({ kind: 'lease-expire', id, term }).then(
        (r) => {
          if (r.lease?.op === 'expire' && r.lease.isApplied) this.leaseClock.forget(id);
          else if (this.leaseTerm === term) this.leaseClock.retry(id);
        },
        () => {
          if (this.leaseTerm === term) this.leaseClock.retry(id); // proposed again next tick
        },
      );
    }
    if (this.isCheckpointInFlight) return;
    const remaining = this.leaseClock.checkpoint(now, this.opts.leaseCheckpointIntervalMs ?? DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS);
    if (remaining.length === 0) return;
    this.isCheckpointInFlight = true;
    this.writeCommand({ kind: 'lease-checkpoint', remaining }).then(
      () => undefined,
      () => undefined, // a lost checkpoint only delays the record; the next one carries the leases again
    ).finally(() => {
      this.isCheckpointInFlight = false;
    });
  }

  /** Keeps the lease clock in step with what was applied: grants start, revokes and expiries stop their deadlines. */
  private leasesApplied(outcomes: ReadonlyMap<number, EntryOutcome>): void {
    const armed = this.leaseTerm !== 0;
    const now = performance.now();
    for (const o of outcomes.values()) {
      if (o.lease?.op === 'expire' && o.lease.isApplied) this.observer.onLeaseExpired?.(o.lease.id, o.lease.deleted.length);
      if (!armed) continue;
      for (const e of o.leaseEffects ?? []) {
        if (e.type === 'lease-delete') this.leaseClock.forget(e.id);
        else if (e.type === 'lease-put' && e.lease.grantedIndex === o.index) this.leaseClock.onGrant(e.lease.id, e.lease.ttlMs, now);
      }
    }
  }

  /** Stops ticking and waits for the loop to drain; fails every pending request. */
  async stop(): Promise<void> {
    this.isStopped = true;
    if (this.ticker) clearInterval(this.ticker);
    while (this.isLoopRunning) await new Promise((r) => setTimeout(r, 5));
    this.waiters.failAll(new UnavailableError('node is shutting down'));
  }

  private assertRunning(): void {
    if (this.failure) throw new UnavailableError(`node failed: ${this.failure.message}`);
    if (this.isStopped) throw new UnavailableError('node is shutting down');
  }

  private schedule(): void {
    if (this.isLoopScheduled || this.isLoopRunning || this.isStopped || this.failure) return;
    this.isLoopScheduled = true;
    setImmediate(() => {
      this.isLoopScheduled = false;
      void this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    if (this.isLoopRunning) return;
    this.isLoopRunning = true;
    try {
      // One Ready per turn of the event loop, so peer messages, timers and sockets interleave.
      if (!this.failure && this.raft.hasReady()) await this.handleReady(this.raft.ready());
      if (!this.failure) await this.snapshots.run();
    } catch (err) {
      this.failWith(err);
    } finally {
      this.isLoopRunning = false;
    }
    if (this.raft.hasReady()) this.schedule();
  }

  /** A storage failure stops the node: it must never keep voting on top of a failed write. */
  private failWith(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof Error ? err : new Error(String(err));
    if (this.ticker) clearInterval(this.ticker);
    this.observer.onError?.(err);
  }

  private async handleReady(rd: Ready): Promise<void> {
    // Raft thesis §10.2.1: a leader may send AppendEntries before its own disk write finishes, because
    // the core counts the leader towards a quorum only for entries it has persisted. Anything that
    // changes term or vote, or installs a snapshot, is persisted before a single message leaves.
    const isSendFirst = rd.softState.role === 'leader' && rd.hardState === null && rd.snapshot === null;
    if (isSendFirst) this.sendAll(rd.messages);
    // 1. Persist (synced): a received snapshot first (replacing the whole stored log), then entries
    //    and hard state.
    if (rd.snapshot) await this.storage.log.saveSnapshot(rd.snapshot, true);
    if (rd.hardState || rd.entries.length > 0) {
      await this.storage.log.write({ hardState: rd.hardState, entries: rd.entries });
    }
    // 2. Send: each peer's messages of this Ready go down its one ordered stream.
    if (!isSendFirst) this.sendAll(rd.messages);
    // 3. Install the snapshot into the state machine, then apply the entries after it in one batch.
    if (rd.snapshot) await this.installSnapshot(rd.snapshot);
    await this.applyEntries(rd.committedEntries);
    if (rd.commitIndex > this.knownCommit) this.knownCommit = rd.commitIndex;
    // 4. Reads: confirmed ones wait for apply, those the leader could not confirm fail.
    this.waiters.readsConfirmed(rd.readStates);
    this.waiters.readsFailed(rd.readFailures);
    this.waiters.releaseReads(this.applied);
    const prev = this.softState;
    if (!prev || prev.role !== rd.softState.role || prev.leaderId !== rd.softState.leaderId || prev.term !== rd.softState.term) {
      this.softState = rd.softState;
      this.observer.onSoftState?.(rd.softState, prev);
    }
    this.raft.advance(rd);
  }

  private sendAll(messages: Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    const members = this.members();
    for (const [to, msgs] of byPeer) {
      const raftAddr = members.find((mb) => mb.id === to)?.raftAddr || this.peerAddrs.get(to);
      if (raftAddr) this.transport.send({ id: to, raftAddr }, msgs);
    }
  }

  /** Replaces the key-value state with a snapshot received from the leader (Raft §7). */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    const index = snap.meta.lastIndex;
    if (index <= this.applied) return;
    await this.kv.restoreSnapshot(snap.data, index);
    this.leaseTerm = 0; // a follower installs snapshots; should it lead later, it arms from the new table
    this.leaseClock.clear();
    this.applied = index;
    this.waiters.snapshotInstalled(index);
    this.observer.onApplied?.(index);
    for (const fn of this.appliedListeners) fn(index);
    this.observer.onSnapshot?.('installed', snap.meta, snap.data.length);
  }

  /**
   * Applies committed entries through the state machine (one storage batch), then settles the writes
   * waiting on them (see RequestWaiters.applied for a write whose leader lost office).
   */
  private async applyEntries(entries: Entry[]): Promise<void> {
    const fresh = entries.filter((e) => e.index > this.applied);
    if (fresh.length === 0) return;
    for (const e of fresh) this.snapshots.noteApplied(entrySize(e));
    const outcomes = await this.kv.applyEntries(fresh);
    this.leasesApplied(outcomes);
    const last = fresh[fresh.length - 1].index;
    this.applied = last;
    this.observer.onApplied?.(last);
    for (const fn of this.appliedListeners) fn(last);
    this.waiters.applied(fresh, outcomes);
  }
}
