/**
 * Builds and drives lazyfs (lazyfs.c beside this file): a FUSE filesystem that keeps only what was
 * fsynced when the "power" is cut. Used by the power-loss and disk-fault tests; see docs/power-loss.md.
 * The binary is compiled with cc against libfuse3 on first use and cached by the source's hash.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = join(import.meta.dirname, 'lazyfs.c');

/** Why lazyfs cannot run here (not root, no /dev/fuse), or null when it can. */
export function lazyFsUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root (mounting a FUSE filesystem needs root)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing (no FUSE support in this kernel or container)';
  return null;
}

/** Compiles lazyfs once per source version; returns the binary's path. Throws with the package to install when the toolchain is missing. */
export function buildLazyFs(): string {
  const src = readFileSync(SOURCE);
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'raftkv-lazyfs');
  const bin = join(dir, `lazyfs-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' });
  if (pc.status !== 0) throw new Error('lazyfs: libfuse3 development files are missing (Debian: apt-get install libfuse3-dev pkg-config)');
  const tmp = `${bin}.${process.pid}.tmp`;
  const cc = spawnSync('cc', ['-O2', '-Wall', '-o', tmp, SOURCE, ...pc.stdout.trim().split(/\s+/)], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`lazyfs: compiling ${SOURCE} failed: ${cc.stderr || cc.error?.message}`);
  renameSync(tmp, bin); // atomic: concurrent builders never see a half-written binary
  return bin;
}

/** One mounted lazyfs; every test that mounts one must unmount() it (also on failure). */
export class LazyFs {
  private constructor(
    readonly mountpoint: string,
    readonly socket: string,
    private proc: ChildProcess | null,
    readonly output: string[],
  ) {}

  /** Mounts a fresh lazyfs at `mountpoint` (created if missing) over `backing` (emptied); resolves once it serves. */
  static async mount(backing: string, mountpoint: string, socket: string = `${backing}.sock`): Promise<LazyFs> {
    const bin = buildLazyFs();
    mkdirSync(mountpoint, { recursive: true });
    const proc = spawn(bin, [backing, mountpoint, socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const fs = new LazyFs(mountpoint, socket, proc, output);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`lazyfs: no "ready" within 10 s: ${output.join('')}`)), 10_000);
      const onData = (b: Buffer) => {
        output.push(b.toString());
        if (output.join('').includes('lazyfs: ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        fs.proc = null;
        reject(new Error(`lazyfs exited (${code}) before mounting: ${output.join('')}`));
      });
    });
    return fs;
  }

  /** Sends one control command; resolves with the answer after "ok", throws on "err". */
  command(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(this.socket);
      let buf = '';
      s.setTimeout(30_000, () => s.destroy(new Error(`lazyfs: no answer to "${cmd}"`)));
      s.on('data', (b: Buffer) => {
        buf += b.toString();
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        s.end();
        const line = buf.slice(0, nl);
        if (line.startsWith('ok')) resolve(line.slice(2).trim());
        else reject(new Error(`lazyfs: "${cmd}" failed: ${line}`));
      });
      s.on('error', reject);
      s.write(`${cmd}\n`);
    });
  }

  /** The power cut: everything not fsynced (data and directory entries) is dropped. Stop the writers first. */
  cut(): Promise<string> {
    return this.command('cut');
  }

  /** While on, fsync, fdatasync and directory fsync fail with EIO (and make nothing durable). */
  failSync(isOn: boolean): Promise<string> {
    return this.command(`fail-sync ${isOn ? 'on' : 'off'}`);
  }

  /** Caps the bytes of all files: writes that would exceed it fail with ENOSPC; null lifts it. */
  quota(bytes: number | null): Promise<string> {
    return this.command(bytes === null ? 'quota off' : `quota ${Math.floor(bytes)}`);
  }

  /** Current usage and counters: { used, quota, syncs, failed_syncs, enospc, cuts }. */
  async usage(): Promise<Record<string, number>> {
    const line = await this.command('usage');
    return Object.fromEntries(line.split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  }

  /** Unmounts (SIGTERM makes libfuse unmount) and waits for the daemon to exit; lazily unmounts if it will not. */
  async unmount(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      p.kill('SIGTERM');
      const isGone = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!isGone) {
        p.kill('SIGKILL');
        await exited;
      }
    }
    this.proc = null;
    if (isMounted(this.mountpoint)) spawnSync('umount', ['-l', this.mountpoint]);
  }
}

/** Whether `dir` is a mount point in this mount namespace. */
export function isMounted(dir: string): boolean {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  return mounts.split('\n').some((l) => l.split(' ')[4] === dir);
}
