/**
 * One raftkv node on a lazyfs disk (test/faults/lazyfs/), on loopback: what a power cut and a failing
 * disk do to it. Power cut: SIGKILL and every unsynced byte and directory entry dropped. Disk faults:
 * fsync failing with EIO, a full disk, a corrupted file. Needs root and /dev/fuse; skips (with the
 * reason) only when those are missing. The multi-node power-loss scenarios live in scenario.ts.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { basePort, http, nodeEnv, removeDir, restartNode, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../support/procs.js';
import { LazyFs, isMounted, lazyFsUnavailable } from './lazyfs/lazyfs.js';

describe('a node on a lazyfs disk: power cuts and disk faults', function () {
  this.timeout(120_000);
  let dir = '';
  let disk: LazyFs | null = null;
  let node: NodeProc | null = null;
  let port = 0;

  before(function () {
    const reason = lazyFsUnavailable();
    if (reason) {
      process.stdout.write(`    SKIPPED disk faults: ${reason}\n`);
      this.skip();
    }
  });

  beforeEach(async () => {
    dir = tempDir('raftkv-disk-');
    disk = await LazyFs.mount(join(dir, 'backing'), join(dir, 'mnt'), join(dir, 'ctl.sock'));
    port = basePort();
    node = startNode('app1', nodeEnv(port, 1, { extra: { RAFT_DIR: disk.mountpoint, REQUEST_TIMEOUT_MS: '2000' } }));
    await waitHealthy();
  });

  afterEach(async () => {
    if (node) await stopNode(node, 'SIGKILL');
    node = null;
    const mnt = disk?.mountpoint ?? '';
    await disk?.unmount();
    disk = null;
    expect(isMounted(mnt), 'the lazyfs mount is gone').to.equal(false);
    removeDir(dir);
  });

  const api = () => `http://127.0.0.1:${port + 1}`;
  const put = (key: string, value: string) => http('POST', `${api()}/key`, { [key]: value }, {}, { timeoutMs: 5000 });
  const get = (key: string) => http('GET', `${api()}/key/${key}`, undefined, {}, { timeoutMs: 5000 });
  const output = () => node?.output.join('') ?? '';

  async function waitHealthy(): Promise<void> {
    await waitFor('the node to serve writes', async () => (await http('GET', `${api()}/health`)).status === 200 && (await put('probe', 'x')).status === 200, 30_000, 100);
  }

  async function powerCut(): Promise<void> {
    await stopNode(node!, 'SIGKILL');
    await disk!.cut();
    node!.output.push('--- power cut ---\n');
  }

  async function restart(): Promise<void> {
    restartNode(node!);
    await waitHealthy();
  }

  it('keeps every acknowledged write across power cuts, the first one right after its first start', async () => {
    const acked = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20; i++) {
        const r = await put(`k${i}`, `r${round}-${i}`);
        expect(r.status, r.text).to.equal(200);
        acked.set(`k${i}`, `r${round}-${i}`);
      }
      await powerCut();
      await restart();
      for (const [k, v] of acked) {
        const r = await get(k);
        expect(r.status, `${k} after power cut ${round + 1}: ${r.text}\n${output().slice(-2000)}`).to.equal(200);
        expect(r.body).to.deep.equal({ [k]: v });
      }
    }
  });
});
