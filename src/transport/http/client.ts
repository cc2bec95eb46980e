/**
 * Sends Raft messages to peers as JSON over HTTP with undici: one keep-alive Pool per peer, a
 * per-request timeout, a bound on requests in flight per peer (beyond it messages are dropped;
 * Raft retransmits), and a fresh Pool after an error so a restarted peer is reached again. With
 * RAFT_TLS_* the pools speak mutual TLS (re-created on SIGHUP); with RAFT_CLUSTER_SECRET every
 * request is signed.
 */
import { Pool } from 'undici';
import type { Message } from '../../raft/core/types.js';
import type { Transport } from '../types.js';
import { signRequest } from '../../security/hmac.js';

/** Client-side TLS for peer RPC: our certificate and key, and the cluster CA that peers must be signed by. */
export interface PeerClientTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

interface Peer {
  pool: Pool;
  inFlight: number;
  sent: number;
  failed: number;
}

const MESSAGES_PATH = '/raft/messages';

/** The peer RPC client used by the Raft driver. */
export class HttpTransport implements Transport {
  private peers = new Map<string, Peer>();
  private tls: PeerClientTls | null;

  /** `localAddress`: source address for peer connections, so firewalls can tell nodes apart on one host. */
  constructor(private readonly opts: { selfAddr?: string; timeoutMs?: number; maxInFlight?: number; localAddress?: string; tls?: PeerClientTls | null; clusterSecret?: string | null } = {}) {
    this.tls = opts.tls ?? null;
  }

  /** A keep-alive pool to one peer, over mutual TLS when configured. */
  private newPool(addr: string): Pool {
    const base = { connections: 4, keepAliveTimeout: 10_000, pipelining: 1, ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}) };
    if (this.tls === null) return new Pool(`http://${addr}`, base);
    return new Pool(`https://${addr}`, { ...base, connect: { cert: this.tls.cert, key: this.tls.key, ca: this.tls.ca } });
  }

  send(to: { id: string; raftAddr: string }, msgs: Message[]): void {
    const peer = this.peer(to.raftAddr);
    if (peer.inFlight >= (this.opts.maxInFlight ?? 8)) return;
    peer.inFlight++;
    const timeout = this.opts.timeoutMs ?? 2000;
    const pool = peer.pool;
    const body = JSON.stringify({ from: msgs[0]?.from ?? '', fromAddr: this.opts.selfAddr ?? null, messages: msgs });
    const secret = this.opts.clusterSecret ?? null;
    const headers = { 'content-type': 'application/json', ...(secret !== null ? signRequest(secret, 'POST', MESSAGES_PATH, body) : {}) };
    pool
      .request({ path: MESSAGES_PATH, method: 'POST', body, headers, headersTimeout: timeout, bodyTimeout: timeout })
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

  /**
   * Whether the peer at `raftAddr` answers /raft/health over our transport, i.e. (with mutual TLS)
   * it presents a certificate of the cluster CA and accepts ours. The join route uses it.
   */
  async probe(raftAddr: string, timeoutMs = 3000): Promise<boolean> {
    const pool = this.newPool(raftAddr);
    try {
      const res = await pool.request({ path: '/raft/health', method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    } finally {
      await pool.destroy().catch(() => undefined);
    }
  }

  /** Installs new TLS material (SIGHUP) and replaces every pool so new connections use it. */
  setTls(tls: PeerClientTls): void {
    this.tls = tls;
    for (const [addr, p] of this.peers) {
      const old = p.pool;
      p.pool = this.newPool(addr);
      old.close().catch(() => undefined);
    }
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
      p = { pool: this.newPool(addr), inFlight: 0, sent: 0, failed: 0 };
      this.peers.set(addr, p);
    }
    return p;
  }

  /** Replaces a peer's pool after an error (once per broken pool), keeping its counters. */
  private discard(addr: string, peer: Peer, broken: Pool): void {
    if (peer.pool !== broken) return;
    peer.pool = this.newPool(addr);
    broken.destroy().catch(() => undefined);
  }

  async close(): Promise<void> {
    const pools = [...this.peers.values()].map((p) => p.pool.destroy());
    this.peers.clear();
    await Promise.allSettled(pools);
  }
}
