/**
 * Backup and restore end to end (issue 16 §5, api-depth.md §6), with real processes: a 3-node RocksDB
 * cluster is backed up by `raftkv backup` while writes run; the file is restored by `raftkv restore`
 * into one node of a NEW cluster, two more nodes join it (and catch up by InstallSnapshot). Every key
 * acknowledged at or before the backup's index is there with its value and index, none written after
 * it is, and the new cluster's writes get indexes above the bump. A truncated file and an altered line
 * are refused with BACKUP_CORRUPT and write nothing.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { basePort, clusterView, http, nodeEnv, removeDir, startNode, stopNode, tempDir, waitFor, waitForLeader, type NodeProc } from '../support/procs.js';

const root = join(import.meta.dirname, '../..');

/** Runs the raftkv command (dist build when present) and resolves with its exit code and output. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const main = join(root, 'dist/src/cli/main.js');
  const argv = existsSync(main) ? [main, ...args] : ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, argv, { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.once('exit', (code) => resolve({ code, out, err }));
  });
}

interface Line {
  key?: string;
  value?: string;
  index?: number;
}

function lines(text: string): Line[] {
  return text.trimEnd().split('\n').map((l) => JSON.parse(l) as Line);
}

describe('backup and restore (real processes, RocksDB)', function () {
  this.timeout(300_000);
  const nodes: NodeProc[] = [];
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    for (const d of dirs) removeDir(d);
  });

  it('a backup taken under concurrent writes restores into a new 3-node cluster: every key acknowledged up to its index, with its value and index; new indexes above the bump; damaged files refused', async () => {
    const oldDir = tempDir('raftkv-backup-old-');
    const newDir = tempDir('raftkv-backup-new-');
    const work = tempDir('raftkv-backup-files-');
    dirs.push(oldDir, newDir, work);
    const port = basePort();
    const old: NodeProc[] = [];
    old.push(startNode('app1', nodeEnv(port, 1, { extra: { RAFT_DIR: oldDir } })));
    nodes.push(old[0]);
    await waitForLeader([old[0]], 60_000);
    for (const i of [2, 3]) {
      old.push(startNode(`app${i}`, nodeEnv(port, i, { join: `127.0.0.1:${port + 1}`, extra: { RAFT_DIR: oldDir } })));
      nodes.push(old[i - 1]);
      await waitFor(`${i} voters`, async () => (await clusterView(old[0]))?.nodes.filter((n) => n.suffrage === 'voter').length === i, 60_000);
    }
    const leader = await waitForLeader(old, 30_000);

    // Some keys before, then a writer that keeps going while the backup runs: distinct keys, so each
    // acknowledged write is one key whose value and index are known.
    const acked = new Map<string, { value: string; index: number }>();
    const write = async (key: string, value: string): Promise<void> => {
      const r = await http('POST', `${leader.api}/key`, { [key]: value });
      if (r.status === 200) acked.set(key, { value, index: Number(r.headers['x-raft-index']) });
    };
    for (let i = 0; i < 300; i += 50) {
      const batch: Record<string, string> = {};
      for (let j = i; j < i + 50; j++) batch[`pre/${j}`] = `v${j}`;
      const r = await http('POST', `${leader.api}/key`, batch);
      expect(r.status).to.equal(200);
      for (const [k, v] of Object.entries(batch)) acked.set(k, { value: v, index: Number(r.headers['x-raft-index']) });
    }
    await write('over/x', 'first');
    await write('over/x', 'second'); // an overwritten key keeps its latest value and index
    let isWriting = true;
    const writers = [0, 1, 2].map(async (w) => {
      for (let i = 0; isWriting; i++) await write(`live/${w}/${i}`, `w${w}-${i}`);
    });
    await waitFor('some concurrent writes', () => acked.size > 350, 60_000);

    const file = join(work, 'cluster.ndjson');
    const endpoints = old.map((n) => n.api).join(',');
    const saved = await cli(['backup', '--file', file, '--endpoints', endpoints, '--json']);
    const ackedDuringBackup = acked.size;
    await waitFor('writes after the backup', () => acked.size > ackedDuringBackup + 20, 60_000);
    isWriting = false;
    await Promise.all(writers);
    expect(saved.code, saved.err).to.equal(0);
    const summary = JSON.parse(saved.out) as { index: number; count: number; sha256: string };

    const text = readFileSync(file, 'utf8');
    const all = lines(text);
    const header = all[0] as Line & { format: string; lastIndex: number; clusterId: string };
    expect(header.format).to.equal('raftkv-backup/1');
    expect(header.index).to.equal(summary.index);
    const rows = new Map(all.slice(1, -1).map((l) => [l.key as string, { value: l.value as string, index: l.index as number }]));
    expect(rows.size).to.equal(summary.count);
    // One point in time: every write acknowledged at or below the index is in it, none above it.
    const I = summary.index;
    let below = 0;
    for (const [key, v] of acked) {
      if (v.index <= I) {
        below++;
        expect(rows.get(key), key).to.deep.equal(v);
      } else expect(rows.has(key), `${key} written at ${v.index} > ${I}`).to.equal(false);
    }
    expect(below).to.be.greaterThan(300);
    expect([...acked.values()].some((v) => v.index > I), 'writes acknowledged after the backup index').to.equal(true);

    // The HTTP answer itself, gzip and stale: a complete backup of the same kind.
    const gz = await request(`${old[2].api}/backup?consistency=stale`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.statusCode).to.equal(200);
    expect(gz.headers['content-encoding']).to.equal('gzip');
    const gzLines = lines(gunzipSync(Buffer.from(await gz.body.arrayBuffer())).toString('utf8'));
    expect(gzLines.at(-1)).to.have.keys('count', 'sha256');
    await Promise.all(old.map((n) => stopNode(n, 'SIGKILL')));

    // Damaged files are refused, exit 2 BACKUP_CORRUPT, and nothing is written.
    const truncated = join(work, 'truncated.ndjson');
    writeFileSync(truncated, text.slice(0, text.lastIndexOf('{"count"')));
    const altered = join(work, 'altered.ndjson');
    const someKey = [...rows.keys()][7];
    writeFileSync(altered, text.replace(`"value":"${rows.get(someKey)!.value}"`, '"value":"tampered"'));
    expect(readFileSync(altered, 'utf8')).to.not.equal(text);
    const newPort = basePort() === port ? port + 50 : basePort();
    const restoreArgs = (f: string) => ['restore', '--file', f, '--data-dir', newDir, '--node-id', 'new1', '--raft-addr', `127.0.0.1:${newPort + 11}`, '--api-addr', `127.0.0.1:${newPort + 1}`];
    for (const bad of [truncated, altered]) {
      const r = await cli(restoreArgs(bad));
      expect(r.code, r.err).to.equal(2);
      expect(r.err).to.match(/BACKUP_CORRUPT/);
      expect(existsSync(join(newDir, 'new1')), 'nothing written').to.equal(false);
    }

    const restored = await cli([...restoreArgs(file), '--json']);
    expect(restored.code, restored.err).to.equal(0);
    const info = JSON.parse(restored.out) as { restored: number; snapshotIndex: number; clusterId: string };
    expect(info.restored).to.equal(summary.count);
    expect(info.snapshotIndex).to.equal(Math.max(I, header.lastIndex) + 1_000_000_000_000);
    expect(info.clusterId).to.not.equal(header.clusterId);
    // A second restore into the now non-empty directory is refused.
    const again = await cli(restoreArgs(file));
    expect(again.code).to.equal(2);
    expect(again.err).to.match(/not empty/);

    const fresh: NodeProc[] = [startNode('new1', nodeEnv(newPort, 1, { name: 'new', extra: { RAFT_DIR: newDir } }))];
    nodes.push(fresh[0]);
    await waitForLeader([fresh[0]], 60_000);
    for (const i of [2, 3]) {
      fresh.push(startNode(`new${i}`, nodeEnv(newPort, i, { name: 'new', join: `127.0.0.1:${newPort + 1}`, extra: { RAFT_DIR: newDir } })));
      nodes.push(fresh[i - 1]);
      await waitFor(`${i} voters in the new cluster`, async () => (await clusterView(fresh[0]))?.nodes.filter((n) => n.suffrage === 'voter').length === i, 120_000);
    }
    expect((await clusterView(fresh[0]))?.clusterId).to.equal(info.clusterId);

    // Reads through a node that caught up by InstallSnapshot: values and indexes kept.
    for (const [key, v] of [...rows].slice(0, 40)) {
      const r = await http('GET', `${fresh[2].api}/key/${encodeURIComponent(key)}`);
      expect(r.status, key).to.equal(200);
      expect(r.body).to.deep.equal({ [key]: v.value });
      expect(r.headers.etag).to.equal(`"${v.index}"`);
    }
    // The whole state on the joined node equals the backup's rows.
    const copy = await request(`${fresh[2].api}/backup?consistency=stale`);
    const copyLines = lines(await copy.body.text());
    expect(copyLines[0].index).to.be.at.least(info.snapshotIndex);
    expect(new Map(copyLines.slice(1, -1).map((l) => [l.key, { value: l.value, index: l.index }]))).to.deep.equal(rows);

    // New writes get indexes above the bump.
    const leaderNew = await waitForLeader(fresh, 30_000);
    const w = await http('POST', `${leaderNew.api}/key`, { 'after/restore': 'x' });
    expect(w.status).to.equal(200);
    expect(Number(w.headers['x-raft-index'])).to.be.greaterThan(info.snapshotIndex);
  });
});
