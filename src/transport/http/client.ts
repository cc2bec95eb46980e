/**
 * Sends Raft messages to peers over one long-lived stream per peer (stream-protocol.ts): an HTTP/1.1
 * Upgrade, then one JSON line per batch. Messages go out in order with no per-batch request or
 * response. Delivery stays best effort, as Raft expects: a batch is dropped while too much is
 * buffered for a peer; a stream whose lines stop being acknowledged within `timeoutMs` is closed;
 * and the next send opens a new stream, so a restarted or healed peer is reached again. With
 * RAFT_TLS_* streams speak mutual TLS (new streams after SIGHUP pick up new material); with
 * RAFT_CLUSTER_SECRET the upgrade is signed and every line carries an HMAC.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { Pool } from 'undici';
import type { Message } from '../../raft/core/types.js';
import type { Transport } from '../types.js';
import { signRequest } from '../../security/hmac.js';
import { parseHostPort, type HostPort } from '../../net/address.js';
import { CLUSTER_HEADER, FROM_HEADER, LineSplitter, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, TO_HEADER, frameLine, upgradeSignedBody } from './stream-protocol.js';

/** Client-side TLS for peer RPC: our certificate and key, and the cluster CA that peers must be signed by. */
export interface PeerClientTls {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/** One open (or opening) stream to a peer. */
interface Stream {
  req: ClientRequest;
  socket: Socket | null;
  nonce: string;
  /** Lines written (or queued while opening); the next line's sequence number is seq + 1. */
  seq: number;
  /** Highest line count the peer acknowledged. */
  acked: number;
  /** When the oldest line not yet acknowledged was written (null: everything acknowledged). */
  unackedSinceMs: number | null;
  /** Lines framed while the upgrade is in progress, written once it completes. */
  queued: string[];
  queuedBytes: number;
  isClosed: boolean;
  openTimer: NodeJS.Timeout | null;
}

interface Peer {
  stream: Stream | null;
  sent: number;
  failed: number;
}

/** The peer RPC client used by the Raft driver. */
export class HttpTransport implements Transport {
  private peers = new Map<string, Peer>();
  private tls: PeerClientTls | null;

  /** `localAddress`: source address for peer connections, so firewalls can tell nodes apart on one host. */
  /**
   * `timeoutMs`: how long opening a stream, or an unacknowledged line, may take before the stream is
   * replaced. `maxBufferedBytes`: beyond this much unsent data for a peer, batches are dropped.
   */
  /**
   * `clusterId`: this node's cluster id, named (and signed) in every stream's upgrade ('' until known).
   * `onRefused`: a peer refused a stream for its identity (409 another cluster, 421 another node, 403
   * certificate name), with the peer's explanation, so the operator hears of e.g. a member restarted
   * empty without RAFT_JOIN_ADDR.
   */
  constructor(
    private readonly opts: {
      selfAddr?: string;
      timeoutMs?: number;
      maxBufferedBytes?: number;
      localAddress?: string;
      tls?: PeerClientTls | null;
      clusterSecret?: string | null;
      clusterId?: () => string | null;
      onRefused?: (to: { id: string; raftAddr: string }, status: number, body: string) => void;
    } = {},
  ) {
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
    const now = performance.now();
    const timeout = this.opts.timeoutMs ?? 2000;
    let st = peer.stream;
    // A stream whose lines stopped being acknowledged is stuck (dropped packets, a paused peer): replace it.
    if (st !== null && st.socket !== null && st.unackedSinceMs !== null && now - st.unackedSinceMs > timeout) {
      this.closeStream(peer, st);
      st = null;
    }
    if (st === null || st.isClosed) {
      // Not host:port (the join route refuses such members): node:http would throw on it, so drop.
      const hostPort = parseHostPort(to.raftAddr);
      if (hostPort === null) {
        peer.failed++;
        return;
      }
      st = this.openStream(peer, to, hostPort, msgs[0]?.from ?? '', timeout);
    }
    const limit = this.opts.maxBufferedBytes ?? 16 << 20;
    const buffered = st.socket === null ? st.queuedBytes : st.socket.writableLength;
    if (buffered > limit) {
      peer.failed++;
      return;
    }
    const json = JSON.stringify({ from: msgs[0]?.from ?? '', fromAddr: this.opts.selfAddr ?? null, messages: msgs });
    st.seq++;
    const secret = this.opts.clusterSecret ?? null;
    const line = frameLine(json, secret === null ? null : { secret, nonce: st.nonce, seq: st.seq });
    if (st.socket === null) {
      st.queued.push(line);
      st.queuedBytes += line.length;
    } else {
      st.socket.write(line);
      if (st.unackedSinceMs === null) st.unackedSinceMs = now;
    }
    peer.sent++;
  }

