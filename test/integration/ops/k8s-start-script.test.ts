/**
 * The StatefulSet's start script decides between bootstrapping and joining. It runs here under
 * /bin/sh in a private network namespace where the client Service name resolves to loopback and a
 * stub answers GET /cluster, with `exec node ...` replaced by printing the join address it chose.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { HostsNamespace, canMakeNamespaces } from '../../support/hosts-netns.js';
import { removeDir, tempDir, waitFor } from '../../support/procs.js';

const root = join(import.meta.dirname, '../../..');

function startScript(): string {
  const docs = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes/statefulset.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; spec: { template: { spec: { containers: { args: string[] }[] } } } });
  const sts = docs.find((d) => d.kind === 'StatefulSet')!;
  const script = sts.spec.template.spec.containers[0].args.join('\n');
  expect(script).to.contain('exec node dist/src/main.js');
  return script.replace('exec node dist/src/main.js', 'echo "JOIN=${RAFT_JOIN_ADDR:-}"');
}

describe('ops: the Kubernetes start script bootstraps pod 0 only when no cluster runs', function () {
  this.timeout(60_000);
  const ns = `raftkv-ops-k8s-${process.pid}-${randomBytes(3).toString('hex')}`;
  const netns = new HostsNamespace(ns);
  let dir = '';
  let stub: ChildProcess | null = null;
  const script = startScript();

  before(function () {
    if (!canMakeNamespaces()) this.skip(); // needs root and iproute2
    dir = tempDir('raftkv-ops-k8s-');
    netns.create('127.0.0.1 localhost raftkv.prod.svc.cluster.local\n');
  });

  after(async () => {
    await stopStub();
    netns.destroy();
    if (dir) removeDir(dir);
  });

  async function stopStub(): Promise<void> {
    const s = stub;
    stub = null;
    if (!s || s.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      s.once('exit', () => resolve());
      s.kill('SIGKILL');
    });
  }

  /** Serves `body` at GET /cluster on the Service's port inside the namespace. */
  async function serveCluster(body: unknown): Promise<void> {
    await stopStub();
    const code = `require('http').createServer((q, r) => { r.setHeader('content-type', 'application/json'); r.end(${JSON.stringify(JSON.stringify(body))}); }).listen(8080, '127.0.0.1', () => console.log('up'));`;
    const s = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    stub = s;
    let out = '';
    s.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor('stub listening', async () => out.includes('up'), 10_000, 20);
  }

  function runScript(pod: string): { status: number | null; stdout: string; stderr: string } {
    const env = {
      PATH: process.env.PATH ?? '',
      POD_NAME: pod,
      POD_NAMESPACE: 'prod',
      NODE_ID: pod,
      RAFT_DIR: dir,
      RAFT_JOIN_ADDR: 'raftkv-0.raftkv-headless.prod.svc.cluster.local:8080',
    };
    const r = spawnSync('ip', ['netns', 'exec', ns, '/bin/sh', '-c', script], { env, encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('pod 0, empty volume, nothing answers: bootstraps (no join address)', async () => {
    await stopStub();
    const r = runScript('raftkv-0');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('JOIN=');
  });

  it('other pods always join through pod 0', () => {
    const r = runScript('raftkv-2');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('JOIN=raftkv-0.raftkv-headless.prod.svc.cluster.local:8080');
  });

  it('pod 0, empty volume, a cluster with a leader runs without it: joins through the client Service', async () => {
    await serveCluster({ leader: { id: 'raftkv-1' }, nodes: [{ id: 'raftkv-1' }, { id: 'raftkv-2' }] });
    const r = runScript('raftkv-0');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('JOIN=raftkv.prod.svc.cluster.local:8080');
  });

  it('pod 0, empty volume, the running cluster still lists it: refuses to start', async () => {
    await serveCluster({ leader: { id: 'raftkv-1' }, nodes: [{ id: 'raftkv-0' }, { id: 'raftkv-1' }, { id: 'raftkv-2' }] });
    const r = runScript('raftkv-0');
    expect(r.status).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.contain('DELETE /cluster/nodes/raftkv-0');
  });

  it('pod 0 restarting with saved state never bootstraps or probes: starts as the member it was', async () => {
    // Even with a cluster answering, saved state wins: the node itself skips bootstrap and join.
    mkdirSync(join(dir, 'raftkv-0'), { recursive: true });
    const r = runScript('raftkv-0');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal('JOIN=');
  });
});
