/**
 * Deterministic in-process Raft cluster simulator with virtual time, a faulty network, crashes and
 * invariant checking after every step. The Raft constructor is a parameter so mutated copies of the
 * core can be plugged in (see mutants.ts).
 */
import type {
  ClusterConfig, Entry, HardState, Message, ProposeResult, RaftInitialState, RaftOptions, RaftStatus, Ready,
} from '../../src/raft/core/types.js';
import { makeRng, randInt } from './rng.js';
import { pathToFileURL, fileURLToPath } from 'node:url';
import * as path from 'node:path';

export interface RaftLike {
  bootstrap(config: ClusterConfig): void;
  campaign(): void;
  tick(): void;
  step(m: Message): void;
  propose(data: string): ProposeResult;
  readIndex(id: string): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  status(): RaftStatus;
  entryAt(index: number): Entry | undefined;
}
export type RaftCtor = new (options: RaftOptions, initial: RaftInitialState) => RaftLike;
export interface RaftModule {
  Raft: RaftCtor;
  defaultRaftOptions: (id: string, rng: () => number) => RaftOptions;
}

export interface SimOptions {
  raft: RaftModule;
  /** Fault-phase steps (one step = one tick of every live node plus deliveries). */
  steps?: number;
  /** Bound on the liveness phase, in steps. */
  livenessSteps?: number;
  maxDelay?: number;
  dropProb?: number;
  dupProb?: number;
  partitionProb?: number;
  crashProb?: number;
  writeProb?: number;
  readProb?: number;
  keys?: number;
  /** Called with one line per event when set (replay mode). */
  trace?: (line: string) => void;
  /** Stop at the first violation (default true). */
  stopOnViolation?: boolean;
  /** Planted driver bug for self-test of the checker: never persist the HardState. */
  plantedDriverBug?: 'drop-hardstate';
}

export interface Violation { step: number; msg: string }

interface InFlight { at: number; seq: number; m: Message }
interface Pending { term: number; writeId: number; key: string }
interface PendingRead { id: string; key: string; start: number; minIndex: number; index: number | null }

interface SimNode {
  id: string;
  raft: RaftLike | null; // null while crashed
  incarnation: number;
  // persisted
  hardState: HardState;
  log: Entry[]; // log[i-1] is index i (no compaction in the simulator)
  hash: number[]; // hash[i] = prefix hash through index i; hash[0] = 0
  // volatile (rebuilt on restart)
  applied: Entry[]; // applied[i-1] = entry applied at index i
  sm: Map<string, { v: string; index: number }>;
  lastCommit: number;
  pending: Map<number, Pending>;
  reads: Map<string, PendingRead>;
  downUntil: number;
  lastRole: string;
}

function strHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}
export function entryKey(e: Entry): string {
  if (e.type === 'normal') return `${e.index}/${e.term}/n/${e.data}`;
  if (e.type === 'noop') return `${e.index}/${e.term}/noop`;
  return `${e.index}/${e.term}/c/${JSON.stringify(e.config)}`;
}
function mix(prev: number, e: Entry): number {
  let h = Math.imul(prev ^ strHash(entryKey(e)), 0x9e3779b1) >>> 0;
  h ^= h >>> 16;
  return Math.imul(h, 0x85ebca6b) >>> 0;
}

export class SimCluster {
  readonly rng: () => number;
  readonly ids: string[];
  readonly nodes: SimNode[] = [];
  readonly violations: Violation[] = [];
  readonly config: ClusterConfig;
  step = 0;
  private net: InFlight[] = [];
  private seqNo = 0;
  private blocked = new Set<string>(); // "a>b": messages from a to b are lost
  private partitionUntil = 0;
  private partitionDesc = '';
  private opts: Required<Omit<SimOptions, 'trace' | 'plantedDriverBug'>> & Pick<SimOptions, 'trace' | 'plantedDriverBug'>;
  private termLeader = new Map<number, string>();
  // global committed/applied record
  private committed: Entry[] = []; // committed[i-1]
  private committedHash: number[] = [0];
  private commitTermMaxIdx = new Map<number, number>(); // recorded commit term -> max index
  private acked = new Map<number, { writeId: number; key: string }>(); // index -> write
  private lastAckedIdx = new Map<string, number>(); // key -> max acked index
  private maxAckedIndex = 0;
  private writeSeq = 0;
  private readSeq = 0;
  stats = { writes: 0, acked: 0, reads: 0, readsDone: 0, crashes: 0, partitions: 0, delivered: 0, dropped: 0 };
  private faults = true;

