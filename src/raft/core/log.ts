/**
 * The in-memory Raft log of one node: entries after the compaction point, with the boundary between
 * entries already on stable storage and those still to be persisted. Used only by the Raft core.
 * `snapshotIndex`/`snapshotTerm` name the last entry dropped from memory; it is the last index of
 * the latest snapshot or, when the core keeps a tail of entries behind a snapshot, a little earlier.
 */
import type { Entry, SnapshotMeta } from './types.js';

/** The size an entry counts for in byte bounds: its data's length (a fixed estimate for the others). */
export function entrySize(e: Entry): number {
  return e.type === 'normal' ? e.data.length : 64;
}

export class RaftLog {
  /** Entries with index snapshotIndex+1 .. lastIndex. Invariant: entries[i].index === snapshotIndex + 1 + i. */
  private entries: Entry[];
  snapshotIndex: number;
  snapshotTerm: number;
  /** Invariant: entries with index <= stableIndex are persisted; stableIndex <= lastIndex. */
  stableIndex: number;

  constructor(snapshot: SnapshotMeta | null, entries: Entry[]) {
    this.snapshotIndex = snapshot?.lastIndex ?? 0;
    this.snapshotTerm = snapshot?.lastTerm ?? 0;
    this.entries = entries.filter((e) => e.index > this.snapshotIndex);
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i].index !== this.snapshotIndex + 1 + i) throw new Error('raft log: entries are not contiguous');
    }
    this.stableIndex = this.lastIndex;
  }

  get firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  get lastTerm(): number {
    return this.termAt(this.lastIndex) ?? 0;
  }

  /** The term of the entry at `index`; undefined when compacted away (before the snapshot) or beyond the end. */
  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1].term;
  }

  entryAt(index: number): Entry | undefined {
    if (index <= this.snapshotIndex || index > this.lastIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** Entries in [from, to] inclusive, bounded by count and bytes (at least one entry when any is in range). */
  slice(from: number, to: number, maxCount = Infinity, maxBytes = Infinity): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = Math.max(from, this.firstIndex); i <= Math.min(to, this.lastIndex); i++) {
      const e = this.entries[i - this.snapshotIndex - 1];
      const size = entrySize(e);
      if (out.length > 0 && (out.length >= maxCount || bytes + size > maxBytes)) break;
      out.push(e);
      bytes += size;
    }
    return out;
  }

  /** Appends an entry the node itself created (leader proposal, bootstrap). */
  append(e: Entry): void {
    if (e.index !== this.lastIndex + 1) throw new Error(`raft log: append at ${e.index}, last is ${this.lastIndex}`);
    this.entries.push(e);
  }

  /**
   * Merges entries received from a leader after a matching prevLogIndex. Raft §5.3: an existing entry
   * is deleted (with all that follow it) only when it conflicts (same index, different term); entries
   * already present are kept, so a stale or duplicated AppendEntries never truncates the log.
   * Returns the index of the last entry covered.
   */
  merge(entries: Entry[]): number {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.index <= this.snapshotIndex) continue;
      const existing = this.termAt(e.index);
      if (existing === e.term) continue;
      if (existing !== undefined) {
        // MUTATION-POINT: truncate-on-conflict
        this.truncateFrom(e.index);
      }
      for (let j = i; j < entries.length; j++) this.entries.push(entries[j]);
      break;
    }
    return entries.length > 0 ? entries[entries.length - 1].index : 0;
  }

  /** Deletes every entry with index >= `index`. */
  truncateFrom(index: number): void {
    if (index <= this.snapshotIndex) throw new Error('raft log: truncating into the snapshot');
    this.entries.length = index - this.snapshotIndex - 1;
    if (this.stableIndex >= index) this.stableIndex = index - 1;
  }

  /** Entries not yet handed to the driver for persistence. */
  unstable(): Entry[] {
    return this.entries.slice(this.stableIndex - this.snapshotIndex);
  }

  /**
   * Records that `entries` (one Ready's, contiguous) are persisted. The driver steps messages between
   * ready() and advance(), so the log may have been truncated meanwhile: the prefix of `entries` the
   * log still holds (same index, same term) becomes stable, the rest was overwritten and stays
   * unstable. Acknowledging nothing on a mismatch would leave the persisted prefix unstable: handed
   * out and written again, and behind the applied index, so compaction could not pass it.
   */
  stableTo(entries: Entry[]): void {
    if (entries.length === 0 || entries[0].index > this.stableIndex + 1) return;
    let stable = this.stableIndex;
    // MUTATION-POINT: stable-prefix
    for (const e of entries) {
      if (e.index <= stable) continue;
      if (this.termAt(e.index) !== e.term) break;
      stable = e.index;
    }
    this.stableIndex = stable;
  }

  /** The first index of the term of the entry at `index` (used for the fast-backtracking hint). */
  firstIndexOfTerm(index: number): number {
    const term = this.termAt(index);
    let i = index;
    while (i - 1 > this.snapshotIndex && this.termAt(i - 1) === term) i--;
    return i;
  }

  /** The last index whose entry has `term`, or 0 when the log holds no entry of that term. */
  lastIndexOfTerm(term: number): number {
    for (let i = this.lastIndex; i > this.snapshotIndex; i--) {
      const t = this.termAt(i) as number;
      if (t === term) return i;
      if (t < term) return 0;
    }
    return 0;
  }

  /**
   * Drops every entry with index <= `index` (log compaction, Raft §7). Only persisted entries may be
   * dropped, so the driver never has to write an entry the core no longer holds.
   */
  compactTo(index: number): void {
    if (index <= this.snapshotIndex) return;
    if (index > this.stableIndex) throw new Error(`raft log: compacting to ${index} beyond the persisted ${this.stableIndex}`);
    const term = this.termAt(index) as number;
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /** Replaces the whole log with a snapshot's position (follower installing a snapshot). */
  restore(meta: SnapshotMeta): void {
    this.entries = [];
    this.snapshotIndex = meta.lastIndex;
    this.snapshotTerm = meta.lastTerm;
    this.stableIndex = meta.lastIndex;
  }

  /** Raft §5.4.1: is a log ending at (lastTerm, lastIndex) at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }
}
