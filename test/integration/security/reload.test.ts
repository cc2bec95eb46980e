/**
 * Issue 19 (low): token revocation is per node — SIGHUP on one node leaves the others accepting a
 * removed token. `raftkv reload` (POST /admin/reload on every member, admin only) revokes it
 * everywhere with one command.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { call, freeBasePort, nodeEnv, startThreeVoters } from './helpers.js';

const root = join(import.meta.dirname, '../../..');
const ADMIN = 'admin-token-0001';
const TEMP = 'temporary-token-1';
const READ = 'read-token-00001';

/** Runs `raftkv ...args` through tsx; resolves with its exit code and output. */
function raftkv(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('security: reloading tokens on every node with one command (raftkv reload)', function () {
  this.timeout(240_000);
  let port = 0;
  let dir = '';
  const nodes: NodeProc[] = [];
  const api = (i: number) => `http://127.0.0.1:${port + i}`;
  const tokensFile = () => join(dir, 'tokens.json');
  const writeTokens = (withTemp: boolean) =>
    writeFileSync(tokensFile(), JSON.stringify({ [ADMIN]: { role: 'admin' }, [READ]: { role: 'read' }, ...(withTemp ? { [TEMP]: { role: 'read' } } : {}) }));
  const statusWith = async (i: number, token: string) => (await call('GET', `${api(i)}/key/k`, { headers: { authorization: `Bearer ${token}` } })).status;

  before(async () => {
    port = await freeBasePort();
    dir = tempDir('raftkv-reload-');
    writeTokens(true);
    const env = (i: number) => nodeEnv(port, i, { AUTH_TOKENS_FILE: tokensFile(), RAFT_CLUSTER_SECRET: 'reload test cluster secret' });
    await startThreeVoters(nodes, env, api(1), { headers: { authorization: `Bearer ${ADMIN}` } });
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    removeDir(dir);
  });

  it('SIGHUP revokes on its node only; `raftkv reload` revokes on every node', async () => {
    for (const i of [1, 2, 3]) expect(await statusWith(i, TEMP)).to.equal(404);
    writeTokens(false);
    nodes[0].proc?.kill('SIGHUP');
    await waitFor('node 1 to drop the token', async () => (await statusWith(1, TEMP)) === 401, 10_000);
    expect([await statusWith(2, TEMP), await statusWith(3, TEMP)]).to.deep.equal([404, 404]);

    const r = await raftkv(['reload'], { RAFTKV_ENDPOINTS: `127.0.0.1:${port + 2}`, RAFTKV_TOKEN: ADMIN });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    for (const id of ['app1', 'app2', 'app3']) expect(r.stdout).to.match(new RegExp(`^${id}\\treloaded$`, 'm'));
    for (const i of [1, 2, 3]) expect(await statusWith(i, TEMP)).to.equal(401);
    expect(await statusWith(2, ADMIN)).to.equal(404);
  });

  it('a read token may not reload; a broken tokens file is reported per node and the old tokens stay', async () => {
    const denied = await call('POST', `${api(1)}/admin/reload`, { headers: { authorization: `Bearer ${READ}` } });
    expect(denied.status, denied.text).to.equal(403);
    writeFileSync(tokensFile(), '{ not json');
    const r = await raftkv(['reload', '--json'], { RAFTKV_ENDPOINTS: `127.0.0.1:${port + 1}`, RAFTKV_TOKEN: ADMIN });
    expect(r.code, r.stdout + r.stderr).to.equal(3);
    const out = JSON.parse(r.stdout) as { ok: boolean; nodes: { id: string; ok: boolean; message: string }[] };
    expect(out.ok).to.equal(false);
    expect(out.nodes.map((n) => [n.id, n.ok]).sort()).to.deep.equal([['app1', false], ['app2', false], ['app3', false]]);
    expect(out.nodes[0].message).to.match(/^422: .*AUTH_TOKENS_FILE/);
    for (const i of [1, 2, 3]) expect(await statusWith(i, READ)).to.equal(404);
  });
});
