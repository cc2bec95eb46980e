/**
 * The Raft protocol as a pure, deterministic state machine. Inputs: tick(), step(message),
 * propose(data), readIndex(id), campaign(), bootstrap(config), compact(index, data). Output: a Ready bundle that the
 * driver persists, sends and applies before calling advance(). No I/O, no clock, no global
 * randomness: time is ticks and jitter comes from the injected rng. Used by src/raft/node (the real
 * driver) and test/sim (the simulator). This file holds step/tick and the message handlers; each
 * follower's replication state is in progress.ts, configuration in membership.ts, the read queues in
 * read-index.ts (docs/raft-core.md is the map).
 */
import { RaftLog, entrySize } from './log.js';
import { Membership, nextConfig, type ConfigEntry } from './membership.js';
import { assertNever } from './messages.js';
import type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  ReadIndexResponse,
  RequestVote,
  RequestVoteResponse,
  TimeoutNow,
} from './messages.js';
import type { RaftInitialState, RaftOptions } from './options.js';
import { Progress } from './progress.js';
import { majority, quorumMin } from './quorum.js';
import { ReadIndexQueue } from './read-index.js';
import type { Ready, Role } from './ready.js';
import type { PeerStatus, ProposeResult, RaftStatus, TransferResult } from './status.js';
import type { ClusterConfig, ConfChange, Entry, HeldSnapshot, NodeId, Snapshot, SnapshotMeta } from './types.js';

export { defaultRaftOptions } from './options.js';

/** A snapshot being received from the leader, chunk by chunk (Raft §7). */
interface IncomingSnapshot {
  meta: SnapshotMeta;
  term: number;
  from: NodeId;
  chunks: string[];
  /** Characters received so far; the next chunk must start here. */
  received: number;
}

/** One node's Raft state machine; the driver owns it and feeds it inputs, then drains ready(). */
export class Raft {
  readonly id: NodeId;
  /** This process's incarnation: messages addressed to another incarnation of `id` are dropped. */
  readonly incarnation: string;
  private readonly opts: RaftOptions;
  private readonly log: RaftLog;

  // Persistent state (Raft Fig. 2). Invariant: changes are flagged in isHardStateDirty.
  private term: number;
  private votedFor: NodeId | null;
  private isHardStateDirty = false;

  // Volatile state. Invariant: appliedIndex <= commitIndex <= log.lastIndex.
  private role: Role = 'follower';
  private leaderId: NodeId | null = null;
  private commitIndex: number;
  private appliedIndex: number;
  /** The configuration in force and its history over the log (membership.ts). */
  private readonly membership: Membership;
  /** The latest snapshot: taken locally by compact(), received from a leader, or loaded at start. */
  private snapshot: HeldSnapshot | null;
  /** The latest snapshot's data came from supplySnapshotData: it is dropped again once no transfer uses it. */
  private isSnapshotDataSupplied = false;
  /** A snapshot received from the leader that the driver has not yet been handed in a Ready. */
  private pendingSnapshot: Snapshot | null = null;
  private incomingSnapshot: IncomingSnapshot | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private needsBroadcast = false;
  private needsCommitBroadcast = false;

  // Leadership transfer (thesis §3.10). Invariant: transferee !== null only on a leader.
  private transferee: NodeId | null = null;
  private transferElapsed = 0;

  /** ReadIndex (thesis §6.4): the read queues (read-index.ts). */
  private readonly reads = new ReadIndexQueue();

  private messages: Message[] = [];
  /** Incarnations of accepted senders outside the configuration (a leader a joining node follows). */
  private peerIncarnations = new Map<NodeId, string>();
  /** While step() handles a message: its sender's id and incarnation, which every reply addresses. */
  private replyTo: { id: NodeId; inc: string } | null = null;
  /**
   * The incarnation of the leader this node follows, as its messages named it (our configuration may
   * not record it yet). Invariant: null unless leaderId is another node.
   */
  private leaderInc: string | null = null;

  constructor(options: RaftOptions, initial: RaftInitialState) {
    this.opts = options;
    this.id = options.id;
    this.incarnation = options.incarnation;
    this.log = new RaftLog(initial.snapshot?.meta ?? null, initial.entries);
    this.term = initial.hardState.term;
    this.votedFor = initial.hardState.votedFor;
    this.snapshot = initial.snapshot;
    this.membership = new Membership(initial.snapshot?.meta.config ?? { members: [] });
    this.commitIndex = Math.max(initial.applied, this.log.snapshotIndex);
    this.appliedIndex = this.commitIndex;
    if (this.commitIndex > this.log.lastIndex) throw new Error('raft: applied index beyond the log');
    this.recomputeConfig();
    this.resetElectionTimer();
  }

  // -------------------------------------------------------------------------------------------
  // Inputs
  // -------------------------------------------------------------------------------------------

  /** Starts a brand-new cluster on an empty node: the config entry at index 1, term 1. */
  bootstrap(config: ClusterConfig): void {
    if (this.log.lastIndex !== 0 || this.term !== 0) throw new Error('raft: bootstrap on a node with state');
    this.term = 1;
    this.isHardStateDirty = true;
    const entry: ConfigEntry = { index: 1, term: 1, type: 'config', change: { op: 'promote', id: this.id }, config };
    this.log.append(entry);
    this.membership.apply(entry);
  }

