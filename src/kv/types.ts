/**
 * The key-value state machine's vocabulary: the operations a command carries, the values it keeps,
 * and what applying one committed entry decides (its resolved effects and the answer for the client).
 * Shared by the codec, the apply rules, the storage backends that persist effects, and the driver.
 */
import type { TxnResult } from './txn.js';

/** A stored value with the log index that last modified it (served as the ETag). */
export interface StoredValue {
  value: string;
  index: number;
}

/** One key-value mutation of a command. */
export type KvOp = { op: 'set'; key: string; value: string } | { op: 'delete'; key: string };

/**
 * One resolved change of one key, as decided at apply on every replica: the storage backends persist
 * exactly these (a put stores `{value, index}` with the entry's index), and a watch history can keep
 * them as they are. `prevIndex` is the index of the value replaced (null: the key did not exist).
 * A delete of an absent key changes nothing and so has no effect.
 */
export type KvEffect =
  | { type: 'put'; key: string; value: string; prevIndex: number | null }
  | { type: 'delete'; key: string; prevIndex: number };

/** What one operation of an applied command found and did, in the command's order. */
export type KvOpResult =
  | { op: 'set'; key: string; index: number; prevIndex: number | null }
  | { op: 'delete'; key: string; deleted: boolean; prevIndex: number | null };

/** A condition that did not hold at apply: the key and its state then (null: absent). */
export interface FailedCondition {
  key: string;
  current: StoredValue | null;
}

/** What a transaction decided at apply (see txn.ts). */
export interface TxnDecision {
  succeeded: boolean;
  results: TxnResult[];
}

/** What applying one committed entry decided: the effects to persist and the answer for its waiter. */
export interface EntryOutcome {
  index: number;
  effects: KvEffect[];
  results: KvOpResult[];
  /** Present when the command's preconditions did not hold: nothing changed; every failed condition. */
  failed?: FailedCondition[];
  /** Present for a transaction: which branch ran and its results (its writes are `effects`). */
  txn?: TxnDecision;
}

/**
 * An effect as the watch history keeps it: the KvEffect plus `prevValue`, the value it replaced or
 * removed (absent for a put of a new key), so that a listing can undo the changes made after its
 * first page (docs/api.md, "Listing"). Never sent to watchers (src/api/watch.ts strips it). Records
 * written before it was kept lack it: a listing that needs one answers CONTINUE_EXPIRED.
 */
export type HistoryEffect = KvEffect & { prevValue?: string };

/** The effects of one entry as handed to the storage backend (which writes `index` with each put). */
export interface EffectBatch {
  index: number;
  effects: HistoryEffect[];
}

/** One record of the watch history: the effects one applied entry had (entries without effects have none). */
export interface HistoryEntry {
  index: number;
  effects: HistoryEffect[];
}

/**
 * A read of the watch history at one consistent point of the store: every record with index in
 * [from, upTo], in order. Invariant: the history holds a record for every entry with effects in
 * (floor, appliedIndex]; below or at `floor` it is gone.
 */
export interface HistoryPage {
  /** The highest index whose history is gone (0: the history starts at index 1). */
  floor: number;
  /** The applied index at the point read. */
  appliedIndex: number;
  /** Records from `from` on, in index order, at most the number asked for. */
  entries: HistoryEntry[];
  /** Every index up to here (from `from` on) is covered by `entries`: appliedIndex, or the last record's index when cut at the limit. */
  upTo: number;
}
