import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RaftKvClient } from '../../../src/index.js';
import { removeDir, tempDir, waitFor } from '../../support/procs.js';
import { exists, startThreeNodes, type ThreeNodes } from './three-nodes.js';

const root = join(import.meta.dirname, '../../..');
const built = join(root, 'dist/src/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `raftkv ...args` as a subprocess (the built bin when present, else through tsx). */
function start(args: string[], env: Record<string, string>): { child: ChildProcess; done: Promise<Run> } {
  const entry = existsSync(built) ? [built] : ['--import', 'tsx', join(root, 'src/cli/main.ts')];
  const child = spawn(process.execPath, [...entry, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

function raftkv(args: string[], env: Record<string, string>): Promise<Run> {
  return start(args, env).done;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('raftkv lease and raftkv lock, run as subprocesses against a real three-node cluster', function () {
  this.timeout(240_000);
  let c: ThreeNodes;
  let env: Record<string, string>;
  let client: RaftKvClient;
  let dir = '';

  before(async () => {
    c = await startThreeNodes();
    env = { RAFTKV_ENDPOINTS: c.endpoints.join(',') };
    client = new RaftKvClient({ endpoints: c.endpoints });
    dir = tempDir('raftkv-lock-');
  });

  after(async () => {
    await c?.stop();
    if (dir) removeDir(dir);
  });

  it('lease grant, set --lease, ls, get, keepalive --once, revoke (which deletes the key); exit 1 for a gone lease, 2 for a bad TTL', async () => {
    const g = await raftkv(['lease', 'grant', '60000'], env);
    expect(g.code, g.stderr).to.equal(0);
    const id = g.stdout.trim();
    expect(id).to.match(/^l-\d+$/);
    const s = await raftkv(['set', 'svc/web-1', '10.0.0.5:80', '--lease', id], env);
    expect(s.code, s.stderr).to.equal(0);
    const ls = await raftkv(['lease', 'ls'], env);
    expect(ls.code, ls.stderr).to.equal(0);
    const rows = ls.stdout.trimEnd().split('\n');
    expect(rows[0].split(/\s+/)).to.deep.equal(['ID', 'TTL_MS', 'REMAINING_MS']);
    expect(rows.slice(1).some((r) => r.split(/\s+/)[0] === id && r.split(/\s+/)[1] === '60000')).to.equal(true);
    const got = await raftkv(['lease', 'get', id, '--json'], env);
    expect(got.code, got.stderr).to.equal(0);
    expect(JSON.parse(got.stdout)).to.deep.include({ id, ttlMs: 60000, keys: ['svc/web-1'] });
    const k = await raftkv(['lease', 'keepalive', id, '--once'], env);
    expect(k.code, k.stderr).to.equal(0);
    expect(k.stdout).to.match(new RegExp(`^${id} kept alive: ttl 60000 ms, remaining \\d+ ms\\n$`));
    const r = await raftkv(['lease', 'revoke', id], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(`revoked ${id} (deleted 1 key: svc/web-1)\n`);
    expect(await exists(client, 'svc/web-1')).to.equal(false);
    const again = await raftkv(['lease', 'revoke', id], env);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain(`lease ${id} not found`);
    const setGone = await raftkv(['set', 'svc/web-2', 'x', '--lease', id], env);
    expect(setGone.code, 'a write naming a gone lease writes nothing').to.equal(1);
    expect(await exists(client, 'svc/web-2')).to.equal(false);
    const bad = await raftkv(['lease', 'grant', '100', '--json'], env);
    expect(bad.code).to.equal(2);
    expect((JSON.parse(bad.stderr) as { error: { code: string } }).error.code).to.equal('INVALID_TTL');
  });

  it('lease keepalive keeps a lease alive until Ctrl-C (one line per renewal), then leaves it to expire', async () => {
    const id = (await client.grantLease(4000)).id;
    await client.set('ka/key', 'v', { lease: id });
    const k = start(['lease', 'keepalive', id], env);
    let lines = 0;
    k.child.stdout?.on('data', (b: Buffer) => (lines += b.toString().split('\n').length - 1));
    // Three TTLs: without the renewals the lease would be gone.
    const since = performance.now();
    await waitFor('three TTLs', () => performance.now() - since > 12_000, 60_000, 100);
    expect(await exists(client, 'ka/key')).to.equal(true);
    expect(lines).to.be.greaterThan(5);
    k.child.kill('SIGINT');
    const r = await k.done;
    expect(r.code, r.stderr).to.equal(0);
    await waitFor('the lease to expire once no longer renewed', async () => !(await exists(client, 'ka/key')), 60_000, 200);
  });

  it('two or more "raftkv lock" on one NAME never run their commands at the same time; fencing indexes grow; the key is gone after', async () => {
    const log = join(dir, 'intervals.log');
    // Each holder appends "start <ns> <index>" and "end <ns> <index>" (one clock: this machine's).
    const script = `echo "start $(date +%s%N) $RAFTKV_LOCK_INDEX" >> ${log}; sleep 0.3; echo "end $(date +%s%N) $RAFTKV_LOCK_INDEX" >> ${log}`;
    const worker = async (rounds: number): Promise<Run[]> => {
      const runs: Run[] = [];
      for (let i = 0; i < rounds; i++) runs.push(await raftkv(['lock', 'job', '--ttl', '5000', '--', 'sh', '-c', script], env));
      return runs;
    };
    const all = (await Promise.all([worker(3), worker(3), worker(3)])).flat();
    for (const r of all) expect(r.code, r.stderr).to.equal(0);
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => l.split(' '));
    expect(lines).to.have.length(18);
    const intervals: { start: bigint; end: bigint; index: number }[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      // Never overlapping means the file alternates start/end of the same holder.
      expect(lines[i][0], `line ${i}: ${lines[i].join(' ')}`).to.equal('start');
      expect(lines[i + 1][0]).to.equal('end');
      expect(lines[i + 1][2]).to.equal(lines[i][2]);
      intervals.push({ start: BigInt(lines[i][1]), end: BigInt(lines[i + 1][1]), index: Number(lines[i][2]) });
    }
    for (let i = 1; i < intervals.length; i++) {
      expect(intervals[i].start > intervals[i - 1].end, `holder ${i} started before holder ${i - 1} ended`).to.equal(true);
      expect(intervals[i].index, 'fencing index').to.be.greaterThan(intervals[i - 1].index);
    }
    expect(all.some((r) => /locks\/job is held \(by .+, lease l-\d+\); waiting/.test(r.stderr)), 'someone had to wait').to.equal(true);
    expect(await exists(client, 'locks/job')).to.equal(false);
    expect((await client.listLeases()).leases).to.deep.equal([]);
  });

  it('a lock whose lease is revoked while the command runs kills the command and all it started, exit 6', async () => {
    const info = join(dir, 'lost.info');
    const h = start(['lock', 'lost', '--ttl', '4000', '--', 'sh', '-c', `sleep 120 & echo "$RAFTKV_LEASE $!" > ${info}; wait`], env);
    await waitFor('the command to start', () => existsSync(info) && readFileSync(info, 'utf8').includes('\n'), 30_000, 50);
    const [lease, grandchild] = readFileSync(info, 'utf8').trim().split(' ');
    expect(isRunning(Number(grandchild))).to.equal(true);
    expect((await raftkv(['lease', 'revoke', lease], env)).code).to.equal(0);
    const r = await h.done;
    expect(r.code).to.equal(6);
    expect(r.stderr).to.match(/lock locks\/lost lost while the command ran: lease l-\d+ is gone: a keepalive was answered LEASE_NOT_FOUND/);
    await waitFor('the grandchild to be gone', () => !isRunning(Number(grandchild)), 10_000, 50);
  });

  it('the command\'s exit code is passed through; SIGTERM is passed on to the command (143) and the lock released; --max-wait gives up with 4', async () => {
    const seven = await raftkv(['lock', 'codes', '--', 'sh', '-c', 'exit 7'], env);
    expect(seven.code, seven.stderr).to.equal(7);
    const missing = await raftkv(['lock', 'codes', '--', 'no-such-command-raftkv'], env);
    expect(missing.code).to.equal(127);
    const marker = join(dir, 'holding');
    const holder = start(['lock', 'codes', '--', 'sh', '-c', `touch ${marker}; sleep 120`], env);
    await waitFor('the holder to run', () => existsSync(marker), 30_000, 50);
    const waiter = await raftkv(['lock', 'codes', '--max-wait', '500', '--', 'true'], env);
    expect(waiter.code).to.equal(4);
    expect(waiter.stderr).to.contain('still held after --max-wait 500 ms');
    expect(await exists(client, 'locks/codes')).to.equal(true);
    holder.child.kill('SIGTERM');
    const r = await holder.done;
    expect(r.code, r.stderr).to.equal(143);
    expect(await exists(client, 'locks/codes')).to.equal(false);
    const usage = await raftkv(['lock', 'codes'], env);
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.contain('lock needs a command after "--"');
  });
});
