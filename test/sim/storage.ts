/**
 * The simulated nodes of test/sim/cluster.ts and their storage: what survives a crash (hard state,
 * snapshot, log: only what a Ready handed over and the driver synced), a shadow of each node's log
 * (terms and prefix hashes, compacted prefix included) for the invariant checks, the volatile state a
 * restart rebuilds, and the key-value state machine. The disk operations check the driver's side of
 * the storage contract (no gap, no truncation without a conflict, never below what was applied).
 */
import type { Entry, HardState, HeldSnapshot, Ready, Snapshot } from '../../src/raft/core/types.js';
import type { RaftLike } from './cluster.js';
import { applyKvCommand, commandKeys } from '../../src/kv/apply.js';
import { decodeCommand, type KvCommand } from '../../src/kv/commands.js';
import { decodeLeaseList, encodeLeaseList, LeaseTable, NO_LEASES } from '../../src/kv/leases.js';
import type { EntryOutcome, StoredValue } from '../../src/kv/types.js';

/**
 * A client write proposed on a node, acknowledged when the node applies it in the same term. `key` is
 * the plain-set key whose reads must then see it (null for a conditional write or a transaction).
 */
export interface Pending { term: number; writeId: number; key: string | null }
/** A linearizable read issued on a node: served once the node has applied `index`. */
export interface PendingRead { id: string; key: string; start: number; minIndex: number; index: number | null }
/** A value in the state machine with the index of the write that set it (the production StoredValue). */
export type SmValue = StoredValue;

/** A Ready the simulated driver is handling (interleaving mode): what it awaits next. */
export interface InflightReady {
  rd: Ready;
  /** The leader sent the Ready's messages before its own fsync (the driver's isSendFirst). */
  isSendFirst: boolean;
  /** persist-snapshot / persist: the synced write is in flight; apply: installing and applying. */
  awaiting: 'persist-snapshot' | 'persist' | 'apply';
  /** The step at which the awaited I/O completes (a sync can take longer than a network hop). */
  doneAt: number;
}

/** One simulated node: its process (the core), its disk, its shadow log and its volatile state. */
export interface SimNode {
  id: string;
  raft: RaftLike | null; // null while crashed, retired or never started
  /** Has storage: an initial member, or a spare the operator started to join. */
  started: boolean;
  /** Removed from the cluster and shut down for good. */
  retired: boolean;
  retireAt: number;
  incarnation: number;
  /** How many times this node lost all its storage; its Raft incarnation is `${id}#${amnesia}`. */
  amnesia: number;
  /** A joiner (SimCluster.joiners): the step of its next join request. */
  nextJoinAt: number;
  /**
   * 'foreign-bootstrap': the one-node cluster this node's process bootstrapped after losing its
   * storage and starting without RAFT_JOIN_ADDR. It lives outside the cluster's records (its history
   * is not the cluster's); messages to the node reach it, its answers go out.
   */
  foreign: RaftLike | null;
  foreignInc: string;
  /** The stable terms before the last wipe: what the lost disk held when the node acknowledged it. */
  wipedTerms: number[];
  // ---- stable storage (survives crashes)
  hardState: HardState;
  snapshot: HeldSnapshot | null;
  /** The state machine as durably stored at the snapshot's index (what a snapshot without data stands for). */
  snapshotSm: string;
  /** Stored entries are logBase+1 .. logBase+log.length. */
  logBase: number;
  log: Entry[];
  // ---- shadow of the node's logical log, compacted prefix included, for the invariant checks
  /** terms[i] = term of the entry at i; terms[0] = 0. */
  terms: number[];
  /** hash[i] = hash of the prefix through i; hash[0] = 0. */
  hash: number[];
  // ---- volatile (rebuilt on restart)
  appliedIndex: number;
  sm: Map<string, SmValue>;
  lastCommit: number;
  pending: Map<number, Pending>;
  reads: Map<string, PendingRead>;
  downUntil: number;
  stalledUntil: number;
  lastRole: string;
  /** Interleaving mode: the Ready being handled, null between Readies (volatile: a crash drops it). */
  inflight: InflightReady | null;
  /** The leader's commit index (and term) when last checked against what a quorum holds durably. */
  checkedCommit: { term: number; commit: number };
}