  constructor(readonly seed: number, readonly nodeCount: number, opts: SimOptions) {
    this.rng = makeRng(seed);
    this.opts = {
      steps: 3000, livenessSteps: 1500, maxDelay: 6, dropProb: 0.1, dupProb: 0.05, partitionProb: 0.03,
      crashProb: 0.01, writeProb: 0.5, readProb: 0.3, keys: 2, stopOnViolation: true, ...opts,
    };
    this.ids = Array.from({ length: nodeCount }, (_, i) => `n${i + 1}`);
    this.config = { members: this.ids.map((id) => ({ id, suffrage: 'voter' as const, raftAddr: '', apiAddr: '' })) };
    for (const id of this.ids) {
      const n: SimNode = {
        id, raft: null, incarnation: 0, hardState: { term: 0, votedFor: null }, log: [], hash: [0],
        applied: [], sm: new Map(), lastCommit: 0, pending: new Map(), reads: new Map(), downUntil: 0, lastRole: 'follower',
      };
      this.nodes.push(n);
      this.start(n, true);
    }
    for (const n of this.nodes) this.processReady(n);
    this.checkInvariants();
  }

  private trace(f: () => string): void {
    if (this.opts.trace) this.opts.trace(`[${this.step}] ${f()}`);
  }
  private violate(msg: string): void {
    this.violations.push({ step: this.step, msg });
    this.trace(() => `VIOLATION ${msg}`);
  }

  private start(n: SimNode, fresh: boolean): void {
    const o = this.opts.raft.defaultRaftOptions(n.id, makeRng((this.seed * 7919 + n.incarnation * 131 + this.ids.indexOf(n.id)) >>> 0));
    n.raft = new this.opts.raft.Raft(o, { hardState: { ...n.hardState }, snapshot: null, entries: n.log.slice(), applied: 0 });
    n.applied = []; n.sm = new Map(); n.lastCommit = 0; n.pending = new Map(); n.reads = new Map();
    n.lastRole = 'follower';
    if (fresh) n.raft.bootstrap(this.config);
  }

  // ------------------------------------------------------------------ driver
  private processReady(n: SimNode): void {
    for (let guard = 0; n.raft && n.raft.hasReady() && guard < 100; guard++) {
      const r = n.raft;
      const rd = r.ready();
      if (rd.snapshot) this.violate(`${n.id}: unexpected snapshot in simulator (no compaction)`);
      // persist
      if (rd.entries.length > 0) {
        const first = rd.entries[0]!.index;
        if (first > n.log.length + 1) this.violate(`${n.id}: persisted entries leave a gap (have ${n.log.length}, got ${first})`);
        n.log.length = Math.min(n.log.length, first - 1);
        n.hash.length = n.log.length + 1;
        for (const e of rd.entries) {
          if (e.index !== n.log.length + 1) { this.violate(`${n.id}: non-contiguous entries in Ready at ${e.index}`); break; }
          n.log.push(e); n.hash.push(mix(n.hash[n.hash.length - 1]!, e));
        }
      }
      if (rd.hardState && this.opts.plantedDriverBug !== 'drop-hardstate') n.hardState = { ...rd.hardState };
      // send
      for (const m of rd.messages) this.send(m);
      // apply
      for (const e of rd.committedEntries) this.apply(n, e);
      // reads
      for (const rs of rd.readStates) {
        const pr = n.reads.get(rs.id);
        if (pr) { pr.index = rs.index; this.trace(() => `${n.id} readState ${rs.id} index=${rs.index}`); }
      }
      for (const f of rd.readFailures) { n.reads.delete(f.id); this.trace(() => `${n.id} readFailure ${f.id} ${f.reason}`); }
      r.advance(rd);
      this.serveReads(n);
      // soft state trace
      const st = r.status();
      if (st.role !== n.lastRole) { const prev = n.lastRole; n.lastRole = st.role; this.trace(() => `${n.id} role ${prev} -> ${st.role} term=${st.term}`); }
      if (st.commitIndex !== n.lastCommit) {
        if (st.commitIndex < n.lastCommit) this.violate(`${n.id}: commit index decreased ${n.lastCommit} -> ${st.commitIndex}`);
        const prev = n.lastCommit; n.lastCommit = st.commitIndex;
        this.trace(() => `${n.id} commit ${prev} -> ${st.commitIndex}`);
      }
    }
  }

