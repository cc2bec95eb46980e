/**
 * Watches the free space of the data directory's filesystem, so the node refuses client writes
 * (507 INSUFFICIENT_STORAGE) while less than MIN_FREE_DISK_BYTES is free, instead of running into
 * ENOSPC in the middle of a Raft log write (a storage failure, which stops the node). The reserve
 * leaves room for what Raft itself must still write (votes, a new leader's no-op, followers' catch-up).
 * Created by main.ts when RAFT_DIR is set; the node asks it before each proposal.
 */
import { promises as fsp } from 'node:fs';
import { InsufficientStorageError } from '../errors.js';

/** Polls statfs(dir) every `pollMs`; `refusal()` is answered from the last result, without I/O. */
export class DiskSpaceGuard {
  private freeBytes = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dir: string,
    private readonly minFreeBytes: number,
    private readonly pollMs = 1000,
  ) {}

  /** Takes the first reading and starts polling. */
  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    try {
      const s = await fsp.statfs(this.dir);
      this.freeBytes = s.bavail * s.bsize;
    } catch {
      // statfs cannot fail on a directory we opened a database in; if it does, keep the last reading
      // (a real disk failure shows up as a storage error on the next write, which stops the node).
    }
  }

  /** The error to refuse writes with while the disk is (nearly) full, or null. */
  refusal(): InsufficientStorageError | null {
    if (this.minFreeBytes <= 0 || this.freeBytes >= this.minFreeBytes) return null;
    return new InsufficientStorageError(
      `the disk holding RAFT_DIR has ${this.freeBytes} bytes free, less than MIN_FREE_DISK_BYTES=${this.minFreeBytes}: writes are refused until space is freed (reads still work)`,
    );
  }
}