  /** Starts the upgrade request for a new stream to `to`; lines are queued until it completes. */
  private openStream(peer: Peer, to: { id: string; raftAddr: string }, { host, port }: HostPort, from: string, timeoutMs: number): Stream {
    const nonce = randomBytes(16).toString('hex');
    const secret = this.opts.clusterSecret ?? null;
    const clusterId = this.opts.clusterId?.() ?? '';
    const headers: Record<string, string> = {
      connection: 'Upgrade',
      upgrade: STREAM_PROTOCOL,
      [NONCE_HEADER]: nonce,
      [CLUSTER_HEADER]: clusterId,
      [FROM_HEADER]: from,
      [TO_HEADER]: to.id,
      ...(secret !== null ? signRequest(secret, 'GET', STREAM_PATH, upgradeSignedBody(nonce, clusterId, from, to.id)) : {}),
    };
    const base = { host, port, path: STREAM_PATH, method: 'GET', headers, agent: false as const, ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}) };
    const req = this.tls === null ? httpRequest(base) : httpsRequest({ ...base, cert: this.tls.cert, key: this.tls.key, ca: this.tls.ca });
    const st: Stream = { req, socket: null, nonce, seq: 0, acked: 0, unackedSinceMs: null, queued: [], queuedBytes: 0, isClosed: false, openTimer: null };
    peer.stream = st;
    st.openTimer = setTimeout(() => this.closeStream(peer, st), timeoutMs);
    req.on('error', () => this.closeStream(peer, st));
    req.on('response', (res) => {
      // Anything but 101 (401, 404, 503...) is a refusal: drop this stream; the next send retries.
      const status = res.statusCode ?? 0;
      if ((status === 409 || status === 421 || status === 403) && this.opts.onRefused) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < 1024) body += c;
        });
        res.on('end', () => {
          this.opts.onRefused?.(to, status, body.slice(0, 1024));
          this.closeStream(peer, st);
        });
        return;
      }
      res.resume();
      this.closeStream(peer, st);
    });
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      if (st.isClosed) {
        socket.destroy();
        return;
      }
      if (st.openTimer) clearTimeout(st.openTimer);
      st.openTimer = null;
      st.socket = socket;
      socket.setNoDelay(true);
      socket.on('error', () => this.closeStream(peer, st));
      socket.on('close', () => this.closeStream(peer, st));
      const acks = new LineSplitter(64);
      const onAck = (line: Buffer): void => {
        const n = Number(line.toString('latin1'));
        if (!Number.isSafeInteger(n) || n > st.seq) {
          this.closeStream(peer, st);
          return;
        }
        if (n <= st.acked) return;
        st.acked = n;
        // Progress: restart the clock for what is still outstanding.
        st.unackedSinceMs = n >= st.seq ? null : performance.now();
      };
      const onData = (chunk: Buffer): void => {
        if (!acks.push(chunk, onAck)) this.closeStream(peer, st);
      };
      if (head.length > 0) onData(head);
      socket.on('data', onData);
      if (st.queued.length > 0) {
        socket.write(st.queued.join(''));
        st.unackedSinceMs = performance.now();
      }
      st.queued = [];
      st.queuedBytes = 0;
    });
    req.end();
    return st;
  }

  /** Closes a stream once (its queued lines are lost, as Raft allows); the next send opens another. */
  private closeStream(peer: Peer, st: Stream): void {
    if (st.isClosed) return;
    st.isClosed = true;
    if (st.openTimer) clearTimeout(st.openTimer);
    const lost = st.queued.length;
    if (lost > 0) peer.failed += lost;
    else if (st.seq > st.acked) peer.failed++;
    st.queued = [];
    st.queuedBytes = 0;
    if (st.socket) st.socket.destroy();
    else st.req.destroy();
    if (peer.stream === st) peer.stream = null;
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

  /** Installs new TLS material (SIGHUP) and replaces every stream so new connections use it. */
  setTls(tls: PeerClientTls): void {
    this.tls = tls;
    for (const p of this.peers.values()) if (p.stream) this.closeStream(p, p.stream);
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
      p = { stream: null, sent: 0, failed: 0 };
      this.peers.set(addr, p);
    }
    return p;
  }

  async close(): Promise<void> {
    for (const p of this.peers.values()) if (p.stream) this.closeStream(p, p.stream);
    this.peers.clear();
  }
}
