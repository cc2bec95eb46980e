/**
 * The replicated command format: one log entry carries one command, applied atomically at the
 * entry's index. Encoded once by the API layer, decoded by the state machine on apply:
 *   {"ops":[...]}                      set/delete operations (the format since the first release)
 *   {"ops":[...],"if":[{"key","pre"}]} the same, only if every precondition holds at apply
 *   {"txn":{"compare","success","failure"}}  a transaction (compares decided at apply)
 *   {"kind":"lease-grant","ttlMs"}      grant a lease, id `l-<entry index>` (docs/leases.md)
 *   {"kind":"lease-revoke","id"}        revoke a lease and delete its keys
 *   {"kind":"lease-expire","id","term"} expire it: applied only if `term` is the entry's own term
 *   {"kind":"lease-checkpoint","remaining":[[id,ms],...]}  record the leases' remaining time
 * A set operation may carry `"lease":"l-N"` (the key is attached to that lease).
 * A command from an older build (`{"ops"}` only) decodes unchanged. Decoding checks structure only,
 * never configured limits, so every replica decodes every entry the same way whatever its config.
 */
import { isPrecondition, type Precondition } from './conditions.js';
import { isLeaseId } from './leases.js';
import { parseTxn, type TxnRequest } from './txn.js';
import type { KvOp } from './types.js';

/** A precondition on one key, decided when the entry is applied (see conditions.ts). */
export interface KeyCondition {
  key: string;
  pre: Precondition;
}

/** What one log entry asks the state machine to do. */
export type KvCommand =
  | { kind: 'ops'; ops: KvOp[]; conditions: KeyCondition[] }
  | { kind: 'txn'; txn: TxnRequest }
  | { kind: 'lease-grant'; ttlMs: number }
  | { kind: 'lease-revoke'; id: string }
  | { kind: 'lease-expire'; id: string; term: number }
  | { kind: 'lease-checkpoint'; remaining: Array<[string, number]> };

/** The lease commands' kinds. */
export type LeaseCommand = Extract<KvCommand, { kind: `lease-${string}` }>;

/** Encodes operations as the opaque `data` of a normal log entry. */
export function encodeCommand(ops: KvOp[], conditions: KeyCondition[] = []): string {
  return conditions.length === 0 ? JSON.stringify({ ops }) : JSON.stringify({ ops, if: conditions });
}

/** Encodes any command (see the module comment for the format). */
export function encodeKvCommand(cmd: KvCommand): string {
  if (cmd.kind === 'txn') return JSON.stringify({ txn: cmd.txn });
  if (cmd.kind === 'ops') return encodeCommand(cmd.ops, cmd.conditions);
  return JSON.stringify(cmd);
}

/** Why `ops` is not a valid command, or null when it is. Called before a command is proposed. */
export function validateOps(ops: readonly unknown[]): string | null {
  if (!Array.isArray(ops) || ops.length === 0) return 'a command needs at least one operation';
  for (const raw of ops) {
    const o = raw as { op?: unknown; key?: unknown; value?: unknown; lease?: unknown } | null;
    if (typeof o !== 'object' || o === null) return 'an operation must be an object';
    if (o.op === 'set' && typeof o.key === 'string' && typeof o.value === 'string' && (o.lease === undefined || isLeaseId(o.lease))) continue;
    if (o.op === 'delete' && typeof o.key === 'string') continue;
    return 'an operation must be {"op":"set","key","value"} or {"op":"delete","key"} with string key and value';
  }
  return null;
}

/** Why `cmd` is not a valid command, or null when it is (called before a command is proposed). */
export function validateCommand(cmd: KvCommand): string | null {
  try {
    decodeCommand(encodeKvCommand(cmd));
    return null;
  } catch (err) {
    return (err as Error).message.replace(/^kv: /, '');
  }
}

/** Whether `data` (a normal entry's command, e.g. from a peer) decodes; the peer parser refuses entries that do not. */
export function isValidCommand(data: string): boolean {
  try {
    decodeCommand(data);
    return true;
  } catch {
    return false;
  }
}

