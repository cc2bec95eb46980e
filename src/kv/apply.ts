/**
 * The apply rules of the key-value state machine, as pure functions: given the values of the keys a
 * command touches as they stand before its entry, and the entry's index, decide what the command
 * does. Every replica runs these on the same committed entries in the same order, so every replica
 * decides the same; the driver and the storage backends never decide anything themselves.
 * Called by KvStateMachine (state-machine.ts) and by the unit tests directly.
 */
import type { KvCommand, LeaseCommand } from './commands.js';
import { preconditionHolds } from './conditions.js';
import { leaseIdOf, NO_LEASES, type LeaseView } from './leases.js';
import { evaluateTxn, txnKeys } from './txn.js';
import type { DeleteReason, EntryOutcome, FailedCondition, HistoryEffect, KvEffect, KvOp, KvOpResult, LeaseEffect, StoredValue } from './types.js';

/** The state a command is decided against: the current value of a key, or undefined when absent. */
export interface KvView {
  get(key: string): StoredValue | undefined;
}

/** The keys a command reads or writes, each once, in first-mention order (what apply must look up). */
export function touchedKeys(ops: readonly KvOp[]): string[] {
  return [...new Set(ops.map((o) => o.key))];
}

/** What apply needs beyond the entry's index: its term (the fence of lease-expire) and the lease table. */
export interface ApplyContext {
  term: number;
  leases: LeaseView;
}

/**
 * Applies one command at `index` against `view`. Operations run in order and each sees the ones
 * before it in the same command (a set then a delete of one key leaves it absent). The rules:
 *   set    — the key gets `{value, index}`; effect `put` with the replaced value's index (null if new);
 *            with `lease` the key is attached to that lease (detached from any other), without it the
 *            key is detached from any lease it had;
 *   delete — a present key is removed (effect `delete` with its index) and detached from its lease;
 *            an absent key changes nothing and is reported as `deleted: false` (decided here, at
 *            apply, never by an earlier read).
 * A set naming a lease that does not exist in `leases` fails the whole command: nothing changes and
 * `leaseNotFound` names it. The whole command lands at one index, atomically: its effects are
 * persisted in one batch. Never throws on a well-formed command; `view` is not modified.
 */
export function applyCommand(index: number, ops: readonly KvOp[], view: KvView, leases: LeaseView = NO_LEASES): EntryOutcome {
  for (const op of ops) {
    if (op.op === 'set' && op.lease !== undefined && leases.lease(op.lease) === undefined) return { index, effects: [], results: [], leaseNotFound: op.lease };
  }
  // What this command has written so far, over the view (null: deleted by an earlier op).
  const written = new Map<string, StoredValue | null>();
  const current = (key: string): StoredValue | undefined => {
    const w = written.get(key);
    return w === undefined ? view.get(key) : (w ?? undefined);
  };
  // The lease each key touched so far is attached to (null: none), over `leases`.
  const owners = new Map<string, string | null>();
  const ownerOf = (key: string): string | undefined => {
    const o = owners.get(key);
    return o === undefined ? leases.leaseOfKey(key) : (o ?? undefined);
  };
  const effects: KvEffect[] = [];
  const results: KvOpResult[] = [];
  const leaseEffects: LeaseEffect[] = [];
  const setOwner = (key: string, lease: string | undefined): void => {
    const was = ownerOf(key);
    if (was === lease) return;
    if (was !== undefined) leaseEffects.push({ type: 'detach', id: was, key });
    if (lease !== undefined) leaseEffects.push({ type: 'attach', id: lease, key });
    owners.set(key, lease ?? null);
  };
  for (const op of ops) {
    const prev = current(op.key);
    const prevIndex = prev === undefined ? null : prev.index;
    if (op.op === 'set') {
      effects.push(op.lease === undefined ? { type: 'put', key: op.key, value: op.value, prevIndex } : { type: 'put', key: op.key, value: op.value, prevIndex, lease: op.lease });
      results.push({ op: 'set', key: op.key, index, prevIndex });
      written.set(op.key, { value: op.value, index });
      setOwner(op.key, op.lease);
    } else if (prev !== undefined) {
      effects.push({ type: 'delete', key: op.key, prevIndex: prev.index });
      results.push({ op: 'delete', key: op.key, deleted: true, prevIndex });
      written.set(op.key, null);
      setOwner(op.key, undefined);
    } else {
      results.push({ op: 'delete', key: op.key, deleted: false, prevIndex: null });
    }
  }
  return leaseEffects.length === 0 ? { index, effects, results } : { index, effects, results, leaseEffects };
}

