/**
 * The backup format `raftkv-backup/1` (docs/backup.md): NDJSON, one JSON object per line, each line
 * ended by "\n".
 *   line 1       the header  {"format":"raftkv-backup/1","index","term","lastIndex","members","clusterId","nodeId","createdAt"}
 *   lines 2..n   one per key {"key","value","index"}, keys strictly increasing in UTF-8 byte order
 *   then         one per lease {"lease","ttlMs","grantedIndex","remainingMs","keys"} (docs/leases.md), by grant order
 *   last line    the trailer {"count","sha256"}: count = number of key lines (lease lines are not counted); sha256 = hex SHA-256 of
 *                the exact bytes of every line before the trailer, header included, each with its "\n"
 * A file without the trailer was cut off. Written by the GET /backup route (src/api/backup.ts), read
 * by `raftkv backup` (to check what it saved) and `raftkv restore` (src/cli/backup.ts). Pure apart
 * from hashing; lines are handled one at a time so memory stays flat in the number of keys.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Member } from '../raft/core/types.js';
import { isLeaseId } from './leases.js';
import type { LeaseRecord, StoredValue } from './types.js';

export const BACKUP_FORMAT = 'raftkv-backup/1';

/** The first line of a backup: where and when the point-in-time view was taken. */
export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  /** The applied index of the view: every row is the state right after this index. */
  index: number;
  /** The serving node's current term when the backup began. */
  term: number;
  /** The serving node's last log index when the backup began (>= index; the restore bump starts above it). */
  lastIndex: number;
  members: Member[];
  clusterId: string | null;
  nodeId: string;
  createdAt: string;
}

/** One key of the backup, with the index that last wrote it (kept across a restore). */
export interface BackupRow {
  key: string;
  value: string;
  index: number;
}

/** Why a backup file is refused: cut off, altered, or not a backup. Nothing has been written when it is thrown. */
export class BackupCorruptError extends Error {
  readonly code = 'BACKUP_CORRUPT';
  constructor(message: string) {
    super(message);
    this.name = 'BackupCorruptError';
  }
}

/** Encodes a backup line by line, hashing what it emits; used by the GET /backup route. */
export class BackupEncoder {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;

  /** The header line (with its "\n"). */
  header(h: Omit<BackupHeader, 'format'>): string {
    return this.hashed(JSON.stringify({ format: BACKUP_FORMAT, ...h }));
  }

  /** The line of one key (with its "\n"). */
  row(key: string, v: StoredValue): string {
    this.count++;
    return this.hashed(JSON.stringify({ key, value: v.value, index: v.index }));
  }

  /** The line of one lease with its attached keys (with its "\n"); after every key line. */
  lease(l: LeaseRecord, keys: string[]): string {
    return this.hashed(JSON.stringify({ lease: l.id, ttlMs: l.ttlMs, grantedIndex: l.grantedIndex, remainingMs: l.remainingMs, keys }));
  }

  /** The trailer line (with its "\n"): not hashed itself. */
  trailer(): string {
    return `${JSON.stringify({ count: this.count, sha256: this.hash.digest('hex') })}\n`;
  }

