/** Issue 19: an expired certificate is refused at load and on reload (the old one stays in force). */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReloadableTls } from '../../../src/security/tls.js';
import { removeDir, tempDir } from '../../support/procs.js';

const gen = join(import.meta.dirname, '../../../scripts/gen-certs.sh');

describe('security: expired certificates are refused', function () {
  this.timeout(30_000);
  let dir = '';
  before(() => {
    dir = tempDir('raftkv-tlsexp-');
    execFileSync(gen, [dir, 'good'], { env: { ...process.env, CA_DIR: join(dir, 'ca-private') }, stdio: 'ignore' }); // the CA key inside dir, removed with it
    execFileSync(gen, [dir, 'old'], { env: { ...process.env, CA_DIR: join(dir, 'ca-private'), CERT_DAYS: '-1' }, stdio: 'ignore' });
  });
  after(() => removeDir(dir));

  it('at load: a clear error naming the file and the date', () => {
    expect(() => new ReloadableTls({ certFile: join(dir, 'old.pem'), keyFile: join(dir, 'old-key.pem') })).to.throw(/old\.pem expired on \d{4}-/);
  });

  it('on reload: the error is thrown and the valid certificate stays, with its expiry', () => {
    const files = { certFile: join(dir, 'live.pem'), keyFile: join(dir, 'live-key.pem') };
    copyFileSync(join(dir, 'good.pem'), files.certFile);
    copyFileSync(join(dir, 'good-key.pem'), files.keyFile);
    const tls = new ReloadableTls(files);
    const good = new X509Certificate(readFileSync(join(dir, 'good.pem')));
    expect(tls.expirySeconds).to.equal(Date.parse(good.validTo) / 1000);
    copyFileSync(join(dir, 'old.pem'), files.certFile);
    copyFileSync(join(dir, 'old-key.pem'), files.keyFile);
    expect(() => tls.reload()).to.throw(/expired on/);
    expect(new X509Certificate(tls.current.cert).serialNumber).to.equal(good.serialNumber);
  });
});
