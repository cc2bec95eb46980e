import { expect } from 'chai';
import { CHECKPOINT_MS, checkLeases, COMMIT_SLACK_MS, ELECTION_MAX_MS, leaseBound, POLL_SLACK_MS, type LeaderSpan, type LeaseCall, type ProbeLease } from '../faults/lease-check.js';

const TTL = 4000;
const call = (what: LeaseCall['what'], invokeMs: number, completeMs: number | null, status: number, code?: string): LeaseCall => ({ what, invokeMs, completeMs, status, code });
const gone = (what: LeaseCall['what'], at: number) => call(what, at - 10, at, 404, 'LEASE_NOT_FOUND');
const kept = (id: string, calls: LeaseCall[]): ProbeLease => ({ role: 'kept', id, key: `lease-kept-${id}`, calls: [call('grant', 0, 20, 201), call('attach', 20, 30, 200), ...calls] });
const orphan = (id: string, grantAt: number, calls: LeaseCall[]): ProbeLease => ({ role: 'orphan', id, key: `lease-orphan-${id}`, calls: [call('grant', grantAt - 20, grantAt, 201), ...calls] });
/** Keepalives acknowledged every 400 ms from `from` to `to`. */
const renewals = (from: number, to: number): LeaseCall[] => {
  const out: LeaseCall[] = [];
  for (let t = from; t <= to; t += 400) out.push(call('keepalive', t, t + 30, 200));
  return out;
};
const SLACK = ELECTION_MAX_MS + COMMIT_SLACK_MS + POLL_SLACK_MS;

describe('lease check (test/faults/lease-check.ts)', () => {
  it('the bound without leader changes is K + ttl + E + slack; each change after K adds at most C + P of the old leader plus the gap without one', () => {
    const one: LeaderSpan[] = [{ term: 2, id: 'n1', firstMs: 0, lastMs: 60_000 }];
    expect(leaseBound(1000, TTL, one, 50_000)).to.equal(1000 + TTL + SLACK);
    // n1 leads from 0 to 5000 (K = 1000, so 4000 of tenure after K, capped at C + P), n2 is seen at 6500.
    const two: LeaderSpan[] = [...[{ term: 2, id: 'n1', firstMs: 0, lastMs: 5000 }], { term: 3, id: 'n2', firstMs: 6500, lastMs: 60_000 }];
    expect(leaseBound(1000, TTL, two, 50_000)).to.equal(1000 + TTL + SLACK + (CHECKPOINT_MS + COMMIT_SLACK_MS) + 1500);
    // Not counted when the new leader is seen only after the read, or before K.
    expect(leaseBound(1000, TTL, two, 6000)).to.equal(1000 + TTL + SLACK);
    expect(leaseBound(7000, TTL, two, 50_000)).to.equal(7000 + TTL + SLACK);
  });

  it('accepts a kept lease renewed throughout, and an orphan gone after its ttl and before its bound', () => {
    const r = checkLeases([kept('l-3', renewals(400, 20_000)), orphan('l-5', 2000, [call('read', 3000, 3010, 200), gone('read', 6500)])], [{ term: 2, id: 'n1', firstMs: 0, lastMs: 30_000 }], TTL, true);
    expect(r.problems).to.deep.equal([]);
    expect(r).to.include({ ok: true, kept: 1, orphans: 1, expired: 1, maxLateMs: 500 });
  });

  it('flags a kept lease found gone less than ttl after its last acknowledged keepalive was sent (an expiry the new leader did not decide)', () => {
    const r = checkLeases([kept('l-3', [...renewals(400, 8000), gone('keepalive', 8500)])], [], TTL, true);
    expect(r.ok).to.equal(false);
    expect(r.problems[0]).to.match(/kept lease l-3: found gone \(keepalive\).*expired early/);
  });

  it('accepts a kept lease found gone only after a ttl without acknowledged keepalives (the cluster was unavailable)', () => {
    const r = checkLeases([kept('l-3', [...renewals(400, 2000), call('keepalive', 2400, null, 0), gone('keepalive', 7000)]), kept('l-9', renewals(8000, 9000))], [], TTL, true);
    expect(r.problems).to.deep.equal([]);
  });

  it('flags an orphan gone before its ttl, and one still present in a read sent past its bound', () => {
    const early = checkLeases([orphan('l-5', 2000, [gone('read', 4000)])], [], TTL, null);
    expect(early.problems.some((p) => /orphan lease l-5: found gone.*expired early/.test(p)), early.problems.join('; ')).to.equal(true);
    const late = checkLeases([orphan('l-6', 2000, [call('read', 2000 + TTL + SLACK + 100, 2000 + TTL + SLACK + 120, 200)])], [], TTL, null);
    expect(late.problems.some((p) => /orphan lease l-6: still present .* past its documented bound/.test(p)), late.problems.join('; ')).to.equal(true);
  });

  it('counts the leader elected while a read waited: a read sent with no leader and answered by the next one is judged with that change (amnesia seed 57409)', () => {
    // n1 leads until 5800, no leader until n1 is seen again in term 3 at 8700; the read was sent at
    // 8650, while the cluster had no leader, and answered at 8680 by the term-3 leader.
    const leaders: LeaderSpan[] = [{ term: 2, id: 'n1', firstMs: 2380, lastMs: 5800 }, { term: 3, id: 'n1', firstMs: 8700, lastMs: 16_000 }];
    const r = checkLeases([orphan('l-7', 2420, [call('read', 8650, 8680, 200), gone('read', 10_640)])], leaders, TTL, null);
    expect(r.problems).to.deep.equal([]);
    expect(r.expired).to.equal(1);
    // The change still bounds the lease: present in a read sent past the bound that includes it is flagged.
    const bound = leaseBound(2420, TTL, leaders, 20_000);
    expect(bound).to.equal(2420 + TTL + SLACK + (CHECKPOINT_MS + COMMIT_SLACK_MS) + (8700 - 5800));
    const late = checkLeases([orphan('l-8', 2420, [call('read', bound + 50, bound + 70, 200)])], leaders, TTL, null);
    expect(late.problems.some((p) => /orphan lease l-8: still present .* past its documented bound/.test(p)), late.problems.join('; ')).to.equal(true);
  });

  it('flags the last kept generation missing at the end', () => {
    const r = checkLeases([kept('l-3', renewals(400, 4000))], [], TTL, false);
    expect(r.problems).to.deep.equal(['kept lease l-3: gone at the end although its keeper renewed it throughout']);
  });
});
