/**
 * The peer stream: one long-lived connection per (sender, receiver) pair, opened with an HTTP/1.1
 * Upgrade (`GET /raft/stream`, `Upgrade: raftkv-stream/1`, answered `101 Switching Protocols`),
 * after which the sender writes one JSON line per batch of Raft messages (`{"from","fromAddr","messages"}`) — and the receiver writes back, at most every ACK_INTERVAL_MS, the number of
 * lines it has taken so far. The acknowledgements let the sender notice a stream that stopped
 * moving (a partition that dropped packets, a paused peer) and open a new one.
 *
 * The upgrade names the cluster id, the sender and the receiver (headers above); the receiver refuses
 * a stream of another cluster, for another node, or (with mutual TLS) from a certificate whose name
 * is not the sender's id. With RAFT_CLUSTER_SECRET the upgrade request is signed like any peer request
 * (the signed body is a fresh random nonce with the cluster id and both ids), and every line is prefixed with an HMAC over the nonce, the line's sequence
 * number and its JSON, so a line cannot be forged, reordered or moved to another stream.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const STREAM_PATH = '/raft/stream';
export const STREAM_PROTOCOL = 'raftkv-stream/1';
/** Header carrying the stream's nonce (hex), part of what its upgrade signature covers. */
export const NONCE_HEADER = 'x-raftkv-stream-nonce';
/** Header naming the cluster id of the sender (docs/cluster-identity.md); another cluster's peer is refused. */
export const CLUSTER_HEADER = 'x-raftkv-cluster';
/** Header naming the sending member id; every message on the stream must be from it. */
export const FROM_HEADER = 'x-raftkv-from';
/** Header naming the receiving member id; a stream meant for another node is refused. */
export const TO_HEADER = 'x-raftkv-to';

/**
 * What the upgrade's signature covers besides method, path and time: the nonce, the cluster id and
 * both ends, so a signed upgrade is good for one stream, one cluster and one receiver only.
 */
export function upgradeSignedBody(nonce: string, clusterId: string, from: string, to: string): string {
  return `${nonce}\n${clusterId}\n${from}\n${to}`;
}
/** How often a receiver acknowledges lines it has taken (only when there is something new). */
export const ACK_INTERVAL_MS = 100;
const MAC_HEX = 64;

/** The HMAC that prefixes line `seq` (1-based) of the stream with `nonce`. */
export function lineMac(secret: string, nonce: string, seq: number, json: string | Buffer): string {
  return createHmac('sha256', secret).update(`${nonce}\n${seq}\n`).update(json).digest('hex');
}

/** Frames one batch for the wire: `json\n`, or `mac json\n` with a cluster secret. */
export function frameLine(json: string, auth: { secret: string; nonce: string; seq: number } | null): string {
  if (auth === null) return `${json}\n`;
  return `${lineMac(auth.secret, auth.nonce, auth.seq, json)} ${json}\n`;
}

/** Checks and strips a line's MAC; returns the JSON part, or null when the MAC is missing or wrong. */
export function unframeLine(line: Buffer, auth: { secret: string; nonce: string; seq: number } | null): Buffer | null {
  if (auth === null) return line;
  if (line.length < MAC_HEX + 1 || line[MAC_HEX] !== 0x20) return null;
  const given = line.subarray(0, MAC_HEX).toString('latin1');
  if (!/^[0-9a-f]{64}$/.test(given)) return null;
  const json = line.subarray(MAC_HEX + 1);
  const expected = Buffer.from(lineMac(auth.secret, auth.nonce, auth.seq, json), 'hex');
  return timingSafeEqual(expected, Buffer.from(given, 'hex')) ? json : null;
}

/**
 * Splits a byte stream into newline-terminated lines. A line longer than `maxLineBytes` is an
 * error (the caller closes the stream) and is never buffered whole.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** Feeds a chunk; calls `onLine` for every complete line. Returns false once a line is too long. */
  push(chunk: Buffer, onLine: (line: Buffer) => void): boolean {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.maxLineBytes) return false;
      if (this.parts.length === 0) onLine(piece);
      else {
        this.parts.push(piece);
        const line = Buffer.concat(this.parts, this.size + piece.length);
        this.parts = [];
        this.size = 0;
        onLine(line);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.size += rest.length;
      if (this.size > this.maxLineBytes) return false;
      // Copy: the caller's chunk buffer may be reused once we return.
      this.parts.push(Buffer.from(rest));
    }
    return true;
  }
}
