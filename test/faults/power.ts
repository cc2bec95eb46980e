/**
 * Power loss for the fault suite: every node's RAFT_DIR is its own lazyfs mount (lazyfs/), so a
 * "power cut" — SIGKILL of the process, then lazyfs dropping everything not fsynced — loses what a
 * real machine loses, unlike a plain SIGKILL, which keeps the page cache. Used by scenario.ts (inside
 * the fault namespace, whose private mount namespace also takes every mount with it when it ends).
 */
import { join } from 'node:path';
import type { FaultNode, NsCluster } from './cluster.js';
import { LazyFs } from './lazyfs/lazyfs.js';

/** The negative control's module: loaded into the nodes with --import, it acknowledges log writes before they are synced. */
export const ACK_BEFORE_SYNC_MODULE = join(import.meta.dirname, 'ack-before-sync.mjs');
/** The negative control of conditional writes: the leader decides conditions at propose time (decide-at-propose.mjs). */
export const DECIDE_AT_PROPOSE_MODULE = join(import.meta.dirname, 'decide-at-propose.mjs');
/** The negative control of the watch check: one watch change event skipped per node process (watch-skip.mjs). */
export const WATCH_SKIP_MODULE = join(import.meta.dirname, 'watch-skip.mjs');
/** The negative control of the lease check: deposed leaders forward stale expiries, apply ignores the term fence (lease-nofence.mjs). */
export const LEASE_NOFENCE_MODULE = join(import.meta.dirname, 'lease-nofence.mjs');

/** The lazyfs disks of a scenario's nodes. */
export class PowerDisks {
  private readonly disks = new Map<string, LazyFs>();

  constructor(private readonly dir: string) {}

  /** Mounts one lazyfs per node and points the node's RAFT_DIR at it; call before the node starts. */
  async attach(nodes: FaultNode[]): Promise<void> {
    for (const n of nodes) {
      const base = join(this.dir, `disk-${n.id}`);
      const fs = await LazyFs.mount(join(base, 'backing'), join(base, 'mnt'), join(base, 'ctl.sock'));
      this.disks.set(n.id, fs);
      n.dataDir = fs.mountpoint;
    }
  }

  /** The disk of `n`. */
  of(n: FaultNode): LazyFs {
    const fs = this.disks.get(n.id);
    if (!fs) throw new Error(`no lazyfs disk for ${n.id}`);
    return fs;
  }

  /** Power cut: SIGKILL every node of `nodes` at once, then drop everything their disks had not synced. */
  async cut(cluster: NsCluster, nodes: FaultNode[]): Promise<string[]> {
    await Promise.all(nodes.map((n) => cluster.kill(n)));
    return Promise.all(nodes.map(async (n) => `${n.id}: ${await this.of(n).cut()}`));
  }

  /** Unmounts every disk (the nodes must be stopped). */
  async detach(): Promise<void> {
    for (const fs of this.disks.values()) await fs.unmount();
    this.disks.clear();
  }
}
