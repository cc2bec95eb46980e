/**
 * The apply rules of the key-value state machine, as pure functions: given the values of the keys a
 * command touches as they stand before its entry, and the entry's index, decide what the command
 * does. Every replica runs these on the same committed entries in the same order, so every replica
 * decides the same; the driver and the storage backends never decide anything themselves.
 * Called by KvStateMachine (state-machine.ts) and by the unit tests directly.
 */
import type { KvCommand } from './commands.js';
import { preconditionHolds } from './conditions.js';
import { evaluateTxn, txnKeys } from './txn.js';
import type { EntryOutcome, FailedCondition, HistoryEffect, KvEffect, KvOp, KvOpResult, StoredValue } from './types.js';

/** The state a command is decided against: the current value of a key, or undefined when absent. */
export interface KvView {
  get(key: string): StoredValue | undefined;
}

/** The keys a command reads or writes, each once, in first-mention order (what apply must look up). */
export function touchedKeys(ops: readonly KvOp[]): string[] {
  return [...new Set(ops.map((o) => o.key))];
}

/**
 * Applies one command at `index` against `view`. Operations run in order and each sees the ones
 * before it in the same command (a set then a delete of one key leaves it absent). The rules:
 *   set    — the key gets `{value, index}`; effect `put` with the replaced value's index (null if new);
 *   delete — a present key is removed (effect `delete` with its index); an absent key changes nothing
 *            and is reported as `deleted: false` (decided here, at apply, never by an earlier read).
 * The whole command lands at one index, atomically: its effects are persisted in one batch.
 * Never throws on a well-formed command; `view` is not modified.
 */
export function applyCommand(index: number, ops: readonly KvOp[], view: KvView): EntryOutcome {
  // What this command has written so far, over the view (null: deleted by an earlier op).
  const written = new Map<string, StoredValue | null>();
  const current = (key: string): StoredValue | undefined => {
    const w = written.get(key);
    return w === undefined ? view.get(key) : (w ?? undefined);
  };
  const effects: KvEffect[] = [];
  const results: KvOpResult[] = [];
  for (const op of ops) {
    const prev = current(op.key);
    const prevIndex = prev === undefined ? null : prev.index;
    if (op.op === 'set') {
      effects.push({ type: 'put', key: op.key, value: op.value, prevIndex });
      results.push({ op: 'set', key: op.key, index, prevIndex });
      written.set(op.key, { value: op.value, index });
    } else if (prev !== undefined) {
      effects.push({ type: 'delete', key: op.key, prevIndex: prev.index });
      results.push({ op: 'delete', key: op.key, deleted: true, prevIndex });
      written.set(op.key, null);
    } else {
      results.push({ op: 'delete', key: op.key, deleted: false, prevIndex: null });
    }
  }
  return { index, effects, results };
}

/** The keys any command reads or writes, each once (what apply must look up). */
export function commandKeys(cmd: KvCommand): string[] {
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
 *            `index`, and `txn` carries the branch's results.
 */
export function applyKvCommand(index: number, cmd: KvCommand, view: KvView): EntryOutcome {
  if (cmd.kind === 'txn') {
    const decision = evaluateTxn(cmd.txn, (key) => view.get(key), index);
    const applied = applyCommand(index, decision.writes, view);
    return { ...applied, txn: { succeeded: decision.succeeded, results: decision.results } };
  }
  const failed: FailedCondition[] = [];
  for (const c of cmd.conditions) {
    const current = view.get(c.key);
    if (!preconditionHolds(c.pre, current)) failed.push({ key: c.key, current: current ?? null });
  }
  if (failed.length > 0) return { index, effects: [], results: [], failed };
  return applyCommand(index, cmd.ops, view);
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