/** A fresh node that has never started: empty disk, empty state machine. */
export function newSimNode(id: string): SimNode {
  return {
    id, raft: null, started: false, retired: false, retireAt: Infinity, incarnation: 0, amnesia: 0, nextJoinAt: 0, foreign: null, foreignInc: '', wipedTerms: [0],
    hardState: { term: 0, votedFor: null }, snapshot: null, snapshotSm: encodeSm(new Map()), logBase: 0, log: [], terms: [0], hash: [0],
    appliedIndex: 0, sm: new Map(), lastCommit: 0, pending: new Map(), reads: new Map(), downUntil: 0, stalledUntil: 0, lastRole: 'follower',
    inflight: null, checkedCommit: { term: 0, commit: 0 },
  };
}

/** What the disk operations report into. */
export interface StorageHost {
  stats: { compactions: number };
  trace(f: () => string): void;
  violate(msg: string): void;
}

function strHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}
/** A printable identity of an entry (index, term, type and payload). */
export function entryKey(e: Entry): string {
  if (e.type === 'normal') return `${e.index}/${e.term}/n/${e.data}`;
  if (e.type === 'noop') return `${e.index}/${e.term}/noop`;
  // the config, not the change: each node bootstraps index 1 with its own id in `change`
  return `${e.index}/${e.term}/c/${JSON.stringify(e.config)}`;
}
/** The hash of a log prefix extended by `e`. */
export function mix(prev: number, e: Entry): number {
  let h = Math.imul(prev ^ strHash(entryKey(e)), 0x9e3779b1) >>> 0;
  h ^= h >>> 16;
  return Math.imul(h, 0x85ebca6b) >>> 0;
}

/**
 * The lease table (src/kv/leases.ts) of each simulated state machine, beside its key map: created by
 * the first lease effect, so a run without leases never has one (and its snapshots keep their form).
 */
const smLeases = new WeakMap<Map<string, SmValue>, LeaseTable>();

/** The lease table of state machine `sm` (empty when it never had a lease). */
export function leasesOf(sm: Map<string, SmValue>): LeaseTable {
  let t = smLeases.get(sm);
  if (t === undefined) smLeases.set(sm, (t = new LeaseTable()));
  return t;
}

/** The lease table of `sm` as JSON ('' when it holds no lease), to compare replicas. */
export function leaseDigest(sm: Map<string, SmValue>): string {
  const t = smLeases.get(sm);
  return t === undefined || t.size === 0 ? '' : JSON.stringify(t.export());
}

/**
 * The state machine serialised, keys in order (a snapshot's data): the array of pairs, or with leases
 * `{"kv":[pairs],"leases":[lease list as in a backup]}`.
 */
