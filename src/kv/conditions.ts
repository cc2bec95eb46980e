/**
 * Preconditions of conditional writes (`If-Match`, `If-None-Match`, RFC 9110 §13.1) as the state
 * machine decides them at apply. The API parses the headers into a Precondition; the replicated
 * command carries it; every replica evaluates it against its own state at the entry's index, so a
 * condition is never decided by the leader alone (design: ../../docs/api.md "Conditional writes").
 */
import type { StoredValue } from './types.js';

/**
 * A condition on one key's current state.
 * - `exists`: the key must exist (`If-Match: *`); `absent`: it must not (`If-None-Match: *`).
 * - `index`: the key must exist and have been written last at one of `indexes` (`If-Match: "17", "18"`).
 */
export type Precondition =
  | { kind: 'exists' }
  | { kind: 'absent' }
  | { kind: 'index'; indexes: number[] };

/** Why a header value is malformed, thrown by the parsers (the API turns it into a 400). */
export class PreconditionSyntaxError extends Error {}

/** Most entity tags accepted in one If-Match list. */
export const MAX_IF_MATCH_TAGS = 16;

/**
 * Parses an `If-Match` value: `*`, or a comma-separated list of strong entity tags (`"17"`). A weak
 * tag (`W/"17"`) never matches under strong comparison (RFC 9110 §13.1.1), so a list of only weak
 * tags can never succeed; it is kept (as index 0, which no write has) rather than refused, so the
 * answer is the 412 the RFC prescribes. Anything else is a PreconditionSyntaxError.
 */
export function parseIfMatch(header: string): Precondition {
  const value = header.trim();
  if (value === '*') return { kind: 'exists' };
  const indexes: number[] = [];
  const parts = value.split(',');
  if (parts.length > MAX_IF_MATCH_TAGS) throw new PreconditionSyntaxError(`If-Match lists ${parts.length} tags; at most ${MAX_IF_MATCH_TAGS}`);
  for (const raw of parts) {
    const part = raw.trim();
    const weak = part.startsWith('W/');
    const tag = weak ? part.slice(2) : part;
    const m = /^"([0-9]{1,15})"$/.exec(tag);
    if (!m) throw new PreconditionSyntaxError(`If-Match: ${JSON.stringify(part)} is not an index tag like "17" (or *)`);
    const index = Number(m[1]);
    if (!Number.isSafeInteger(index) || index < 1) throw new PreconditionSyntaxError(`If-Match: index ${m[1]} out of range`);
    indexes.push(weak ? 0 : index);
  }
  return { kind: 'index', indexes };
}

/** Parses an `If-None-Match` value; only `*` (the key must not exist) is meaningful for writes. */
export function parseIfNoneMatch(header: string): Precondition {
  if (header.trim() !== '*') throw new PreconditionSyntaxError('If-None-Match on a write must be *');
  return { kind: 'absent' };
}

/**
 * Reads the two headers of one request into at most one precondition. Both at once is ambiguous and
 * refused; neither yields null (an unconditional write).
 */
export function preconditionFromHeaders(ifMatch: string | undefined, ifNoneMatch: string | undefined): Precondition | null {
  const hasMatch = ifMatch !== undefined && ifMatch !== '';
  const hasNone = ifNoneMatch !== undefined && ifNoneMatch !== '';
  if (hasMatch && hasNone) throw new PreconditionSyntaxError('send If-Match or If-None-Match, not both');
  if (hasMatch) return parseIfMatch(ifMatch);
  if (hasNone) return parseIfNoneMatch(ifNoneMatch);
  return null;
}

/** Whether `current` (the key's state at apply; undefined when absent) satisfies `cond`. */
export function preconditionHolds(cond: Precondition, current: StoredValue | undefined): boolean {
  switch (cond.kind) {
    case 'exists':
      return current !== undefined;
    case 'absent':
      return current === undefined;
    case 'index':
      return current !== undefined && cond.indexes.includes(current.index);
  }
}

/** Validates a precondition decoded from the log or a peer (unknown input). */
export function isPrecondition(raw: unknown): raw is Precondition {
  if (typeof raw !== 'object' || raw === null) return false;
  const c = raw as { kind?: unknown; indexes?: unknown };
  if (c.kind === 'exists' || c.kind === 'absent') return Object.keys(c).length === 1;
  return (
    c.kind === 'index' &&
    Array.isArray(c.indexes) &&
    c.indexes.length >= 1 &&
    c.indexes.length <= MAX_IF_MATCH_TAGS &&
    c.indexes.every((i) => Number.isSafeInteger(i) && (i as number) >= 0)
  );
}
