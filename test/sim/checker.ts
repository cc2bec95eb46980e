/**
 * The invariant checker of test/sim/cluster.ts: a global record of what was committed, applied,
 * acknowledged and voted, and the checks run against it after every step and at every driver action:
 * election safety, log matching, leader completeness, state-machine safety, commit durability, no
 * phantom match, the persistence contract of sent messages, vote safety across restarts, no lost
 * acknowledged write, no stale read, snapshots equal to the committed state at their index, and the
 * key-value outcome of every entry (conditions, transaction branch and results, effects, the touched
 * keys' state after it) equal on every replica, in every acknowledgement, and to the outcome the
 * production apply rules (src/kv/apply.ts) give over the committed log.
 */
import type { ClusterConfig, Entry, Message, RaftStatus, Snapshot } from '../../src/raft/core/types.js';
import type { EntryOutcome } from '../../src/kv/types.js';
import { applyToSm, encodeSm, entryCommand, entryKey, leaseDigest, mix, sameJson, touchedState, type Pending, type PendingRead, type SimNode, type SmValue } from './storage.js';

/** The simulated cluster as the checker sees it. */
export interface CheckerHost {
  readonly step: number;
  readonly nodes: SimNode[];
  /** Interleaving mode: a node's core may run ahead of its disk between ready() and advance(). */
  readonly isInterleaved: boolean;
  /** Leases run (SimOptions.leases): the lease table is checked after every entry on every replica. */
  readonly hasLeases: boolean;
  stats: { acked: number };
  trace(f: () => string): void;
  violate(msg: string): void;
  /** The incarnation node `x`'s process runs now (its foreign cluster's when it runs one). */
  runningIncarnation(x: SimNode): string;
}

export function majority(n: number): number { return Math.floor(n / 2) + 1; }
export function votersOf(c: ClusterConfig): string[] { return c.members.filter((m) => m.suffrage === 'voter').map((m) => m.id); }

export class InvariantChecker {
  private termLeader = new Map<number, string>();
  /** Who each node voted for in each term, from the votes it sent ("n1@7" -> "n2"). */
  private votesCast = new Map<string, string>();
  // global committed/applied record
  private committed: Entry[] = []; // committed[i-1]
  private committedHash: number[] = [0];
  private commitTermMaxIdx = new Map<number, number>(); // term in which a commit was observed -> max index
  private acked = new Map<number, { writeId: number; key: string | null; outcome: EntryOutcome | null }>(); // index -> write
  /**
   * The reference state machine: the committed log applied with the production rules as entries are
   * first applied anywhere, and per index what that decided (outcome JSON) and the touched keys' state.
   */
  private refSm = new Map<string, SmValue>();
  private refOutcome: (EntryOutcome | null)[] = []; // refOutcome[i-1]
  private refTouched: [string, SmValue | null][][] = [];
  /** With leases: the reference lease table after each index (leaseDigest, '' when empty). */
  private refLeases: string[] = [];
  private lastAckedIdx = new Map<string, number>(); // key -> max acked index
  private maxAcked = 0;

  constructor(private readonly host: CheckerHost) {}

  /** The highest index of an acknowledged write. */
  get maxAckedIndex(): number { return this.maxAcked; }
  /** Whether the write at `index` was acknowledged to its client. */
  isAcked(index: number): boolean { return this.acked.has(index); }
  /** The index of the last acknowledged write of `key` (a read started now must see at least it). */
  lastAckedIndex(key: string): number { return this.lastAckedIdx.get(key) ?? 0; }

  private node(id: string): SimNode | undefined { return this.host.nodes.find((n) => n.id === id); }

