/**
 * Issue 19: `make certs` wrote every private key world-readable, the CA key included, and
 * docker-compose.secure.yml mounted the CA key into every container. The test runs gen-certs.sh
 * with exactly the variables the makefile's `certs` recipe passes, then checks the modes and that
 * nothing the compose file mounts holds the CA key.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../../support/procs.js';

const root = join(import.meta.dirname, '../../..');

/** The VAR=value assignments the makefile's `certs` recipe puts before scripts/gen-certs.sh. */
function makeCertsEnv(): Record<string, string> {
  const m = /\ncerts:\n\t((?:[A-Z_]+=\S*\s+)*)scripts\/gen-certs\.sh deploy\/certs/.exec(readFileSync(join(root, 'makefile'), 'utf8'));
  expect(m, 'the certs recipe runs scripts/gen-certs.sh deploy/certs').to.not.equal(null);
  return Object.fromEntries((m?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map((a) => a.split('=', 2) as [string, string]));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('security: make certs keeps keys private and the CA key out of what nodes mount', function () {
  this.timeout(60_000);
  let dir = '';
  let out = '';
  before(() => {
    dir = tempDir('raftkv-gencerts-');
    out = join(dir, 'certs');
    execFileSync(join(root, 'scripts/gen-certs.sh'), [out, 'app1', 'app2'], { env: { ...process.env, ...makeCertsEnv() }, stdio: 'ignore' });
  });
  after(() => removeDir(dir));

  it('private keys are readable by their owner (and at most their group), never by others', () => {
    const keys = filesUnder(dir).filter((f) => f.endsWith('-key.pem'));
    expect(keys.length).to.equal(3);
    for (const k of keys) {
      const mode = statSync(k).mode & 0o777;
      expect(mode & 0o037, `${k}: ${mode.toString(8)}`).to.equal(0);
    }
    expect(statSync(join(`${out}-ca`, 'ca-key.pem')).mode & 0o777).to.equal(0o600);
    expect(statSync(`${out}-ca`).mode & 0o777).to.equal(0o700);
  });

  it('the CA key is not in the certificate directory (only its certificate is)', () => {
    expect(existsSync(join(out, 'ca.pem'))).to.equal(true);
    expect(filesUnder(out).filter((f) => f.includes('ca-key'))).to.deep.equal([]);
  });

  it('an existing CA is reused, and a CA key left in the directory by an older version is moved out', () => {
    const ca = readFileSync(join(out, 'ca.pem'));
    execFileSync('cp', [join(`${out}-ca`, 'ca-key.pem'), join(out, 'ca-key.pem')]);
    execFileSync('rm', [join(`${out}-ca`, 'ca-key.pem')]);
    execFileSync(join(root, 'scripts/gen-certs.sh'), [out, 'app3'], { stdio: 'ignore' });
    expect(readFileSync(join(out, 'ca.pem')).equals(ca)).to.equal(true);
    expect(existsSync(join(out, 'ca-key.pem'))).to.equal(false);
    expect(existsSync(join(`${out}-ca`, 'ca-key.pem'))).to.equal(true);
  });

  it('docker-compose.secure.yml mounts no CA key: not the CA directory, no ca-key file', () => {
    const compose = readFileSync(join(root, 'docker-compose.secure.yml'), 'utf8');
    const sources = [...compose.matchAll(/^\s*-\s*([^\s:]+):\/[^\s]*/gm)].map((m) => m[1]);
    expect(sources).to.include('./deploy/certs');
    for (const s of sources) {
      expect(s, s).to.not.match(/ca-key|certs-ca/);
      // What `make certs` puts under a mounted directory holds no CA key (checked on `out` above).
      if (s === './deploy/certs') expect(filesUnder(out).some((f) => f.includes('ca-key'))).to.equal(false);
    }
  });
});
