/**
 * A raftkv cluster inside the fault suite's private network namespace: real node processes bound to
 * 127.0.0.(10+i), RocksDB under a temp dir, iptables partitions, SIGKILL/SIGSTOP. Used only by
 * scenario.ts, which runs inside the namespace (netns.ts checks that before anything here runs).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'undici';
import type { LocalClusterView } from '../../src/api/cluster-types.js';
import { http, restartNode, startNode, stopNode, waitFor, type NodeProc } from '../support/procs.js';

/** The iptables chain holding every fault rule; healing flushes it. */
const CHAIN = 'RAFTKV_FAULTS';
const API_PORT = 8080;
const RAFT_PORT = 7000;

/** One node of the namespace cluster. */
export interface FaultNode {
  index: number;
  id: string;
  ip: string;
  api: string;
  proc: NodeProc | null;
  isPaused: boolean;
  /** Its own RAFT_DIR (a lazyfs mount in the power-loss scenarios); the cluster's directory otherwise. */
  dataDir?: string;
}

/** Result of one HTTP call made from inside the namespace; status 0 = no answer. */
export interface NsResponse {
  status: number;
  text: string;
  body: unknown;
}

function iptables(args: string[]): void {
  const r = spawnSync('iptables', ['-w', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iptables ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

/** Manages the nodes, their network faults and their data directory. */
export class NsCluster {
  readonly nodes: FaultNode[] = [];
  private readonly agent = new Agent({ connect: { timeout: 1000 }, keepAliveTimeout: 5000 });

  /**
   * `dir` holds every node's RocksDB; the caller (netns.ts) creates and removes it. `isInMemory`:
   * nodes run without RAFT_DIR (every restart is a node without state).
   */
  constructor(
    readonly dir: string,
    private readonly extraEnv: Record<string, string> = {},
    readonly isInMemory = false,
  ) {
    iptables(['-N', CHAIN]);
    iptables(['-A', 'INPUT', '-j', CHAIN]);
  }

  /** Creates (but does not start) node `index` (1-based); its address is 127.0.0.(10+index). */
  define(index: number): FaultNode {
    const ip = `127.0.0.${10 + index}`;
    const n: FaultNode = { index, id: `n${index}`, ip, api: `http://${ip}:${API_PORT}`, proc: null, isPaused: false };
    this.nodes.push(n);
    return n;
  }

  /** Starts a defined node; every node but n1 joins through n1 (or `joinVia`). */
  start(n: FaultNode, joinVia?: FaultNode): void {
    const env: Record<string, string> = {
      NODE_ID: n.id,
      HOST: n.ip,
      PORT: String(API_PORT),
      RAFT_BIND_ADDR: `${n.ip}:${RAFT_PORT}`,
      RAFT_DIR: n.dataDir ?? this.dir,
      REQUEST_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'info',
      ...this.extraEnv,
    };
    if (n.index !== 1 || joinVia) env.RAFT_JOIN_ADDR = `${(joinVia ?? this.nodes[0]).ip}:${API_PORT}`;
    if (this.isInMemory) delete env.RAFT_DIR;
    if (n.proc) {
      restartNode(n.proc);
    } else {
      n.proc = startNode(n.id, env);
      n.proc.api = n.api;
    }
    n.isPaused = false;
  }

  /** Deletes the node's whole RAFT_DIR/NODE_ID (log, snapshot, state machine, identity); it must be down. */
  wipe(n: FaultNode): void {
    if (this.isUp(n)) throw new Error(`wipe of ${n.id} while it runs`);
    if (!this.isInMemory) rmSync(join(n.dataDir ?? this.dir, n.id), { recursive: true, force: true });
  }

  /**
   * Starts a node that has no state (wiped, or in memory) with RAFT_JOIN_ADDR=`joinVia`'s API, as the
   * README says to; or, with `joinVia` null, with the node's original command when that had none
   * (the operator's mistake: it bootstraps a new one-node cluster of its own).
   */
  startEmpty(n: FaultNode, joinVia: FaultNode | null): void {
    if (!n.proc) throw new Error(`${n.id} was never started`);
    const env = { ...n.proc.env };
    if (joinVia) env.RAFT_JOIN_ADDR = `${joinVia.ip}:${API_PORT}`;
    else delete env.RAFT_JOIN_ADDR;
    n.proc.env = env;
    restartNode(n.proc);
    n.isPaused = false;
  }

  /** Waits until the leader's configuration records `n`'s running incarnation as a voter (it rejoined and caught up). */
  async waitRejoined(n: FaultNode, timeoutMs = 30_000): Promise<void> {
    let last: LocalClusterView | null = null;
    let own: LocalClusterView | null = null;
    try {
      await waitFor(`${n.id} to rejoin as a voter under its new incarnation`, async () => {
        own = await this.info(n);
        const l = await this.leader(this.nodes.filter((x) => this.isUp(x) && x !== n));
        if (!own?.incarnation || !l) return false;
        last = await this.info(l);
        return last?.nodes.some((m) => m.id === n.id && m.suffrage === 'voter' && m.incarnation === own?.incarnation) ?? false;
      }, timeoutMs, 150);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nleader view: ${JSON.stringify(last)}\n${n.id} view: ${JSON.stringify(own)}\n${n.id} output:\n${this.tail(n, 15)}`);
    }
  }

  /** Whether the node's process is running (possibly paused). */
  isUp(n: FaultNode): boolean {
    return n.proc?.proc != null;
  }

  /** Sends SIGKILL (or another terminating signal) and waits for the exit. */
  async kill(n: FaultNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!n.proc) return;
    if (n.isPaused) this.resume(n);
    await stopNode(n.proc, signal);
  }

  /** SIGSTOP: the process freezes, sockets stay open. */
  pause(n: FaultNode): void {
    n.proc?.proc?.kill('SIGSTOP');
    n.isPaused = true;
  }

  /** SIGCONT after pause(). */
  resume(n: FaultNode): void {
    n.proc?.proc?.kill('SIGCONT');
    n.isPaused = false;
  }

  /** Cuts all traffic between every node of `a` and every node of `b`, both ways. */
  partition(a: FaultNode[], b: FaultNode[]): void {
    for (const x of a) {
      for (const y of b) {
        iptables(['-A', CHAIN, '-s', x.ip, '-d', y.ip, '-j', 'DROP']);
        iptables(['-A', CHAIN, '-s', y.ip, '-d', x.ip, '-j', 'DROP']);
      }
    }
  }

  /**
   * Drops only messages from `from` to `to`: connections `from` opens to `to` cannot carry data
   * (their original-direction packets are dropped), while connections `to` opens to `from` work,
   * replies included. Raft messages are one-way POSTs, so this is a one-way partition of messages.
   */
  partitionOneWay(from: FaultNode[], to: FaultNode[]): void {
    for (const x of from) {
      for (const y of to) iptables(['-A', CHAIN, '-s', x.ip, '-d', y.ip, '-m', 'conntrack', '--ctdir', 'ORIGINAL', '-j', 'DROP']);
    }
  }

  /** Removes every network fault. */
  heal(): void {
    iptables(['-F', CHAIN]);
  }

  /** Number of fault rules in force, for verification. */
  ruleCount(): number {
    const r = spawnSync('iptables', ['-w', '-S', CHAIN], { encoding: 'utf8' });
    return r.stdout.split('\n').filter((l) => l.startsWith('-A')).length;
  }

  /** One HTTP call from inside the namespace (source 127.0.0.1, which no fault rule matches). */
  async http(method: string, url: string, body?: unknown, timeoutMs = 3000): Promise<NsResponse> {
    const r = await http(method, url, body === undefined ? undefined : JSON.stringify(body), {}, { dispatcher: this.agent, timeoutMs });
    return { status: r.status, text: r.text, body: r.body };
  }

  /** GET /cluster of one node, or null when it does not answer. */
  async info(n: FaultNode, timeoutMs = 1000): Promise<LocalClusterView | null> {
    if (!this.isUp(n) || n.isPaused) return null;
    const r = await this.http('GET', `${n.api}/cluster`, undefined, timeoutMs);
    return r.status === 200 ? (r.body as LocalClusterView) : null;
  }

  /** The node that currently reports itself leader and is reported leader by a majority of `among`. */
  async leader(among: FaultNode[] = this.nodes): Promise<FaultNode | null> {
    const infos = await Promise.all(among.map((n) => this.info(n)));
    const votes = new Map<string, number>();
    for (const i of infos) if (i?.leader) votes.set(i.leader.id, (votes.get(i.leader.id) ?? 0) + 1);
    for (const [id, count] of votes) {
      const n = this.nodes.find((x) => x.id === id);
      const self = infos[among.findIndex((x) => x.id === id)];
      if (n && self?.role === 'leader' && count * 2 > among.length) return n;
    }
    return null;
  }

  /** Waits for a leader agreed by a majority of `among`. */
  async waitLeader(among: FaultNode[] = this.nodes, timeoutMs = 20_000): Promise<FaultNode> {
    return waitFor('a leader', () => this.leader(among), timeoutMs, 100);
  }

  /** Waits until `n` is a voter in the leader's configuration. */
  async waitVoter(n: FaultNode, timeoutMs = 30_000): Promise<void> {
    let last: LocalClusterView | null = null;
    try {
      await waitFor(`${n.id} to become a voter`, async () => {
        const l = await this.leader(this.nodes.filter((x) => this.isUp(x)));
        if (!l) return false;
        last = await this.info(l);
        return last?.nodes.some((m) => m.id === n.id && m.suffrage === 'voter') ?? false;
      }, timeoutMs, 150);
    } catch (err) {
      const own = await this.info(n);
      throw new Error(`${(err as Error).message}\nleader view: ${JSON.stringify(last)}\n${n.id} view: ${JSON.stringify(own)}\n${n.id} output:\n${this.tail(n, 15)}`);
    }
  }

  /** Last lines of a node's output, for failure messages. */
  tail(n: FaultNode, lines = 20): string {
    return (n.proc?.output.join('') ?? '').split('\n').slice(-lines).join('\n');
  }

  /** Kills every node, removes the fault chain and the data directory. */
  async destroy(): Promise<void> {
    for (const n of this.nodes) {
      if (n.isPaused) this.resume(n);
      if (n.proc) await stopNode(n.proc, 'SIGKILL');
    }
    await this.agent.close();
    try {
      iptables(['-F', CHAIN]);
    } catch (err) {
      process.stderr.write(`faults: could not flush ${CHAIN}: ${(err as Error).message}\n`);
    }
  }
}