  /** Advances logical time by one tick: election timeouts on followers, heartbeats and CheckQuorum on the leader. */
  tick(): void {
    this.electionElapsed++;
    if (this.role === 'leader') {
      this.heartbeatElapsed++;
      for (const [id, pr] of this.progress) {
        pr.tick();
        // The chunk or its acknowledgement was lost: resend from the last confirmed offset.
        if (pr.isChunkRetryDue(this.opts.electionTimeoutTicks)) this.sendSnapshotChunk(id, pr);
      }
      if (this.transferee !== null && ++this.transferElapsed >= this.opts.electionTimeoutTicks) {
        // Thesis §3.10: a transfer that has not completed within an election timeout is aborted.
        this.transferee = null;
      }
      if (this.electionElapsed >= this.opts.electionTimeoutTicks) {
        this.electionElapsed = 0;
        // Raft thesis §6.2 (CheckQuorum): a leader that has not heard from a majority steps down.
        if (this.opts.checkQuorum && !this.hasActiveQuorum()) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const pr of this.progress.values()) pr.resetActivity();
      }
      if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
        this.heartbeatElapsed = 0;
        this.broadcastHeartbeat(0);
      }
      return;
    }
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.isPromotable()) {
      this.electionElapsed = 0;
      this.startElection(this.opts.preVote, false);
    }
  }

  /** Starts an election now (used at start-up of a single-voter cluster); skips PreVote. */
  campaign(): void {
    if (this.role !== 'leader' && this.isPromotable()) this.startElection(false, false);
  }

  /** Appends a client command on the leader; the caller learns the outcome when index/term is applied. */
  propose(data: string): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not-leader', leaderId: this.leaderId };
    if (this.transferee !== null) return { ok: false, reason: 'transferring', leaderId: this.id };
    if (this.log.lastIndex - this.commitIndex >= this.opts.maxUncommittedEntries) return { ok: false, reason: 'too-many-uncommitted', leaderId: this.id };
    const index = this.log.lastIndex + 1;
    this.log.append({ index, term: this.term, type: 'normal', data });
    this.needsBroadcast = true;
    return { ok: true, index, term: this.term };
  }

  /**
   * Proposes a single-server membership change (thesis §4.1). Refused unless this leader has
   * committed an entry of its own term (thesis §4.1 bug fix) and no earlier change is still uncommitted.
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not-leader', leaderId: this.leaderId };
    if (this.transferee !== null) return { ok: false, reason: 'transferring', leaderId: this.id };
    if (this.log.termAt(this.commitIndex) !== this.term) return { ok: false, reason: 'no-commit-in-term', leaderId: this.id };
    if (this.membership.isChangePending(this.commitIndex)) return { ok: false, reason: 'conf-change-pending', leaderId: this.id };
    const next = nextConfig(this.membership.config, change, {
      selfId: this.id,
      commitIndex: this.commitIndex,
      matchIndexOf: (id) => this.progress.get(id)?.matchIndex,
    });
    if (!next.ok) return { ok: false, reason: next.reason, leaderId: this.id };
    const index = this.log.lastIndex + 1;
    const entry: ConfigEntry = { index, term: this.term, type: 'config', change, config: next.config };
    this.log.append(entry);
    this.applyConfigEntry(entry);
    this.needsBroadcast = true;
    // A smaller voter set may already have a quorum for pending entries.
    this.maybeCommit();
    return { ok: true, index, term: this.term };
  }

  /**
   * Hands leadership to voter `to`, or to the most caught-up voter that was recently heard from when
   * no target is given (thesis §3.10): new proposals are refused with 'transferring', the target is
   * brought up to date, then sent TimeoutNow so it campaigns at once. The transfer is aborted after an
   * election timeout of ticks; it is complete when this node learns of the new leader's term.
   */
  transferLeadership(to?: NodeId): TransferResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not-leader', leaderId: this.leaderId };
    if (this.transferee !== null) return { ok: false, reason: 'transferring', leaderId: this.id };
    let target: NodeId | null = null;
    if (to === undefined) {
      let best: Progress | null = null;
      for (const id of this.membership.voterIds()) {
        const pr = this.progress.get(id);
        if (id === this.id || !pr) continue;
        const isBetter =
          best === null ||
          (pr.isRecentlyActive && !best.isRecentlyActive) ||
          (pr.isRecentlyActive === best.isRecentlyActive && (pr.matchIndex > best.matchIndex || (pr.matchIndex === best.matchIndex && pr.ticksSinceContact < best.ticksSinceContact)));
        if (isBetter) {
          best = pr;
          target = id;
        }
      }
      if (target === null) return { ok: false, reason: 'no-target', leaderId: this.id };
    } else {
      if (to === this.id) return { ok: false, reason: 'no-target', leaderId: this.id };
      if (!this.membership.isVoter(to) || !this.progress.has(to)) return { ok: false, reason: 'unknown-member', leaderId: this.id };
      target = to;
    }
    this.transferee = target;
    this.transferElapsed = 0;
    this.maybeSendTimeoutNow(target);
    return { ok: true, to: target };
  }

  /** The voter leadership is being handed to, or null when no transfer is in progress. */
  get leadershipTransferee(): NodeId | null {
    return this.transferee;
  }

  /** Asks for a linearizable read index for request `id`; answered in a later Ready (readStates or readFailures). */
  readIndex(id: string): void {
    if (this.role === 'leader') {
      this.reads.awaitRound(id, null);
    } else if (this.leaderId !== null) {
      this.reads.forward(id);
    } else {
      this.reads.fail(id, 'no-leader');
    }
  }

  /** Processes one message from a peer. Messages from other terms are handled per Raft §5.1 and thesis §9.6. */
  step(m: Message): void {
    if (m.to !== this.id || !this.isAcceptedSender(m)) return;
    if (this.membership.incarnationOf(m.from) === undefined) this.peerIncarnations.set(m.from, m.fromInc ?? '');
    this.replyTo = { id: m.from, inc: m.fromInc ?? '' };
    try {
      this.stepAccepted(m);
    } finally {
      this.replyTo = null;
    }
  }

  private stepAccepted(m: Message): void {
    if (m.term > this.term) {
      if (m.type === 'RequestVote') {
        // Thesis §4.2.3 / §9.6: while a leader is known to be alive, disregard votes (leader lease),
        // unless the candidate campaigns because the leader asked it to (TimeoutNow).
        const isInLease = this.opts.checkQuorum && this.leaderId !== null && this.electionElapsed < this.opts.electionTimeoutTicks;
        // TimeoutNow comes from our leader to a member; a sender outside the configuration cannot claim it.
        const mayWaiveLease = m.transfer && this.membership.incarnationOf(m.from) !== undefined;
        if (isInLease && !mayWaiveLease) return;
        if (m.preVote) {
          this.handleRequestVote(m);
          return;
        }
        this.becomeFollower(m.term, null);
      } else if (m.type === 'RequestVoteResponse' && m.preVote && m.granted) {
        // A granted pre-vote carries the term we asked for; it is not a newer term.
      } else {
        const isFromLeader = m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot';
        this.becomeFollower(m.term, isFromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      if (m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot') {
        // A stale leader (e.g. after a partition) learns of the newer term and steps down.
        this.send({ type: 'AppendEntriesResponse', from: this.id, to: m.from, term: this.term, success: false, matchIndex: 0, rejectedIndex: 0, conflictIndex: 0, conflictTerm: 0 });
      } else if (m.type === 'RequestVote' && m.preVote) {
        this.send({ type: 'RequestVoteResponse', from: this.id, to: m.from, term: this.term, preVote: true, granted: false });
      }
      return;
    }

    const isFromLeader = m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot';
    // Raft §5.2: at most one leader per term. Once we follow (or are) the leader of this term, anyone
    // else claiming leadership in it is not a leader of this cluster.
    if (isFromLeader && this.leaderId !== null && (this.leaderId !== m.from || (this.leaderInc !== null && this.leaderInc !== (m.fromInc ?? '')))) return;

    switch (m.type) {
      case 'RequestVote':
        this.handleRequestVote(m);
        return;
      case 'RequestVoteResponse':
        this.handleVoteResponse(m);
        return;
      case 'AppendEntries':
        this.acceptLeader(m.from, m.fromInc ?? '');
        this.handleAppendEntries(m);
        return;
      case 'Heartbeat':
        this.acceptLeader(m.from, m.fromInc ?? '');
        this.handleHeartbeat(m);
        return;
      case 'AppendEntriesResponse':
        if (this.role === 'leader') this.handleAppendResponse(m);
        return;
      case 'HeartbeatResponse':
        if (this.role === 'leader') this.handleHeartbeatResponse(m);
        return;
      case 'ReadIndex':
        if (this.role === 'leader') {
          for (const id of m.ids) this.reads.awaitRound(id, m.from);
        } else {
          this.send({ type: 'ReadIndexResponse', from: this.id, to: m.from, term: this.term, ids: m.ids, index: 0, ok: false });
        }
        return;
      case 'ReadIndexResponse':
        this.reads.answer(m);
        return;
      case 'TimeoutNow':
        if (this.isPromotable()) this.startElection(false, true);
        return;
      case 'InstallSnapshot':
        this.acceptLeader(m.from, m.fromInc ?? '');
        this.handleInstallSnapshot(m);
        return;
      case 'InstallSnapshotResponse':
        if (this.role === 'leader') this.handleInstallSnapshotResponse(m);
        return;
      default:
        assertNever(m);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Ready / advance
  // -------------------------------------------------------------------------------------------

  /** True when ready() would hand the driver any work. */
  hasReady(): boolean {
    return (
      this.isHardStateDirty ||
      this.pendingSnapshot !== null ||
      this.messages.length > 0 ||
      this.log.stableIndex < this.log.lastIndex ||
      this.commitIndex > this.appliedIndex ||
      this.reads.hasResults ||
      this.needsBroadcast ||
      this.needsCommitBroadcast ||
      (this.reads.hasAwaitingRound && this.hasCommittedInTerm()) ||
      this.reads.hasToForward
    );
  }

  /** Collects the work for the driver. The driver must call advance(ready) before the next ready(). */
  ready(): Ready {
    this.flushReads();
    if (this.role === 'leader' && this.needsBroadcast) {
      for (const id of this.progress.keys()) this.sendAppend(id);
    }
    if (this.role === 'leader' && this.needsCommitBroadcast) this.broadcastHeartbeat(0);
    this.needsBroadcast = false;
    this.needsCommitBroadcast = false;
    const rd: Ready = {
      hardState: this.isHardStateDirty ? { term: this.term, votedFor: this.votedFor } : null,
      entries: this.log.unstable(),
      snapshot: this.pendingSnapshot,
      messages: this.messages,
      committedEntries: this.log.slice(this.appliedIndex + 1, this.commitIndex, Infinity, this.opts.maxApplyBytes),
      readStates: this.reads.takeStates(),
      readFailures: this.reads.takeFailures(),
      softState: { role: this.role, leaderId: this.leaderId, term: this.term },
      commitIndex: this.commitIndex,
    };
    this.isHardStateDirty = false;
    this.pendingSnapshot = null;
    this.messages = [];
    return rd;
  }

  /** Acknowledges that `rd` was persisted, sent and applied. */
  advance(rd: Ready): void {
    // The driver has installed the snapshot into the state machine: it is applied up to its index.
    if (rd.snapshot) this.appliedIndex = Math.max(this.appliedIndex, rd.snapshot.meta.lastIndex);
    if (rd.entries.length > 0) {
      // Messages stepped since ready() may have truncated some of rd.entries: only what is still ours is stable.
      this.log.stableTo(rd.entries);
      // Thesis §10.2.1: the leader counts itself towards a quorum only for entries on its own disk.
      if (this.role === 'leader') this.maybeCommit();
    }
    if (rd.committedEntries.length > 0) {
      this.appliedIndex = Math.max(this.appliedIndex, rd.committedEntries[rd.committedEntries.length - 1].index);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Queries
  // -------------------------------------------------------------------------------------------

  /** A snapshot of the node's state for status endpoints, metrics and invariant checks. */
  status(): RaftStatus {
    const peers: PeerStatus[] = [];
    if (this.role === 'leader') {
      for (const [id, pr] of this.progress) {
        peers.push({
          id,
          suffrage: this.membership.suffrageOf(id) ?? 'learner',
          matchIndex: pr.matchIndex,
          nextIndex: pr.nextIndex,
          state: pr.state,
          inflight: pr.inflightCount,
          ticksSinceContact: pr.ticksSinceContact,
        });
      }
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      votedFor: this.votedFor,
      leaderId: this.leaderId,
      commitIndex: this.commitIndex,
      appliedIndex: this.appliedIndex,
      lastIndex: this.log.lastIndex,
      snapshotIndex: this.snapshot?.meta.lastIndex ?? 0,
      config: this.membership.config,
      peers,
    };
  }

  /** The leader this node currently follows (or itself), without building a full status. */
  get currentLeaderId(): NodeId | null {
    return this.leaderId;
  }

  /** The configuration in force (the latest config entry in the log), without building a full status. */
  get currentConfig(): ClusterConfig {
    return this.membership.config;
  }

  /** The latest snapshot this node holds (taken by compact(), received, or loaded), or null. */
  get latestSnapshot(): HeldSnapshot | null {
    return this.snapshot;
  }

  /**
   * True while this node leads and a follower needs the latest snapshot but it was taken without
   * data: the driver should serialise the state machine at its applied index and pass it to
   * supplySnapshotData().
   */
  get needsSnapshotData(): boolean {
    if (this.role !== 'leader') return false;
    for (const pr of this.progress.values()) if (pr.state === 'snapshot' && pr.snapshot === null) return true;
    return false;
  }

  /** The entry at `index`, or undefined when compacted or beyond the end of the log. */
  entryAt(index: number): Entry | undefined {
    return this.log.entryAt(index);
  }

  // -------------------------------------------------------------------------------------------
  // Elections (Raft §5.2, thesis §9.6 PreVote)
  // -------------------------------------------------------------------------------------------

  private startElection(isPreVote: boolean, isTransfer: boolean): void {
    this.reads.failAll('leadership-lost');
    this.transferee = null;
    this.incomingSnapshot = null;
    this.votes.clear();
    this.leaderInc = null;
    if (isPreVote) {
      this.role = 'precandidate';
      this.leaderId = null;
    } else {
      this.role = 'candidate';
      this.leaderId = null;
      this.term++;
      this.votedFor = this.id;
      this.isHardStateDirty = true;
    }
    this.resetElectionTimer();
    this.votes.set(this.id, true);
    if (this.countVotes(true) >= majority(this.membership.voterIds().length)) {
      this.onElectionWon(isPreVote);
      return;
    }
    for (const id of this.membership.voterIds()) {
      if (id === this.id) continue;
      this.send({
        type: 'RequestVote',
        from: this.id,
        to: id,
        term: isPreVote ? this.term + 1 : this.term,
        preVote: isPreVote,
        lastLogIndex: this.log.lastIndex,
        lastLogTerm: this.log.lastTerm,
        transfer: isTransfer,
      });
    }
  }

  private onElectionWon(wasPreVote: boolean): void {
    if (wasPreVote) this.startElection(false, false);
    else this.becomeLeader();
  }

  private handleRequestVote(m: RequestVote): void {
    // Raft §5.2/§5.4.1: one vote per term, only for a candidate whose log is at least as up-to-date.
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === null && this.leaderId === null) ||
      (m.preVote && m.term > this.term);
    // A node that is not a member of its own configuration (it has no state yet, or lost it and
    // rejoins as a new incarnation) never votes: it cannot know what it promised before.
    const granted = canVote && this.isSelfMember() && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    if (granted && !m.preVote) {
      this.votedFor = m.from;
      // MUTATION-POINT: persist-vote
      this.isHardStateDirty = true;
      this.electionElapsed = 0;
    }
    this.send({
      type: 'RequestVoteResponse',
      from: this.id,
      to: m.from,
      term: granted && m.preVote ? m.term : this.term,
      preVote: m.preVote,
      granted,
    });
  }

  private handleVoteResponse(m: RequestVoteResponse): void {
    const isExpected = (m.preVote && this.role === 'precandidate') || (!m.preVote && this.role === 'candidate');
    if (!isExpected || !this.membership.isVoter(m.from)) return;
    this.votes.set(m.from, m.granted);
    const quorum = majority(this.membership.voterIds().length);
    if (this.countVotes(true) >= quorum) this.onElectionWon(m.preVote);
    else if (this.countVotes(false) >= quorum) this.becomeFollower(this.term, null);
  }

  private countVotes(granted: boolean): number {
    let n = 0;
    for (const [id, v] of this.votes) if (v === granted && this.membership.isVoter(id)) n++;
    return n;
  }

  private becomeFollower(term: number, leaderId: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    const isNewTerm = term > this.term;
    this.transferee = null;
    if (isNewTerm) {
      this.term = term;
      this.votedFor = null;
      this.isHardStateDirty = true;
    }
    // A read forwarded in an older term is dropped by the leader as stale, even when the same node
    // leads again: fail it so the client retries, rather than wait forever.
    if (wasLeader || this.leaderId !== leaderId || isNewTerm) this.reads.failAll('leadership-lost');
    this.role = 'follower';
    if (this.leaderId !== leaderId) this.leaderInc = null;
    this.leaderId = leaderId;
    this.progress.clear();
    this.resetElectionTimer();
  }

  /** Called on a valid AppendEntries/Heartbeat of the current term: the sender is the leader. */
  private acceptLeader(from: NodeId, inc: string): void {
    if (this.role !== 'follower' || this.leaderId !== from) this.becomeFollower(this.term, from);
    this.leaderInc = inc;
    this.electionElapsed = 0;
  }

  private becomeLeader(): void {
    this.role = 'leader';
    this.transferee = null;
    this.leaderId = this.id;
    this.leaderInc = null;
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    this.progress.clear();
    this.syncProgress();
    // Raft §8: a new leader commits a no-op of its own term, which also commits earlier entries.
    this.log.append({ index: this.log.lastIndex + 1, term: this.term, type: 'noop' });
    this.needsBroadcast = true;
  }

  /** Keeps one Progress per member other than ourselves. */
  private syncProgress(): void {
    const ids = new Set(this.membership.peerIds(this.id));
    for (const id of this.progress.keys()) if (!ids.has(id)) this.progress.delete(id);
    if (this.transferee !== null && !this.membership.isVoter(this.transferee)) this.transferee = null;
    for (const id of ids) {
      const incarnation = this.membership.incarnationOf(id) ?? '';
      // A new incarnation of a member holds none of what the old one acknowledged: start from scratch.
      if (this.progress.get(id)?.incarnation !== incarnation) this.progress.set(id, new Progress(incarnation, this.log.lastIndex + 1));
    }
  }

  private hasActiveQuorum(): boolean {
    let active = 0;
    for (const id of this.membership.voterIds()) {
      if (id === this.id || this.progress.get(id)?.isRecentlyActive) active++;
    }
    return active >= majority(this.membership.voterIds().length);
  }

  // -------------------------------------------------------------------------------------------
  // Replication (Raft §5.3, §5.4)
  // -------------------------------------------------------------------------------------------

  private sendAppend(to: NodeId): void {
    const pr = this.progress.get(to);
    if (!pr) return;
    if (pr.state === 'snapshot') {
      if (!pr.isPaused) this.sendSnapshotChunk(to, pr);
      return;
    }
    if (!pr.canSendAppend(this.opts.maxInflight, this.log.lastIndex)) return;
    const prevLogIndex = pr.nextIndex - 1;
    const prevLogTerm = this.log.termAt(prevLogIndex);
    if (prevLogTerm === undefined) {
      // Raft §7: the entries this follower needs were compacted away; send the snapshot instead.
      this.startSnapshotTransfer(to, pr);
      return;
    }
    const entries = this.log.slice(pr.nextIndex, this.log.lastIndex, this.opts.maxEntriesPerAppend, this.opts.maxBytesPerAppend);
    const msg: AppendEntries = {
      type: 'AppendEntries',
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.commitIndex,
    };
    this.send(msg);
    pr.appendSent(entries);
  }

  private handleAppendEntries(m: AppendEntries): void {
    const rejectedIndex = m.prevLogIndex;
    const reply = (success: boolean, matchIndex: number, conflictIndex = 0, conflictTerm = 0): void =>
      this.send({ type: 'AppendEntriesResponse', from: this.id, to: m.from, term: this.term, success, matchIndex, rejectedIndex: success ? 0 : rejectedIndex, conflictIndex, conflictTerm });
    if (m.prevLogIndex < this.commitIndex) {
      // Below our commit index nothing may be truncated, and we acknowledge only what this message
      // proves we share with the leader: every entry it carries up to our commit index (and its
      // prevLogTerm) must equal ours where we still hold them. A mismatch means another history
      // (never the case within one cluster): refuse without acknowledging anything.
      const lastCarried = m.prevLogIndex + m.entries.length;
      const prevTerm = this.log.termAt(m.prevLogIndex);
      const isSameHistory =
        (prevTerm === undefined || prevTerm === m.prevLogTerm) &&
        m.entries.every((e) => e.index > this.commitIndex || this.log.termAt(e.index) === undefined || this.log.termAt(e.index) === e.term);
      if (!isSameHistory) {
        reply(false, 0, this.log.snapshotIndex + 1, 0);
        return;
      }
      if (lastCarried <= this.commitIndex) {
        reply(true, lastCarried);
        return;
      }
      // The message reaches past our commit index: continue as an append after it.
      const commitTerm = this.log.termAt(this.commitIndex) as number;
      m = { ...m, prevLogIndex: this.commitIndex, prevLogTerm: commitTerm, entries: m.entries.filter((e) => e.index > this.commitIndex) };
    }
    const localTerm = this.log.termAt(m.prevLogIndex);
    if (localTerm !== m.prevLogTerm) {
      // Fast backtracking: point the leader at the first index of the conflicting term, or past our end.
      if (localTerm === undefined) reply(false, 0, this.log.lastIndex + 1, 0);
      else reply(false, 0, this.log.firstIndexOfTerm(m.prevLogIndex), localTerm);
      return;
    }
    const truncatesConfig = this.membership.isTruncatedBy(this.log, m.entries);
    const conflict = m.entries.find((e) => e.index > this.log.snapshotIndex && (this.log.termAt(e.index) ?? e.term) !== e.term);
    this.log.merge(m.entries);
    // Acknowledgements still queued (not yet handed out in a Ready) for entries this append has just
    // overwritten would reach their leader after the overwrite: as claims about entries we never
    // persisted, they could make a stale leader count us toward a commit. Drop them (Raft retransmits).
    if (conflict) this.messages = this.messages.filter((q) => !(q.type === 'AppendEntriesResponse' && q.success && q.matchIndex >= conflict.index));
    if (truncatesConfig) this.recomputeConfig();
    else for (const e of m.entries) if (this.membership.isNewConfigEntry(this.log, e)) this.applyConfigEntry(e);
    const matchIndex = m.prevLogIndex + m.entries.length;
    if (Math.min(m.leaderCommit, matchIndex) > this.commitIndex) this.commitIndex = Math.min(m.leaderCommit, matchIndex);
    reply(true, matchIndex);
  }

  private handleHeartbeat(m: Heartbeat): void {
    // The leader sends min(its commit, our match), so every index up to m.commit is in our log.
    if (m.commit > this.commitIndex) this.commitIndex = Math.min(m.commit, this.log.lastIndex);
    const resp: HeartbeatResponse = { type: 'HeartbeatResponse', from: this.id, to: m.from, term: this.term, ctx: m.ctx };
    this.send(resp);
  }

  private handleAppendResponse(m: AppendEntriesResponse): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.markActive();
    if (pr.state === 'snapshot') {
      // A late answer to an AppendEntries sent before the transfer began. A success still tells the
      // truth about the follower's log; leave snapshot state only if it lets us replicate from our log.
      if (!m.success || m.matchIndex <= pr.matchIndex) return;
      if (m.matchIndex < this.log.snapshotIndex) {
        pr.recordMatch(m.matchIndex);
        this.maybeCommit();
        return;
      }
      // Leave as a probe; the success below moves it to replicate from the new match.
      pr.leaveSnapshotAsProbe();
      this.releaseSuppliedSnapshotData();
    }
    if (m.success) {
      if (pr.acknowledge(m.matchIndex)) {
        pr.endCatchUpIfCaughtUp(this.log.lastIndex);
        this.maybeCommit();
        if (this.role !== 'leader') return;
        this.maybePromote(m.from, pr);
      }
      pr.resume();
      this.sendAppend(m.from);
      if (this.transferee === m.from && pr.matchIndex >= this.log.lastIndex) this.maybeSendTimeoutNow(m.from);
      return;
    }
    // Rejection. A follower whose log now ends below what it acknowledged has lost entries (its disk
    // was replaced under the same identity): forget its match, so it is never counted for entries it
    // does not hold, and probe it from its end.
    if (m.conflictTerm === 0 && m.conflictIndex > 0 && m.conflictIndex <= pr.matchIndex && m.rejectedIndex >= pr.matchIndex) {
      pr.forgetMatch(m.conflictIndex);
      this.sendAppend(m.from);
      return;
    }
    // Ignore stale ones (already superseded by a higher match or a newer probe).
    if (pr.state === 'replicate' && m.rejectedIndex <= pr.matchIndex) return;
    if (pr.state === 'probe' && m.rejectedIndex !== pr.nextIndex - 1) return;
    // Fast backtracking: skip the follower's conflicting term, or to its end.
    let next = m.conflictIndex;
    if (m.conflictTerm > 0) {
      const lastOfTerm = this.log.lastIndexOfTerm(m.conflictTerm);
      if (lastOfTerm > 0) next = lastOfTerm + 1;
    }
    if (pr.backtrack(next, m.rejectedIndex)) this.sendAppend(m.from);
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.markActive();
    pr.ackReadRound(m.ctx);
    // A follower acks an append only after its disk write but answers a heartbeat at once, so an
    // append sent less than a heartbeat interval ago is most likely just slower than this answer.
    const isAppendOverdue = pr.isAppendOverdue(this.opts.heartbeatTicks);
    if (pr.state !== 'snapshot' && pr.matchIndex < this.log.lastIndex && isAppendOverdue) {
      // The follower is alive but behind: a lost AppendEntries must not stall it forever.
      // (A snapshot transfer has its own tick-based retry: chunks are too big to resend per heartbeat.)
      pr.retryAfterHeartbeat(this.opts.maxInflight, this.log.lastIndex);
      this.sendAppend(m.from);
    }
    // A lost TimeoutNow is resent while the transfer lasts.
    if (this.transferee === m.from && pr.matchIndex >= this.log.lastIndex) this.maybeSendTimeoutNow(m.from);
    // A caught-up learner whose promotion was refused earlier (another change was pending) gets
    // another chance each heartbeat round; otherwise it would wait for a new entry to be acked.
    this.maybePromote(m.from, pr);
    this.releaseConfirmedReads();
  }

  /**
   * Thesis §3.10: TimeoutNow goes out only once the target's log matches ours to the end, so it
   * can win the election; until then it is sent the missing entries.
   */
  private maybeSendTimeoutNow(to: NodeId): void {
    const pr = this.progress.get(to);
    if (!pr) return;
    if (pr.matchIndex < this.log.lastIndex) {
      pr.resumeProbe();
      this.sendAppend(to);
      return;
    }
    const msg: TimeoutNow = { type: 'TimeoutNow', from: this.id, to, term: this.term };
    this.send(msg);
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots and log compaction (Raft §7)
  // -------------------------------------------------------------------------------------------

  /**
   * Records a snapshot of the state machine taken by the driver after applying every entry up to
   * `index`, and drops the log up to it (keeping compactionTailEntries). `data` is the state
   * serialised, or null when the state machine keeps it durably itself (it is then asked for only
   * when a follower needs it). The driver persists the returned snapshot (LogStore.saveSnapshot(s,
   * false)). Returns null when `index` is not newer than the latest snapshot. Throws when `index` is
   * beyond the applied index.
   */
  compact(index: number, data: string | null): HeldSnapshot | null {
    if (index <= (this.snapshot?.meta.lastIndex ?? 0) || index <= this.log.snapshotIndex) return null;
    if (index > this.appliedIndex) throw new Error(`raft: compact(${index}) beyond the applied index ${this.appliedIndex}`);
    const lastTerm = this.log.termAt(index) as number;
    const snap: HeldSnapshot = { meta: { lastIndex: index, lastTerm, config: this.membership.configAt(this.log, index) }, data };
    this.snapshot = snap;
    this.isSnapshotDataSupplied = false;
    // Keep the last entries up to the snapshot, at most compactionTailEntries of them and
    // compactionTailBytes of data, for followers that lag by only a little.
    let keepFrom = index + 1;
    let bytes = 0;
    for (let i = index; i > Math.max(index - this.opts.compactionTailEntries, this.log.snapshotIndex); i--) {
      bytes += entrySize(this.log.entryAt(i) as Entry);
      if (bytes > this.opts.compactionTailBytes) break;
      keepFrom = i;
    }
    let base = keepFrom - 1;
    // A transfer in progress keeps the entries after the snapshot it sends: compacting past them would
    // leave the follower needing another snapshot once it installed this one, and under steady writes
    // a large snapshot could be overtaken every time. The next compaction after the transfer drops them.
    for (const pr of this.progress.values()) if (pr.state === 'snapshot' && pr.snapshot !== null) base = Math.min(base, pr.snapshot.meta.lastIndex);
    // So does a follower just out of a transfer, while it fetches the entries written meanwhile (it may
    // be silent for a while, installing): compacting past its match would send it back to a snapshot,
    // and a large state under steady writes would never catch up. Bounded (4x compactionTailBytes of
    // entries), so a follower slower than the writes, or gone, cannot grow the log forever.
    let catchUpFrom = base;
    for (const pr of this.progress.values()) {
      if (pr.isCatchingUpAfterSnapshot && pr.state === 'replicate' && pr.matchIndex >= this.log.snapshotIndex) {
        catchUpFrom = Math.min(catchUpFrom, pr.matchIndex);
      }
    }
    for (let held = 0; base > catchUpFrom; base--) {
      held += entrySize(this.log.entryAt(base) as Entry);
      if (held > 4 * this.opts.compactionTailBytes) break;
    }
    if (base > this.log.snapshotIndex) {
      this.membership.compactTo(this.log, base);
      this.log.compactTo(base);
    }
    return snap;
  }

  /**
   * The driver's answer to needsSnapshotData: the state machine serialised after applying every
   * entry up to `index` (its applied index when it started serialising). Followers waiting for a
   * snapshot are sent this one. When `index` is newer than the latest snapshot this also compacts
   * (like compact()) and returns the new snapshot for the driver to persist; otherwise null. An
   * answer older than the latest snapshot is ignored (the core asks again while still needed).
   */
  supplySnapshotData(index: number, data: string): HeldSnapshot | null {
    const held = this.snapshot;
    if (held === null || index < held.meta.lastIndex) return null;
    let created: HeldSnapshot | null = null;
    // MUTATION-POINT: supply-index
    if (index === held.meta.lastIndex) this.snapshot = { meta: held.meta, data };
    else created = this.compact(index, data);
    this.isSnapshotDataSupplied = true;
    if (this.role !== 'leader') return created;
    for (const [id, pr] of this.progress) {
      if (pr.state !== 'snapshot' || pr.snapshot !== null) continue;
      this.startSnapshotTransfer(id, pr);
    }
    return created;
  }

  private startSnapshotTransfer(to: NodeId, pr: Progress): void {
    const held = this.snapshot;
    if (!held) throw new Error('raft: the log is compacted but no snapshot is held');
    if (held.data === null) {
      // Taken without data: wait (paused, which needsSnapshotData reports) until the driver supplies it.
      pr.becomeSnapshot(null);
      return;
    }
    pr.becomeSnapshot({ meta: held.meta, data: held.data });
    this.sendSnapshotChunk(to, pr);
  }

  /** Sends the chunk at the follower's confirmed offset; one chunk is outstanding at a time. */
  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const { snap, offset, end } = pr.nextChunk(this.opts.maxSnapshotChunkBytes);
    const msg: InstallSnapshot = {
      type: 'InstallSnapshot',
      from: this.id,
      to,
      term: this.term,
      meta: snap.meta,
      offset,
      data: snap.data.slice(offset, end),
      done: end >= snap.data.length,
    };
    this.send(msg);
    pr.chunkSent();
  }

  /** Data the driver serialised on request is not kept once no transfer needs it (it can be asked again). */
  private releaseSuppliedSnapshotData(): void {
    if (this.isSnapshotDataSupplied && this.snapshot !== null && [...this.progress.values()].every((p) => p.state !== 'snapshot')) {
      this.snapshot = { meta: this.snapshot.meta, data: null };
      this.isSnapshotDataSupplied = false;
    }
  }

  private handleInstallSnapshotResponse(m: InstallSnapshotResponse): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.markActive();
    if (pr.state !== 'snapshot' || !pr.snapshot || m.lastIndex !== pr.snapshot.meta.lastIndex) return;
    if (m.done) {
      // The follower holds the snapshot (or already had its entries): resume replication after it.
      pr.snapshotDone(m.matchIndex);
      this.releaseSuppliedSnapshotData();
      this.maybeCommit();
      if (this.role !== 'leader') return;
      this.maybePromote(m.from, pr);
      this.sendAppend(m.from);
      return;
    }
    // A duplicate or reordered acknowledgement of a chunk we have moved past: the retry timer covers loss.
    if (!pr.chunkAcknowledged(m.received)) return;
    this.sendSnapshotChunk(m.from, pr);
  }

  /**
   * Follower side of InstallSnapshot (Raft §7): chunks are buffered strictly in order (a gap is
   * answered with the offset we hold, a new snapshot restarts the buffer); a snapshot not newer than
   * our commit index is ignored; a snapshot whose last entry our log already holds only advances
   * commit; a complete one replaces the log and is handed to the driver in the next Ready.
   */
  private handleInstallSnapshot(m: InstallSnapshot): void {
    const reply = (received: number, done: boolean, matchIndex: number): void => {
      const resp: InstallSnapshotResponse = { type: 'InstallSnapshotResponse', from: this.id, to: m.from, term: this.term, lastIndex: m.meta.lastIndex, received, done, matchIndex };
      this.send(resp);
    };
    const meta = m.meta;
    if (meta.lastIndex <= this.commitIndex) {
      reply(0, true, this.commitIndex);
      return;
    }
    if (this.log.termAt(meta.lastIndex) === meta.lastTerm) {
      // Raft §7: our log already contains the snapshot's last entry, so the entries after it are kept
      // (a leader may have counted them); everything up to it is committed since the leader snapshotted it.
      this.commitIndex = meta.lastIndex;
      this.incomingSnapshot = null;
      reply(0, true, meta.lastIndex);
      return;
    }
    let inc = this.incomingSnapshot;
    if (inc && (inc.meta.lastIndex !== meta.lastIndex || inc.term !== m.term || inc.from !== m.from)) {
      // A late chunk of an older snapshot from the same leader must not discard the newer buffer.
      if (inc.term === m.term && inc.from === m.from && meta.lastIndex < inc.meta.lastIndex) return;
      inc = null;
    }
    if (!inc) {
      if (m.offset !== 0) {
        reply(0, false, 0);
        return;
      }
      inc = { meta, term: m.term, from: m.from, chunks: [], received: 0 };
      this.incomingSnapshot = inc;
    }
    if (m.offset !== inc.received) {
      reply(inc.received, false, 0);
      return;
    }
    inc.chunks.push(m.data);
    inc.received += m.data.length;
    if (!m.done) {
      reply(inc.received, false, 0);
      return;
    }
    this.incomingSnapshot = null;
    this.restoreSnapshot({ meta, data: inc.chunks.join('') });
    reply(inc.received, true, meta.lastIndex);
  }

  /** Replaces log position, commit index and configuration with a received snapshot's. */
  private restoreSnapshot(snap: Snapshot): void {
    this.log.restore(snap.meta);
    this.snapshot = snap;
    this.isSnapshotDataSupplied = false;
    this.pendingSnapshot = snap;
    this.commitIndex = snap.meta.lastIndex;
    this.membership.restore(snap.meta.config);
  }

  /** Raft §5.3/§5.4.2: commit the highest index stored on a majority, but only if it is of the current term. */
  private maybeCommit(): void {
    // MUTATION-POINT: leader-self-stable
    const matches = this.membership.voterIds().map((id) => (id === this.id ? this.log.stableIndex : this.progress.get(id)?.matchIndex ?? 0));
    const n = quorumMin(matches);
    // MUTATION-POINT: figure8-commit
    if (n > this.commitIndex && this.log.termAt(n) === this.term) {
      this.commitIndex = n;
      this.needsCommitBroadcast = true;
      // Thesis §4.2.2: a leader removed from the configuration steps down once the removal commits.
      if (this.membership.isRemovalCommitted(this.id, this.commitIndex)) {
        this.broadcastHeartbeat(0);
        this.becomeFollower(this.term, null);
      }
    }
  }

  /** Promotes a learner that has caught up with the commit index, if no other change is pending. */
  private maybePromote(id: NodeId, pr: Progress): void {
    if (!this.opts.autoPromote || this.membership.suffrageOf(id) !== 'learner' || pr.matchIndex < this.commitIndex) return;
    this.proposeConfChange({ op: 'promote', id });
  }

  private broadcastHeartbeat(ctx: number): void {
    for (const [id, pr] of this.progress) {
      this.send({ type: 'Heartbeat', from: this.id, to: id, term: this.term, commit: Math.min(pr.matchIndex, this.commitIndex), ctx });
    }
  }

  // -------------------------------------------------------------------------------------------
  // ReadIndex (thesis §6.4): a read is served at the commit index once a quorum confirms leadership.
  // -------------------------------------------------------------------------------------------

  private flushReads(): void {
    if (this.role === 'leader') {
      // The leader's commit index is only known to be current once it has committed in its own term.
      if (!this.reads.hasAwaitingRound || !this.hasCommittedInTerm()) return;
      const ctx = this.reads.startRound(this.commitIndex) as number;
      if (this.membership.voterIds().length > 1) this.broadcastHeartbeat(ctx);
      this.releaseConfirmedReads();
      return;
    }
    if (!this.reads.hasToForward) return;
    const leaderId = this.leaderId;
    const ids = this.reads.takeToForward(leaderId !== null);
    if (leaderId !== null) this.send({ type: 'ReadIndex', from: this.id, to: leaderId, term: this.term, ids });
  }

  /** The leader's commit index is current only once it has committed an entry of its own term (thesis §6.4). */
  private hasCommittedInTerm(): boolean {
    return this.log.termAt(this.commitIndex) === this.term;
  }

  /** Releases the reads of every round a quorum of voters acknowledged (this leader acknowledges its own at once). */
  private releaseConfirmedReads(): void {
    const acked = this.membership.voterIds().map((id) => (id === this.id ? this.reads.ctx : this.progress.get(id)?.ackedCtx ?? 0));
    for (const [to, g] of this.reads.release(acked)) {
      const resp: ReadIndexResponse = { type: 'ReadIndexResponse', from: this.id, to, term: this.term, ids: g.ids, index: g.index, ok: true };
      this.send(resp);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Membership and identity (the configuration itself is tracked by membership.ts)
  // -------------------------------------------------------------------------------------------

  /** The log changed under the configuration (restart, truncation): the latest config entry in it is in force. */
  private recomputeConfig(): void {
    this.membership.recompute(this.log);
    if (this.role === 'leader') this.syncProgress();
  }

  /** A config entry appended to the log takes effect at once (thesis §4.1); a leader tracks the new members. */
  private applyConfigEntry(e: ConfigEntry): void {
    this.membership.apply(e);
    if (this.role === 'leader') this.syncProgress();
  }

  /** This incarnation of this node is in its own configuration (as voter or learner). */
  private isSelfMember(): boolean {
    return this.membership.incarnationOf(this.id) === this.incarnation;
  }

  /**
   * Who may talk to this node (docs/cluster-identity.md): a message for another incarnation of
   * this node, or from another incarnation of a member than the configuration records, is dropped.
   * A sender outside the configuration may never raise a voter's term nor ask for its vote (a voter
   * that lags behind the entry adding a new leader learns the term from members' vote answers and
   * then follows it). A node not yet a voter of its own configuration (joining, or a learner)
   * follows any leader of the cluster: the transport has checked the cluster id and the signature.
   */
  private isAcceptedSender(m: Message): boolean {
    if ((m.toInc ?? '') !== this.incarnation) return false;
    const inc = this.membership.incarnationOf(m.from);
    const fromInc = m.fromInc ?? '';
    if (inc === fromInc) return true;
    if (inc !== undefined) {
      // A member id speaking as an incarnation our configuration does not record: we lag behind the
      // entry that records it (or this is a late message of an incarnation that was replaced). Its
      // requests are handled under Raft's own rules, which do not depend on who asks: a vote goes only
      // to a log at least as up-to-date as ours (§5.4.1), one per term, and a leader's entries must
      // match ours at prevLogIndex (§5.3). It can be a voter only through a config entry in its own
      // log, appended after it caught up, so a node without state never campaigns. Its answers are
      // never counted (votes, matchIndex, read acks are kept per recorded incarnation); only the read
      // index of the leader we follow under that incarnation is taken.
      // MUTATION-POINT: unrecorded-incarnation-requests
      if (m.type === 'RequestVote' || m.type === 'AppendEntries' || m.type === 'Heartbeat' || m.type === 'InstallSnapshot' || m.type === 'TimeoutNow') return true;
      return m.type === 'ReadIndexResponse' && m.from === this.leaderId && fromInc === this.leaderInc;
    }
    // A candidate our configuration does not list yet (we lag behind the entry adding it, simulator seed
    // 65 with --leases): its vote requests are judged under Raft's rules like anyone's (an up-to-date
    // log, one vote per term) and the leader lease, which it can never waive (see stepAccepted). Its
    // appends and heartbeats still cannot raise a voter's term.
    if (m.type === 'RequestVote') return true;
    return m.term <= this.term || !this.isPromotable();
  }

  /** Only voters of the current configuration start elections; a learner, a removed node or another incarnation never does. */
  private isPromotable(): boolean {
    // By id and incarnation: a new incarnation whose log still holds a configuration recording its old
    // incarnation as a voter is not that voter (it would count its own vote as the old one's).
    return this.membership.isVoter(this.id) && this.isSelfMember();
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    const base = this.opts.electionTimeoutTicks;
    this.randomizedElectionTimeout = base + Math.floor(this.opts.rng() * base);
  }

  /** Queues `m`, naming our incarnation and the receiver's (as our configuration or its last message says). */
  private send(m: Message): void {
    const toInc =
      (this.replyTo !== null && this.replyTo.id === m.to ? this.replyTo.inc : undefined) ??
      (this.leaderInc !== null && m.to === this.leaderId ? this.leaderInc : undefined) ??
      this.membership.incarnationOf(m.to) ??
      this.peerIncarnations.get(m.to) ??
      '';
    // '' is the same as absent: configurations without incarnations send messages as before.
    if (this.incarnation !== '') m.fromInc = this.incarnation;
    if (toInc !== '') m.toInc = toInc;
    this.messages.push(m);
  }
}