export function encodeSm(sm: Map<string, SmValue>): string {
  const kv = [...sm.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const t = smLeases.get(sm);
  if (t === undefined || t.size === 0) return JSON.stringify(kv);
  return JSON.stringify({ kv, leases: encodeLeaseList(t.export()) });
}
export function decodeSm(data: string): Map<string, SmValue> {
  const raw = JSON.parse(data) as [string, SmValue][] | { kv: [string, SmValue][]; leases: unknown };
  if (Array.isArray(raw)) return new Map(raw);
  const sm = new Map(raw.kv);
  smLeases.set(sm, LeaseTable.from(decodeLeaseList(raw.leases)));
  return sm;
}
/**
 * Planted state-machine bugs (mutants.ts), off in every normal run:
 *   'propose-verdict'  — the condition is decided by the proposing leader against its applied state
 *                        and carried in the command (`verdict`); apply trusts it instead of deciding;
 *   'multi-create'     — apply ignores If-None-Match when a command has more than one condition;
 *   'no-term-fence'    — a lease-expire is applied whatever the term of the entry carrying it.
 */
export type SmMutant = 'none' | 'propose-verdict' | 'multi-create' | 'no-term-fence';

/** A committed normal entry's command, or null when it does not decode (applied as a no-op, as the driver does). */
export function entryCommand(e: Entry): KvCommand | null {
  if (e.type !== 'normal') return null;
  // every replica, the checker's reference and its snapshot checks decode the same data: decode once
  const hit = decoded.get(e.data);
  if (hit !== undefined) return hit;
  let cmd: KvCommand | null;
  try { cmd = decodeCommand(e.data); } catch { cmd = null; }
  if (decoded.size >= 20000) decoded.clear();
  decoded.set(e.data, cmd);
  return cmd;
}
/** Decoded commands by entry data (pure: a command's decoding depends on its data only; read-only once cached). */
const decoded = new Map<string, KvCommand | null>();

/**
 * Applies one committed entry to a state machine with the production apply rules (src/kv/apply.ts):
 * decided against `sm` as it stands before the entry, then the resolved effects are folded in. Only
 * normal entries that decode change it; returns what the apply decided (null for anything else).
 */
export function applyToSm(sm: Map<string, SmValue>, e: Entry, mutant: SmMutant = 'none'): EntryOutcome | null {
  let cmd = entryCommand(e);
  if (!cmd) return null;
  const view = { get: (k: string): StoredValue | undefined => sm.get(k) };
  // The entry's term is the fence of lease-expire; the lease table exists once a lease was granted.
  const isFenceOff = mutant === 'no-term-fence' && cmd.kind === 'lease-expire';
  const ctx = { term: isFenceOff && cmd.kind === 'lease-expire' ? cmd.term : e.term, leases: smLeases.get(sm) ?? NO_LEASES };
  let out: EntryOutcome;
  const verdict = mutant === 'propose-verdict' && e.type === 'normal' ? (JSON.parse(e.data) as { verdict?: unknown }).verdict : undefined;
  if (cmd.kind === 'ops' && typeof verdict === 'boolean') {
    // MUTANT: the leader's verdict at propose time stands for the condition
    // (the answer is the real one whenever the verdict happens to agree with the state at apply)
    const real = applyKvCommand(e.index, cmd, view, ctx);
    if (verdict) out = applyKvCommand(e.index, { kind: 'ops', ops: cmd.ops, conditions: [] }, view, ctx);
    else out = real.failed ? real : { index: e.index, effects: [], results: [], failed: cmd.conditions.map((c) => ({ key: c.key, current: sm.get(c.key) ?? null })) };
  } else {
    if (mutant === 'multi-create' && cmd.kind === 'ops' && cmd.conditions.length > 1) {
      // MUTANT: If-None-Match is not checked on multi-key commands
      cmd = { ...cmd, conditions: cmd.conditions.filter((c) => c.pre.kind !== 'absent') };
    }
    out = applyKvCommand(e.index, cmd, view, ctx);
  }
  for (const eff of out.effects) {
    if (eff.type === 'put') sm.set(eff.key, { value: eff.value, index: e.index });
    else sm.delete(eff.key);
  }
  if (out.leaseEffects !== undefined) leasesOf(sm).apply(out.leaseEffects);
  return out;
}

/** The state of the keys `e`'s command touches, as it stands in `sm` (after the entry): [key, value or null] pairs. */
export function touchedState(sm: Map<string, SmValue>, e: Entry): [string, SmValue | null][] {
  const cmd = entryCommand(e);
  if (!cmd) return [];
  return commandKeys(cmd).map((k) => [k, sm.get(k) ?? null]);
}

/**
 * MUTANT 'own-clock' (cluster.ts leaseMutant only): the replica expires lease `id` by itself while it
 * applies the entry at `index`, as if its own clock had run the lease out (no lease-expire entry in
 * the log). Applies the expiry to `sm` and returns what it deleted, to be folded into that entry's outcome.
 */
export function expireOnOwnClock(sm: Map<string, SmValue>, index: number, term: number, id: string): EntryOutcome {
  const view = { get: (k: string): StoredValue | undefined => sm.get(k) };
  const out = applyKvCommand(index, { kind: 'lease-expire', id, term }, view, { term, leases: leasesOf(sm) });
  for (const eff of out.effects) if (eff.type === 'delete') sm.delete(eff.key);
  if (out.leaseEffects !== undefined) leasesOf(sm).apply(out.leaseEffects);
  return out;
}

/** Deep equality of JSON-like values (outcomes, touched state), without serialising them. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** Writes a received snapshot: the log is replaced by it; `terms`/`hash` are the committed prefix's shadow through its index. */
export function storeSnapshot(n: SimNode, s: Snapshot, terms: number[], hash: number[]): void {
  n.snapshot = s;
  n.snapshotSm = s.data;
  n.logBase = s.meta.lastIndex;
  n.log = [];
  n.terms = terms;
  n.hash = hash;
}

/** Writes a Ready's entries (deleting any stored entry at or after the first), checking the storage contract. */
export function persistEntries(host: StorageHost, n: SimNode, entries: Entry[]): void {
  const first = entries[0]!.index;
  const last = n.terms.length - 1;
  if (first <= n.logBase) { host.violate(`${n.id}: asked to persist index ${first} inside its snapshot (through ${n.logBase})`); return; }
  if (first > last + 1) { host.violate(`${n.id}: persisted entries leave a gap (have ${last}, got ${first})`); return; }
  // Raft §5.3: an existing entry is deleted (with all after it) only when it conflicts with a new one.
  const newLast = entries[entries.length - 1]!.index;
  if (newLast < last) {
    let conflict = false;
    for (const e of entries) if (e.index <= last && n.terms[e.index] !== e.term) { conflict = true; break; }
    if (!conflict) host.violate(`log truncation without a conflict: ${n.id} dropped its entries ${newLast + 1}..${last} although every overwritten entry had the same term`);
  }
  if (first <= n.appliedIndex) host.violate(`${n.id}: overwrote index ${first}, which it had already applied (applied=${n.appliedIndex})`);
  n.terms.length = first; n.hash.length = first;
  n.log.length = first - n.logBase - 1;
  for (const e of entries) {
    if (e.index !== n.terms.length) { host.violate(`${n.id}: non-contiguous entries in Ready at ${e.index}`); break; }
    n.log.push(e); n.terms.push(e.term); n.hash.push(mix(n.hash[n.hash.length - 1]!, e));
  }
}

/** Writes the snapshot compact() or supplySnapshotData() returned and drops the log through it. */
export function persistCompaction(host: StorageHost, n: SimNode, snap: HeldSnapshot | null, data: string, how: string): void {
  if (!snap) return;
  host.stats.compactions++;
  const L = snap.meta.lastIndex;
  if (L !== n.appliedIndex || snap.meta.lastTerm !== n.terms[L]) host.violate(`${n.id}: ${how}(${n.appliedIndex}) returned a snapshot through ${L}/${snap.meta.lastTerm}`);
  n.snapshot = snap;
  n.snapshotSm = data;
  n.log = n.log.slice(Math.max(0, L - n.logBase));
  n.logBase = L;
  host.trace(() => `${n.id} compacts through ${L}${snap.data === null ? ' (no data)' : ''}`);
}

/** Drops everything node `n` stored (it must be down): log, snapshot, term and vote; it becomes a new incarnation. */
export function wipe(host: StorageHost, n: SimNode): void {
  n.wipedTerms = n.terms;
  n.hardState = { term: 0, votedFor: null };
  n.snapshot = null;
  n.snapshotSm = encodeSm(new Map());
  n.logBase = 0;
  n.log = [];
  n.terms = [0];
  n.hash = [0];
  n.amnesia++;
  host.trace(() => `wipe ${n.id}: all storage lost`);
}
