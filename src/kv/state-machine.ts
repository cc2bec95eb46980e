/**
 * The replicated key-value state machine: turns committed entries into resolved effects (apply.ts),
 * has the storage backend persist them with the applied index in one atomic batch, and hands back
 * each entry's outcome for the client waiting on it. Also takes and restores snapshots (snapshot.ts).
 * Created by the node driver over its KvStore; the driver only says which entries to apply.
 */
import type { Entry } from '../raft/core/types.js';
import type { KvStore, KvView } from '../storage/types.js';
import type { RangePage, RangeQuery } from './listing.js';
import { applyKvCommand, commandKeys, foldEffects, withPrevValues } from './apply.js';
import { decodeCommand, type KvCommand } from './commands.js';
import { LeaseOverlay, LeaseTable } from './leases.js';
import { exportSnapshot, importSnapshot } from './snapshot.js';
import type { EffectBatch, EntryOutcome, HistoryPage, KvOp, LeaseEffect, StoredValue } from './types.js';

/**
 * One command to apply at `index`: a decoded command, or plain operations (an unconditional `ops`
 * command). `term` is the entry's term (the fence of lease-expire; 0 when not given).
 */
export type KvCommandAt = ({ index: number; command: KvCommand } | { index: number; ops: KvOp[] }) & { term?: number };

function commandOf(c: KvCommandAt): KvCommand {
  return 'command' in c ? c.command : { kind: 'ops', ops: c.ops, conditions: [] };
}

/** Callbacks of the state machine; all optional. */
export interface KvStateMachineObserver {
  /** A committed entry whose command could not be decoded was applied as a no-op (it changes nothing). */
  onBadEntry?(index: number, err: Error): void;
}

export class KvStateMachine {
  /** The replicated lease table as persisted (loaded from the store on first use; changed only after a persist). */
  private leases: LeaseTable | null = null;

  constructor(
    private readonly store: KvStore,
    private readonly observer: KvStateMachineObserver = {},
  ) {}

  private async leaseTable(): Promise<LeaseTable> {
    return (this.leases ??= LeaseTable.from(await this.store.loadLeases()));
  }

  /**
   * The lease table as of the last apply (GET /leases, the leader's clock). Read it after the read
   * barrier for a linearizable answer; do not modify it.
   */
  readLeases(): Promise<LeaseTable> {
    return this.exclusive(() => this.leaseTable());
  }

  /** The current value of `key` in the local state (call the read barrier first for a linearizable read). */
  get(key: string): Promise<StoredValue | undefined> {
    return this.store.get(key);
  }

  /** The applied index stored with the data (0 when empty). */
  appliedIndex(): Promise<number> {
    return this.store.appliedIndex();
  }

  /** One page of a key range at one consistent index (see KvStore.listRange). */
  listRange(q: RangeQuery): Promise<RangePage> {
    return this.store.listRange(q);
  }

  /** A point-in-time view of every row and the applied index (GET /backup). */
  openView(): Promise<KvView> {
    return this.store.openView();
  }

  /** The watch history from index `from` on, at one consistent point (see KvStore.readHistory). */
  readHistory(from: number, maxEntries: number): Promise<HistoryPage> {
    return this.store.readHistory(from, maxEntries);
  }

  /** Number of keys. */
  count(): Promise<number> {
    return this.store.count();
  }

  /**
   * A hint from the leader when it proposes `ops`: the store may look the keys up now so that apply
   * needs no disk read later. Never changes what apply decides.
   */
  prefetch(cmd: KvCommand): void {
    this.store.prefetch?.(commandKeys(cmd));
  }

  /**
   * Reads `keys` and the applied index at one point between two applies (no apply runs meanwhile),
   * so a read-only transaction sees one state. Call the read barrier first for a linearizable read.
   */
  readAtomically(keys: string[]): Promise<{ index: number; values: Map<string, StoredValue | undefined> }> {
    return this.exclusive(async () => {
      const [index, found] = await Promise.all([this.store.appliedIndex(), keys.length === 0 ? [] : this.store.getMany(keys)]);
      return { index, values: new Map(keys.map((k, i) => [k, found[i]])) };
    });
  }

