/**
 * Client tokens from AUTH_TOKENS_FILE: a JSON object mapping each token to `{role, prefix?}`.
 * A key `cert:<name>` is not a token but a certificate subject: with CLIENT_CERT_AUTH, a client whose
 * verified certificate has that name (CN or a SAN) gets that role. Presented tokens are matched by
 * comparing SHA-256 digests in constant time; tokens are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A client's role: read may GET keys; write may also set and delete; admin may also manage the cluster. */
export type Role = 'read' | 'write' | 'admin';

/** Who a request comes from, after its token matched. */
export interface Principal {
  readonly role: Role;
  /** When set, only keys starting with it may be touched. */
  readonly prefix: string | undefined;
  /** An index into the token file, for logs; never the token. */
  readonly name: string;
}

/** The key prefix that marks a certificate subject instead of a token. */
export const CERT_SUBJECT_PREFIX = 'cert:';

interface Entry {
  digest: Buffer;
  principal: Principal;
}

const ROLES: readonly Role[] = ['read', 'write', 'admin'];

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The set of valid tokens; built by main.ts (and re-built on SIGHUP). */
export class TokenStore {
  private constructor(
    private readonly entries: readonly Entry[],
    private readonly subjects: ReadonlyMap<string, Principal>,
  ) {}

  /** Parses the token file's JSON text; throws an Error naming the first bad entry (by position, never by token). */
  static parse(text: string): TokenStore {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error('not valid JSON');
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('must be a JSON object of token -> {"role", "prefix"?}');
    const entries: Entry[] = [];
    const subjects = new Map<string, Principal>();
    Object.entries(raw as Record<string, unknown>).forEach(([token, spec], i) => {
      const where = `entry ${i + 1}`;
      const subject = token.startsWith(CERT_SUBJECT_PREFIX) ? token.slice(CERT_SUBJECT_PREFIX.length) : null;
      if (subject === '') throw new Error(`${where}: "${CERT_SUBJECT_PREFIX}" must be followed by a certificate name`);
      if (subject === null && token.length < 8) throw new Error(`${where}: token must be at least 8 characters`);
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new Error(`${where}: must be {"role", "prefix"?}`);
      const { role, prefix } = spec as { role?: unknown; prefix?: unknown };
      if (typeof role !== 'string' || !ROLES.includes(role as Role)) throw new Error(`${where}: role must be read, write or admin`);
      if (prefix !== undefined && typeof prefix !== 'string') throw new Error(`${where}: prefix must be a string`);
      const principal = Object.freeze({ role: role as Role, prefix: prefix === '' ? undefined : prefix, name: subject === null ? `token#${i + 1}` : `cert:${subject}` });
      if (subject !== null) subjects.set(subject, principal);
      else entries.push({ digest: digest(token), principal });
    });
    if (entries.length + subjects.size === 0) throw new Error('must contain at least one token or certificate subject');
    return new TokenStore(entries, subjects);
  }

  /** Reads and parses AUTH_TOKENS_FILE. */
  static load(file: string): TokenStore {
    return TokenStore.parse(readFileSync(file, 'utf8'));
  }

  /** Number of tokens and certificate subjects, for the start-up log. */
  get size(): number {
    return this.entries.length + this.subjects.size;
  }

  /** The principal of the first of a verified certificate's names (CN, then SANs) listed as `cert:<name>`, or null. */
  lookupSubject(names: readonly string[]): Principal | null {
    for (const n of names) {
      const p = this.subjects.get(n);
      if (p !== undefined) return p;
    }
    return null;
  }

  /**
   * Finds the principal for a presented token. Every entry is compared, digest against digest, with
   * timingSafeEqual, so the time taken does not depend on where (or whether) the token matches.
   */
  lookup(token: string): Principal | null {
    const d = digest(token);
    let found: Principal | null = null;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && found === null) found = e.principal;
    return found;
  }
}

/** Extracts the token from an `Authorization: Bearer <token>` header; null when absent or malformed. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return m ? m[1] : null;
}

/** Whether `principal` may perform an action needing `need`. */
export function hasRole(principal: Principal, need: Role): boolean {
  return ROLES.indexOf(principal.role) >= ROLES.indexOf(need);
}

/** Whether `principal` may touch `key` (its prefix, if any, must start the key). */
export function mayTouchKey(principal: Principal, key: string): boolean {
  return principal.prefix === undefined || key.startsWith(principal.prefix);
}
