/**
 * The leader's lease clock (docs/leases.md): when each lease's deadline falls, on the leader only.
 * Pure: no Date, no timers; `now` is passed in (milliseconds of a monotonic clock in the real node,
 * ticks in the simulator). Nothing here is replicated: the driver turns what it says into log entries
 * (lease-expire, lease-checkpoint) and the replicated table (leases.ts) is the only shared state.
 *
 * Per lease two instants are kept: `base`, when the lease runs out by what this leader knows (grant or
 * keepalive + ttlMs, or for leases inherited at election: election + remainingMs of the last
 * checkpoint), and `deadline` = base + slack, when it is expired. The slack is one election timeout
 * for inherited leases (keepalives the old leader acknowledged after its last checkpoint) and 0 once
 * this leader granted or renewed the lease. Checkpoints record `base - now`, never the slack, so
 * repeated elections cannot keep adding it: a lease nobody renews loses at least the time between two
 * checkpoints per leader that lives that long.
 */

/** What the leader tracks for one lease. */
interface Tracked {
  ttlMs: number;
  /** Invariant: base <= deadline. */
  base: number;
  deadline: number;
  /** An expiry was handed out by expired() and not yet confirmed or retried. */
  isPending: boolean;
  /** When the lease was last included in a checkpoint (or armed). */
  checkpointedAt: number;
}

/** A lease as the leader learns it from the replicated table at election. */
export interface InheritedLease {
  id: string;
  ttlMs: number;
  remainingMs: number;
}

/**
 * Whether a keepalive must be made durable before it is acknowledged: when the remaining time the
 * log holds for the lease (its last checkpoint) is below ttlMs - electionTimeout, a new leader could
 * otherwise expire it less than ttlMs after this keepalive (deadline = election + remaining + timeout).
 */
export function keepaliveNeedsCheckpoint(replicatedRemainingMs: number, ttlMs: number, electionTimeout: number): boolean {
  return replicatedRemainingMs + electionTimeout < ttlMs;
}

/** The leader's deadlines; one per node, reset whenever it becomes leader. */
export class LeaseDeadlines {
  private readonly leases = new Map<string, Tracked>();

  /** Number of leases tracked. */
  get size(): number {
    return this.leases.size;
  }

  /**
   * This node became leader at `now`: every lease of the replicated table gets deadline
   * now + remainingMs + electionTimeout (the old leader may have renewed it after its last checkpoint,
   * at most one election timeout before this node could win).
   */
  becomeLeader(leases: readonly InheritedLease[], now: number, electionTimeout: number): void {
    this.leases.clear();
    for (const l of leases) {
      const base = now + l.remainingMs;
      this.leases.set(l.id, { ttlMs: l.ttlMs, base, deadline: base + electionTimeout, isPending: false, checkpointedAt: now });
    }
  }

  /** Forgets every lease (this node stopped leading). */
  clear(): void {
    this.leases.clear();
  }

  /** A lease granted (applied) while this node leads: it runs out ttlMs from now. */
  onGrant(id: string, ttlMs: number, now: number): void {
    this.leases.set(id, { ttlMs, base: now + ttlMs, deadline: now + ttlMs, isPending: false, checkpointedAt: now });
  }

  /**
   * Renews a lease at `now`; returns its new remaining time, or null when it is unknown here or its
   * expiry is pending (the keepalive then fails: the lease is going).
   */
  keepalive(id: string, now: number): number | null {
    const t = this.leases.get(id);
    if (t === undefined || t.isPending) return null;
    t.base = now + t.ttlMs;
    t.deadline = t.base;
    return t.ttlMs;
  }

  /** The time left before the lease is expired here (deadline - now, at least 0), or undefined. */
  remaining(id: string, now: number): number | undefined {
    const t = this.leases.get(id);
    return t === undefined ? undefined : Math.max(0, t.deadline - now);
  }

  /** Whether an expiry of `id` was handed out and is not settled. */
  isExpiring(id: string): boolean {
    return this.leases.get(id)?.isPending ?? false;
  }

  /**
   * The leases whose deadline has passed and whose expiry is not pending yet, marked pending: each is
   * returned once, until retry() (the proposal failed) or forget() (it was applied).
   */
  expired(now: number): string[] {
    const out: string[] = [];
    for (const [id, t] of this.leases) {
      if (t.isPending || t.deadline > now) continue;
      t.isPending = true;
      out.push(id);
    }
    return out;
  }

  /** The expiry proposal for `id` failed or was fenced: expired() returns it again. */
  retry(id: string): void {
    const t = this.leases.get(id);
    if (t !== undefined) t.isPending = false;
  }

  /**
   * The remaining time to record for leases due a checkpoint, as [[id, base - now]] (never the slack):
   * a lease is due once `intervalMs` (capped at a quarter of its TTL, so every leader that lives half
   * a TTL records progress) passed since it was last recorded; without `intervalMs` every lease is.
   * Pending expiries are left out.
   */
  checkpoint(now: number, intervalMs?: number): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const [id, t] of this.leases) {
      if (t.isPending) continue;
      if (intervalMs !== undefined && now - t.checkpointedAt < Math.min(intervalMs, Math.floor(t.ttlMs / 4))) continue;
      t.checkpointedAt = now;
      out.push([id, Math.max(0, Math.round(t.base - now))]);
    }
    return out;
  }

  /** The lease is gone (revoked or expired at apply): stop tracking it. */
  forget(id: string): void {
    this.leases.delete(id);
  }

  /** Ids tracked (for reconciling with the replicated table). */
  ids(): string[] {
    return [...this.leases.keys()];
  }
}
