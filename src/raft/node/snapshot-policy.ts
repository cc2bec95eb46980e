/**
 * When a node snapshots and compacts its log, and how it serialises its state for a follower that
 * needs a snapshot. Owned by the node driver (node.ts), which calls run() between Readies and
 * noteApplied() for every applied entry.
 */
import type { Raft } from '../core/raft.js';
import type { HeldSnapshot, SnapshotMeta } from '../core/types.js';
import type { LogStore } from '../../storage/types.js';

/** The thresholds of RaftNodeOptions this policy reads. */
export interface SnapshotPolicyOptions {
  /** Take a snapshot once this many entries were applied since the last one (default 10000). */
  snapshotThreshold?: number;
  /** ...or once this many bytes of entry data were applied since the last one (default 64 MiB). */
  snapshotThresholdBytes?: number;
}

/** What the policy needs from the driver. */
export interface SnapshotPolicyHost {
  /** The core (created by the driver's start()). */
  readonly raft: Raft;
  /** The index the state machine has applied. */
  readonly applied: number;
  readonly isStopped: boolean;
  /** Runs the driver's loop again soon (an export finished). */
  schedule(): void;
  /** Stops the node with a fatal error. */
  failWith(err: unknown): void;
  /** Serialises the state machine as it is at the moment of the call. */
  exportState(): Promise<string>;
  /** Observer callbacks (see RaftNodeObserver). */
  onSnapshot?(kind: 'taken' | 'serialized', meta: SnapshotMeta, bytes: number): void;
  onEntriesCompacted?(count: number): void;
}

export class SnapshotPolicy {
  /**
   * An export of the KV state running in the background for a follower that needs a snapshot (the
   * core asked through needsSnapshotData): the state as of `index`, `data` set when done.
   */
  private snapshotExport: { index: number; data: string | null } | null = null;
  /** Bytes of entry data applied since the last compaction (the in-memory log grows by about this much). */
  private appliedBytesSinceSnapshot = 0;

  constructor(
    private readonly opts: SnapshotPolicyOptions,
    private readonly host: SnapshotPolicyHost,
    private readonly log: LogStore,
  ) {}

  /** Entries applied between two snapshots. */
  snapshotThreshold(): number {
    return this.opts.snapshotThreshold ?? 10_000;
  }

  /** Counts the bytes of an applied entry towards the byte threshold. */
  noteApplied(bytes: number): void {
    this.appliedBytesSinceSnapshot += bytes;
  }

  /**
   * Log compaction and snapshots. Every SNAPSHOT_THRESHOLD applied entries the log is compacted
   * behind a snapshot without data: the KV store already holds the state at that index (RocksDB:
   * durably, in the same write-ahead log, before the synced snapshot record), so nothing is copied.
   * Only when the core reports that a follower needs a snapshot is the KV state serialised, in the
   * background, and handed to the core, which sends it in chunks. Runs between Readies, where
   * nothing is being applied, so the state an export captures is the state at the applied index.
   */
  async run(): Promise<void> {
    const raft = this.host.raft;
    const last = raft.latestSnapshot?.meta.lastIndex ?? 0;
    const job = this.snapshotExport;
    if (job !== null && job.data !== null) {
      this.snapshotExport = null;
      const snap = raft.supplySnapshotData(job.index, job.data);
      const meta = raft.latestSnapshot?.meta;
      if (meta && meta.lastIndex === job.index) this.host.onSnapshot?.('serialized', meta, job.data.length);
      if (snap) await this.saveCompaction(snap, last);
      return;
    }
    if (job === null && raft.needsSnapshotData) {
      const started = { index: this.snapshotableIndex(), data: null as string | null };
      this.snapshotExport = started;
      this.host.exportState().then(
        (data) => {
          started.data = data;
          this.host.schedule();
        },
        (err: unknown) => {
          // Closing the store on shutdown ends the export; only a failure while running is fatal.
          if (!this.host.isStopped) this.host.failWith(err);
        },
      );
    }
    // While an export runs, no compaction without data: it would leave the export behind the latest
    // snapshot (ignored by the core), and exports could keep losing that race under steady writes.
    if (this.snapshotExport !== null) return;
    const isBytesDue = this.appliedBytesSinceSnapshot >= (this.opts.snapshotThresholdBytes ?? 64 << 20);
    if (this.host.applied - last < this.snapshotThreshold() && !isBytesDue) return;
    const index = this.snapshotableIndex();
    if (index <= last || (index - last < this.snapshotThreshold() && !isBytesDue)) return;
    const snap = raft.compact(index, null);
    if (!snap) return;
    await this.saveCompaction(snap, last);
  }

  /** The index a snapshot may stand for: applied both here and in the core. */
  private snapshotableIndex(): number {
    return Math.min(this.host.applied, this.host.raft.status().appliedIndex);
  }

  /** Persists a locally taken snapshot without its data (the KV store holds it) and drops the log behind it. */
  private async saveCompaction(snap: HeldSnapshot, previous: number): Promise<void> {
    this.appliedBytesSinceSnapshot = 0;
    await this.log.saveSnapshot({ meta: snap.meta, data: null }, false);
    this.host.onSnapshot?.('taken', snap.meta, 0);
    this.host.onEntriesCompacted?.(snap.meta.lastIndex - previous);
  }
}
