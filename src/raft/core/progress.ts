/**
 * The leader's view of one follower's log (Raft §5.3 nextIndex/matchIndex) and how it sends to it:
 * probe (one AppendEntries at a time until a match is found), replicate (optimistic pipelining
 * within an in-flight window) or snapshot (the entries it needs were compacted away, so the snapshot
 * is sent in chunks, one outstanding at a time). Every change of state is a named transition below;
 * the leader (raft.ts) reads the fields and calls them. Pure, owned by the leader's Raft.
 */
import type { Entry, Snapshot } from './types.js';

/** How the leader currently sends to a follower. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** The follower's incarnation this progress describes; another incarnation starts from scratch. */
  readonly incarnation: string;
  /** Invariant: matchIndex < nextIndex. */
  private match = 0;
  private next: number;
  private mode: ProgressState = 'probe';
  /** In probe state: an AppendEntries is outstanding. In snapshot state: a chunk is outstanding. */
  private paused = false;
  /** In replicate state: last index of each AppendEntries in flight, oldest first. */
  private window: number[] = [];
  private recentlyActive = true;
  private contactTicks = 0;
  /** Ticks since an AppendEntries was last sent to this follower or its match index last advanced. */
  private appendTicks = 0;
  private readCtx = 0;
  private snap: Snapshot | null = null;
  private snapOffset = 0;
  /** In snapshot state: ticks since the outstanding chunk was sent; it is resent after an election timeout. */
  private snapTicks = 0;
  /** Installed a snapshot from us and has not caught up with our log since: compaction keeps its entries (bounded). */
  private catchingUp = false;

  /** A fresh follower (or a new incarnation of one): probed from the leader's end of log. */
  constructor(incarnation: string, nextIndex: number) {
    this.incarnation = incarnation;
    this.next = nextIndex;
  }

  /** The last index known to match the leader's log. */
  get matchIndex(): number { return this.match; }
  /** The next index to send. */
  get nextIndex(): number { return this.next; }
  get state(): ProgressState { return this.mode; }
  /** In probe state: an AppendEntries is outstanding. In snapshot state: a chunk is outstanding. */
  get isPaused(): boolean { return this.paused; }
  /** AppendEntries in flight (replicate state). */
  get inflightCount(): number { return this.window.length; }
  /** Heard from in the current CheckQuorum window. */
  get isRecentlyActive(): boolean { return this.recentlyActive; }
  get ticksSinceContact(): number { return this.contactTicks; }
  /** Highest ReadIndex round acknowledged in this term. */
  get ackedCtx(): number { return this.readCtx; }
  /** In snapshot state: the snapshot being sent (kept even if a newer one is taken meanwhile); null while waiting for the driver to supply its data. */
  get snapshot(): Snapshot | null { return this.snap; }
  /** Out of a snapshot transfer and still fetching the entries written during it (see Raft.compact). */
  get isCatchingUpAfterSnapshot(): boolean { return this.catchingUp; }

  // ---------------------------------------------------------------- time and contact

  /** One leader tick. */
  tick(): void {
    this.contactTicks++;
    this.appendTicks++;
  }

  /**
   * Snapshot state, a chunk outstanding: counts a tick toward its retry and returns true (unpaused)
   * once `timeoutTicks` passed without an acknowledgement; the caller resends from the confirmed offset.
   */
  isChunkRetryDue(timeoutTicks: number): boolean {
    // A follower still waiting for the driver to supply the snapshot's data has nothing to resend.
    if (this.mode === 'snapshot' && this.paused && this.snap !== null && ++this.snapTicks >= timeoutTicks) {
      this.paused = false;
      return true;
    }
    return false;
  }

  /** Any answer from the follower: it is alive (CheckQuorum, thesis §6.2). */
  markActive(): void {
    this.recentlyActive = true;
    this.contactTicks = 0;
  }

  /** A new CheckQuorum window begins. */
  resetActivity(): void {
    this.recentlyActive = false;
  }

  /** The follower confirmed ReadIndex round `ctx` (thesis §6.4). */
  ackReadRound(ctx: number): void {
    if (ctx > this.readCtx) this.readCtx = ctx;
  }

  /** Ticks since the last AppendEntries was sent or the match advanced. */
  isAppendOverdue(heartbeatTicks: number): boolean {
    return this.appendTicks >= heartbeatTicks;
  }

  // ---------------------------------------------------------------- transitions

  /** Probe from `nextIndex`: one AppendEntries at a time, nothing in flight. */
  private becomeProbe(nextIndex: number): void {
    this.mode = 'probe';
    this.next = nextIndex;
    this.window = [];
    this.paused = false;
  }

  /** The match is known exactly: pipeline from right after it. */
  private becomeReplicate(): void {
    this.mode = 'replicate';
    this.next = this.match + 1;
    this.window = [];
  }

  /**
   * Starts a snapshot transfer (Raft §7). `snap` null: the snapshot was taken without data, so wait
   * (paused, which Raft.needsSnapshotData reports) until the driver supplies it.
   */
  becomeSnapshot(snap: Snapshot | null): void {
    this.mode = 'snapshot';
    this.catchingUp = false;
    this.snapOffset = 0;
    this.window = [];
    this.snap = snap;
    this.paused = snap === null;
    if (snap === null) this.snapTicks = 0;
  }

  /** Ends a transfer: the follower's match is known exactly, so replication resumes optimistically. */
  leaveSnapshot(): void {
    this.snap = null;
    this.paused = false;
    this.becomeReplicate();
  }

  /**
   * A late success for an AppendEntries sent before a transfer began, reaching at least the leader's
   * compaction point: leave snapshot state as a probe (the acknowledgement then moves it to replicate).
   */
  leaveSnapshotAsProbe(): void {
    this.leaveSnapshot();
    this.becomeProbe(this.match + 1);
  }

  /** Records a match learnt while in snapshot state (a late AppendEntries success); the state is unchanged. */
  recordMatch(index: number): void {
    this.match = index;
  }

  /**
   * A successful AppendEntries acknowledgement through `index`. Returns true when the match advanced:
   * the in-flight window frees everything up to it and a probe turns into replication.
   */
  acknowledge(index: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    this.appendTicks = 0;
    this.next = Math.max(this.next, index + 1);
    while (this.window.length > 0 && this.window[0] <= index) this.window.shift();
    if (this.mode === 'probe') this.becomeReplicate();
    return true;
  }

  /** Sending may go on (after an acknowledgement, or to push a transfer target along). */
  resume(): void {
    this.paused = false;
  }

  /** Probe state only: let the next AppendEntries go out now. */
  resumeProbe(): void {
    if (this.mode === 'probe') this.paused = false;
  }

  /**
   * The follower's log ends below what it acknowledged (its disk was replaced under the same
   * identity): forget the match, so it is never counted for entries it does not hold, and probe from
   * `conflictIndex`.
   */
  forgetMatch(conflictIndex: number): void {
    this.match = conflictIndex - 1;
    this.becomeProbe(conflictIndex);
  }

  /**
   * A rejection of the AppendEntries at `rejectedIndex`, pointing at `hintIndex` (fast backtracking):
   * probe again from there (never at or below the match). Returns false when it is the same probe
   * refused again: it is then paused, to be resent with the next heartbeat round rather than at once,
   * so a follower that cannot accept it is not flooded.
   */
  backtrack(hintIndex: number, rejectedIndex: number): boolean {
    const previousNext = this.next;
    const next = Math.max(this.match + 1, Math.min(hintIndex, rejectedIndex));
    const isSameProbe = this.mode === 'probe' && next === previousNext;
    this.becomeProbe(next);
    this.paused = isSameProbe;
    return !isSameProbe;
  }

  /**
   * A heartbeat answer from a follower that is behind while no append was sent for a heartbeat
   * interval: a lost AppendEntries must not stall it. Unpauses, frees one slot of a full window, and
   * when everything was sent yet it is still behind, probes again from its match rather than wait for
   * the next proposal to expose the gap.
   */
  retryAfterHeartbeat(maxInflight: number, lastIndex: number): void {
    this.paused = false;
    if (this.mode === 'replicate' && this.window.length >= maxInflight) this.window.shift();
    if (this.mode === 'replicate' && this.next > lastIndex) this.becomeProbe(this.match + 1);
  }

  // ---------------------------------------------------------------- sending

  /** Whether an AppendEntries may go out now (probe: none outstanding; replicate: window open and something to send). */
  canSendAppend(maxInflight: number, lastIndex: number): boolean {
    if (this.mode === 'probe' && this.paused) return false;
    if (this.mode === 'replicate' && (this.window.length >= maxInflight || this.next > lastIndex)) return false;
    return true;
  }

  /** An AppendEntries carrying `entries` went out: replicate advances optimistically, probe waits. */
  appendSent(entries: Entry[]): void {
    this.appendTicks = 0;
    if (this.mode === 'replicate') {
      const last = entries[entries.length - 1].index;
      this.next = last + 1;
      this.window.push(last);
    } else {
      this.paused = true;
    }
  }

  /** The chunk to send next: from the follower's confirmed offset, at most `maxChunk` characters. */
  nextChunk(maxChunk: number): { snap: Snapshot; offset: number; end: number } {
    const snap = this.snap;
    if (!snap) throw new Error('raft: snapshot state without a snapshot');
    const offset = Math.min(this.snapOffset, snap.data.length);
    const end = Math.min(offset + Math.max(1, maxChunk), snap.data.length);
    return { snap, offset, end };
  }

  /** A chunk went out: wait for its acknowledgement (or the retry timer). */
  chunkSent(): void {
    this.snapTicks = 0;
    this.paused = true;
  }

  /**
   * The follower holds the chunks up to `received`. Returns false for a duplicate or reordered
   * acknowledgement of a chunk already moved past (the retry timer covers loss); otherwise the next
   * chunk may go.
   */
  chunkAcknowledged(received: number): boolean {
    const snap = this.snap as Snapshot;
    if (received === this.snapOffset && this.paused) return false;
    this.snapOffset = Math.min(received, snap.data.length);
    this.paused = false;
    return true;
  }

  /** The follower needs no more of the snapshot (installed, or its log covers it): it matches through `matchIndex`. */
  snapshotDone(matchIndex: number): void {
    this.match = Math.max(this.match, matchIndex);
    this.leaveSnapshot();
    this.catchingUp = true;
  }

  /** After an acknowledgement: a follower whose match reached the leader's last index has caught up. */
  endCatchUpIfCaughtUp(lastIndex: number): void {
    if (this.match >= lastIndex) this.catchingUp = false;
  }
}
