/**
 * The replicated lease table (docs/leases.md): which leases exist, their durations, and which keys
 * are attached to each. Apply decides against a LeaseView (apply.ts); KvStateMachine keeps the table
 * in memory, loaded from storage at first use, and folds each batch's LeaseEffects into it once the
 * storage backend has persisted them. No clock time is ever kept here.
 */
import type { LeaseEffect, LeaseRecord, LeaseState } from './types.js';

/** The lease state a command is decided against. */
export interface LeaseView {
  /** The lease, or undefined when it does not exist (never granted, revoked or expired). */
  lease(id: string): LeaseRecord | undefined;
  /** The keys attached to `id`, in byte order. */
  keysOf(id: string): string[];
  /** The lease `key` is attached to, or undefined. */
  leaseOfKey(key: string): string | undefined;
}

/** The id of the lease granted by the entry at `index`. */
export function leaseIdOf(index: number): string {
  return `l-${index}`;
}

/** Whether `id` has the shape of a lease id (`l-` and a positive index). */
export function isLeaseId(id: unknown): id is string {
  return typeof id === 'string' && /^l-[1-9][0-9]{0,15}$/.test(id);
}

/** Longest lease TTL accepted by POST /leases: 24 h. */
export const MAX_LEASE_TTL_MS = 24 * 60 * 60 * 1000;

/** An empty lease table (for callers that have none, such as the simulator before it models leases). */
export const NO_LEASES: LeaseView = {
  lease: () => undefined,
  keysOf: () => [],
  leaseOfKey: () => undefined,
};

/** The in-memory lease table of one replica. */
export class LeaseTable implements LeaseView {
  private readonly leases = new Map<string, LeaseRecord>();
  private readonly keys = new Map<string, Set<string>>();
  private readonly owner = new Map<string, string>();

  /** A table holding `state` (as loaded from storage or a snapshot). */
  static from(state: LeaseState): LeaseTable {
    const t = new LeaseTable();
    for (const l of state.leases) t.leases.set(l.id, { ...l });
    for (const [id, key] of state.attached) t.attach(id, key);
    return t;
  }

  lease(id: string): LeaseRecord | undefined {
    const l = this.leases.get(id);
    return l === undefined ? undefined : { ...l };
  }

  keysOf(id: string): string[] {
    return [...(this.keys.get(id) ?? [])].sort(compareBytes);
  }

  leaseOfKey(key: string): string | undefined {
    return this.owner.get(key);
  }

  /** Every lease, by grant order. */
  list(): LeaseRecord[] {
    return [...this.leases.values()].sort((a, b) => a.grantedIndex - b.grantedIndex).map((l) => ({ ...l }));
  }

  /** Number of keys attached to `id`. */
  keyCount(id: string): number {
    return this.keys.get(id)?.size ?? 0;
  }

  get size(): number {
    return this.leases.size;
  }

  /** Folds persisted effects into the table. */
  apply(effects: readonly LeaseEffect[]): void {
    for (const e of effects) {
      if (e.type === 'lease-put') this.leases.set(e.lease.id, { ...e.lease });
      else if (e.type === 'lease-delete') {
        this.leases.delete(e.id);
        for (const k of this.keys.get(e.id) ?? []) this.owner.delete(k);
        this.keys.delete(e.id);
      } else if (e.type === 'attach') this.attach(e.id, e.key);
      else {
        this.keys.get(e.id)?.delete(e.key);
        if (this.owner.get(e.key) === e.id) this.owner.delete(e.key);
      }
    }
  }

  /** The whole table, for a snapshot or a backup (leases by grant order, keys in byte order). */
  export(): LeaseState {
    const leases = this.list();
    return { leases, attached: leases.flatMap((l) => this.keysOf(l.id).map((k): [string, string] => [l.id, k])) };
  }

  private attach(id: string, key: string): void {
    let set = this.keys.get(id);
    if (set === undefined) this.keys.set(id, (set = new Set()));
    set.add(key);
    this.owner.set(key, id);
  }
}

/** UTF-8 byte order of two strings (the order keys are stored and listed in). */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A view over a table with the effects of the entries decided so far in one batch folded in, so each
 * entry of a batch is decided against the state the ones before it left; the table itself only
 * changes once the batch is persisted.
 */
export class LeaseOverlay implements LeaseView {
  private readonly leases = new Map<string, LeaseRecord | null>();
  private readonly owner = new Map<string, string | null>();
  private readonly added = new Map<string, Set<string>>();
  private readonly removed = new Map<string, Set<string>>();

  constructor(private readonly base: LeaseView) {}

  lease(id: string): LeaseRecord | undefined {
    const l = this.leases.get(id);
    if (l === null) return undefined;
    return l === undefined ? this.base.lease(id) : { ...l };
  }

  keysOf(id: string): string[] {
    if (this.leases.get(id) === null) return [];
    const removed = this.removed.get(id);
    const keys = new Set(this.base.keysOf(id).filter((k) => !removed?.has(k)));
    for (const k of this.added.get(id) ?? []) keys.add(k);
    return [...keys].sort(compareBytes);
  }

  leaseOfKey(key: string): string | undefined {
    const o = this.owner.get(key);
    if (o === null) return undefined;
    return o === undefined ? this.base.leaseOfKey(key) : o;
  }

  fold(effects: readonly LeaseEffect[]): void {
    for (const e of effects) {
      if (e.type === 'lease-put') this.leases.set(e.lease.id, { ...e.lease });
      else if (e.type === 'lease-delete') this.leases.set(e.id, null);
      else if (e.type === 'attach') {
        this.owner.set(e.key, e.id);
        this.removed.get(e.id)?.delete(e.key);
        const set = this.added.get(e.id) ?? new Set<string>();
        this.added.set(e.id, set.add(e.key));
      } else {
        if (this.leaseOfKey(e.key) === e.id) this.owner.set(e.key, null);
        this.added.get(e.id)?.delete(e.key);
        const set = this.removed.get(e.id) ?? new Set<string>();
        this.removed.set(e.id, set.add(e.key));
      }
    }
  }
}

/** Parses a lease table as stored in a snapshot or backup (`[{id,ttlMs,grantedIndex,remainingMs,keys}]`); throws on malformed data. */
export function decodeLeaseList(raw: unknown): LeaseState {
  if (!Array.isArray(raw)) throw new Error('leases: expected an array');
  const state: LeaseState = { leases: [], attached: [] };
  for (const l of raw as unknown[]) {
    const o = l as { id?: unknown; ttlMs?: unknown; grantedIndex?: unknown; remainingMs?: unknown; keys?: unknown } | null;
    if (typeof o !== 'object' || o === null || !isLeaseId(o.id) || !isCount(o.ttlMs) || !isCount(o.grantedIndex) || !isCount(o.remainingMs) ||
      !Array.isArray(o.keys) || !o.keys.every((k) => typeof k === 'string')) {
      throw new Error('leases: malformed lease');
    }
    state.leases.push({ id: o.id, ttlMs: o.ttlMs, grantedIndex: o.grantedIndex, remainingMs: o.remainingMs });
    for (const k of o.keys as string[]) state.attached.push([o.id, k]);
  }
  return state;
}

/** The stored form of a lease table: one object per lease with its keys. */
export function encodeLeaseList(state: LeaseState): Array<LeaseRecord & { keys: string[] }> {
  const keys = new Map<string, string[]>();
  for (const [id, k] of state.attached) {
    const list = keys.get(id) ?? [];
    keys.set(id, list);
    list.push(k);
  }
  return state.leases.map((l) => ({ ...l, keys: keys.get(l.id) ?? [] }));
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
