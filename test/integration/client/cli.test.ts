import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir, waitFor } from '../../support/procs.js';
import { startThreeNodes, type ThreeNodes } from './three-nodes.js';

const root = join(import.meta.dirname, '../../..');
const built = join(root, 'dist/src/cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `raftkv ...args` as a subprocess (the built bin when present, else through tsx). */
function raftkv(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Run> {
  const entry = existsSync(built) ? [built] : ['--import', 'tsx', join(root, 'src/cli/main.ts')];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

describe('raftkv command line, run as a subprocess against a real three-node cluster', function () {
  this.timeout(180_000);
  let c: ThreeNodes;
  let env: Record<string, string>;
  let dir = '';

  before(async () => {
    c = await startThreeNodes();
    env = { RAFTKV_ENDPOINTS: c.endpoints.join(',') };
    dir = tempDir('raftkv-cli-');
  });

  after(async () => {
    await c?.stop();
    if (dir) removeDir(dir);
  });

  it('is the package bin: package.json points at dist/src/cli/main.js, which starts with a node shebang', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.raftkv).to.equal('dist/src/cli/main.js');
    expect(readFileSync(join(root, 'src/cli/main.ts'), 'utf8').startsWith('#!/usr/bin/env node\n')).to.equal(true);
    if (existsSync(built)) expect(readFileSync(built, 'utf8').startsWith('#!/usr/bin/env node\n')).to.equal(true);
  });

  it('set then get prints OK and the value, exit 0', async () => {
    const s = await raftkv(['set', 'greeting', 'hello world'], env);
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/^OK index=\d+\n$/);
    const g = await raftkv(['get', 'greeting'], env);
    expect(g.code, g.stderr).to.equal(0);
    expect(g.stdout).to.equal('hello world\n');
  });

  it('--endpoints overrides RAFTKV_ENDPOINTS, and host:port without a scheme works', async () => {
    const hostPorts = c.endpoints.map((e) => e.replace('http://', '')).join(',');
    const g = await raftkv(['get', 'greeting', '--endpoints', hostPorts], { RAFTKV_ENDPOINTS: 'http://127.0.0.1:1' });
    expect(g.code, g.stderr).to.equal(0);
    expect(g.stdout).to.equal('hello world\n');
  });

  it('get --json and --consistency stale', async () => {
    const g = await raftkv(['get', 'greeting', '--json', '--consistency', 'stale'], env);
    expect(g.code, g.stderr).to.equal(0);
    const body = JSON.parse(g.stdout) as { key: string; value: string; index: number };
    expect(body.key).to.equal('greeting');
    expect(body.value).to.equal('hello world');
    expect(body.index).to.be.a('number');
  });

  it('a missing key exits 1 with a message on stderr (and a JSON error with --json)', async () => {
    const g = await raftkv(['get', 'no-such-key'], env);
    expect(g.code).to.equal(1);
    expect(g.stdout).to.equal('');
    expect(g.stderr).to.contain('key not found: no-such-key');
    const j = await raftkv(['get', 'no-such-key', '--json'], env);
    expect(j.code).to.equal(1);
    expect(JSON.parse(j.stderr)).to.deep.equal({ error: { code: 'KEY_NOT_FOUND', message: 'key not found: no-such-key' } });
    const d = await raftkv(['del', 'no-such-key'], env);
    expect(d.code).to.equal(1);
  });

  it('cas, del --if-index, ls and txn; a failed precondition exits 4', async () => {
    const created = await raftkv(['cas', 'cli/c', 'one', '--if-absent'], env);
    expect(created.code, created.stderr).to.equal(0);
    const index = Number(/index=(\d+)/.exec(created.stdout)?.[1]);
    const again = await raftkv(['cas', 'cli/c', 'two', '--if-absent'], env);
    expect(again.code).to.equal(4);
    expect(again.stdout).to.equal(`not set: cli/c is at index ${index}\n`);
    const swapped = await raftkv(['cas', 'cli/c', 'two', '--if-index', String(index), '--json'], env);
    expect(swapped.code, swapped.stderr).to.equal(0);
    const newIndex = (JSON.parse(swapped.stdout) as { index: number }).index;
    expect((await raftkv(['del', 'cli/c', '--if-index', String(index)], env)).code).to.equal(4);
    expect((await raftkv(['del', 'cli/c', '--if-index', String(newIndex)], env)).code).to.equal(0);
    expect((await raftkv(['cas', 'cli/c', 'x'], env)).code, 'cas needs a condition').to.equal(2);
    expect((await raftkv(['cas', 'cli/c', 'x', '--if-index', 'abc'], env)).code).to.equal(2);
    await raftkv(['set', '--file', '-'], env, JSON.stringify({ 'cli/ls/b': '2', 'cli/ls/a': '1', 'cli/lsx': 'no' }));
    const ls = await raftkv(['ls', 'cli/ls/'], env);
    expect(ls.code, ls.stderr).to.equal(0);
    const rows = ls.stdout.trimEnd().split('\n');
    expect(rows[0].split(/\s+/)).to.deep.equal(['KEY', 'INDEX', 'VALUE']);
    expect(rows.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal(['cli/ls/a', 'cli/ls/b']);
    const lsJson = await raftkv(['ls', 'cli/ls/', '--json', '--keys-only', '--limit', '1'], env);
    expect(lsJson.stdout.trimEnd().split('\n').map((l) => Object.keys(JSON.parse(l) as object))).to.deep.equal([['key', 'index']]);
    const txn = { compare: [{ key: 'cli/ls/a', value: '1' }], success: [{ op: 'set', key: 'cli/ls/c', value: '3' }], failure: [] };
    const t = await raftkv(['txn', '--file', '-', '--json'], env, JSON.stringify(txn));
    expect(t.code, t.stderr).to.equal(0);
    expect((JSON.parse(t.stdout) as { succeeded: boolean }).succeeded).to.equal(true);
    const tf = await raftkv(['txn', '--file', '-'], env, JSON.stringify({ ...txn, compare: [{ key: 'cli/ls/a', value: 'other' }] }));
    expect(tf.code).to.equal(4);
    const bad = await raftkv(['txn', '--file', '-'], env, '{"success":[{"op":"put"}]}');
    expect(bad.code).to.equal(2);
  });

  it('set --file writes every pair atomically, also from stdin; del removes a key', async () => {
    const file = join(dir, 'pairs.json');
    writeFileSync(file, JSON.stringify({ f1: 'one', f2: 'two', f3: 'three' }));
    const s = await raftkv(['set', '--file', file], env);
    expect(s.code, s.stderr).to.equal(0);
    expect(s.stdout).to.match(/^OK \(3 keys\) index=\d+\n$/);
    for (const [k, v] of [['f1', 'one'], ['f2', 'two'], ['f3', 'three']]) expect((await raftkv(['get', k], env)).stdout).to.equal(`${v}\n`);
    const fromStdin = await raftkv(['set', '--file', '-', '--json'], env, '{"s1":"x"}');
    expect(fromStdin.code, fromStdin.stderr).to.equal(0);
    expect(JSON.parse(fromStdin.stdout)).to.include({ ok: true, keys: 1 });
    const d = await raftkv(['del', 'f1'], env);
    expect(d.code, d.stderr).to.equal(0);
    expect(d.stdout).to.equal('deleted f1\n');
    expect((await raftkv(['get', 'f1'], env)).code).to.equal(1);
  });

  it('cluster prints the table of every node, the leader marked; --json gives the same data', async () => {
    const r = await raftkv(['cluster'], env);
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trimEnd().split('\n');
    const leader = { id: /^leader: (\S+)/.exec(lines[0])?.[1] ?? '' };
    expect(lines[0]).to.match(/^leader: app[123]\s+term: \d+\s+commit: \d+/);
    expect(lines[1].split(/\s{2,}/)).to.deep.equal(['ID', 'ROLE', 'SUFFRAGE', 'TERM', 'MATCH', 'COMMIT', 'APPLIED', 'LAG', 'LAST CONTACT', 'HEALTH']);
    expect(lines).to.have.length(5);
    const rows = lines.slice(2).map((l) => l.split(/\s+/));
    expect(rows.map((row) => row[0]).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    const leaderRow = lines.slice(2).find((l) => l.startsWith(`${leader.id} *`));
    expect(leaderRow, r.stdout).to.match(/ leader +voter /);
    const j = await raftkv(['cluster', '--json'], env);
    const info = JSON.parse(j.stdout) as { leader: { id: string }; nodes: { id: string; role: string; health: string }[] };
    expect(info.nodes.find((n) => n.id === info.leader.id)?.role).to.equal('leader');
    expect(info.nodes).to.have.length(3);
  });

  it('cluster remove of an unknown id exits 1', async () => {
    const r = await raftkv(['cluster', 'remove', 'ghost'], env);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('ghost');
  });

  it('usage errors exit 2: unknown command, unknown option, missing arguments, bad --file, bad --interval', async () => {
    const cases: string[][] = [['frobnicate'], ['get', '--bogus'], ['get'], ['set', 'only-key'], ['set', '--file', join(dir, 'absent.json')], ['watch-cluster', '--interval', 'soon'], ['cluster', 'explode'], []];
    for (const args of cases) {
      const r = await raftkv(args, env);
      expect(r.code, `raftkv ${args.join(' ')}: ${r.stderr}`).to.equal(2);
    }
    writeFileSync(join(dir, 'bad.json'), '{"k": 1}');
    const bad = await raftkv(['set', '--file', join(dir, 'bad.json')], env);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('must be a string');
  });

  it('--help works for every command and exits 0', async () => {
    for (const cmd of [[], ['get'], ['set'], ['del'], ['cluster'], ['watch-cluster']]) {
      const r = await raftkv([...cmd, '--help']);
      expect(r.code, `raftkv ${cmd.join(' ')} --help`).to.equal(0);
      expect(r.stdout).to.match(/^Usage: raftkv/);
      expect(r.stdout).to.contain('Exit codes');
    }
  });

  it('every endpoint down exits 3 with "cluster unavailable" reasons', async () => {
    const r = await raftkv(['get', 'greeting', '--endpoints', `127.0.0.1:${c.port + 97},127.0.0.1:${c.port + 98}`, '--retries', '2']);
    expect(r.code).to.equal(3);
    expect(r.stderr).to.contain('no endpoint answered');
    expect(r.stderr).to.contain('ECONNREFUSED');
    const w = await raftkv(['set', 'k', 'v', '--endpoints', `127.0.0.1:${c.port + 97}`, '--retries', '1', '--json']);
    expect(w.code).to.equal(3);
    expect((JSON.parse(w.stderr) as { error: { code: string } }).error.code).to.equal('CLUSTER_UNAVAILABLE');
  });

  it('watch-cluster refreshes until SIGINT and then exits 0', async () => {
    const entry = existsSync(built) ? [built] : ['--import', 'tsx', join(root, 'src/cli/main.ts')];
    const child = spawn(process.execPath, [...entry, 'watch-cluster', '--interval', '200ms'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor('three refreshes', async () => (out.match(/raftkv watch-cluster/g) ?? []).length >= 3, 30_000);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).to.equal(0);
    expect(out).to.contain('LAST CONTACT');
    expect(out).to.match(/app1/);
  });

  it('watch-cluster --json prints one JSON object per refresh', async () => {
    const entry = existsSync(built) ? [built] : ['--import', 'tsx', join(root, 'src/cli/main.ts')];
    const child = spawn(process.execPath, [...entry, 'watch-cluster', '--json', '--interval', '200ms'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor('two JSON lines', async () => out.split('\n').filter((l) => l.trim()).length >= 2, 30_000);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).to.equal(0);
    for (const line of out.split('\n').filter((l) => l.trim())) {
      const v = JSON.parse(line) as { at: string; cluster: { nodes: unknown[] } };
      expect(v.cluster.nodes).to.have.length(3);
    }
  });
});
