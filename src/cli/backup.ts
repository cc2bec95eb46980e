/**
 * `raftkv backup` and `raftkv restore` (docs/backup.md), called from the command's main.ts.
 *   backup   downloads GET /backup into a file (through a temporary file, renamed once the last line
 *            checked out), checking the format and checksum as it arrives: a download cut off exits 3
 *            and leaves no file.
 *   restore  offline: checks a backup file whole (exit 2, BACKUP_CORRUPT, nothing written), then
 *            writes a node directory for a NEW one-voter cluster holding the backup's keys with their
 *            indexes, at a snapshot index bumped past every index the old cluster handed out.
 */
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { BackupCorruptError, BackupVerifier, DEFAULT_RESTORE_BUMP, restoreIndex, splitLines, type BackupHeader, type BackupRow, type VerifiedBackup } from '../kv/backup.js';
import type { EffectBatch, LeaseEffect, LeaseRecord } from '../kv/types.js';
import type { Member } from '../raft/core/types.js';
import { openStorage } from '../storage/index.js';
import { FileIdentityStore, newIdentityId } from '../raft/node/identity.js';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

const EXIT = { ok: 0, usage: 2, unavailable: 3 } as const;

export const BACKUP_HELP = `Usage: raftkv backup --file F [--consistency linearizable|stale] [--endpoints URLS] [--timeout MS]

Saves every key of the cluster, from one point in time, as a raftkv-backup/1 NDJSON file (gzip when F
ends in .gz). The download is checked as it arrives (format, count, sha256) and written to F only once
complete: a download cut off exits 3 and leaves no file. Needs an admin token (RAFTKV_TOKEN) when
tokens are on. --consistency stale saves the answering node's local state without asking the leader.
Prints {"file","index","count","sha256"} with --json.`;

export const RESTORE_HELP = `Usage: raftkv restore --file F --data-dir D --node-id ID [--raft-addr H:P] [--api-addr H:P] [--bump N]

Offline: writes D/ID as the only voter of a NEW cluster holding every key of backup F (plain or gzip)
with its index. Then start the node with RAFT_DIR=D NODE_ID=ID (and the same addresses as
RAFT_BIND_ADDR/RAFT_ADVERTISE_ADDR and API_ADVERTISE_ADDR) and add others with RAFT_JOIN_ADDR.
  --raft-addr H:P   the node's peer address (default 127.0.0.1:7000, the server's default)
  --api-addr H:P    the node's API address (default 127.0.0.1:8080)
  --bump N          the new cluster's indexes start N above the backup's last index (default ${DEFAULT_RESTORE_BUMP}),
                    so an ETag from the old cluster never matches a new write; raise it when the old
                    cluster took more than N writes after the backup
Exit 2 with BACKUP_CORRUPT when F is cut off, altered or not a backup; exit 2 when D/ID is not empty.
Nothing is written in either case.`;

class UsageError extends Error {}