  private hashed(json: string): string {
    const line = `${json}\n`;
    this.hash.update(line, 'utf8');
    return line;
  }
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseLine(bytes: Buffer, lineNo: number): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BackupCorruptError(`line ${lineNo} is not valid JSON`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new BackupCorruptError(`line ${lineNo} is not a JSON object`);
  return o as Record<string, unknown>;
}

function parseHeader(o: Record<string, unknown>): BackupHeader {
  if (o.format !== BACKUP_FORMAT) throw new BackupCorruptError(`line 1 is not a ${BACKUP_FORMAT} header (format ${JSON.stringify(o.format)})`);
  if (!isIndex(o.index) || !isIndex(o.term) || !isIndex(o.lastIndex) || o.lastIndex < o.index) throw new BackupCorruptError('the header\'s index, term or lastIndex is malformed');
  if (!Array.isArray(o.members) || !o.members.every((m: unknown) => typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string')) {
    throw new BackupCorruptError('the header\'s members are malformed');
  }
  if (o.clusterId !== null && typeof o.clusterId !== 'string') throw new BackupCorruptError('the header\'s clusterId is malformed');
  return o as unknown as BackupHeader;
}

/** What a verified backup held. */
export interface VerifiedBackup {
  header: BackupHeader;
  count: number;
  sha256: string;
}

/**
 * Checks a backup line by line (the raw bytes of each line, without its "\n"), one pass, flat memory:
 * the header, every row (strictly increasing keys, indexes in [1, header.index]), then the trailer's
 * count and sha256. `onRow` sees each row once it parsed (before the checksum is known: a caller that
 * writes must verify a first pass before writing in a second). Throws BackupCorruptError.
 */
export class BackupVerifier {
  private readonly hash: Hash = createHash('sha256');
  private lineNo = 0;
  private head: BackupHeader | null = null;
  private lastKey: Buffer | null = null;
  private count = 0;
  private trailer: { count: number; sha256: string } | null = null;

  private isInLeases = false;

  constructor(
    private readonly onRow?: (row: BackupRow, header: BackupHeader) => void | Promise<void>,
    private readonly onLease?: (lease: LeaseRecord, keys: string[]) => void | Promise<void>,
  ) {}

  /** Feeds the next line (its bytes without the "\n"). */
  async line(bytes: Buffer): Promise<void> {
    this.lineNo++;
    if (this.trailer !== null) throw new BackupCorruptError(`line ${this.lineNo} follows the last line (count and sha256)`);
    const o = parseLine(bytes, this.lineNo);
    if (this.head === null) {
      this.head = parseHeader(o);
      this.hashLine(bytes);
      return;
    }
    if ('sha256' in o) {
      if (!isIndex(o.count) || typeof o.sha256 !== 'string') throw new BackupCorruptError(`line ${this.lineNo}: the last line is malformed`);
      this.trailer = { count: o.count, sha256: o.sha256 };
      return;
    }
    if ('lease' in o) {
      const { lease, ttlMs, grantedIndex, remainingMs, keys } = o;
      if (!isLeaseId(lease) || !isIndex(ttlMs) || !isIndex(grantedIndex) || grantedIndex > this.head.index || !isIndex(remainingMs) || !Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
        throw new BackupCorruptError(`line ${this.lineNo} is not a lease line {"lease","ttlMs","grantedIndex","remainingMs","keys"}`);
      }
      this.isInLeases = true;
      this.hashLine(bytes);
      await this.onLease?.({ id: lease, ttlMs, grantedIndex, remainingMs }, keys as string[]);
      return;
    }
    if (this.isInLeases) throw new BackupCorruptError(`line ${this.lineNo}: a key line after the lease lines`);
    const { key, value, index } = o;
    if (typeof key !== 'string' || typeof value !== 'string' || !isIndex(index) || index < 1 || index > this.head.index) {
      throw new BackupCorruptError(`line ${this.lineNo} is not a key line {"key","value","index"} with 1 <= index <= ${this.head.index}`);
    }
    const keyBytes = Buffer.from(key, 'utf8');
    if (this.lastKey !== null && Buffer.compare(this.lastKey, keyBytes) >= 0) throw new BackupCorruptError(`line ${this.lineNo}: keys are not in increasing order`);
    this.lastKey = keyBytes;
    this.count++;
    this.hashLine(bytes);
    await this.onRow?.({ key, value, index }, this.head);
  }

  /** Called after the last line: checks the trailer, count and checksum. */
  end(): VerifiedBackup {
    if (this.head === null) throw new BackupCorruptError('the file is empty: no header line');
    if (this.trailer === null) throw new BackupCorruptError(`the last line (count and sha256) is missing: the backup was cut off after ${this.count} keys`);
    if (this.trailer.count !== this.count) throw new BackupCorruptError(`the last line counts ${this.trailer.count} keys, the file holds ${this.count}`);
    const sha256 = this.hash.digest('hex');
    if (sha256 !== this.trailer.sha256) throw new BackupCorruptError(`checksum mismatch: the lines hash to ${sha256}, the last line says ${this.trailer.sha256}`);
    return { header: this.head, count: this.count, sha256 };
  }

  private hashLine(bytes: Buffer): void {
    this.hash.update(bytes);
    this.hash.update('\n');
  }
}

/**
 * Splits a byte stream into lines at "\n" (raw bytes, so the checksum covers exactly what is in the
 * file). A last line without its "\n" is still yielded: it is the trailer's job to say whether the
 * file is complete.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    let buf = rest.length === 0 ? Buffer.from(chunk) : Buffer.concat([rest, Buffer.from(chunk)]);
    let nl = buf.indexOf(0x0a);
    while (nl !== -1) {
      yield buf.subarray(0, nl);
      buf = buf.subarray(nl + 1);
      nl = buf.indexOf(0x0a);
    }
    rest = Buffer.from(buf);
  }
  if (rest.length > 0) yield rest;
}

/**
 * The index a restore puts its snapshot at: `bump` above the highest index the backup shows the old
 * cluster had handed out (its header's lastIndex), so that no index the new cluster hands out can
 * equal one a client got from the old cluster, provided the old cluster handed out fewer than
 * `bump` more after the backup.
 */
export function restoreIndex(header: BackupHeader, bump: number): number {
  const at = Math.max(header.index, header.lastIndex) + bump;
  if (!Number.isSafeInteger(at)) throw new BackupCorruptError(`the restore index ${header.lastIndex} + ${bump} is beyond 2^53`);
  return at;
}

/** Default of `raftkv restore --bump`: 10^12 indexes (about 116 days of 100,000 writes a second). */
export const DEFAULT_RESTORE_BUMP = 1_000_000_000_000;
