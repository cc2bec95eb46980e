/**
 * The simulated network of test/sim/cluster.ts: every message in flight with the step it arrives at;
 * seeded delay (which reorders across steps), loss, duplication and late replays (a stale duplicate
 * delivered long after, as on an old connection), and partitions as a set of cut one-way links. The
 * cluster decides when to cut and heal and delivers what is due; this module only holds the wire.
 */
import type { Message } from '../../src/raft/core/messages.js';
import { randInt } from './rng.js';

/** A message on the wire: delivered at step `at`; `seq` is its send order. */
export interface InFlight { at: number; seq: number; m: Message }

/** The network's fault knobs (SimOptions). */
export interface NetworkOptions { maxDelay: number; dropProb: number; dupProb: number; lateDupProb: number }

/** What the network reports into: the run's counters and trace. */
export interface NetworkHost {
  readonly step: number;
  /** False in the liveness phase: no loss, no duplicates. */
  readonly faults: boolean;
  stats: { dropped: number; partitions: number };
  trace(f: () => string): void;
}

export class SimNetwork {
  private queue: InFlight[] = [];
  private seqNo = 0;
  /** Cut links, "a>b": messages from a to b are lost. */
  private readonly blocked = new Set<string>();
  /** The step the current random partition heals at. */
  partitionUntil = 0;
  /** What the current partition is, for the trace. */
  partitionDesc = '';
  /** Extra late-replay probability for AppendEntries (the 'stale-append' scenario). */
  lateDupBoost = 0;

  constructor(private readonly rng: () => number, private readonly opts: NetworkOptions, private readonly host: NetworkHost) {}

  /** Puts `m` on the wire: maybe duplicated, maybe lost, delayed 1..maxDelay steps, maybe replayed much later. */
  send(m: Message): void {
    const h = this.host;
    const copies = h.faults && this.rng() < this.opts.dupProb ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      if (h.faults && this.rng() < this.opts.dropProb) {
        h.stats.dropped++;
        h.trace(() => `drop ${m.type} ${m.from}->${m.to} t${m.term}`);
        continue;
      }
      this.queue.push({ at: h.step + randInt(this.rng, 1, this.opts.maxDelay), seq: this.seqNo++, m });
    }
    // A stale duplicate: the same message delivered again long after (a retransmission on an old connection).
    const late = this.opts.lateDupProb + (m.type === 'AppendEntries' ? this.lateDupBoost : 0);
    if (h.faults && this.rng() < late) {
      const at = h.step + randInt(this.rng, 8, 60);
      this.queue.push({ at, seq: this.seqNo++, m });
      h.trace(() => `replay ${m.type} ${m.from}->${m.to} t${m.term} again at ${at}`);
    }
  }

  /** Takes the messages due now off the wire, in random order among themselves (delay already reorders across steps). */
  takeDue(): InFlight[] {
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.queue) (f.at <= this.host.step ? due : rest).push(f);
    this.queue = rest;
    for (let i = due.length - 1; i > 0; i--) { const j = Math.floor(this.rng() * (i + 1)); [due[i], due[j]] = [due[j]!, due[i]!]; }
    return due;
  }

  /** A message its receiver did not read (a stalled process): it waits a step on the wire. */
  requeue(f: InFlight): void {
    this.queue.push({ at: this.host.step + 1, seq: f.seq, m: f.m });
  }

  /** Drops every message in flight to `id` (its process is gone: connections reset). */
  dropTo(id: string): void {
    this.queue = this.queue.filter((f) => f.m.to !== id);
  }

  /** Drops every message in flight from `id` (it vanished before anything it sent arrived). */
  dropFrom(id: string): void {
    this.queue = this.queue.filter((f) => f.m.from !== id);
  }

  /** Whether the link from `from` to `to` is cut. */
  isBlocked(from: string, to: string): boolean { return this.blocked.has(`${from}>${to}`); }
  /** Whether any link is cut. */
  get isPartitioned(): boolean { return this.blocked.size > 0; }
  /** Cuts the link from `from` to `to`. */
  block(from: string, to: string): void { this.blocked.add(`${from}>${to}`); }
  /** Restores every link (no trace). */
  clearBlocks(): void { this.blocked.clear(); }

  /** A symmetric partition between `a` and `b` (any earlier one is healed first). */
  partition(a: string[], b: string[], desc: string): void {
    this.blocked.clear();
    for (const x of a) for (const y of b) { this.blocked.add(`${x}>${y}`); this.blocked.add(`${y}>${x}`); }
    this.partitionDesc = `${desc} {${a.join(',')}} | {${b.join(',')}}`;
    this.host.stats.partitions++;
    this.host.trace(() => `partition ${this.partitionDesc}`);
  }

  /** Heals every cut link. */
  heal(why: string): void {
    if (this.blocked.size) { this.blocked.clear(); this.host.trace(() => `partition healed (${why})`); }
  }
}

/** One line describing a message, for the trace. */
export function describe(m: Message): string {
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
    case 'InstallSnapshot': return `${base} snap=${m.meta.lastIndex}/${m.meta.lastTerm} off=${m.offset} len=${m.data.length}${m.done ? ' done' : ''}`;
    case 'InstallSnapshotResponse': return `${base} snap=${m.lastIndex} received=${m.received} done=${m.done} match=${m.matchIndex}`;
    default: return base;
  }
}
