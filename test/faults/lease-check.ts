/**
 * The lease check of the fault suite (issue 17 point 6; docs/leases.md "The expiry bound"). A probe
 * (LeaseProbe) runs beside the workload in every scenario, from 127.0.0.1 (never partitioned):
 *
 *  - the keeper holds one lease (ttl LEASE_TTL_MS) with one attached key, renewing it every
 *    KEEPALIVE_EVERY_MS through random members (followers forward to whoever leads now), from the
 *    start to the end of the checks. Rule (never early): the lease may be found gone (a keepalive or a
 *    read answering LEASE_NOT_FOUND) only at or after ttl past the invocation of the last acknowledged
 *    keepalive (or grant). A keepalive kept alive through a new leader that is lost (an old leader's
 *    stale expiry applied) breaks it. When it was gone legitimately (no acknowledged keepalive for a
 *    ttl) a new generation is granted. At the end, the last generation and its key must still exist.
 *  - orphans: every ORPHAN_EVERY_MS a lease with one key whose owner never renews it. Rules: never
 *    gone before ttl past the grant's invocation; and still present in a linearizable read invoked
 *    after the documented bound (counting the leader changes seen up to one poll after its answer)
 *    is a violation: K + ttl + E + Σ over the leader changes after K of
 *    (Uᵢ + Gᵢ) + P, with K the grant's answer, E the longest election timeout, Uᵢ ≤ min(C + P, the old
 *    leader's tenure after K) and Gᵢ the time without a leader, from the Monitor's leader timeline
 *    (first and last time each term's leader was seen; poll slack added). After the run, the suite
 *    waits until every orphan is gone or past its bound.
 *
 * The pure part (leaseBound, checkLeases) is unit-tested in test/unit/lease-check.test.ts.
 */

/** The TTL of every lease of the probe: the shortest allowed with the default timing (2 × the longest election timeout). */
export const LEASE_TTL_MS = 4000;
/** E, the longest election timeout of the fault clusters: 2 × ELECTION_TIMEOUT_TICKS × TICK_MS = 2 × 15 × 20 ms (test/support/procs.ts). */
export const ELECTION_MAX_MS = 2 * 15 * 20;
/** C = min(LEASE_CHECKPOINT_INTERVAL_MS (default 5000), ttl/4). */
export const CHECKPOINT_MS = Math.min(5000, LEASE_TTL_MS / 4);
/** P: propose, commit and apply the expiry, plus this harness's clock and request slack (generous: 2 shared cores). */
export const COMMIT_SLACK_MS = 1000;
/** How often the Monitor polls /cluster (scenario.ts), plus a request. */
export const POLL_SLACK_MS = 600;
const KEEPALIVE_EVERY_MS = 400;
const ORPHAN_EVERY_MS = 1500;
const READ_EVERY_MS = 250;

/** One term's leader as the Monitor saw it (its own clock = the workload's). */
export interface LeaderSpan {
  term: number;
  id: string;
  firstMs: number;
  lastMs: number;
}

/** One request of the probe: invoked, answered (null: no answer), HTTP status (0: none) and error code. */
export interface LeaseCall {
  what: 'grant' | 'attach' | 'keepalive' | 'read';
  invokeMs: number;
  completeMs: number | null;
  status: number;
  code?: string;
}

/** One lease of the probe with everything done to it. */
export interface ProbeLease {
  role: 'kept' | 'orphan';
  id: string;
  key: string;
  calls: LeaseCall[];
}

/**
 * The documented latest expiry of a lease last renewed (or granted) at K, given the leader
 * timeline, for a read invoked at `t`: K + ttl + E + Σ (Uᵢ + Gᵢ) + P over the leader changes in (K, t].
 */
export function leaseBound(k: number, ttlMs: number, leaders: readonly LeaderSpan[], t: number): number {
  const ls = [...leaders].sort((a, b) => a.term - b.term);
  let sum = 0;
  for (let j = 0; j + 1 < ls.length; j++) {
    const next = ls[j + 1];
    if (next.firstMs <= k || next.firstMs > t) continue;
    const cur = ls[j];
    const tenure = Math.max(0, cur.lastMs + POLL_SLACK_MS - Math.max(cur.firstMs, k));
    const u = Math.min(CHECKPOINT_MS + COMMIT_SLACK_MS, tenure);
    const g = Math.max(0, next.firstMs - cur.lastMs);
    sum += u + g;
  }
  // A leader elected after K but seen only after t does not count; the E of one election is added once.
  return k + ttlMs + ELECTION_MAX_MS + sum + COMMIT_SLACK_MS + POLL_SLACK_MS;
}

/**
 * The leader changes a present read must allow for: the read saw the lease at some instant in
 * [invoke, complete], so every leader elected before its answer counts, and the Monitor sees a new
 * leader up to one poll after it is elected. (Counting only the leaders seen by the invocation
 * flagged a read sent while the cluster had no leader and answered by the leader elected meanwhile.)
 */
