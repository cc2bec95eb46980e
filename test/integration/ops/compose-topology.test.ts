/**
 * The docker-compose topology without a Docker engine: the four services of docker-compose.yml run
 * as processes with the compose environment in a private network namespace (only loopback up),
 * where app1..app4 resolve to 127.0.0.11..14 through /etc/netns/<ns>/hosts (bind-mounted over
 * /etc/hosts by `ip netns exec`). All four start at the same moment, as `docker compose up` does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { parse } from 'yaml';
import type { LocalClusterView } from '../../../src/api/cluster-types.js';
import { HostsNamespace, canMakeNamespaces } from '../../support/hosts-netns.js';
import { mainArgs, removeDir, tempDir, waitFor } from '../../support/procs.js';

const root = join(import.meta.dirname, '../../..');
const SERVICES = ['app1', 'app2', 'app3', 'app4'] as const;

interface Reply {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: unknown;
}

/** Reads each service's environment from docker-compose.yml (values as strings, like compose passes them). */
function composeEnvironment(): Record<string, Record<string, string>> {
  const doc = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { environment: Record<string, unknown> }> };
  const out: Record<string, Record<string, string>> = {};
  for (const [name, svc] of Object.entries(doc.services)) {
    out[name] = Object.fromEntries(Object.entries(svc.environment).map(([k, v]) => [k, String(v)]));
  }
  return out;
}

/**
 * A tiny HTTP client living inside the namespace (so names resolve through its hosts file): reads
 * one JSON request per line on stdin, answers one JSON line on stdout.
 */
const AGENT = `
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const q = JSON.parse(line);
  try {
    const res = await fetch(q.url, { method: q.method, body: q.body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(8000) });
    const text = await res.text();
    process.stdout.write(JSON.stringify({ id: q.id, status: res.status, headers: Object.fromEntries(res.headers), text }) + '\\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ id: q.id, status: 0, headers: {}, text: String(err && err.cause ? err.cause.code || err.cause : err) }) + '\\n');
  }
});
`;

class NetnsHttp {
  private seq = 0;
  private waiting = new Map<number, (r: Reply) => void>();
  readonly proc: ChildProcess;

