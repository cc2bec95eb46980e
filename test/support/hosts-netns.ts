/** A private network namespace with its own hosts file, for the ops tests that need names to resolve. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
}

/** Whether this process can make network namespaces (root and iproute2); the ops tests skip otherwise. */
export function canMakeNamespaces(): boolean {
  return spawnSync('ip', ['netns', 'list']).status === 0 && process.getuid?.() === 0;
}

/** Namespace `name` with loopback up and /etc/netns/`name`/hosts (which `ip netns exec` bind-mounts over /etc/hosts). */
export class HostsNamespace {
  readonly hostsDir: string;
  private isCreated = false;

  constructor(readonly name: string) {
    this.hostsDir = `/etc/netns/${name}`;
  }

  /** Creates the namespace, brings loopback up and writes `hosts` as its hosts file. */
  create(hosts: string): void {
    run('ip', ['netns', 'add', this.name]);
    this.isCreated = true;
    run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
    mkdirSync(this.hostsDir, { recursive: true });
    writeFileSync(join(this.hostsDir, 'hosts'), hosts);
  }

  /** Deletes the namespace (when create() made it) and its hosts directory; safe after a failed create(). */
  destroy(): void {
    if (this.isCreated) run('ip', ['netns', 'del', this.name]);
    this.isCreated = false;
    rmSync(this.hostsDir, { recursive: true, force: true });
  }
}