const seenBy = (completeMs: number) => completeMs + POLL_SLACK_MS;

const isGone = (c: LeaseCall) => c.completeMs !== null && c.status === 404 && c.code === 'LEASE_NOT_FOUND';
const isPresent = (c: LeaseCall) => c.completeMs !== null && c.status === 200 && (c.what === 'keepalive' || c.what === 'read');

/** What the lease check found. */
export interface LeaseCheck {
  ok: boolean;
  kept: number;
  keepalives: number;
  orphans: number;
  /** orphans seen gone (the rest were still present at the end, or unknown) */
  expired: number;
  /** the largest (first gone answer − grant answer − ttl) over the expired orphans, ms */
  maxLateMs: number | null;
  problems: string[];
}

/**
 * Checks the probe's leases against the rules above. `endPresent` is what the final reads said of
 * the last kept generation (lease and key both present), null when it could not be read.
 */
export function checkLeases(leases: readonly ProbeLease[], leaders: readonly LeaderSpan[], ttlMs: number, keptAtEnd: boolean | null): LeaseCheck {
  const problems: string[] = [];
  let keepalives = 0;
  let expired = 0;
  let maxLateMs: number | null = null;
  for (const l of leases) {
    const grant = l.calls.find((c) => c.what === 'grant');
    if (!grant || grant.completeMs === null) continue;
    // The invocation of the last acknowledged renewal (the grant counts as one), walking in order.
    let lastAckInvoke = grant.invokeMs;
    let lastAckComplete = grant.completeMs;
    let goneAt: number | null = null;
    for (const c of l.calls) {
      if (c.what === 'keepalive' && c.status === 200) keepalives++;
      if (goneAt === null && isGone(c) && c.completeMs !== null) {
        goneAt = c.completeMs;
        if (c.completeMs < lastAckInvoke + ttlMs) {
          problems.push(`${l.role} lease ${l.id}: found gone (${c.what}) at ${(c.completeMs / 1000).toFixed(2)}s, ${((c.completeMs - lastAckInvoke) / 1000).toFixed(2)}s after its last acknowledged renewal was sent (ttl ${ttlMs / 1000}s): expired early`);
        }
      }
      if (goneAt !== null && isPresent(c) && c.invokeMs > goneAt) problems.push(`${l.role} lease ${l.id}: present again at ${(c.invokeMs / 1000).toFixed(2)}s after it was found gone`);
      if (goneAt === null && c.what === 'keepalive' && c.status === 200 && c.completeMs !== null) {
        lastAckInvoke = c.invokeMs;
        lastAckComplete = c.completeMs;
      }
      if (l.role === 'orphan' && goneAt === null && isPresent(c) && c.completeMs !== null) {
        const bound = leaseBound(lastAckComplete, ttlMs, leaders, seenBy(c.completeMs));
        if (c.invokeMs > bound) {
          problems.push(`orphan lease ${l.id}: still present in a read sent at ${(c.invokeMs / 1000).toFixed(2)}s, past its documented bound ${(bound / 1000).toFixed(2)}s (granted ${(lastAckComplete / 1000).toFixed(2)}s)`);
          goneAt = Infinity; // reported once
        }
      }
    }
    if (l.role === 'orphan' && goneAt !== null && Number.isFinite(goneAt)) {
      expired++;
      const late = goneAt - lastAckComplete - ttlMs;
      maxLateMs = maxLateMs === null ? late : Math.max(maxLateMs, late);
    }
  }
  const kept = leases.filter((l) => l.role === 'kept');
  if (kept.length > 0 && keptAtEnd === false) problems.push(`kept lease ${kept[kept.length - 1].id}: gone at the end although its keeper renewed it throughout`);
  if (kept.length > 0 && keptAtEnd === null) problems.push(`kept lease ${kept[kept.length - 1].id}: could not be read at the end`);
  return {
    ok: problems.length === 0,
    kept: kept.length,
    keepalives,
    orphans: leases.filter((l) => l.role === 'orphan').length,
    expired,
    maxLateMs,
    problems: problems.slice(0, 6),
  };
}

type Http = (method: string, url: string, body?: unknown, timeoutMs?: number) => Promise<{ status: number; body: unknown }>;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const codeOf = (body: unknown): string | undefined => {
  const c = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof c === 'string' ? c : undefined;
};

/** The live probe: a keeper and orphan leases (see the file comment). */
export class LeaseProbe {
  readonly leases: ProbeLease[] = [];
  private isStopping = false;
  private isGranting = true;
  private loops: Promise<void>[] = [];
  private orphanSeq = 0;
  private keptSeq = 0;