  constructor(ns: string) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', AGENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as { id: number; status: number; headers: Record<string, string>; text: string };
      let body: unknown = r.text;
      try {
        body = JSON.parse(r.text);
      } catch {
        body = r.text;
      }
      this.waiting.get(r.id)?.({ status: r.status, headers: r.headers, text: r.text, body });
      this.waiting.delete(r.id);
    });
  }

  request(method: string, url: string, body?: unknown): Promise<Reply> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ id, method, url, body: body === undefined ? undefined : JSON.stringify(body) })}\n`);
    });
  }
}

describe('ops: the docker-compose topology as processes in a private network namespace', function () {
  this.timeout(180_000);
  const ns = `raftkv-ops-${process.pid}-${randomBytes(3).toString('hex')}`;
  const netns = new HostsNamespace(ns);
  let dataDir = '';
  let client: NetnsHttp | null = null;
  const procs = new Map<string, ChildProcess>();
  const output = new Map<string, string[]>();
  let launch: (service: string) => void = () => undefined;

  const tail = () => [...output].map(([id, lines]) => `--- ${id}\n${lines.join('').split('\n').slice(-15).join('\n')}`).join('\n');

  before(function () {
    if (!canMakeNamespaces()) this.skip(); // needs root and iproute2
    dataDir = tempDir('raftkv-ops-compose-');
    netns.create(['127.0.0.1 localhost', ...SERVICES.map((s, i) => `127.0.0.${11 + i} ${s}`), ''].join('\n'));

    const env = composeEnvironment();
    expect(Object.keys(env)).to.deep.equal([...SERVICES]);
    const args = mainArgs();
    // Built first, then spawned in one synchronous loop: the four start at the same moment.
    const launches = SERVICES.map((s, i) => {
      const ip = `127.0.0.${11 + i}`;
      const port = env[s].RAFT_BIND_ADDR.split(':')[1];
      // The compose environment, except that each process binds its own address instead of 0.0.0.0
      // (in compose every container has its own interface) and keeps its data in a temp dir.
      const nodeEnv = { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env[s], HOST: ip, RAFT_BIND_ADDR: `${ip}:${port}`, RAFT_DIR: dataDir };
      return { s, nodeEnv };
    });
    launch = (s: string) => {
      const { nodeEnv } = launches.find((l) => l.s === s)!;
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { cwd: root, env: nodeEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      const lines = output.get(s) ?? [];
      output.set(s, lines);
      const keep = (b: Buffer) => {
        lines.push(b.toString());
        if (lines.length > 300) lines.splice(0, 100);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      procs.set(s, child);
    };
    for (const { s } of launches) launch(s);
    client = new NetnsHttp(ns);
  });

  after(async () => {
    const exits = [...procs.values()].map((p) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    })));
    if (client) {
      const c = client.proc;
      exits.push(c.exitCode !== null ? Promise.resolve() : new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGKILL');
      }));
    }
    await Promise.all(exits);
    netns.destroy();
    if (dataDir) removeDir(dataDir);
  });

  const api = (s: string) => `http://${s}:8080`;

  it('forms one cluster of four voters, each advertised by its compose name', async () => {
    const views = await waitFor('one cluster of four voters agreeing on the leader', async () => {
      const vs: LocalClusterView[] = [];
      for (const s of SERVICES) {
        const r = await client!.request('GET', `${api(s)}/cluster`);
        if (r.status !== 200) return null;
        vs.push(r.body as LocalClusterView);
      }
      const leaders = new Set(vs.map((v) => v.leader?.id ?? null));
      const allFour = vs.every((v) => v.nodes.length === 4 && v.nodes.every((n) => n.suffrage === 'voter'));
      return leaders.size === 1 && !leaders.has(null) && allFour ? vs : null;
    }, 120_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail()}`);
    });
    expect(views.filter((v) => v.role === 'leader')).to.have.length(1);
    expect(new Set(views.map((v) => v.term)).size).to.equal(1);
    for (const v of views) {
      expect(v.nodes.map((n) => n.id).sort()).to.deep.equal([...SERVICES]);
      for (const n of v.nodes) {
        expect(n.raftAddr).to.equal(`${n.id}:7000`);
        expect(n.apiAddr).to.equal(`${n.id}:8080`);
      }
    }
    for (const s of SERVICES) {
      expect((await client!.request('GET', `${api(s)}/health`)).status, s).to.equal(200);
      await waitFor(`${s} ready`, async () => (await client!.request('GET', `${api(s)}/ready`)).status === 200, 30_000, 200);
    }
  });

  it("serves the README's curl flow: set via a follower, get from every node, delete", async () => {
    const view = (await client!.request('GET', `${api('app1')}/cluster`)).body as LocalClusterView;
    const follower = SERVICES.find((s) => s !== view.leader!.id)!;
    const set = await client!.request('POST', `${api(follower)}/key`, { key1: 'value1' });
    expect(set.status, set.text).to.equal(200);
    expect(set.body).to.deep.equal({ key1: 'value1' });
    expect(set.headers['x-raft-leader']).to.equal(view.leader!.id);
    for (const s of SERVICES) {
      const g = await client!.request('GET', `${api(s)}/key/key1`);
      expect(g.status, `${s}: ${g.text}`).to.equal(200);
      expect(g.body).to.deep.equal({ key1: 'value1' });
    }
    const del = await client!.request('DELETE', `${api('app1')}/key/key1`);
    expect(del.status, del.text).to.equal(200);
    expect(del.body).to.deep.equal({ deleted: 'key1' });
    for (const s of SERVICES) {
      const g = await client!.request('GET', `${api(s)}/key/key1`);
      expect(g.status, s).to.equal(404);
      expect(g.body).to.deep.equal({ error: { code: 'KEY_NOT_FOUND', message: 'key not found: key1' } });
    }
  });

  it('app1, killed and restarted with its volume (restart: unless-stopped), rejoins instead of bootstrapping', async () => {
    const p = procs.get('app1')!;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
    const set = await waitFor('a write while app1 is down', async () => {
      const r = await client!.request('POST', `${api('app2')}/key`, { during: 'outage' });
      return r.status === 200 ? r : null;
    }, 60_000, 250);
    expect(set.body).to.deep.equal({ during: 'outage' });
    launch('app1');
    const view = await waitFor('app1 back in the four-voter cluster', async () => {
      const r = await client!.request('GET', `${api('app1')}/cluster`);
      const v = r.status === 200 ? (r.body as LocalClusterView) : null;
      return v && v.leader && v.nodes.length === 4 && v.nodes.every((n) => n.suffrage === 'voter') ? v : null;
    }, 60_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}\n${tail()}`);
    });
    expect(view.nodes.map((n) => n.id).sort()).to.deep.equal([...SERVICES]);
    // It restarted from its saved state: no bootstrap of a one-node cluster, and it has the write made without it.
    expect(output.get('app1')!.join('')).to.match(/"hadState":true,"bootstrapped":false/);
    const g = await waitFor('app1 serves the write', async () => {
      const r = await client!.request('GET', `${api('app1')}/key/during`);
      return r.status === 200 ? r : null;
    }, 30_000, 250);
    expect(g.body).to.deep.equal({ during: 'outage' });
  });
});
