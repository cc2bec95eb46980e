/**
 * The client requests a node is waiting on: proposed writes (by log index, until their entry is
 * applied) and linearizable reads (by ReadIndex id, until the leader confirms them and the state
 * machine reaches their index), each with its timeout. Owned by the node driver (node.ts), which
 * feeds it what each Ready brings; nothing here touches the core or storage.
 */
import type { Entry } from '../core/types.js';
import type { EntryOutcome, FailedCondition, KvOpResult, LeaseDecision, TxnDecision } from '../../kv/types.js';
import { NoLeaderError, TimeoutError, UnavailableError } from '../../errors.js';

/** The outcome of a committed write as the state machine decided it at apply. */
export interface WriteResult {
  index: number;
  /** For each op of the write, in order, what the state machine found and did (see src/kv/apply.ts). */
  results: KvOpResult[];
  /** Set when the write's preconditions did not hold at apply (nothing changed). */
  failed?: FailedCondition[];
  /** Set for a transaction. */
  txn?: TxnDecision;
  /** Set when the write named a lease that did not exist at apply (nothing changed). */
  leaseNotFound?: string;
  /** Set for a lease command: what it decided. */
  lease?: LeaseDecision;
}

interface WriteWaiter {
  term: number;
  resolve: (result: WriteResult) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Pending writes and reads of one node, each failed with a TimeoutError after `requestTimeoutMs`. */
export class RequestWaiters {
  private writes = new Map<number, WriteWaiter>();
  private reads = new Map<string, ReadWaiter>();
  /** Confirmed reads waiting for the state machine to reach their index. */
  private readsAwaitingApply: { index: number; waiter: ReadWaiter }[] = [];

  constructor(private readonly requestTimeoutMs: number) {}

  /** Waits for the entry proposed at `index` in `term` to be applied (see applied()). */
  waitForWrite(index: number, term: number): Promise<WriteResult> {
    return new Promise<WriteResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.writes.delete(index);
        reject(new TimeoutError('the write was not committed in time; its outcome is unknown'));
      }, this.requestTimeoutMs);
      this.writes.set(index, { term, resolve, reject, timer });
    });
  }

  /**
   * Settles the writes waiting on freshly applied entries. A write still pending after its leader
   * lost office is neither failed nor acknowledged early: it resolves when its index is applied with
   * its own term, rejects when another term's entry lands there, or times out with an unknown outcome.
   */
  applied(entries: readonly Entry[], outcomes: ReadonlyMap<number, EntryOutcome>): void {
    for (const e of entries) {
      const w = this.writes.get(e.index);
      if (!w) continue;
      this.writes.delete(e.index);
      clearTimeout(w.timer);
      // An entry at our index but from another term means our proposal was overwritten (Raft §5.3).
      if (w.term === e.term) {
        const o = outcomes.get(e.index);
        w.resolve({
          index: e.index,
          results: o?.results ?? [],
          ...(o?.failed ? { failed: o.failed } : {}),
          ...(o?.txn ? { txn: o.txn } : {}),
          ...(o?.leaseNotFound !== undefined ? { leaseNotFound: o.leaseNotFound } : {}),
          ...(o?.lease ? { lease: o.lease } : {}),
        });
      }
      else w.reject(new NoLeaderError('leadership changed before the write committed; it was not applied'));
    }
  }

  /** A snapshot replaced the log up to `index`: writes proposed at covered indices cannot be matched to their entries any more. */
  snapshotInstalled(index: number): void {
    for (const [i, w] of this.writes) {
      if (i > index) continue;
      this.writes.delete(i);
      clearTimeout(w.timer);
      w.reject(new TimeoutError('leadership changed and the log was replaced by a snapshot; the outcome of the write is unknown'));
    }
  }

  /** Waits until the read `id` (handed to the core's readIndex) is confirmed and applied; resolves with its index. */
  waitForRead(id: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The read may be confirmed already and only waiting for apply: forget it there too.
        this.reads.delete(id);
        this.readsAwaitingApply = this.readsAwaitingApply.filter((r) => r.waiter !== waiter);
        reject(new TimeoutError('the read could not be confirmed in time'));
      }, this.requestTimeoutMs);
      const waiter: ReadWaiter = { resolve, reject, timer };
      this.reads.set(id, waiter);
    });
  }

  /** The leader confirmed these reads at these indices: they wait for apply from now on. */
  readsConfirmed(readStates: readonly { id: string; index: number }[]): void {
    for (const rs of readStates) {
      const w = this.reads.get(rs.id);
      if (!w) continue;
      this.reads.delete(rs.id);
      this.readsAwaitingApply.push({ index: rs.index, waiter: w });
    }
  }

  /** These reads cannot be confirmed (e.g. leadership was lost): they fail with NO_LEADER. */
  readsFailed(readFailures: readonly { id: string; reason: string }[]): void {
    for (const rf of readFailures) {
      const w = this.reads.get(rf.id);
      if (!w) continue;
      this.reads.delete(rf.id);
      clearTimeout(w.timer);
      w.reject(new NoLeaderError(`read could not be confirmed: ${rf.reason}`));
    }
  }

  /** Releases the confirmed reads whose index the state machine has reached. */
  releaseReads(applied: number): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: { index: number; waiter: ReadWaiter }[] = [];
    for (const r of this.readsAwaitingApply) {
      if (r.index <= applied) {
        clearTimeout(r.waiter.timer);
        r.waiter.resolve(r.index);
      } else still.push(r);
    }
    this.readsAwaitingApply = still;
  }

  /** Linearizable reads in progress: waiting for the leader's confirmation, or confirmed and waiting for apply. */
  pendingReads(): { confirming: number; awaitingApply: number } {
    return { confirming: this.reads.size, awaitingApply: this.readsAwaitingApply.length };
  }

  /** Fails every pending request (the node is stopping). */
  failAll(err: UnavailableError): void {
    for (const w of this.writes.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    for (const w of [...this.reads.values(), ...this.readsAwaitingApply.map((r) => r.waiter)]) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.writes.clear();
    this.reads.clear();
    this.readsAwaitingApply = [];
  }
}
