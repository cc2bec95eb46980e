/**
 * Sends Raft messages to peers as JSON over HTTP with undici: one keep-alive Pool per peer, a
 * per-request timeout, a bound on requests in flight per peer (beyond it messages are dropped;
 * Raft retransmits), and a fresh Pool after an error so a restarted peer is reached again.
 */
import { Pool } from 'undici';
import type { Message } from '../../raft/core/types.js';
import type { Transport } from '../types.js';

/** A keep-alive pool to one peer; `localAddress` pins the source address of its connections. */
function newPool(addr: string, localAddress?: string): Pool {
  return new Pool(`http://${addr}`, { connections: 4, keepAliveTimeout: 10_000, pipelining: 1, ...(localAddress ? { localAddress } : {}) });
}

interface Peer {
  pool: Pool;
  inFlight: number;
  sent: number;
  failed: number;
}

export class HttpTransport implements Transport {
  private peers = new Map<string, Peer>();

  /** `localAddress`: source address for peer connections, so firewalls can tell nodes apart on one host. */
  constructor(private readonly opts: { selfAddr?: string; timeoutMs?: number; maxInFlight?: number; localAddress?: string } = {}) {}

  send(to: { id: string; raftAddr: string }, msgs: Message[]): void {
    const peer = this.peer(to.raftAddr);
    if (peer.inFlight >= (this.opts.maxInFlight ?? 8)) return;
    peer.inFlight++;
    const timeout = this.opts.timeoutMs ?? 2000;
    const pool = peer.pool;
    const body = JSON.stringify({ from: msgs[0]?.from ?? '', fromAddr: this.opts.selfAddr ?? null, messages: msgs });
    pool
      .request({ path: '/raft/messages', method: 'POST', body, headers: { 'content-type': 'application/json' }, headersTimeout: timeout, bodyTimeout: timeout })
      .then(async (res) => {
        await res.body.dump();
        peer.sent++;
      })
      .catch(() => {
        peer.failed++;
        this.discard(to.raftAddr, peer, pool);
      })
      .finally(() => {
        peer.inFlight--;
      });
  }

  /** Per-peer counters, for metrics and tests. */
  stats(): Record<string, { sent: number; failed: number }> {
    const out: Record<string, { sent: number; failed: number }> = {};
    for (const [addr, p] of this.peers) out[addr] = { sent: p.sent, failed: p.failed };
    return out;
  }

  private peer(addr: string): Peer {
    let p = this.peers.get(addr);
    if (!p) {
      p = { pool: newPool(addr, this.opts.localAddress), inFlight: 0, sent: 0, failed: 0 };
      this.peers.set(addr, p);
    }
    return p;
  }

  /** Replaces a peer's pool after an error (once per broken pool), keeping its counters. */
  private discard(addr: string, peer: Peer, broken: Pool): void {
    if (peer.pool !== broken) return;
    peer.pool = newPool(addr, this.opts.localAddress);
    broken.destroy().catch(() => undefined);
  }

  async close(): Promise<void> {
    const pools = [...this.peers.values()].map((p) => p.pool.destroy());
    this.peers.clear();
    await Promise.allSettled(pools);
  }
}
