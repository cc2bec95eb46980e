/** The leader's pure lease clock (src/kv/lease-deadlines.ts): one rule each, then leader changes in simulated time. */
import { expect } from 'chai';
import { keepaliveNeedsCheckpoint, LeaseDeadlines } from '../../../src/kv/lease-deadlines.js';

describe('kv: lease deadlines (leader clock)', () => {
  it('a granted lease expires ttl after the grant, is handed out once, again after retry, and not after forget', () => {
    const d = new LeaseDeadlines();
    d.onGrant('l-1', 1000, 50);
    expect(d.expired(1049)).to.deep.equal([]);
    expect(d.expired(1050)).to.deep.equal(['l-1']);
    expect(d.expired(2000)).to.deep.equal([]);
    expect(d.isExpiring('l-1')).to.equal(true);
    d.retry('l-1');
    expect(d.expired(2000)).to.deep.equal(['l-1']);
    d.forget('l-1');
    d.retry('l-1');
    expect(d.expired(9000)).to.deep.equal([]);
  });

  it('keepalive moves the deadline to now + ttl and fails for an unknown lease or a pending expiry', () => {
    const d = new LeaseDeadlines();
    d.onGrant('l-1', 1000, 0);
    expect(d.keepalive('l-1', 900)).to.equal(1000);
    expect(d.expired(1899)).to.deep.equal([]);
    expect(d.remaining('l-1', 1500)).to.equal(400);
    expect(d.expired(1900)).to.deep.equal(['l-1']);
    expect(d.keepalive('l-1', 1901)).to.equal(null);
    expect(d.keepalive('l-2', 1901)).to.equal(null);
  });

  it('a new leader sets deadline = now + remaining + election timeout; checkpoints record base - now, never the slack', () => {
    const d = new LeaseDeadlines();
    d.becomeLeader([{ id: 'l-1', ttlMs: 1000, remainingMs: 400 }], 10_000, 150);
    expect(d.remaining('l-1', 10_000)).to.equal(550);
    expect(d.checkpoint(10_100)).to.deep.equal([['l-1', 300]]);
    expect(d.expired(10_549)).to.deep.equal([]);
    expect(d.expired(10_550)).to.deep.equal(['l-1']);
    // A pending expiry is not checkpointed.
    expect(d.checkpoint(10_600)).to.deep.equal([]);
  });

  it('a lease is due a checkpoint every min(interval, ttl/4)', () => {
    const d = new LeaseDeadlines();
    d.onGrant('l-1', 1000, 0);
    d.onGrant('l-2', 100_000, 0);
    expect(d.checkpoint(249, 5000)).to.deep.equal([]);
    expect(d.checkpoint(250, 5000)).to.deep.equal([['l-1', 750]]);
    expect(d.checkpoint(5000, 5000)).to.deep.equal([['l-1', 0], ['l-2', 95_000]]);
  });

  it('a keepalive must be made durable first when the log holds less than ttl - election timeout', () => {
    expect(keepaliveNeedsCheckpoint(1000, 1000, 150)).to.equal(false);
    expect(keepaliveNeedsCheckpoint(850, 1000, 150)).to.equal(false);
    expect(keepaliveNeedsCheckpoint(849, 1000, 150)).to.equal(true);
  });

  /**
   * A simulated cluster in milliseconds: leaders of `termMs` each, `gapMs` without a leader between
   * them; the replicated remaining time is what the last checkpoint recorded (applied at once). The
   * owner renews every `renewEveryMs` until `stopAt` (through the leader of the moment, making the
   * keepalive durable when the rule says so). Returns when the lease expired and the bound.
   */
  function simulate(o: { ttlMs: number; electionMs: number; termMs: number; gapMs: number; intervalMs: number; renewEveryMs: number; stopAt: number; endAt: number }) {
    let replicated = o.ttlMs;
    let lastRenewal = 0;
    let d: LeaseDeadlines | null = new LeaseDeadlines();
    d.onGrant('l-1', o.ttlMs, 0);
    let termStart = 0;
    let lastCheckpoint = 0;
    let lostMs = 0; // Σ over leader changes of (end of term - last checkpoint) + gap
    let nextRenewal = o.renewEveryMs;
    for (let now = 0; now <= o.endAt; now++) {
      if (d !== null && now >= termStart + o.termMs) {
        lostMs += now - lastCheckpoint + o.gapMs;
        d = null;
      }
      if (d === null && now >= termStart + o.termMs + o.gapMs) {
        termStart = now;
        lastCheckpoint = now;
        d = new LeaseDeadlines();
        d.becomeLeader([{ id: 'l-1', ttlMs: o.ttlMs, remainingMs: replicated }], now, o.electionMs);
      }
      if (d === null) continue;
      if (now >= nextRenewal && now <= o.stopAt) {
        if (d.keepalive('l-1', now) !== null) {
          if (keepaliveNeedsCheckpoint(replicated, o.ttlMs, o.electionMs)) {
            replicated = o.ttlMs;
            lastCheckpoint = now;
          }
          lastRenewal = now;
          nextRenewal = now + o.renewEveryMs;
        }
      }
      for (const [, r] of d.checkpoint(now, o.intervalMs)) {
        replicated = r;
        lastCheckpoint = now;
      }
      if (d.expired(now).length > 0) return { expiredAt: now, lastRenewal, bound: lastRenewal + o.ttlMs + lostMs + o.electionMs };
    }
    return { expiredAt: null, lastRenewal, bound: Infinity };
  }

  it('leader changes every TTL/2 with the owner stopped: never reset to full TTL forever, never early, within the documented bound', () => {
    for (const gapMs of [0, 150, 300]) {
      const r = simulate({ ttlMs: 1000, electionMs: 150, termMs: 500, gapMs, intervalMs: 5000, renewEveryMs: 1e9, stopAt: -1, endAt: 20_000 });
      expect(r.expiredAt, `gap ${gapMs}`).to.not.equal(null);
      expect(r.expiredAt as number).to.be.at.least(1000);
      expect(r.expiredAt as number).to.be.at.most(r.bound);
    }
  });

  it('leader changes every TTL/2 while the owner renews every TTL/3: the lease lives; once it stops, it expires no earlier than ttl after the last renewal', () => {
    for (const gapMs of [0, 150]) {
      const alive = simulate({ ttlMs: 1000, electionMs: 150, termMs: 500, gapMs, intervalMs: 5000, renewEveryMs: 333, stopAt: 1e9, endAt: 20_000 });
      expect(alive.expiredAt, `gap ${gapMs}`).to.equal(null);
      const stopped = simulate({ ttlMs: 1000, electionMs: 150, termMs: 500, gapMs, intervalMs: 5000, renewEveryMs: 333, stopAt: 7000, endAt: 30_000 });
      expect(stopped.expiredAt).to.not.equal(null);
      expect(stopped.expiredAt as number).to.be.at.least(stopped.lastRenewal + 1000);
      expect(stopped.expiredAt as number).to.be.at.most(stopped.bound);
    }
  });

  it('control: without the durable keepalive rule, a renewal right after a low checkpoint would expire early after a leader change', () => {
    // The log says 100 ms are left; the owner renews at 0; a new leader at 200 (election 150) would give 200 + 100 + 150 = 450 < 1000.
    const d = new LeaseDeadlines();
    d.becomeLeader([{ id: 'l-1', ttlMs: 1000, remainingMs: 100 }], 200, 150);
    expect(d.remaining('l-1', 200)).to.equal(250);
    expect(keepaliveNeedsCheckpoint(100, 1000, 150)).to.equal(true);
  });
});