  // ------------------------------------------------------------------ after every step
  checkInvariants(): void {
    const h = this.host;
    const live = h.nodes.filter((n) => n.raft);
    const statuses = new Map<string, RaftStatus>();
    for (const n of live) statuses.set(n.id, n.raft!.status());
    // election safety (Raft §5.2)
    for (const n of live) {
      const st = statuses.get(n.id)!;
      if (st.role !== 'leader') continue;
      const prev = this.termLeader.get(st.term);
      if (prev === undefined) { this.termLeader.set(st.term, n.id); h.trace(() => `leader change: ${n.id} leads term ${st.term}`); }
      else if (prev !== n.id) h.violate(`election safety: term ${st.term} has leaders ${prev} and ${n.id}`);
    }
    // log matching (Raft §5.3), over stable logs, crashed and retired nodes included
    for (let a = 0; a < h.nodes.length; a++) {
      for (let b = a + 1; b < h.nodes.length; b++) {
        const x = h.nodes[a]!, y = h.nodes[b]!;
        let i = Math.min(x.terms.length, y.terms.length) - 1;
        while (i > 0 && x.terms[i] !== y.terms[i]) i--;
        if (i > 0 && x.hash[i] !== y.hash[i]) {
          let j = 1;
          while (j <= i && x.hash[j] === y.hash[j]) j++;
          h.violate(`log matching: ${x.id} and ${y.id} both have term ${x.terms[i]} at ${i} but their logs differ from index ${j}`);
        }
      }
    }
    // leader completeness (Raft §5.4): entries committed in a term < T are in every leader of term T
    for (const n of live) {
      const st = statuses.get(n.id)!;
      if (st.role !== 'leader') continue;
      let m = 0;
      for (const [t, idx] of this.commitTermMaxIdx) if (t < st.term && idx > m) m = idx;
      if (m === 0) continue;
      if (n.terms.length - 1 < m || n.hash[m] !== this.committedHash[m]) {
        h.violate(`leader completeness: leader ${n.id} of term ${st.term} lacks the committed prefix through ${m} (its last=${n.terms.length - 1})`);
      }
    }
    for (const n of live) if (statuses.get(n.id)!.role === 'leader') this.checkCommitDurable(n, statuses.get(n.id));
    this.checkPhantomMatches(live, statuses);
    // the core's log equals what was persisted once its Ready is processed
    for (const n of live) {
      if (n.stalledUntil > h.step || n.inflight !== null || (h.isInterleaved && n.raft!.hasReady())) continue;
      const st = statuses.get(n.id)!;
      if (st.lastIndex !== n.terms.length - 1) h.violate(`${n.id}: core lastIndex ${st.lastIndex} != stable ${n.terms.length - 1} after Ready`);
    }
  }

  /**
   * No phantom match (issue 14 §2): the leader of the highest term counts a member (its recorded
   * incarnation still running) only for entries the member holds durably, equal to the leader's. No
   * leader of a higher term exists, so nothing may have truncated what the member acknowledged.
   */
  private checkPhantomMatches(live: SimNode[], statuses: Map<string, RaftStatus>): void {
    let maxTerm = 0;
    for (const n of live) maxTerm = Math.max(maxTerm, statuses.get(n.id)!.term);
    for (const l of live) {
      const st = statuses.get(l.id)!;
      if (st.role !== 'leader' || st.term !== maxTerm) continue;
      for (const p of st.peers) {
        const x = this.node(p.id);
        const rec = st.config.members.find((m) => m.id === p.id);
        if (!x || !rec || p.matchIndex === 0) continue;
        const running = this.host.runningIncarnation(x);
        if ((rec.incarnation ?? '') !== running) continue;
        if (x.foreign) {
          const fl = x.foreign.status().lastIndex;
          this.host.violate(`phantom match: leader ${l.id} of term ${st.term} counts ${x.id} through ${p.matchIndex}, but ${x.id} runs a foreign cluster (last=${fl})`);
        } else if (x.terms.length - 1 < p.matchIndex || (l.hash[p.matchIndex] !== undefined && x.hash[p.matchIndex] !== l.hash[p.matchIndex])) {
          this.host.violate(`phantom match: leader ${l.id} of term ${st.term} counts ${x.id} through ${p.matchIndex}, but ${x.id} does not hold that prefix durably (its last=${x.terms.length - 1})`);
        }
      }
    }
  }

