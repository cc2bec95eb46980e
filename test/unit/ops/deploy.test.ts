import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect } from 'chai';
import { parse, parseAllDocuments } from 'yaml';
import { createMetrics, httpMetrics } from '../../../src/metrics/index.js';
import { healthcheckCommand } from './dockerfile.js';

const root = join(import.meta.dirname, '../../..');

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => {
  expect(v, 'expected an object').to.be.an('object');
  return v as Obj;
};

function k8sDocs(): Obj[] {
  return filesUnder(join(root, 'deploy/kubernetes'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(f, 'utf8')).map((d) => obj(d.toJS())));
}

function composeServices(): Record<string, Obj> {
  return obj(obj(parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true })).services) as Record<string, Obj>;
}

/** Every metric family name the running code registers (defaults included). */
async function registeredNames(): Promise<Set<string>> {
  const m = createMetrics('x', () => null, true);
  httpMetrics(m.registry);
  return new Set((await m.registry.getMetricsAsJSON()).map((j) => j.name));
}

/** Metric names used in a PromQL text, with histogram/summary suffixes resolved to their family. */
function promqlNames(text: string, known: Set<string>): string[] {
  const names = [...text.matchAll(/\b((?:raftkv|nodejs|process)_[a-z0-9_]+)\b/g)].map((m) => m[1]);
  return names.map((n) => (known.has(n) ? n : n.replace(/_(bucket|count|sum)$/, '')));
}