  private apply(n: SimNode, e: Entry): void {
    const idx = n.applied.length + 1;
    if (e.index !== idx) { this.violate(`${n.id}: applied index ${e.index} out of order (expected ${idx})`); return; }
    const st = n.raft!.status();
    n.applied.push(e);
    const k = entryKey(e);
    const g = this.committed[idx - 1];
    if (g === undefined) {
      this.committed.push(e);
      this.committedHash.push(mix(this.committedHash[idx - 1]!, e));
      const t = st.term;
      this.commitTermMaxIdx.set(t, Math.max(this.commitTermMaxIdx.get(t) ?? 0, idx));
    } else if (entryKey(g) !== k) {
      this.violate(`state-machine safety: ${n.id} applied ${k} at ${idx} but another node applied ${entryKey(g)}`);
    }
    const a = this.acked.get(idx);
    if (a && !(e.type === 'normal' && e.data.includes(`"w${a.writeId}"`))) {
      this.violate(`acked write w${a.writeId} at index ${idx} missing on ${n.id} (applied ${k})`);
    }
    if (e.type === 'normal') {
      try {
        const cmd = JSON.parse(e.data) as { k: string; v: string };
        n.sm.set(cmd.k, { v: cmd.v, index: idx });
      } catch { /* opaque */ }
    }
    const p = n.pending.get(idx);
    if (p) {
      n.pending.delete(idx);
      if (p.term === e.term) this.ack(n, idx, p);
    }
  }

  private ack(n: SimNode, idx: number, p: Pending): void {
    this.stats.acked++;
    this.acked.set(idx, { writeId: p.writeId, key: p.key });
    this.lastAckedIdx.set(p.key, Math.max(this.lastAckedIdx.get(p.key) ?? 0, idx));
    this.maxAckedIndex = Math.max(this.maxAckedIndex, idx);
    this.trace(() => `${n.id} ack w${p.writeId} ${p.key} index=${idx}`);
    for (const o of this.nodes) {
      const e = o.applied[idx - 1];
      if (e && !(e.type === 'normal' && e.data.includes(`"w${p.writeId}"`))) {
        this.violate(`acked write w${p.writeId} at index ${idx} differs on ${o.id} (${entryKey(e)})`);
      }
    }
  }

  private serveReads(n: SimNode): void {
    for (const pr of [...n.reads.values()]) {
      if (pr.index === null || n.applied.length < pr.index) continue;
      n.reads.delete(pr.id);
      this.stats.readsDone++;
      const got = n.sm.get(pr.key);
      const gotIdx = got?.index ?? 0;
      this.trace(() => `${n.id} read ${pr.id} ${pr.key}=${got?.v ?? '<none>'} (write index ${gotIdx}, required >= ${pr.minIndex})`);
      if (gotIdx < pr.minIndex) {
        this.violate(`stale read ${pr.id} on ${n.id}: ${pr.key} returned write at index ${gotIdx} but write at ${pr.minIndex} was acked before read started at step ${pr.start}`);
      }
    }
  }