/** Runs `backup` or `restore` (argv starts with the command's name); returns the exit code. */
export async function runBackupCommand(argv: string[], io: Io): Promise<number> {
  const isJson = argv.includes('--json');
  const fail = (code: string, message: string, exit: number): number => {
    if (isJson) io.err(JSON.stringify({ error: { code, message } }));
    else io.err(`raftkv: ${code === 'BACKUP_CORRUPT' ? 'BACKUP_CORRUPT: ' : ''}${message}`);
    return exit;
  };
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        file: { type: 'string' },
        'data-dir': { type: 'string' },
        'node-id': { type: 'string' },
        'raft-addr': { type: 'string' },
        'api-addr': { type: 'string' },
        bump: { type: 'string' },
        endpoints: { type: 'string' },
        consistency: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    const [cmd, ...rest] = positionals;
    if (values.help) {
      io.out(cmd === 'backup' ? BACKUP_HELP : RESTORE_HELP);
      return EXIT.ok;
    }
    if (rest.length > 0) throw new UsageError(`${cmd} takes no arguments besides its options (got ${rest.join(' ')})`);
    if (values.file === undefined) throw new UsageError(`${cmd} needs --file`);
    if (cmd === 'backup') {
      if (values['data-dir'] !== undefined || values['node-id'] !== undefined || values.bump !== undefined) throw new UsageError('--data-dir, --node-id and --bump only apply to "restore"');
      const consistency = values.consistency ?? 'linearizable';
      if (consistency !== 'linearizable' && consistency !== 'stale') throw new UsageError('--consistency must be linearizable or stale');
      const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout);
      if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new UsageError('--timeout must be a positive integer');
      const endpoints = (values.endpoints ?? io.env.RAFTKV_ENDPOINTS ?? 'http://127.0.0.1:8080').split(',').map((e) => e.trim()).filter((e) => e !== '').map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`).replace(/\/+$/, ''));
      const saved = await backupToFile(values.file, endpoints, consistency, timeoutMs, io.env.RAFTKV_TOKEN);
      io.out(isJson ? JSON.stringify({ file: values.file, index: saved.header.index, count: saved.count, sha256: saved.sha256 }) : `saved ${saved.count} keys at index ${saved.header.index} to ${values.file} (sha256 ${saved.sha256})`);
      return EXIT.ok;
    }
    if (values.endpoints !== undefined || values.consistency !== undefined) throw new UsageError('--endpoints and --consistency only apply to "backup"');
    const dataDir = values['data-dir'];
    const nodeId = values['node-id'];
    if (dataDir === undefined || nodeId === undefined) throw new UsageError('restore needs --data-dir and --node-id');
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(nodeId)) throw new UsageError('--node-id must be 1-64 characters of [A-Za-z0-9_.-]');
    const raftAddr = values['raft-addr'] ?? '127.0.0.1:7000';
    const apiAddr = values['api-addr'] ?? '127.0.0.1:8080';
    for (const [name, v] of [['--raft-addr', raftAddr], ['--api-addr', apiAddr]]) if (!/^[^\s/]+:\d{1,5}$/.test(v)) throw new UsageError(`${name} must be host:port`);
    const bump = values.bump === undefined ? DEFAULT_RESTORE_BUMP : Number(values.bump);
    if (!Number.isSafeInteger(bump) || bump < 1) throw new UsageError('--bump must be a positive integer');
    const r = await restoreFromFile(values.file, dataDir, { nodeId, raftAddr, apiAddr, bump });
    const summary = { restored: r.count, from: { index: r.header.index, clusterId: r.header.clusterId }, nodeDir: path.join(dataDir, nodeId), snapshotIndex: r.snapshotIndex, clusterId: r.clusterId };
    io.out(isJson ? JSON.stringify(summary) : `restored ${r.count} keys (backup at index ${r.header.index}) into ${summary.nodeDir}: new cluster ${r.clusterId}, snapshot at index ${r.snapshotIndex}. Start it with RAFT_DIR=${dataDir} NODE_ID=${nodeId} RAFT_BIND_ADDR=${raftAddr}; add nodes with RAFT_JOIN_ADDR=${apiAddr}`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof BackupCorruptError) return fail('BACKUP_CORRUPT', `${err.message}; nothing was written`, EXIT.usage);
    if (err instanceof UsageError || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      return fail('USAGE', (err as Error).message, EXIT.usage);
    }
    if (err instanceof RefusedError) return fail(err.code, err.message, EXIT.usage);
    return fail('UNAVAILABLE', (err as Error).message, EXIT.unavailable);
  }
}

/** A refusal that is the user's to fix (a non-empty data directory, a rejected request). */
class RefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Whether `file` starts with the gzip magic bytes. */
async function isGzipFile(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * Reads and checks a backup file in one pass (flat memory), calling `onRow` for each row; a gzip
 * stream that is cut off or damaged is BACKUP_CORRUPT too.
 */
export async function verifyBackupFile(file: string, onRow?: (row: BackupRow, header: BackupHeader) => void | Promise<void>, onLease?: (lease: LeaseRecord, keys: string[]) => void): Promise<VerifiedBackup> {
  const gz = await isGzipFile(file);
  const input: Readable = gz ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
  const verifier = new BackupVerifier(onRow, onLease);
  try {
    for await (const line of splitLines(input)) await verifier.line(line);
  } catch (err) {
    input.destroy();
    if (err instanceof BackupCorruptError) throw err;
    if (gz && (err as { code?: unknown }).code?.toString().startsWith('Z_')) throw new BackupCorruptError(`the gzip stream is damaged or cut off (${(err as Error).message})`);
    throw err;
  }
  return verifier.end();
}

/** Streams GET /backup from the first endpoint that answers into `file` (via `file`.tmp), checking it. */
async function backupToFile(file: string, endpoints: string[], consistency: string, timeoutMs: number, token: string | undefined): Promise<VerifiedBackup> {
  let lastError = 'no endpoint';
  for (const base of endpoints) {
    let res;
    try {
      res = await request(`${base}/backup${consistency === 'stale' ? '?consistency=stale' : ''}`, {
        headers: { 'accept-encoding': 'gzip', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      lastError = `${base}: ${(err as Error).message}`;
      continue;
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        // not JSON: keep the text
      }
      if (res.statusCode >= 500) {
        lastError = `${base}: ${res.statusCode} ${message}`;
        continue;
      }
      throw new RefusedError('REJECTED', `${base} refused the backup: ${res.statusCode} ${message}`);
    }
    const body: Readable = res.headers['content-encoding'] === 'gzip' ? res.body.pipe(createGunzip()) : res.body;
    const tmp = `${file}.tmp`;
    const out = createWriteStream(tmp, { mode: 0o600 });
    const outDone = new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('error', reject);
    });
    const fileOut = file.endsWith('.gz') ? createGzip() : null;
    if (fileOut) fileOut.pipe(out);
    const sink = fileOut ?? out;
    async function* tee(): AsyncGenerator<Buffer> {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (!sink.write(chunk)) await once(sink, 'drain');
        yield chunk;
      }
    }
    const verifier = new BackupVerifier();
    try {
      for await (const line of splitLines(tee())) await verifier.line(line);
      const saved = verifier.end();
      sink.end();
      await outDone;
      const fh = await fsp.open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await fsp.rename(tmp, file);
      return saved;
    } catch (err) {
      body.destroy();
      sink.destroy();
      out.destroy();
      await fsp.rm(tmp, { force: true });
      const why = err instanceof BackupCorruptError ? err.message : (err as Error).message;
      throw new Error(`the backup download from ${base} did not complete (${why}); no file was written`);
    }
  }
  throw new Error(`no endpoint answered the backup: ${lastError}`);
}

/** What a restore wrote. */
interface Restored extends VerifiedBackup {
  snapshotIndex: number;
  clusterId: string;
}

/** Rows written per storage batch during a restore. */
const RESTORE_BATCH_ROWS = 1000;

/**
 * Restores `file` into `dataDir/nodeId`: verifies the whole file first, refuses a non-empty node
 * directory, then writes the keys (a second pass, verified again), the applied index, a snapshot
 * record standing for the KV state (as a RocksDB node keeps its own), a one-voter configuration and a
 * new identity. On any failure while writing, the node directory it created is removed.
 */
export async function restoreFromFile(file: string, dataDir: string, opts: { nodeId: string; raftAddr: string; apiAddr: string; bump: number }): Promise<Restored> {
  const nodeDir = path.join(dataDir, opts.nodeId);
  const entries = await fsp.readdir(nodeDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (entries.length > 0) throw new RefusedError('DATA_DIR_NOT_EMPTY', `${nodeDir} is not empty: restore only writes a fresh node directory (nothing was written)`);
  const first = await verifyBackupFile(file);
  const snapshotIndex = restoreIndex(first.header, opts.bump);
  const identity = { clusterId: newIdentityId(), incarnation: newIdentityId() };
  const member: Member = { id: opts.nodeId, suffrage: 'voter', raftAddr: opts.raftAddr, apiAddr: opts.apiAddr, incarnation: identity.incarnation };
  const storage = await openStorage(dataDir, opts.nodeId);
  let isClosed = false;
  try {
    await storage.log.load();
    let pending: EffectBatch[] = [];
    // The lease table (kept whole: leases are few); written with the last batch. Grant indexes stay
    // below the bumped index, so a lease granted after the restore never reuses an old id.
    const leaseEffects: LeaseEffect[] = [];
    const second = await verifyBackupFile(file, async (row) => {
      pending.push({ index: row.index, effects: [{ type: 'put', key: row.key, value: row.value, prevIndex: null }] });
      if (pending.length >= RESTORE_BATCH_ROWS) {
        const batch = pending;
        pending = [];
        await storage.kv.persist(batch, 0, false); // rows, not changes: no watch history
      }
    }, (lease, keys) => {
      leaseEffects.push({ type: 'lease-put', lease }, ...keys.map((key): LeaseEffect => ({ type: 'attach', id: lease.id, key })));
    });
    if (second.sha256 !== first.sha256) throw new BackupCorruptError('the file changed while it was being restored');
    pending.push({ index: snapshotIndex, effects: [], leaseEffects });
    await storage.kv.persist(pending, snapshotIndex, false); // the history starts above the restored index
    // The snapshot has no data: it stands for the KV store's state at its index (RocksDB's "inKv"),
    // and its synced write makes the unsynced KV writes above durable with it.
    await storage.log.write({ hardState: { term: 1, votedFor: null }, entries: [] });
    await storage.log.saveSnapshot({ meta: { lastIndex: snapshotIndex, lastTerm: 1, config: { members: [member] } }, data: null }, true);
    await storage.log.close();
    await storage.kv.close();
    isClosed = true;
    await new FileIdentityStore(nodeDir).save(identity);
    return { ...second, snapshotIndex, clusterId: identity.clusterId };
  } catch (err) {
    if (!isClosed) {
      await storage.log.close().catch(() => undefined);
      await storage.kv.close().catch(() => undefined);
    }
    await fsp.rm(nodeDir, { recursive: true, force: true });
    throw err;
  }
}
