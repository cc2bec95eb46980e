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

/** One key-value mutation of a command; a set with `lease` attaches the key to that lease (docs/leases.md). */
export type KvOp = { op: 'set'; key: string; value: string; lease?: string } | { op: 'delete'; key: string };

/** Why a key was deleted by a lease (absent on a client's own delete). */
export type DeleteReason = 'lease-expired' | 'lease-revoked';

/**
 * One resolved change of one key, as decided at apply on every replica: the storage backends persist
 * exactly these (a put stores `{value, index}` with the entry's index), and a watch history can keep
 * them as they are. `prevIndex` is the index of the value replaced (null: the key did not exist).
 * A delete of an absent key changes nothing and so has no effect.
 */
export type KvEffect =
  | { type: 'put'; key: string; value: string; prevIndex: number | null; lease?: string }
  | { type: 'delete'; key: string; prevIndex: number; reason?: DeleteReason; lease?: string };

/**
 * A lease as replicated (docs/leases.md): no clock time, only durations. `remainingMs` is what the
 * last checkpoint recorded (ttlMs at grant); keepalives are leader memory and never replicated.
 */
export interface LeaseRecord {
  /** `l-<grantedIndex>`: decided at apply, the same on every replica, never reused. */
  id: string;
  ttlMs: number;
  grantedIndex: number;
  remainingMs: number;
}

/**
 * One resolved change of the lease table, decided at apply (like KvEffect): the storage backends
 * persist exactly these in the apply batch. `lease-put` writes a lease (grant, checkpoint),
 * `lease-delete` removes it (its keys are detached by their own `detach` effects first).
 */
export type LeaseEffect =
  | { type: 'lease-put'; lease: LeaseRecord }
  | { type: 'lease-delete'; id: string }
  | { type: 'attach'; id: string; key: string }
  | { type: 'detach'; id: string; key: string };

/** The whole replicated lease table: every lease and every attached key as `[leaseId, key]`. */
export interface LeaseState {
  leases: LeaseRecord[];
  attached: Array<[string, string]>;
}

/** What a lease command decided at apply (the answer for its waiter). */
export type LeaseDecision =
  | { op: 'grant'; id: string; ttlMs: number }
  | { op: 'revoke'; id: string; deleted: string[] }
  | { op: 'expire'; id: string; isApplied: boolean; deleted: string[] }
  | { op: 'checkpoint'; count: number };

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
  /** Changes of the lease table, persisted in the same batch (absent when none). */
  leaseEffects?: LeaseEffect[];
  /** Present when the command named a lease that does not exist at apply: nothing changed. */
  leaseNotFound?: string;
  /** Present for a lease command: what it decided. */
  lease?: LeaseDecision;
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
  /** The entry's lease-table changes (absent when none), in the same atomic batch. */
  leaseEffects?: LeaseEffect[];
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
