/**
 * LeaseHandle: a lease that keeps itself alive, made by RaftKvClient.lease(ttlMs). It sends a
 * keepalive every ttlMs / 3 through any endpoint (the client fails over and follows the leader),
 * retries failed ones sooner, and tells when the lease is lost: a keepalive answered
 * LEASE_NOT_FOUND, or no keepalive acknowledged within ttlMs of sending the last acknowledged one
 * (from then on the cluster may have expired it; it never expires a lease earlier: docs/leases.md,
 * "The expiry bound"). Browser-safe: timers and performance.now() only.
 */
import { AbortedError, LeaseLostError, LeaseNotFoundError, RaftKvClientError } from './errors.js';
import type { LeaseGrant, LeaseKeepAlive, LeaseOptions, LeaseRevoke } from './types.js';

/** What the handle needs from the client (RaftKvClient implements it). */
export interface LeaseCalls {
  keepAliveLease(id: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<LeaseKeepAlive>;
  revokeLease(id: string): Promise<LeaseRevoke>;
}

/** The monotonic clock of the handle (ms); only differences on this one clock are compared. */
function now(): number {
  return performance.now();
}

/** A lease kept alive in the background until close(), revoke() or its loss. */
export class LeaseHandle {
  readonly id: string;
  readonly ttlMs: number;
  /** The index of the grant entry (null for a lease adopted with keepLeaseAlive). */
  readonly grantedIndex: number | null;
  /** Time between keepalives. */
  readonly keepAliveIntervalMs: number;
  /** Resolves (never rejects) with why, once the lease is lost; stays pending after close() or revoke(). */
  readonly lost: Promise<LeaseLostError>;
  /** Aborted when the lease is lost (reason: the LeaseLostError), closed or revoked: pass it to work that must stop then. */
  readonly signal: AbortSignal;
  /** Keepalives acknowledged so far. */
  keepAlives = 0;
  /** The leader's remaining time in the last acknowledged keepalive (null before the first, or from a follower). */
  lastRemainingMs: number | null = null;
  /** The last keepalive failure, cleared by the next success. */
  lastError: Error | null = null;

  private readonly calls: LeaseCalls;
  private readonly onLost: ((e: LeaseLostError) => void) | undefined;
  private readonly onKeepAlive: ((r: LeaseKeepAlive) => void) | undefined;
  private readonly ended = new AbortController();
  private resolveLost: (e: LeaseLostError) => void = () => undefined;
  private state: 'alive' | 'lost' | 'closed' = 'alive';
  /** Until then the lease certainly exists on the cluster (send time of the last acknowledged keepalive or the grant + ttlMs). */
  private validUntil: number;
  private nextTimer: ReturnType<typeof setTimeout> | null = null;
  private deadlineTimer: ReturnType<typeof setTimeout> | null = null;
  private inflight: AbortController | null = null;
  private failuresInARow = 0;

  /** Starts keeping `grant` alive; `sentAt` is when its grant (or first keepalive) request was sent (performance.now()). */
  constructor(calls: LeaseCalls, grant: Omit<LeaseGrant, 'index'> & { index: number | null }, sentAt: number, options: LeaseOptions = {}) {
    this.calls = calls;
    this.id = grant.id;
    this.ttlMs = grant.ttlMs;
    this.grantedIndex = grant.index;
    this.onLost = options.onLost;
    this.onKeepAlive = options.onKeepAlive;
    const interval = options.keepAliveIntervalMs ?? Math.floor(grant.ttlMs / 3);
    this.keepAliveIntervalMs = Math.max(1, Math.min(interval, grant.ttlMs));
    this.signal = this.ended.signal;
    this.lost = new Promise((resolve) => {
      this.resolveLost = resolve;
    });
    this.validUntil = sentAt + grant.ttlMs;
    this.armDeadline();
    this.schedule(Math.max(0, sentAt + this.keepAliveIntervalMs - now()));
  }

  /** Whether the lease is kept alive and known to exist (not lost, closed or revoked). */
  get isAlive(): boolean {
    return this.state === 'alive';
  }

