/**
 * lazyfs, the power-cut filesystem of the fault suite (test/faults/lazyfs/): what survives a cut is
 * exactly what was fsynced — file data by fsync/fdatasync of the file, names by fsync of their
 * directory. Needs root and /dev/fuse; skips (with the reason) only when those are missing.
 */
import { expect } from 'chai';
import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir } from '../support/procs.js';
import { LazyFs, isMounted, lazyFsUnavailable } from './lazyfs/lazyfs.js';

function writeSynced(path: string, data: string, flags = 'w'): void {
  const fd = openSync(path, flags);
  writeSync(fd, data);
  fsyncSync(fd);
  closeSync(fd);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

describe('lazyfs (power-cut filesystem for the fault suite)', function () {
  this.timeout(60_000);
  let dir = '';
  let fs: LazyFs | null = null;
  let mnt = '';

  before(function () {
    const reason = lazyFsUnavailable();
    if (reason) {
      process.stdout.write(`    SKIPPED lazyfs: ${reason}\n`);
      this.skip();
    }
  });

  beforeEach(async () => {
    dir = tempDir('raftkv-lazyfs-');
    mnt = join(dir, 'mnt');
    fs = await LazyFs.mount(join(dir, 'backing'), mnt, join(dir, 'ctl.sock'));
  });

  afterEach(async () => {
    await fs?.unmount();
    fs = null;
    expect(isMounted(mnt), 'the mount is gone').to.equal(false);
    removeDir(dir);
  });

  it('data written without fsync is gone after a cut; fsynced data stays', async () => {
    writeSynced(join(mnt, 'a'), 'synced');
    syncDir(mnt);
    writeFileSync(join(mnt, 'a'), 'synced+unsynced'); // rewritten, never synced
    const fd = openSync(join(mnt, 'b'), 'w');
    writeSync(fd, 'durable part');
    fdatasyncSync(fd);
    writeSync(fd, ' lost part');
    closeSync(fd);
    syncDir(mnt);
    expect(readFileSync(join(mnt, 'b'), 'utf8')).to.equal('durable part lost part');
    await fs!.cut();
    expect(readFileSync(join(mnt, 'a'), 'utf8')).to.equal('synced');
    expect(readFileSync(join(mnt, 'b'), 'utf8')).to.equal('durable part');
  });

  it('a file whose directory was not fsynced after its creation is gone, even if its data was', async () => {
    writeSynced(join(mnt, 'new'), 'data');
    await fs!.cut();
    expect(existsSync(join(mnt, 'new'))).to.equal(false);
  });

  it('a rename without a directory fsync is undone; with one it stays', async () => {
    writeSynced(join(mnt, 'x.tmp'), 'v1');
    syncDir(mnt);
    renameSync(join(mnt, 'x.tmp'), join(mnt, 'x'));
    await fs!.cut();
    expect(readdirSync(mnt).sort()).to.deep.equal(['x.tmp']);
    renameSync(join(mnt, 'x.tmp'), join(mnt, 'x'));
    syncDir(mnt);
    await fs!.cut();
    expect(readdirSync(mnt).sort()).to.deep.equal(['x']);
    expect(readFileSync(join(mnt, 'x'), 'utf8')).to.equal('v1');
  });

  it('an unlink without a directory fsync is undone', async () => {
    writeSynced(join(mnt, 'keep'), 'k');
    syncDir(mnt);
    unlinkSync(join(mnt, 'keep'));
    await fs!.cut();
    expect(readFileSync(join(mnt, 'keep'), 'utf8')).to.equal('k');
  });

  it('fsync fails with EIO while sync failures are on, and makes nothing durable', async () => {
    writeSynced(join(mnt, 'f'), 'old');
    syncDir(mnt);
    await fs!.failSync(true);
    const fd = openSync(join(mnt, 'f'), 'w');
    writeSync(fd, 'new');
    expect(() => fsyncSync(fd)).to.throw(/EIO/);
    closeSync(fd);
    await fs!.failSync(false);
    await fs!.cut();
    expect(readFileSync(join(mnt, 'f'), 'utf8')).to.equal('old');
  });

  it('a quota makes writes fail with ENOSPC until space is freed', async () => {
    await fs!.quota(10_000);
    writeFileSync(join(mnt, 'fill'), 'x'.repeat(8000));
    expect(() => writeFileSync(join(mnt, 'more'), 'y'.repeat(4000))).to.throw(/ENOSPC/);
    unlinkSync(join(mnt, 'fill'));
    writeFileSync(join(mnt, 'more'), 'y'.repeat(4000));
    expect((await fs!.usage()).used).to.equal(4000);
  });
});