/**
 * Applies a lease command at `index` (term `term`) against `view` and `leases`:
 *   lease-grant      — creates `l-<index>` with remainingMs = ttlMs;
 *   lease-revoke     — deletes the lease and every key attached to it, in this one entry (delete
 *                      effects with reason "lease-revoked"); an unknown lease fails (`leaseNotFound`);
 *   lease-expire     — the same with reason "lease-expired", but only if the command's term is the
 *                      entry's term: an expiry proposed by a leader that lost office before its entry
 *                      was committed in its own term is a no-op, as is one for an unknown lease;
 *   lease-checkpoint — records each listed lease's remaining time (capped at its TTL); unknown ids are skipped.
 */
export function applyLeaseCommand(index: number, term: number, cmd: LeaseCommand, view: KvView, leases: LeaseView): EntryOutcome {
  switch (cmd.kind) {
    case 'lease-grant': {
      const id = leaseIdOf(index);
      return { index, effects: [], results: [], leaseEffects: [{ type: 'lease-put', lease: { id, ttlMs: cmd.ttlMs, grantedIndex: index, remainingMs: cmd.ttlMs } }], lease: { op: 'grant', id, ttlMs: cmd.ttlMs } };
    }
    case 'lease-revoke': {
      if (leases.lease(cmd.id) === undefined) return { index, effects: [], results: [], leaseNotFound: cmd.id };
      const dropped = dropLease(index, cmd.id, 'lease-revoked', view, leases);
      return { ...dropped.outcome, lease: { op: 'revoke', id: cmd.id, deleted: dropped.deleted } };
    }
    case 'lease-expire': {
      // The term fence: a deposed leader's expiry committed under a later term changes nothing.
      if (cmd.term !== term || leases.lease(cmd.id) === undefined) return { index, effects: [], results: [], lease: { op: 'expire', id: cmd.id, isApplied: false, deleted: [] } };
      const dropped = dropLease(index, cmd.id, 'lease-expired', view, leases);
      return { ...dropped.outcome, lease: { op: 'expire', id: cmd.id, isApplied: true, deleted: dropped.deleted } };
    }
    case 'lease-checkpoint': {
      const leaseEffects: LeaseEffect[] = [];
      for (const [id, remainingMs] of cmd.remaining) {
        const l = leases.lease(id);
        if (l !== undefined) leaseEffects.push({ type: 'lease-put', lease: { ...l, remainingMs: Math.min(remainingMs, l.ttlMs) } });
      }
      const outcome: EntryOutcome = { index, effects: [], results: [], lease: { op: 'checkpoint', count: leaseEffects.length } };
      return leaseEffects.length === 0 ? outcome : { ...outcome, leaseEffects };
    }
  }
}

/** Deletes lease `id` and its keys (each detached first), all at `index`. */
function dropLease(index: number, id: string, reason: DeleteReason, view: KvView, leases: LeaseView): { outcome: EntryOutcome; deleted: string[] } {
  const effects: KvEffect[] = [];
  const results: KvOpResult[] = [];
  const leaseEffects: LeaseEffect[] = [];
  const deleted: string[] = [];
  for (const key of leases.keysOf(id)) {
    leaseEffects.push({ type: 'detach', id, key });
    const prev = view.get(key);
    // Invariant: an attached key exists (a delete detaches it); a missing one is simply not deleted.
    if (prev === undefined) continue;
    effects.push({ type: 'delete', key, prevIndex: prev.index, reason, lease: id });
    results.push({ op: 'delete', key, deleted: true, prevIndex: prev.index });
    deleted.push(key);
  }
  leaseEffects.push({ type: 'lease-delete', id });
  return { outcome: { index, effects, results, leaseEffects }, deleted };
}