const NO_LIMITS = { maxOps: Number.MAX_SAFE_INTEGER, maxKeyBytes: Number.MAX_SAFE_INTEGER, maxValueBytes: Number.MAX_SAFE_INTEGER };

/** Decodes a committed entry's data; throws on a malformed command (the driver then applies it as a no-op). */
export function decodeCommand(data: string): KvCommand {
  const parsed: unknown = JSON.parse(data);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('kv: malformed command in the log');
  const p = parsed as { ops?: unknown; if?: unknown; txn?: unknown; kind?: unknown };
  if (p.kind !== undefined) return decodeLeaseCommand(parsed as Record<string, unknown>);
  if (p.txn !== undefined) {
    if (p.ops !== undefined || p.if !== undefined) throw new Error('kv: malformed command in the log');
    try {
      return { kind: 'txn', txn: parseTxn(p.txn, NO_LIMITS) };
    } catch (err) {
      throw new Error(`kv: malformed transaction in the log: ${(err as Error).message}`);
    }
  }
  if (!Array.isArray(p.ops)) throw new Error('kv: malformed command in the log');
  const ops: KvOp[] = [];
  for (const raw of p.ops) {
    const o = raw as { op?: unknown; key?: unknown; value?: unknown; lease?: unknown } | null;
    if (typeof o === 'object' && o !== null && o.op === 'set' && typeof o.key === 'string' && typeof o.value === 'string' && o.lease === undefined) ops.push({ op: 'set', key: o.key, value: o.value });
    else if (typeof o === 'object' && o !== null && o.op === 'set' && typeof o.key === 'string' && typeof o.value === 'string' && isLeaseId(o.lease)) ops.push({ op: 'set', key: o.key, value: o.value, lease: o.lease });
    else if (typeof o === 'object' && o !== null && o.op === 'delete' && typeof o.key === 'string') ops.push({ op: 'delete', key: o.key });
    else throw new Error('kv: malformed operation in the log');
  }
  const conditions: KeyCondition[] = [];
  if (p.if !== undefined) {
    if (!Array.isArray(p.if) || p.if.length === 0) throw new Error('kv: malformed conditions in the log');
    for (const raw of p.if) {
      const c = raw as { key?: unknown; pre?: unknown } | null;
      if (typeof c !== 'object' || c === null || typeof c.key !== 'string' || !isPrecondition(c.pre)) throw new Error('kv: malformed condition in the log');
      conditions.push({ key: c.key, pre: c.pre });
    }
  }
  return { kind: 'ops', ops, conditions };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Decodes a lease command (structure only: whether the lease exists is decided at apply). */
function decodeLeaseCommand(p: Record<string, unknown>): LeaseCommand {
  const fields = Object.keys(p).sort().join(',');
  if (p.kind === 'lease-grant' && fields === 'kind,ttlMs' && isCount(p.ttlMs) && p.ttlMs > 0) return { kind: 'lease-grant', ttlMs: p.ttlMs };
  if (p.kind === 'lease-revoke' && fields === 'id,kind' && isLeaseId(p.id)) return { kind: 'lease-revoke', id: p.id };
  if (p.kind === 'lease-expire' && fields === 'id,kind,term' && isLeaseId(p.id) && isCount(p.term)) return { kind: 'lease-expire', id: p.id, term: p.term };
  if (p.kind === 'lease-checkpoint' && fields === 'kind,remaining' && Array.isArray(p.remaining)) {
    const remaining: Array<[string, number]> = [];
    for (const r of p.remaining as unknown[]) {
      if (!Array.isArray(r) || r.length !== 2 || !isLeaseId(r[0]) || !isCount(r[1])) throw new Error('kv: malformed lease checkpoint in the log');
      remaining.push([r[0], r[1]]);
    }
    return { kind: 'lease-checkpoint', remaining };
  }
  throw new Error('kv: malformed lease command in the log');
}
