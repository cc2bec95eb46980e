/**
 * A node's cluster identity (docs/cluster-identity.md): the cluster id, fixed when the cluster is
 * bootstrapped and learned by a joining node from the join response, and this process's
 * incarnation, made fresh whenever the node starts without Raft state. Persisted beside the RocksDB
 * data (`identity.json` in the node's directory, written and synced before the node takes part) or
 * kept in memory. Created by main.ts; read by the driver, the peer transport and the join route.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath } from '../../storage/durable-dir.js';

/** The identity a node presents to its peers. */
export interface NodeIdentity {
  /** Null until the node bootstrapped a cluster or was told the id by the join response. */
  clusterId: string | null;
  incarnation: string;
}

/** Where a node's identity is kept. */
export interface IdentityStore {
  load(): Promise<NodeIdentity | null>;
  /** Resolves once the identity is durable (synced) where the store is durable. */
  save(identity: NodeIdentity): Promise<void>;
}

/** A fresh random id (cluster id or incarnation): 16 random bytes in hex. */
export function newIdentityId(): string {
  return randomBytes(16).toString('hex');
}

/** Validates an identity id received from the network or read from disk. */
export function isIdentityId(v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-zA-Z_-]{1,64}$/.test(v);
}

/** The in-memory store (RAFT_DIR unset): every process start is a new incarnation. */
export class MemoryIdentityStore implements IdentityStore {
  private identity: NodeIdentity | null = null;
  async load(): Promise<NodeIdentity | null> {
    return this.identity && { ...this.identity };
  }
  async save(identity: NodeIdentity): Promise<void> {
    this.identity = { ...identity };
  }
}

/** `dir/identity.json`, replaced atomically (write, fsync, rename, fsync the directory). */
export class FileIdentityStore implements IdentityStore {
  constructor(private readonly dir: string) {}

  async load(): Promise<NodeIdentity | null> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, 'identity.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let o: { clusterId?: unknown; incarnation?: unknown };
    try {
      o = JSON.parse(text) as typeof o;
    } catch {
      throw new Error(`storage: ${path.join(this.dir, 'identity.json')} is malformed (not JSON)`);
    }
    if ((o.clusterId !== null && !isIdentityId(o.clusterId)) || !isIdentityId(o.incarnation)) throw new Error(`storage: ${path.join(this.dir, 'identity.json')} is malformed`);
    return { clusterId: o.clusterId, incarnation: o.incarnation };
  }

  async save(identity: NodeIdentity): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, 'identity.json');
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(identity));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await fsyncPath(this.dir);
  }
}
