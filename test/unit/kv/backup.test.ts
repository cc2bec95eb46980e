/**
 * The backup format raftkv-backup/1 (src/kv/backup.ts): what the encoder writes, what the verifier
 * accepts, and every way a file can be cut off or altered being refused as BACKUP_CORRUPT.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { restoreFromFile } from '../../../src/cli/backup.js';
import { openStorage } from '../../../src/storage/index.js';
import { BackupCorruptError, BackupEncoder, BackupVerifier, DEFAULT_RESTORE_BUMP, restoreIndex, splitLines, type BackupRow } from '../../../src/kv/backup.js';

const header = { index: 40, term: 3, lastIndex: 42, members: [{ id: 'n1', suffrage: 'voter' as const, raftAddr: 'h:1', apiAddr: 'h:2' }], clusterId: 'c1', nodeId: 'n1', createdAt: '2026-01-01T00:00:00.000Z' };

/** A complete backup of `rows` as text. */
function encode(rows: Array<[string, string, number]>): string {
  const enc = new BackupEncoder();
  let text = enc.header(header);
  for (const [k, v, i] of rows) text += enc.row(k, { value: v, index: i });
  return text + enc.trailer();
}

async function* chunksOf(text: string, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.from(text, 'utf8');
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

/** Verifies `text` fed in chunks of `size` bytes; resolves with the rows seen and the result. */
async function verify(text: string, size = 7): Promise<{ rows: BackupRow[]; count: number; index: number }> {
  const rows: BackupRow[] = [];
  const v = new BackupVerifier((r) => {
    rows.push(r);
  });
  for await (const line of splitLines(chunksOf(text, size))) await v.line(line);
  const done = v.end();
  return { rows, count: done.count, index: done.header.index };
}

async function refusal(text: string): Promise<string> {
  try {
    await verify(text);
  } catch (err) {
    expect(err).to.be.instanceOf(BackupCorruptError);
    expect((err as BackupCorruptError).code).to.equal('BACKUP_CORRUPT');
    return (err as Error).message;
  }
  throw new Error('the file was accepted');
}

const ROWS: Array<[string, string, number]> = [['a', '1', 3], ['b/c', 'multi\nline "quoted"', 40], ['é', 'x', 7], ['\u{1F600}', '', 1]];

describe('backup format raftkv-backup/1', () => {
  it('writes a header, one line per key and a trailer whose sha256 covers the exact bytes of every line before it', async () => {
    const text = encode(ROWS);
    const lines = text.split('\n');
    expect(lines.at(-1)).to.equal(''); // every line ends with "\n"
    expect(JSON.parse(lines[0])).to.include({ format: 'raftkv-backup/1', index: 40, term: 3, lastIndex: 42, clusterId: 'c1' });
    expect(JSON.parse(lines[2])).to.deep.equal({ key: 'b/c', value: 'multi\nline "quoted"', index: 40 });
    const trailer = JSON.parse(lines[5]) as { count: number; sha256: string };
    const body = Buffer.from(lines.slice(0, 5).join('\n') + '\n', 'utf8');
    expect(trailer).to.deep.equal({ count: 4, sha256: createHash('sha256').update(body).digest('hex') });
  });

  it('a complete file verifies, whatever the chunking (multi-byte characters split across chunks), and yields each row once', async () => {
    for (const size of [1, 3, 7, 4096]) {
      const r = await verify(encode(ROWS), size);
      expect(r.count).to.equal(4);
      expect(r.index).to.equal(40);
      expect(r.rows.map((x) => [x.key, x.value, x.index])).to.deep.equal(ROWS);
    }
    expect((await verify(encode([]))).count).to.equal(0);
  });

  it('a file cut off anywhere is refused: no trailer, a torn last line, or nothing at all', async () => {
    const text = encode(ROWS);
    const withoutTrailer = text.slice(0, text.lastIndexOf('{'));
    expect(await refusal(withoutTrailer)).to.match(/cut off/);
    for (let cut = 1; cut < text.length - 1; cut += 13) await refusal(text.slice(0, cut));
    expect(await refusal('')).to.match(/empty/);
  });

  it('an altered line is refused by the checksum; an extra, missing or reordered line is refused', async () => {
    const text = encode(ROWS);
    expect(await refusal(text.replace('"value":"1"', '"value":"2"'))).to.match(/checksum/);
    expect(await refusal(text.replace('"index":3}', '"index":4}'))).to.match(/checksum/);
    expect(await refusal(text.replace('"term":3', '"term":4'))).to.match(/checksum/);
    const lines = text.split('\n');
    expect(await refusal([lines[0], lines[1], lines[3], lines[4], lines[5], ''].join('\n'))).to.match(/counts 4/);
    expect(await refusal([lines[0], lines[2], lines[1], ...lines.slice(3)].join('\n'))).to.match(/order/);
    expect(await refusal(text + lines[1] + '\n')).to.match(/follows the last line/);
    expect(await refusal(text.replace('raftkv-backup/1', 'raftkv-backup/2'))).to.match(/not a raftkv-backup\/1 header/);
    expect(await refusal(text.replace('"index":40}', '"index":41}'))).to.match(/index <= 40/);
    expect(await refusal('not json\n')).to.match(/not valid JSON/);
  });

  it('the restore index is the bump above the higher of the backup index and the last log index', () => {
    expect(restoreIndex({ format: 'raftkv-backup/1', ...header }, 1000)).to.equal(1042);
    expect(restoreIndex({ format: 'raftkv-backup/1', ...header, lastIndex: 40 }, DEFAULT_RESTORE_BUMP)).to.equal(40 + DEFAULT_RESTORE_BUMP);
    expect(() => restoreIndex({ format: 'raftkv-backup/1', ...header }, Number.MAX_SAFE_INTEGER)).to.throw(BackupCorruptError);
  });
});

describe('raftkv restore and the watch history', () => {
  it('an offline restore writes its rows without history: the floor is the restored index, so an old watch position is COMPACTED, never a replay of the rows', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-restore-'));
    try {
      const file = path.join(dir, 'backup.ndjson');
      fs.writeFileSync(file, encode(ROWS));
      const r = await restoreFromFile(file, path.join(dir, 'data'), { nodeId: 'n1', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2', bump: DEFAULT_RESTORE_BUMP });
      const s = await openStorage(path.join(dir, 'data'), 'n1');
      try {
        expect(await s.kv.readHistory(1, 100)).to.deep.equal({ floor: r.snapshotIndex, appliedIndex: r.snapshotIndex, entries: [], upTo: r.snapshotIndex });
        expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 3 });
      } finally {
        await s.log.close();
        await s.kv.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('kv: backup lease lines', () => {
  it('lease lines follow the keys, are hashed but not counted, and a restore writes the lease table', async () => {
    const enc = new BackupEncoder();
    let text = enc.header(header) + enc.row('a', { value: '1', index: 5 }) + enc.row('b', { value: '2', index: 6 });
    text += enc.lease({ id: 'l-4', ttlMs: 5000, grantedIndex: 4, remainingMs: 1200 }, ['a']);
    text += enc.trailer();
    const leases: unknown[] = [];
    const v = new BackupVerifier(undefined, (l, keys) => {
      leases.push({ ...l, keys });
    });
    for await (const line of splitLines(chunksOf(text, 5))) await v.line(line);
    expect(v.end().count).to.equal(2);
    expect(leases).to.deep.equal([{ id: 'l-4', ttlMs: 5000, grantedIndex: 4, remainingMs: 1200, keys: ['a'] }]);
    // A key line after a lease line, or a malformed lease line, is refused.
    const lines = text.split('\n');
    expect(await refusal([lines[0], lines[1], lines[3], lines[2], ''].join('\n'))).to.match(/after the lease lines/);
    expect(await refusal(text.replace('"lease":"l-4"', '"lease":"x"'))).to.match(/not a lease line/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-lease-backup-'));
    try {
      const file = path.join(dir, 'b.ndjson');
      fs.writeFileSync(file, text);
      await restoreFromFile(file, dir, { nodeId: 'r1', raftAddr: '127.0.0.1:1', apiAddr: '127.0.0.1:2', bump: 100 });
      const s = await openStorage(dir, 'r1');
      try {
        expect(await s.kv.loadLeases()).to.deep.equal({ leases: [{ id: 'l-4', ttlMs: 5000, grantedIndex: 4, remainingMs: 1200 }], attached: [['l-4', 'a']] });
      } finally {
        await s.log.close();
        await s.kv.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