/** The keys any command reads or writes, each once (what apply must look up; a revoke or expiry deletes its lease's keys). */
export function commandKeys(cmd: KvCommand, leases: LeaseView = NO_LEASES): string[] {
  if (cmd.kind === 'lease-revoke' || cmd.kind === 'lease-expire') return leases.keysOf(cmd.id);
  if (cmd.kind === 'lease-grant' || cmd.kind === 'lease-checkpoint') return [];
  if (cmd.kind === 'txn') {
    const { read, written } = txnKeys(cmd.txn);
    return [...new Set([...read, ...written])];
  }
  return [...new Set([...cmd.conditions.map((c) => c.key), ...cmd.ops.map((o) => o.key)])];
}

/**
 * Applies any command at `index` against `view`, deciding its conditions here, at apply, on every
 * replica (never by the leader before proposing):
 *   conditional ops — every precondition must hold against the state before the entry; if any does
 *            not, nothing changes and `failed` lists each failed key with its current state;
 *   txn     — the compares choose the branch (txn.ts); the branch's writes are applied like ops, all at
 *            `index`, and `txn` carries the branch's results (a set naming an unknown lease fails it all);
 *   lease commands — see applyLeaseCommand (`ctx.term` is the entry's own term, for the expiry fence).
 */
export function applyKvCommand(index: number, cmd: KvCommand, view: KvView, ctx: ApplyContext = { term: 0, leases: NO_LEASES }): EntryOutcome {
  if (cmd.kind === 'txn') {
    const decision = evaluateTxn(cmd.txn, (key) => view.get(key), index);
    const applied = applyCommand(index, decision.writes, view, ctx.leases);
    if (applied.leaseNotFound !== undefined) return applied;
    return { ...applied, txn: { succeeded: decision.succeeded, results: decision.results } };
  }
  if (cmd.kind !== 'ops') return applyLeaseCommand(index, ctx.term, cmd, view, ctx.leases);
  const failed: FailedCondition[] = [];
  for (const c of cmd.conditions) {
    const current = view.get(c.key);
    if (!preconditionHolds(c.pre, current)) failed.push({ key: c.key, current: current ?? null });
  }
  if (failed.length > 0) return { index, effects: [], results: [], failed };
  return applyCommand(index, cmd.ops, view, ctx.leases);
}

/**
 * Folds one entry's effects into `state` (the in-memory picture of the touched keys), so that the
 * next entry of the same batch is decided against it. Used by KvStateMachine between entries.
 */
export function foldEffects(state: Map<string, StoredValue | undefined>, index: number, effects: readonly KvEffect[]): void {
  for (const e of effects) state.set(e.key, e.type === 'put' ? { value: e.value, index } : undefined);
}

/**
 * One entry's effects as the watch history keeps them: each with `prevValue`, the value it replaced
 * or removed, read from `view` (the state before the entry) and from the entry's own earlier effects
 * (a key written twice in one transaction). Called by KvStateMachine before it folds the effects.
 */
export function withPrevValues(index: number, effects: readonly KvEffect[], view: KvView): HistoryEffect[] {
  const written = new Map<string, string | null>();
  return effects.map((e) => {
    const w = written.get(e.key);
    const prev = w === undefined ? view.get(e.key)?.value : (w ?? undefined);
    written.set(e.key, e.type === 'put' ? e.value : null);
    // Invariant (applyCommand): an effect with a prevIndex replaced a value, which the view or the entry holds.
    if (e.prevIndex !== null && prev === undefined) throw new Error(`apply: no previous value for ${JSON.stringify(e.key)} at ${index}, though prevIndex is ${e.prevIndex}`);
    return prev === undefined ? { ...e } : { ...e, prevValue: prev };
  });
}