  /**
   * How long the lease certainly still exists, by this process's clock: ttlMs after sending the
   * last acknowledged keepalive, minus the time since. 0 once lost or ended.
   */
  remainingMs(): number {
    return this.state === 'alive' ? Math.max(0, this.validUntil - now()) : 0;
  }

  /** Stops the keepalives (an in-flight one is abandoned): the cluster expires the lease and its keys about ttlMs later. */
  close(): void {
    if (this.state !== 'alive') return;
    this.state = 'closed';
    this.stop();
    this.ended.abort(new AbortedError(`lease ${this.id} closed`));
  }

  /**
   * Stops the keepalives and revokes the lease now: its keys are deleted in the same entry. Resolves
   * with the revoke, or null when the lease was already gone (expired or revoked).
   */
  async revoke(): Promise<LeaseRevoke | null> {
    this.close();
    try {
      return await this.calls.revokeLease(this.id);
    } catch (err) {
      if (err instanceof LeaseNotFoundError) return null;
      throw err;
    }
  }

  private stop(): void {
    if (this.nextTimer !== null) clearTimeout(this.nextTimer);
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.nextTimer = null;
    this.deadlineTimer = null;
    this.inflight?.abort();
    this.inflight = null;
  }

  private schedule(ms: number): void {
    if (this.state !== 'alive') return;
    this.nextTimer = setTimeout(() => {
      this.nextTimer = null;
      void this.keepAlive();
    }, ms);
  }

  /** (Re)arms the timer that declares the lease lost when validUntil passes without a newer acknowledgement. */
  private armDeadline(): void {
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = null;
        const last = this.lastError ? `; last keepalive error: ${this.lastError.message}` : '';
        this.lose('expired', `lease ${this.id} may have expired: no keepalive was acknowledged within its TTL (${this.ttlMs} ms)${last}`, this.lastError);
      },
      Math.max(0, this.validUntil - now()),
    );
  }

  private lose(reason: LeaseLostError['reason'], message: string, cause: Error | null): void {
    if (this.state !== 'alive') return;
    this.state = 'lost';
    this.stop();
    const error = new LeaseLostError(this.id, reason, message, cause);
    this.ended.abort(error);
    this.resolveLost(error);
    try {
      this.onLost?.(error);
    } catch (err) {
      // A throwing callback must not break the handle; surface it like an unhandled error would be.
      setTimeout(() => {
        throw err;
      }, 0);
    }
  }

  private async keepAlive(): Promise<void> {
    if (this.state !== 'alive') return;
    const ac = new AbortController();
    this.inflight = ac;
    const sentAt = now();
    try {
      // One attempt may not outlast the interval, so a hung endpoint leaves time for others.
      const r = await this.calls.keepAliveLease(this.id, { timeoutMs: Math.max(200, this.keepAliveIntervalMs), signal: ac.signal });
      if (this.state !== 'alive' || ac.signal.aborted) return;
      this.keepAlives++;
      this.lastRemainingMs = r.remainingMs;
      this.lastError = null;
      this.failuresInARow = 0;
      // The leader renewed the lease at some moment after sentAt: it lives at least until sentAt + ttlMs.
      if (sentAt + this.ttlMs > this.validUntil) {
        this.validUntil = sentAt + this.ttlMs;
        this.armDeadline();
      }
      this.schedule(Math.max(0, sentAt + this.keepAliveIntervalMs - now()));
      this.onKeepAlive?.(r);
    } catch (err) {
      if (this.state !== 'alive' || ac.signal.aborted) return;
      if (err instanceof LeaseNotFoundError) {
        this.lose('not-found', `lease ${this.id} is gone: a keepalive was answered LEASE_NOT_FOUND (it expired or was revoked, and its keys with it)`, err);
        return;
      }
      this.lastError = err instanceof Error ? err : new RaftKvClientError('KEEPALIVE_FAILED', String(err));
      this.failuresInARow++;
      // Sooner than the interval, backing off: the deadline timer decides when it is too late.
      const step = Math.min(this.keepAliveIntervalMs, 50 * 2 ** Math.min(this.failuresInARow, 10));
      this.schedule(step / 2 + Math.random() * (step / 2));
    } finally {
      if (this.inflight === ac) this.inflight = null;
    }
  }
}