  /** The tail of the queue of exclusive sections (applies and atomic reads run one at a time). */
  private gate: Promise<void> = Promise.resolve();

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.gate.then(fn);
    this.gate = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Applies committed entries in order (entries that are not normal commands change no key) and
   * records the last one's index as applied, all in one batch. Apply is total: an entry whose command
   * cannot be decoded (it came in through a peer despite the checks, or from an older version)
   * changes nothing; it is reported, never fatal. Resolves with the outcome of each normal entry.
   */
  async applyEntries(entries: readonly Entry[]): Promise<Map<number, EntryOutcome>> {
    if (entries.length === 0) return new Map();
    const commands: KvCommandAt[] = [];
    for (const e of entries) {
      if (e.type !== 'normal') continue;
      let command: KvCommand;
      try {
        command = decodeCommand(e.data);
      } catch (err) {
        this.observer.onBadEntry?.(e.index, err as Error);
        command = { kind: 'ops', ops: [], conditions: [] };
      }
      commands.push({ index: e.index, term: e.term, command });
    }
    const outcomes = await this.applyCommands(commands, entries[entries.length - 1].index);
    return new Map(outcomes.map((o) => [o.index, o]));
  }

  /**
   * Applies `commands` (in index order) and records `appliedIndex` in the same atomic batch: reads
   * the touched keys once, decides each command against the state left by the ones before it, then
   * has the store persist every effect. Resolves with each command's outcome, in order.
   */
  applyCommands(commands: readonly KvCommandAt[], appliedIndex: number): Promise<EntryOutcome[]> {
    return this.exclusive(async () => {
      const table = await this.leaseTable();
      const decoded = commands.map((c) => ({ index: c.index, term: c.term ?? 0, command: commandOf(c) }));
      // A revoke or expiry deletes its lease's keys: those attached now, plus any an earlier entry of
      // this batch attaches (which that entry touches, so they are read too).
      const keys = [...new Set(decoded.flatMap((c) => commandKeys(c.command, table)))];
      const found = keys.length === 0 ? [] : await this.store.getMany(keys);
      const state = new Map<string, StoredValue | undefined>(keys.map((k, i) => [k, found[i]]));
      const view = { get: (key: string) => state.get(key) };
      const leases = new LeaseOverlay(table);
      const batches: EffectBatch[] = [];
      const outcomes = decoded.map(({ index, term, command }) => {
        const outcome = applyKvCommand(index, command, view, { term, leases });
        // The history keeps the values replaced too (for listings consistent across pages): read before the fold.
        const batch: EffectBatch = { index, effects: withPrevValues(index, outcome.effects, view) };
        if (outcome.leaseEffects) batch.leaseEffects = outcome.leaseEffects;
        batches.push(batch);
        foldEffects(state, index, outcome.effects);
        if (outcome.leaseEffects) leases.fold(outcome.leaseEffects);
        return outcome;
      });
      await this.store.persist(batches, appliedIndex);
      const leaseEffects: LeaseEffect[] = outcomes.flatMap((o) => o.leaseEffects ?? []);
      if (leaseEffects.length > 0) table.apply(leaseEffects);
      return outcomes;
    });
  }

  /**
   * Serialises the whole key space as it is at the moment of the call (applies made while the promise
   * is pending are not in it: the driver exports in the background and compacts at the index it captured).
   */
  exportSnapshot(): Promise<string> {
    // Between two applies: the lease table is captured and the row iteration starts (its view is taken
    // by the call itself), so rows and leases are one state; the iteration then runs outside the gate.
    return this.exclusive(async () => {
      const leases = (await this.leaseTable()).export();
      return { data: exportSnapshot(this.store, leases) };
    }).then(({ data }) => data);
  }

  /** Replaces the whole key space and lease table with a snapshot's content and records `appliedIndex` (Raft §7). */
  restoreSnapshot(data: string, appliedIndex: number): Promise<void> {
    return this.exclusive(async () => {
      const leases = await importSnapshot(this.store, data, appliedIndex);
      this.leases = LeaseTable.from(leases);
    });
  }
}