  // ------------------------------------------------------------------ network
  private send(m: Message): void {
    const copies = this.faults && this.rng() < this.opts.dupProb ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      if (this.faults && this.rng() < this.opts.dropProb) {
        this.stats.dropped++;
        this.trace(() => `drop ${m.type} ${m.from}->${m.to} t${m.term}`);
        continue;
      }
      this.net.push({ at: this.step + randInt(this.rng, 1, this.opts.maxDelay), seq: this.seqNo++, m });
    }
  }

  private deliverDue(): void {
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.net) (f.at <= this.step ? due : rest).push(f);
    this.net = rest;
    // random order among messages due in the same step (delay already reorders across steps)
    for (let i = due.length - 1; i > 0; i--) { const j = Math.floor(this.rng() * (i + 1)); [due[i], due[j]] = [due[j]!, due[i]!]; }
    for (const { m } of due) {
      const to = this.node(m.to);
      if (!to || !to.raft || this.blocked.has(`${m.from}>${m.to}`)) {
        this.stats.dropped++;
        this.trace(() => `drop ${m.type} ${m.from}->${m.to} t${m.term}${to && !to.raft ? ' (down)' : ' (partition)'}`);
        continue;
      }
      this.stats.delivered++;
      this.trace(() => `deliver ${describe(m)}`);
      to.raft.step(m);
    }
  }

  private node(id: string): SimNode | undefined { return this.nodes.find((n) => n.id === id); }

  // ------------------------------------------------------------------ faults
  private faultEvents(): void {
    if (!this.faults) return;
    // partitions come and go
    if (this.blocked.size > 0 && this.step >= this.partitionUntil) {
      this.blocked.clear();
      this.trace(() => `partition healed (${this.partitionDesc})`);
    } else if (this.blocked.size === 0 && this.rng() < this.opts.partitionProb) {
      this.stats.partitions++;
      this.partitionUntil = this.step + randInt(this.rng, 10, 150);
      const shuffled = [...this.ids].sort(() => this.rng() - 0.5);
      // half the time isolate the current leader in the minority (the interesting case for stale leaders)
      const ldr = this.nodes.find((n) => n.raft && n.raft.status().role === 'leader');
      if (ldr && this.rng() < 0.5) { shuffled.splice(shuffled.indexOf(ldr.id), 1); shuffled.unshift(ldr.id); }
      if (this.rng() < 0.6) {
        const k = randInt(this.rng, 1, Math.floor(this.nodeCount / 2));
        const a = shuffled.slice(0, k), b = shuffled.slice(k);
        for (const x of a) for (const y of b) { this.blocked.add(`${x}>${y}`); this.blocked.add(`${y}>${x}`); }
        this.partitionDesc = `symmetric {${a.join(',')}} | {${b.join(',')}}`;
      } else {
        const links: string[] = [];
        const nLinks = randInt(this.rng, 1, this.nodeCount);
        for (let i = 0; i < nLinks; i++) {
          const x = this.ids[randInt(this.rng, 0, this.nodeCount - 1)]!, y = this.ids[randInt(this.rng, 0, this.nodeCount - 1)]!;
          if (x !== y) { this.blocked.add(`${x}>${y}`); links.push(`${x}->${y}`); }
        }
        this.partitionDesc = `one-way ${links.join(' ')}`;
      }
      this.trace(() => `partition ${this.partitionDesc} until ${this.partitionUntil}`);
    }
    // restarts
    for (const n of this.nodes) if (!n.raft && this.step >= n.downUntil) this.restart(n);
  }

  private maybeCrash(): void {
    if (!this.faults) return;
    const down = this.nodes.filter((n) => !n.raft).length;
    if (down >= Math.floor((this.nodeCount - 1) / 2) + 1) return; // allow at most a minority (+1 occasionally not)
    if (this.rng() >= this.opts.crashProb * this.nodeCount) return;
    const n = this.nodes[randInt(this.rng, 0, this.nodeCount - 1)]!;
    if (!n.raft) return;
    this.crash(n, this.step + randInt(this.rng, 5, 100));
  }

  private crash(n: SimNode, until: number): void {
    this.stats.crashes++;
    n.raft = null;
    n.downUntil = until;
    this.net = this.net.filter((f) => f.m.to !== n.id);
    this.trace(() => `crash ${n.id} (down until ${until}; persisted term=${n.hardState.term} vote=${n.hardState.votedFor} last=${n.log.length})`);
  }

  private restart(n: SimNode): void {
    n.incarnation++;
    this.start(n, false);
    this.trace(() => `restart ${n.id} from term=${n.hardState.term} vote=${n.hardState.votedFor} log=${n.log.length}`);
  }

  // ------------------------------------------------------------------ clients
  private clientOps(): void {
    const live = this.nodes.filter((n) => n.raft);
    if (live.length === 0) return;
    if (this.rng() < this.opts.writeProb) {
      const leaders = live.filter((n) => n.raft!.status().role === 'leader');
      if (leaders.length > 0) this.propose(leaders[randInt(this.rng, 0, leaders.length - 1)]!);
    }
    if (this.rng() < this.opts.readProb) {
      const n = live[randInt(this.rng, 0, live.length - 1)]!;
      const key = `k${randInt(this.rng, 0, this.opts.keys - 1)}`;
      const id = `r${++this.readSeq}`;
      this.stats.reads++;
      n.reads.set(id, { id, key, start: this.step, minIndex: this.lastAckedIdx.get(key) ?? 0, index: null });
      this.trace(() => `${n.id} readIndex ${id} ${key}`);
      n.raft!.readIndex(id);
    }
  }

  private propose(n: SimNode, key?: string): ProposeResult {
    const k = key ?? `k${randInt(this.rng, 0, this.opts.keys - 1)}`;
    const writeId = ++this.writeSeq;
    this.stats.writes++;
    const res = n.raft!.propose(JSON.stringify({ k, v: `w${writeId}` }));
    this.trace(() => `${n.id} propose w${writeId} ${k} -> ${res.ok ? `index=${res.index} term=${res.term}` : `rejected ${res.reason}`}`);
    if (res.ok) n.pending.set(res.index, { term: res.term, writeId, key: k });
    return res;
  }

  // ------------------------------------------------------------------ steps
  /** One step of virtual time. */
  runStep(): void {
    this.step++;
    this.faultEvents();
    for (const n of this.nodes) if (n.raft) n.raft.tick();
    this.deliverDue();
    this.clientOps();
    this.maybeCrash();
    for (const n of this.nodes) if (n.raft) this.processReady(n);
    this.checkInvariants();
  }

  // ------------------------------------------------------------------ invariants
  checkInvariants(): void {
    const live = this.nodes.filter((n) => n.raft);
    const statuses = new Map<string, RaftStatus>();
    for (const n of live) statuses.set(n.id, n.raft!.status());
    // election safety
    for (const n of live) {
      const st = statuses.get(n.id)!;
      if (st.role !== 'leader') continue;
      const prev = this.termLeader.get(st.term);
      if (prev === undefined) { this.termLeader.set(st.term, n.id); this.trace(() => `leader change: ${n.id} leads term ${st.term}`); }
      else if (prev !== n.id) this.violate(`election safety: term ${st.term} has leaders ${prev} and ${n.id}`);
    }
    // log matching (persisted logs, which equal the in-memory logs after processing Ready; crashed nodes too)
    for (let a = 0; a < this.nodes.length; a++) {
      for (let b = a + 1; b < this.nodes.length; b++) {
        const x = this.nodes[a]!, y = this.nodes[b]!;
        let i = Math.min(x.log.length, y.log.length);
        while (i > 0 && x.log[i - 1]!.term !== y.log[i - 1]!.term) i--;
        if (i > 0 && x.hash[i] !== y.hash[i]) {
          let j = 1;
          while (j <= i && entryKey(x.log[j - 1]!) === entryKey(y.log[j - 1]!)) j++;
          this.violate(`log matching: ${x.id} and ${y.id} agree on term at ${i} but differ at ${j}: ${entryKey(x.log[j - 1]!)} vs ${entryKey(y.log[j - 1]!)}`);
        }
      }
    }
    // leader completeness: committed entries whose commit was observed in a term < T are in every leader of term T
    for (const n of live) {
      const st = statuses.get(n.id)!;
      if (st.role !== 'leader') continue;
      let m = 0;
      for (const [t, idx] of this.commitTermMaxIdx) if (t < st.term && idx > m) m = idx;
      if (m === 0) continue;
      if (n.log.length < m || n.hash[m] !== this.committedHash[m]) {
        this.violate(`leader completeness: leader ${n.id} of term ${st.term} lacks committed prefix through ${m} (its last=${n.log.length})`);
      }
    }
    // in-memory log of live nodes matches what was persisted (entryAt at the tail)
    for (const n of live) {
      const st = statuses.get(n.id)!;
      if (st.lastIndex !== n.log.length) this.violate(`${n.id}: core lastIndex ${st.lastIndex} != persisted ${n.log.length} after Ready`);
    }
  }

  // ------------------------------------------------------------------ liveness
  private healAll(): void {
    this.faults = false;
    if (this.blocked.size) { this.blocked.clear(); this.trace(() => `partition healed (liveness phase)`); }
    for (const n of this.nodes) if (!n.raft) this.restart(n);
    for (const n of this.nodes) this.processReady(n);
  }

  private leaderNow(): SimNode | undefined {
    const leaders = this.nodes.filter((n) => n.raft && n.raft.status().role === 'leader');
    // the leader with the highest term (a stale leader may linger until it hears the new term)
    leaders.sort((a, b) => b.raft!.status().term - a.raft!.status().term);
    return leaders[0];
  }

  private runLiveness(): void {
    this.trace(() => `--- liveness phase: healed, all nodes up, no drops ---`);
    this.healAll();
    const deadline = this.step + this.opts.livenessSteps;
    let fresh: { node: SimNode; index: number } | null = null;
    let freshAcked = false;
    while (this.step < deadline) {
      this.runStep();
      if (this.violations.length && this.opts.stopOnViolation) return;
      const leader = this.leaderNow();
      if (!leader) continue;
      if (!freshAcked && (!fresh || (!fresh.node.pending.has(fresh.index) && !this.acked.has(fresh.index)))) {
        const r = this.propose(leader, 'kfresh');
        if (r.ok) fresh = { node: leader, index: r.index };
      }
      if (fresh && this.acked.has(fresh.index)) freshAcked = true;
      const need = Math.max(this.maxAckedIndex, freshAcked ? fresh!.index : Infinity);
      if (freshAcked && this.nodes.every((n) => n.applied.length >= need)) {
        this.trace(() => `liveness ok: leader ${leader.id}, all applied >= ${need}`);
        return;
      }
    }
    const leader = this.leaderNow();
    this.violate(`liveness: after ${this.opts.livenessSteps} healed steps leader=${leader?.id ?? 'none'} freshAcked=${freshAcked} applied=[${this.nodes.map((n) => `${n.id}:${n.applied.length}`).join(' ')}] maxAcked=${this.maxAckedIndex}`);
  }

  /** Runs the fault phase then the liveness phase; returns the violations. */
  run(): Violation[] {
    try {
      for (let s = 0; s < this.opts.steps; s++) {
        this.runStep();
        if (this.violations.length && this.opts.stopOnViolation) return this.violations;
      }
      this.runLiveness();
    } catch (err) {
      this.violate(`exception: ${(err as Error)?.stack?.split('\n').slice(0, 3).join(' | ') ?? String(err)}`);
    }
    return this.violations;
  }
}