describe('deploy/: every file parses, and the manifests hold what operations rely on', () => {
  it('every YAML and JSON file under deploy/ parses', () => {
    // Dotfiles (.gitignore) and the keys and certificates `make certs` generates (git-ignored) are not manifests.
    const files = filesUnder(join(root, 'deploy')).filter((f) => !/(^|[\\/])\.[^\\/]+$/.test(f) && !/\.(pem|srl|csr|cnf)$/.test(f));
    expect(files.length).to.be.at.least(6);
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const where = relative(root, f);
      if (f.endsWith('.json')) expect(() => JSON.parse(text), where).to.not.throw();
      else if (/\.ya?ml$/.test(f)) {
        for (const doc of parseAllDocuments(text)) expect(doc.errors, where).to.deep.equal([]);
      } else expect.fail(`unexpected file type in deploy/: ${where}`);
    }
  });

  it('Kubernetes: StatefulSet with stable names, PVCs, probes, join via pod 0 and advertise from the pod name', () => {
    const docs = k8sDocs();
    const kinds = docs.map((d) => d.kind);
    expect(kinds).to.include.members(['StatefulSet', 'Service', 'PodDisruptionBudget']);
    const sts = docs.find((d) => d.kind === 'StatefulSet')!;
    const spec = obj(sts.spec);
    expect(spec.podManagementPolicy).to.equal('Parallel');
    const headless = docs.find((d) => d.kind === 'Service' && obj(d.spec).clusterIP === 'None');
    expect(headless, 'a headless Service').to.not.equal(undefined);
    expect(obj(headless!.spec).publishNotReadyAddresses).to.equal(true);
    expect(spec.serviceName).to.equal(obj(headless!.metadata).name);
    expect((spec.volumeClaimTemplates as unknown[]).length).to.equal(1);
    const pod = obj(obj(spec.template).spec);
    const c = obj((pod.containers as unknown[])[0]);
    expect(obj(obj(c.readinessProbe).httpGet).path).to.equal('/ready');
    expect(obj(obj(c.livenessProbe).httpGet).path).to.equal('/health');
    const env = new Map((c.env as Obj[]).map((e) => [e.name as string, e]));
    expect(obj(obj(env.get('POD_NAME')!.valueFrom).fieldRef).fieldPath).to.equal('metadata.name');
    expect(env.get('NODE_ID')!.value).to.equal('$(POD_NAME)');
    expect(env.get('RAFT_ADVERTISE_ADDR')!.value).to.match(/^\$\(POD_NAME\)\.raftkv-headless\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local:7000$/);
    expect(env.get('RAFT_JOIN_ADDR')!.value).to.match(/^raftkv-0\.raftkv-headless\./);
    expect(env.get('RAFT_DIR')!.value).to.equal(obj((c.volumeMounts as unknown[])[0]).mountPath);
    // Pod 0 drops the join address (it bootstraps) and the script ends by exec'ing node (signals reach it).
    const script = (c.args as string[]).join('\n');
    expect(script).to.match(/unset RAFT_JOIN_ADDR/);
    expect(script.trim().split('\n').at(-1)).to.equal('exec node dist/src/main.js');
    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget')!;
    expect(obj(pdb.spec).maxUnavailable).to.equal(1);
  });

  it('the Grafana dashboard and the alerts query only metrics the code registers', async () => {
    const known = await registeredNames();
    const dash = obj(JSON.parse(readFileSync(join(root, 'deploy/grafana/raftkv-dashboard.json'), 'utf8')));
    const exprs = (dash.panels as Obj[]).flatMap((p) => (p.targets as Obj[]).map((t) => t.expr as string));
    const alerts = readFileSync(join(root, 'deploy/prometheus/raftkv-alerts.yml'), 'utf8');
    const used = [...exprs.flatMap((e) => promqlNames(e, known)), ...promqlNames(alerts, known)];
    expect(used.length).to.be.greaterThan(20);
    for (const n of used) expect(known.has(n), `${n} is not a registered metric`).to.equal(true);
    // The panels the issue asks for.
    const titles = (dash.panels as Obj[]).map((p) => String(p.title).toLowerCase()).join('|');
    for (const want of ['leader', 'term', 'commit', 'replication lag', 'request rate', 'latency', 'fsync']) expect(titles).to.contain(want);
  });

  it('the Prometheus config scrapes the compose nodes and the annotated Kubernetes pods', () => {
    const cfg = obj(parse(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')));
    const jobs = cfg.scrape_configs as Obj[];
    const compose = jobs.find((j) => j.static_configs);
    expect(obj((compose!.static_configs as unknown[])[0]).targets).to.deep.equal(Object.keys(composeServices()).map((s) => `${s}:8080`));
    expect(jobs.some((j) => j.kubernetes_sd_configs)).to.equal(true);
  });
});

describe('containers: docker-compose.yml and Dockerfile', () => {
  it('docker-compose config validates the file', function () {
    const probe = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
    if (probe.error) this.skip(); // docker-compose is not installed (.ci/run installs it)
    const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
  });

  it('services app1..app4: own volume and NODE_ID, advertise appN, app2..app4 join via app1, ports 8081..8084', () => {
    const services = composeServices();
    expect(Object.keys(services)).to.deep.equal(['app1', 'app2', 'app3', 'app4']);
    const volumes = new Set<string>();
    for (const [name, svc] of Object.entries(services)) {
      const n = name.slice(3);
      const env = obj(svc.environment);
      expect(env.NODE_ID).to.equal(name);
      expect(env.RAFT_BIND_ADDR).to.equal('0.0.0.0:7000');
      expect(env.RAFT_ADVERTISE_ADDR).to.equal(`${name}:7000`);
      expect(env.API_ADVERTISE_ADDR).to.equal(`${name}:8080`);
      expect(env.RAFT_JOIN_ADDR).to.equal(name === 'app1' ? undefined : 'app1:8080');
      expect(svc.restart).to.equal('unless-stopped');
      expect(svc.ports).to.deep.equal([`808${n}:8080`]);
      const vols = svc.volumes as string[];
      expect(vols).to.have.length(1);
      const [vol, mount] = vols[0].split(':');
      expect(mount).to.equal(env.RAFT_DIR);
      volumes.add(vol);
    }
    expect(volumes.size).to.equal(4);
  });

  it('Dockerfile: multi-stage, production deps only, slim LTS, non-root, volume, both ports, HEALTHCHECK on /health, exec-form CMD', () => {
    const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(lines.filter((l) => /^FROM /.test(l)).length).to.be.at.least(2);
    expect(text).to.match(/ARG NODE_IMAGE=node:(22|24)-[a-z]*-?slim/);
    expect(text).to.contain('npm ci --omit=dev');
    const runtime = text.slice(text.lastIndexOf('\nFROM '));
    expect(runtime).to.not.match(/npm ci(?! --omit=dev)/);
    expect(runtime).to.match(/^USER node$/m);
    expect(runtime).to.match(/^VOLUME \["\/data"\]$/m);
    expect(runtime).to.match(/^ENV[\s\S]*RAFT_DIR=\/data/m);
    expect(runtime).to.match(/^EXPOSE 8080 7000$/m);
    expect(runtime).to.match(/HEALTHCHECK[\s\S]*CMD \["node", "-e", ".*\/health/);
    expect(runtime).to.match(/^CMD \["node", "dist\/src\/main\.js"\]$/m);
    // Exec form only when the array is valid JSON; otherwise Docker silently runs it through a shell.
    expect(healthcheckCommand()).to.have.length(3);
    const cmd = /^CMD (\[.*\])$/m.exec(runtime)![1];
    expect(JSON.parse(cmd)).to.deep.equal(['node', 'dist/src/main.js']);
  });
});
