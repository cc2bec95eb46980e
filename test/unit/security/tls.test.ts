import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReloadableTls } from '../../../src/security/tls.js';
import { removeDir, tempDir } from '../../support/procs.js';

const gen = join(import.meta.dirname, '../../../scripts/gen-certs.sh');

describe('security: reloadable TLS material', function () {
  this.timeout(30_000);
  let dir = '';
  before(() => {
    dir = tempDir('raftkv-tlsunit-');
    execFileSync(gen, [dir, 'app1', 'app2'], { env: { ...process.env, CA_DIR: join(dir, 'ca-private') }, stdio: 'ignore' }); // the CA key inside dir, removed with it
  });
  after(() => removeDir(dir));

  it('re-reads the files on reload and tells its listeners; a key that does not match keeps the old certificate', () => {
    const files = { certFile: join(dir, 'live.pem'), keyFile: join(dir, 'live-key.pem'), caFile: join(dir, 'ca.pem') };
    copyFileSync(join(dir, 'app1.pem'), files.certFile);
    copyFileSync(join(dir, 'app1-key.pem'), files.keyFile);
    const tls = new ReloadableTls(files);
    const serial = () => new X509Certificate(tls.current.cert).serialNumber;
    const first = serial();
    let reloads = 0;
    tls.onReload(() => reloads++);
    copyFileSync(join(dir, 'app2.pem'), files.certFile);
    expect(() => tls.reload()).to.throw();
    expect([serial(), reloads]).to.deep.equal([first, 0]);
    copyFileSync(join(dir, 'app2-key.pem'), files.keyFile);
    tls.reload();
    expect(serial()).to.equal(new X509Certificate(readFileSync(join(dir, 'app2.pem'))).serialNumber);
    expect(serial()).to.not.equal(first);
    expect(reloads).to.equal(1);
    expect(tls.serverOptions().ca).to.be.instanceOf(Buffer);
  });
});