  /**
   * Raft §5.3/§5.4: a leader's commit index covers an entry of its term only once a majority of the
   * voters of its configuration hold it durably (its own copy counts only once synced: thesis §10.2.1).
   */
  checkCommitDurable(n: SimNode, status?: RaftStatus): void {
    if (!n.raft) return;
    const st = status ?? n.raft.status();
    const prev = n.checkedCommit;
    n.checkedCommit = { term: st.term, commit: st.commitIndex };
    if (st.role !== 'leader' || prev.term !== st.term || st.commitIndex <= prev.commit) return;
    const c = st.commitIndex;
    const voters = votersOf(st.config);
    // A node whose disk was wiped after it acknowledged still counts for what that disk held: losing
    // it afterwards uses up the failure budget, which leader completeness keeps checking.
    const holders = voters.filter((id) => { const v = this.node(id); return v !== undefined && (v.terms[c] === st.term || v.wipedTerms[c] === st.term); });
    if (holders.length < majority(voters.length)) {
      this.host.violate(`commit durability: leader ${n.id} of term ${st.term} committed ${c} but only ${holders.length} of voters ${voters.join(',')} hold a term-${st.term} entry there durably (${holders.join(',') || 'none'})`);
    }
  }

  // ------------------------------------------------------------------ at driver actions
  /** Raft Fig. 2 and the core's persistence contract: a message may only be sent once the state it depends on is stable. */
  checkSend(n: SimNode, m: Message): void {
    const isPre = (m.type === 'RequestVote' || m.type === 'RequestVoteResponse') && m.preVote;
    if (!isPre && n.hardState.term < m.term) this.host.violate(`persistence: ${n.id} sent ${m.type} of term ${m.term} while its stable term is ${n.hardState.term}`);
    if (m.type === 'RequestVoteResponse' && m.granted && !m.preVote) {
      // a later term in the same Ready supersedes the vote: it can no longer be cast again
      if (n.hardState.term < m.term || (n.hardState.term === m.term && n.hardState.votedFor !== m.to)) {
        this.host.violate(`persistence: ${n.id} granted its term-${m.term} vote to ${m.to} before persisting it (stable term=${n.hardState.term} votedFor=${n.hardState.votedFor})`);
      }
      this.recordVote(n.id, m.term, m.to);
    } else if (m.type === 'RequestVote' && !m.preVote) {
      if (n.hardState.term < m.term || (n.hardState.term === m.term && n.hardState.votedFor !== n.id)) {
        this.host.violate(`persistence: ${n.id} asked for votes in term ${m.term} before persisting its own vote (stable term=${n.hardState.term} votedFor=${n.hardState.votedFor})`);
      }
      this.recordVote(n.id, m.term, n.id);
    } else if (m.type === 'AppendEntriesResponse' && m.success && m.matchIndex > n.terms.length - 1) {
      this.host.violate(`persistence: ${n.id} acknowledged entries through ${m.matchIndex} but only ${n.terms.length - 1} are stable`);
    }
  }

  /** Raft §5.2: each server votes for at most one candidate in a term, across restarts. */
  private recordVote(voter: string, term: number, candidate: string): void {
    const k = `${voter}@${term}`;
    const prev = this.votesCast.get(k);
    if (prev === undefined) this.votesCast.set(k, candidate);
    else if (prev !== candidate) this.host.violate(`vote safety: ${voter} voted for both ${prev} and ${candidate} in term ${term}`);
  }

  /**
   * State-machine safety: node `n` applied `e` (at its next index) while in `term`. The first node to
   * apply an index records it as committed (returns true); every later one must apply the same entry.
   */
  recordApplied(n: SimNode, e: Entry, term: number): boolean {
    const idx = e.index;
    const g = this.committed[idx - 1];
    if (g === undefined) {
      this.committed.push(e);
      this.committedHash.push(mix(this.committedHash[idx - 1]!, e));
      // A node applies only what a leader of its current term (or an earlier one) committed, so this
      // term bounds the commit's term from above; leaders of later terms must hold the entry.
      this.commitTermMaxIdx.set(term, Math.max(this.commitTermMaxIdx.get(term) ?? 0, idx));
      this.refOutcome.push(applyToSm(this.refSm, e));
      this.refTouched.push(touchedState(this.refSm, e));
      if (this.host.hasLeases) this.refLeases.push(leaseDigest(this.refSm));
      return true;
    }
    if (entryKey(g) !== entryKey(e)) {
      this.host.violate(`state-machine safety: ${n.id} applied ${entryKey(e)} at ${idx} but another node applied ${entryKey(g)}`);
    }
    return false;
  }

