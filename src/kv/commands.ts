/**
 * The replicated command format: one log entry carries a list of key-value operations that apply
 * atomically. Encoded once by the API layer, decoded by the state machine on apply.
 */
import type { KvOp } from '../storage/types.js';

/** Encodes operations as the opaque `data` of a normal log entry. */
export function encodeCommand(ops: KvOp[]): string {
  return JSON.stringify({ ops });
}

/** Decodes a committed entry's data. A malformed command is a bug (only our own API writes them), so it throws. */
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