  constructor(
    private readonly http: Http,
    private readonly targets: () => { api: string }[],
    private readonly rng: () => number,
    private readonly now: () => number,
    private readonly ttlMs = LEASE_TTL_MS,
  ) {}

  start(): void {
    this.loops.push(this.keeper(), this.orphans(), this.reader());
  }

  /** Stops granting new orphans (the keeper and the reads go on). */
  stopGranting(): void {
    this.isGranting = false;
  }

  /** Whether every orphan has been found gone, or was read after its bound (so checkLeases can judge it). */
  orphansSettled(leaders: readonly LeaderSpan[]): boolean {
    return this.leases
      .filter((l) => l.role === 'orphan')
      .every((l) => {
        if (l.calls.some(isGone)) return true;
        const k = l.calls.find((c) => c.what === 'grant')?.completeMs ?? null;
        return k === null || l.calls.some((c) => c.what === 'read' && c.status === 200 && c.completeMs !== null && c.invokeMs > leaseBound(k, this.ttlMs, leaders, seenBy(c.completeMs)));
      });
  }

  async stop(): Promise<void> {
    this.isStopping = true;
    this.isGranting = false;
    await Promise.all(this.loops);
  }

  /** Reads the last kept generation (lease and key) linearizably through `api`: true when both exist. */
  async keptAtEnd(apis: string[]): Promise<boolean | null> {
    const l = [...this.leases].reverse().find((x) => x.role === 'kept' && x.id !== '');
    if (!l) return null;
    for (const api of apis) {
      const t = this.now();
      const r = await this.http('GET', `${api}/leases/${l.id}?keys=true`).catch(() => ({ status: 0, body: null }));
      l.calls.push({ what: 'read', invokeMs: t, completeMs: this.now(), status: r.status, code: codeOf(r.body) });
      if (r.status === 404) return false;
      if (r.status !== 200) continue;
      const keys = (r.body as { keys?: unknown }).keys;
      return Array.isArray(keys) && keys.includes(l.key);
    }
    return null;
  }

  private pick(): string | null {
    const ts = this.targets();
    return ts.length === 0 ? null : ts[Math.floor(this.rng() * ts.length)].api;
  }

  private async call(l: ProbeLease, what: LeaseCall['what'], method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const api = this.pick();
    const c: LeaseCall = { what, invokeMs: this.now(), completeMs: null, status: 0 };
    l.calls.push(c);
    if (api === null) return { status: 0, body: null };
    const r = await this.http(method, `${api}${path}`, body, 3000).catch(() => ({ status: 0, body: null }));
    c.status = r.status;
    c.code = codeOf(r.body);
    if (r.status !== 0) c.completeMs = this.now(); // an answer (only 200 and 404 answers are judged)
    return r;
  }

  /** Grants a lease and attaches one key; null when it could not (the lease then plays no part). */
  private async grantWithKey(role: ProbeLease['role'], key: string): Promise<ProbeLease | null> {
    while (!this.isStopping) {
      const l: ProbeLease = { role, id: '', key, calls: [] };
      const r = await this.call(l, 'grant', 'POST', '/leases', { ttlMs: this.ttlMs });
      if (r.status !== 201) {
        await sleep(200);
        if (role === 'orphan') return null;
        continue;
      }
      l.id = String((r.body as { id?: unknown }).id);
      this.leases.push(l);
      for (let i = 0; i < 20 && !this.isStopping; i++) {
        const a = await this.call(l, 'attach', 'PUT', `/key/${encodeURIComponent(key)}?lease=${l.id}`, { value: l.id });
        if (a.status === 200 || (a.status === 404 && a.body !== null)) return l;
        await sleep(150);
      }
      return l;
    }
    return null;
  }

  private async keeper(): Promise<void> {
    while (!this.isStopping) {
      const l = await this.grantWithKey('kept', `lease-kept-${this.keptSeq++}`);
      if (!l) return;
      while (!this.isStopping) {
        await sleep(KEEPALIVE_EVERY_MS);
        const r = await this.call(l, 'keepalive', 'POST', `/leases/${l.id}/keepalive`);
        if (r.status === 404) break; // gone: checkLeases decides whether that was allowed; a new generation
      }
    }
  }

  private async orphans(): Promise<void> {
    while (!this.isStopping && this.isGranting) {
      await this.grantWithKey('orphan', `lease-orphan-${this.orphanSeq++}`);
      await sleep(ORPHAN_EVERY_MS);
    }
  }

  /** Reads every orphan not yet seen gone, linearizably through random members. */
  private async reader(): Promise<void> {
    while (!this.isStopping) {
      await sleep(READ_EVERY_MS);
      for (const l of this.leases) {
        if (this.isStopping) break;
        if (l.role !== 'orphan' || l.calls.some(isGone)) continue;
        await this.call(l, 'read', 'GET', `/leases/${l.id}`);
      }
    }
  }
}