  /**
   * State-machine safety for the key-value outcome (issue 16): node `n` applied `e` (already recorded)
   * and its state machine decided `out`. The decision (failed conditions, transaction branch and
   * results, effects) and the touched keys' state after it must be what the production rules decide
   * over the committed log, hence identical on every replica; an acknowledged outcome must be it too.
   */
  checkOutcome(n: SimNode, e: Entry, out: EntryOutcome | null): void {
    const idx = e.index;
    if (idx > this.refOutcome.length) return; // recordApplied already reported the entry
    const want = this.refOutcome[idx - 1];
    if (!sameJson(out, want)) this.host.violate(`state-machine safety: ${n.id} decided ${JSON.stringify(out)} at ${idx} but the committed log decides ${JSON.stringify(want)}`);
    const a = this.acked.get(idx);
    if (a && !sameJson(a.outcome, out)) this.host.violate(`state-machine safety: ${n.id} decided ${JSON.stringify(out)} at ${idx} but the client was answered ${JSON.stringify(a.outcome)}`);
    const st = touchedState(n.sm, e);
    if (!sameJson(st, this.refTouched[idx - 1])) this.host.violate(`state-machine safety: after ${idx} ${n.id} holds ${JSON.stringify(st)} but the committed log gives ${JSON.stringify(this.refTouched[idx - 1])}`);
  }

  /**
   * Leases (issue 17 §7), on every replica after each entry: an expiry whose term is not its entry's
   * term deletes nothing (the term fence); a revoke or expiry deletes exactly the keys the committed
   * log gives at that index; the lease table (leases, remaining time recorded, attached keys) equals
   * the committed log's there.
   */
  checkLeases(n: SimNode, e: Entry, out: EntryOutcome | null): void {
    if (!this.host.hasLeases) return;
    const idx = e.index;
    if (idx > this.refLeases.length) return;
    const cmd = entryCommand(e);
    if (cmd?.kind === 'lease-expire' && cmd.term !== e.term && out !== null && (out.effects.length > 0 || (out.leaseEffects?.length ?? 0) > 0)) {
      this.host.violate(`lease term fence: ${n.id} applied the expiry of ${cmd.id} proposed in term ${cmd.term} from an entry of term ${e.term} at ${idx} (deleted ${JSON.stringify(out.effects.map((x) => x.key))})`);
    }
    if (cmd?.kind === 'lease-expire' || cmd?.kind === 'lease-revoke') {
      const deleted = (o: EntryOutcome | null | undefined): string => JSON.stringify((o?.effects ?? []).filter((x) => x.type === 'delete').map((x) => x.key).sort());
      const want = deleted(this.refOutcome[idx - 1]);
      if (deleted(out) !== want) this.host.violate(`lease: ${n.id} deleted ${deleted(out)} at ${idx} (${cmd.kind} ${cmd.id}) but the committed log deletes ${want}`);
    }
    const got = leaseDigest(n.sm);
    if (got !== this.refLeases[idx - 1]) this.host.violate(`lease: after ${idx} ${n.id} holds the lease table ${got || '(empty)'} but the committed log gives ${this.refLeases[idx - 1] || '(empty)'}`);
  }

  /** No acknowledged write is lost: the entry applied at an acknowledged index is that write. */
  checkAckedWrite(n: SimNode, e: Entry): void {
    const idx = e.index;
    const a = this.acked.get(idx);
    if (a && !(e.type === 'normal' && e.data.includes(`"w${a.writeId}"`))) {
      this.host.violate(`acked write w${a.writeId} at index ${idx} missing on ${n.id} (applied ${entryKey(e)})`);
    }
  }

