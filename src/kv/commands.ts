/**
 * The replicated command format: one log entry carries a list of key-value operations that apply
 * atomically. Encoded once by the API layer, decoded by the state machine on apply.
 */
import type { KvOp } from './types.js';

/** Encodes operations as the opaque `data` of a normal log entry. */
export function encodeCommand(ops: KvOp[]): string {
  return JSON.stringify({ ops });
}

/** Why `ops` is not a valid command, or null when it is. Called before a command is proposed. */
export function validateOps(ops: readonly unknown[]): string | null {
  if (!Array.isArray(ops) || ops.length === 0) return 'a command needs at least one operation';
  for (const raw of ops) {
    const o = raw as { op?: unknown; key?: unknown; value?: unknown } | null;
    if (typeof o !== 'object' || o === null) return 'an operation must be an object';
    if (o.op === 'set' && typeof o.key === 'string' && typeof o.value === 'string') continue;
    if (o.op === 'delete' && typeof o.key === 'string') continue;
    return 'an operation must be {"op":"set","key","value"} or {"op":"delete","key"} with string key and value';
  }
  return null;
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

/** Decodes a committed entry's data; throws on a malformed command (the driver then applies it as a no-op). */
export function decodeCommand(data: string): KvOp[] {
  const parsed: unknown = JSON.parse(data);
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { ops?: unknown }).ops)) {
    throw new Error('kv: malformed command in the log');
  }
  const ops: KvOp[] = [];
  for (const raw of (parsed as { ops: unknown[] }).ops) {
    const o = raw as { op?: unknown; key?: unknown; value?: unknown };
    if (o.op === 'set' && typeof o.key === 'string' && typeof o.value === 'string') ops.push({ op: 'set', key: o.key, value: o.value });
    else if (o.op === 'delete' && typeof o.key === 'string') ops.push({ op: 'delete', key: o.key });
    else throw new Error('kv: malformed operation in the log');
  }
  return ops;
}