function describe(m: Message): string {
  const base = `${m.type} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case 'RequestVote': return `${base}${m.preVote ? ' pre' : ''} last=${m.lastLogIndex}/${m.lastLogTerm}`;
    case 'RequestVoteResponse': return `${base}${m.preVote ? ' pre' : ''} granted=${m.granted}`;
    case 'AppendEntries': return `${base} prev=${m.prevLogIndex}/${m.prevLogTerm} n=${m.entries.length} commit=${m.leaderCommit}`;
    case 'AppendEntriesResponse': return `${base} ok=${m.success} match=${m.matchIndex} rej=${m.rejectedIndex}`;
    case 'Heartbeat': return `${base} commit=${m.commit} ctx=${m.ctx}`;
    case 'HeartbeatResponse': return `${base} ctx=${m.ctx}`;
    case 'ReadIndex': return `${base} ids=${m.ids.join(',')}`;
    case 'ReadIndexResponse': return `${base} ids=${m.ids.join(',')} index=${m.index} ok=${m.ok}`;
    default: return base;
  }
}


export const CORE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/raft/core');

/** Dynamically imports a Raft core module (the real one by default, or a mutated copy). */
export async function loadRaft(file: string = path.join(CORE_DIR, 'raft.ts')): Promise<RaftModule> {
  const mod = (await import(pathToFileURL(file).href)) as Partial<RaftModule>;
  if (typeof mod.Raft !== 'function' || typeof mod.defaultRaftOptions !== 'function') {
    throw new Error(`${file} does not export Raft and defaultRaftOptions`);
  }
  return mod as RaftModule;
}