  /** The client of write `p` is answered: it must be the committed entry at `idx`. */
  ack(n: SimNode, idx: number, p: Pending, out: EntryOutcome | null): void {
    this.host.stats.acked++;
    this.acked.set(idx, { writeId: p.writeId, key: p.key, outcome: out });
    if (p.key !== null) this.lastAckedIdx.set(p.key, Math.max(this.lastAckedIdx.get(p.key) ?? 0, idx));
    if (idx <= this.refOutcome.length && !sameJson(out, this.refOutcome[idx - 1])) {
      this.host.violate(`state-machine safety: the client of w${p.writeId} at ${idx} was answered ${JSON.stringify(out)} but the committed log decides ${JSON.stringify(this.refOutcome[idx - 1])}`);
    }
    this.maxAcked = Math.max(this.maxAcked, idx);
    this.host.trace(() => `${n.id} ack w${p.writeId} ${p.key ?? 'conditional'} index=${idx}${p.key === null ? ` ${JSON.stringify(out)}` : ''}`);
    const g = this.committed[idx - 1];
    if (!g || !(g.type === 'normal' && g.data.includes(`"w${p.writeId}"`))) {
      this.host.violate(`acked write w${p.writeId} at index ${idx} is not the committed entry there (${g ? entryKey(g) : 'none'})`);
    }
  }

  /** No stale read: a read returns at least the last write of its key acknowledged before it started. */
  checkRead(n: SimNode, pr: PendingRead, gotIdx: number): void {
    if (gotIdx < pr.minIndex) {
      this.host.violate(`stale read ${pr.id} on ${n.id}: ${pr.key} returned the write at index ${gotIdx} but the write at ${pr.minIndex} was acked before the read started at step ${pr.start}`);
    }
  }

  /** The state machine after applying the committed log through `index` (to validate snapshots). */
  stateAt(index: number): Map<string, SmValue> {
    const sm = new Map<string, SmValue>();
    for (let i = 0; i < index && i < this.committed.length; i++) applyToSm(sm, this.committed[i]!);
    return sm;
  }

  /** The committed configuration at `index` (`initial` before the first config entry). */
  configAt(index: number, initial: ClusterConfig): ClusterConfig {
    for (let i = Math.min(index, this.committed.length); i > 0; i--) {
      const e = this.committed[i - 1]!;
      if (e.type === 'config') return e.config;
    }
    return initial;
  }

  /**
   * A snapshot received from a leader, before it is stored: it must cover committed entries only, with
   * their terms. Returns the shadow (terms, prefix hashes) of the committed log through it, or null
   * when it cannot be stored.
   */
  checkReceivedSnapshot(n: SimNode, s: Snapshot): { terms: number[]; hash: number[] } | null {
    const L = s.meta.lastIndex;
    if (L > this.committed.length) { this.host.violate(`${n.id}: received snapshot through ${L} but only ${this.committed.length} entries were ever applied`); return null; }
    const g = this.committed[L - 1];
    if (L > 0 && g && g.term !== s.meta.lastTerm) this.host.violate(`${n.id}: snapshot through ${L} has term ${s.meta.lastTerm} but the committed entry there has term ${g.term}`);
    return { terms: [0, ...this.committed.slice(0, L).map((e) => e.term)], hash: this.committedHash.slice(0, L + 1) };
  }

  /** A snapshot installed into a state machine equals the committed state and configuration at its index. */
  checkInstalledSnapshot(n: SimNode, s: Snapshot, initial: ClusterConfig): void {
    const L = s.meta.lastIndex;
    if (L < n.appliedIndex) this.host.violate(`${n.id}: snapshot through ${L} would move applied back from ${n.appliedIndex}`);
    const want = encodeSm(this.stateAt(L));
    if (s.data !== want) this.host.violate(`${n.id}: snapshot through ${L} differs from the committed state there: ${s.data} vs ${want}`);
    const cfg = this.configAt(L, initial);
    if (JSON.stringify(votersOf(s.meta.config).sort()) !== JSON.stringify(votersOf(cfg).sort())) {
      this.host.violate(`${n.id}: snapshot through ${L} carries voters ${votersOf(s.meta.config).join(',')} but the committed config there has ${votersOf(cfg).join(',')}`);
    }
  }
}
