/** Durable creation of a node's data directory, used by openStorage before the database opens it. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/** Fsyncs a file or directory by path (a directory's sync makes its entries — creates, renames — durable). */
export async function fsyncPath(p: string): Promise<void> {
  const fh = await fsp.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Creates `dir` and any missing parents, and fsyncs the parent of every directory on the way, so
 * that a power cut cannot undo the creation: a new directory entry is durable only once its parent
 * directory is synced (POSIX), and RocksDB syncs only the database directory itself. Without this a
 * power cut soon after the first start loses the whole directory, and with it every acknowledged
 * write. The parent of `dir` is synced on every call, in case an earlier run crashed before doing so.
 */
export async function ensureDurableDir(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  const first = await fsp.mkdir(abs, { recursive: true });
  const parents: string[] = [path.dirname(abs)];
  if (first !== undefined) {
    for (let d = path.dirname(abs); d.length >= first.length && d !== path.dirname(d); d = path.dirname(d)) parents.push(path.dirname(d));
  }
  // Deepest first is not required for correctness; each sync makes one directory's entries durable.
  for (const p of new Set(parents)) await fsyncPath(p);
}
