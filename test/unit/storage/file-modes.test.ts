/**
 * Issue 19 (storage part): a node's data is private to its user. main.ts sets the umask to 077, so
 * the node directory is 0700 and every file RocksDB creates in it is 0600, whatever umask the node
 * was started with. Runs a real node (dist build when present, else the sources through tsx).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { basePort, http, nodeEnv, removeDir, startNode, stopNode, tempDir, waitFor } from '../../support/procs.js';

describe('storage: file modes of a node with RAFT_DIR', () => {
  it('the data directories are 0700 and RocksDB files 0600, even when started with umask 022', async () => {
    const root = tempDir('raftkv-modes-');
    const dataDir = path.join(root, 'data'); // created by the node
    const port = basePort();
    const previous = process.umask(0o022); // the child inherits it; main.ts must override it
    const n = startNode('app1', nodeEnv(port, 1, { extra: { RAFT_DIR: dataDir } }));
    process.umask(previous);
    try {
      await waitFor('a write to be accepted', async () => (await http('POST', `${n.api}/key`, { k: 'v' })).status === 200);
      expect((await http('GET', `${n.api}/key/k`)).body).to.deep.equal({ k: 'v' });
      expect(await stopNode(n)).to.equal(0);
      const nodeDir = path.join(dataDir, 'app1');
      expect((fs.statSync(dataDir).mode & 0o777).toString(8)).to.equal('700');
      expect((fs.statSync(nodeDir).mode & 0o777).toString(8)).to.equal('700');
      const files = fs.readdirSync(nodeDir);
      expect(files).to.include('CURRENT');
      for (const f of files) {
        const st = fs.statSync(path.join(nodeDir, f));
        expect(`${f} ${(st.mode & 0o777).toString(8)}`).to.equal(`${f} ${st.isDirectory() ? '700' : '600'}`);
      }
    } finally {
      await stopNode(n);
      removeDir(root);
    }
  });
});
