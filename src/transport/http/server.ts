/**
 * The peer RPC server on the raft port, on node:http (or node:https with mutual TLS) directly. Peers
 * talk over the long-lived stream of stream-protocol.ts (`GET /raft/stream` with Upgrade); besides it
 * only `GET /raft/health` answers (the join route's mutual-TLS probe). Every other request is a 404
 * answered without reading its body (the connection is closed), so nothing is buffered for anyone.
 * An upgrade is refused, in this order and before anything is buffered: wrong route or protocol,
 * too many streams, malformed headers, a stream for another node (421), before this node has a
 * cluster id (503), another cluster's id (409), a bad HMAC (401), and with mutual TLS a certificate
 * whose name is not the sender's id (403). A stream that sends anything malformed (including a
 * message not from its sender or not for this node, or a command apply could not decode) is closed,
 * and nothing of the bad line is applied.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { MessageHandler } from '../types.js';
import { parseMessages } from '../validate.js';
import { verifyRequest } from '../../security/hmac.js';
import { answerClientErrors } from '../../http/client-error.js';
import { isNodeId } from '../../net/address.js';
import { endSocketWithError, replyWithError } from '../../http/answer.js';
import { BadRequestError, ForbiddenError, NotJoinedError, RouteNotFoundError, UnauthorizedError, UnavailableError, WrongClusterError, WrongNodeError } from '../../errors.js';
import type { TLSSocket } from 'node:tls';
import { ACK_INTERVAL_MS, CLUSTER_HEADER, FROM_HEADER, LineSplitter, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, TO_HEADER, unframeLine, upgradeSignedBody } from './stream-protocol.js';

/** Options of the peer server. */
export interface PeerServerOptions {
  host: string;
  port: number;
  onMessages: MessageHandler;
  /** Longest line a stream may send (one batch of messages; default 64 MiB); a longer one closes the stream. */
  maxLineBytes?: number;
  /** Server identity plus the cluster CA: turns on mutual TLS (peers without a CA-signed certificate are refused). */
  tls?: SecureContextOptions;
  /** RAFT_CLUSTER_SECRET: every stream upgrade is signed with it and every line carries its HMAC. */
  clusterSecret?: string | null;
  /** BODY_TIMEOUT_MS: how long a request's headers may take to arrive (the server's headers and request timeouts). */
  bodyTimeoutMs?: number;
  /** Most peer streams open at once (default 256); more upgrade requests get 503. */
  maxStreams?: number;
  /**
   * This node's id and cluster id (null until bootstrapped or joined), read at every upgrade. main.ts
   * always passes it; without it (unit tests of the stream alone) receiver and cluster are not checked.
   */
  identity?: () => { nodeId: string; clusterId: string | null };
  /** Called when a stream is refused for its identity (another cluster, another node, certificate name). */
  onRefused?: (reason: string, detail: { from: string; clusterId: string; remoteAddress: string | undefined }) => void;
}

/** The names a peer certificate vouches for: its subject CN and DNS subjectAltNames. */
function certificateNames(socket: TLSSocket): string[] {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return [];
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const t = part.trim();
    if (t.startsWith('DNS:')) names.push(t.slice(4));
  }
  return names;
}

/** A running peer server. */
export interface PeerServer {
  port: number;
  close(): Promise<void>;
  /** Swaps the TLS identity and CA for new connections (SIGHUP); a no-op without TLS. */
  setSecureContext(opts: SecureContextOptions): void;
}

/** Starts the peer server; resolves once listening. */
export async function startPeerServer(opts: PeerServerOptions): Promise<PeerServer> {
  const maxLineBytes = opts.maxLineBytes ?? 64 << 20;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 30_000;
  const secret = opts.clusterSecret ?? null;
  const isMutualTls = opts.tls !== undefined;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/raft/health' && req.method === 'GET') {
      res.writeHead(200);
      res.end();
      return;
    }
    // Nothing but the stream takes a body (POST /raft/messages is gone), and a body sent anyway is
    // not read; the connection closes after the answer.
    res.once('finish', () => req.socket.destroy());
    replyWithError(res, new RouteNotFoundError('no such route'));
  };
  const server: Server = opts.tls
    ? createHttpsServer({ ...opts.tls, requestCert: true, rejectUnauthorized: true }, handler)
    : createServer(handler);
  answerClientErrors(server);
  const streams = new Set<Duplex>();
  const maxStreams = opts.maxStreams ?? 256;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = req.url ?? '';
    if (url !== STREAM_PATH || req.method !== 'GET') return endSocketWithError(socket, new RouteNotFoundError('no such route'));
    if (String(req.headers.upgrade ?? '').toLowerCase() !== STREAM_PROTOCOL) return endSocketWithError(socket, new BadRequestError(`upgrade to ${STREAM_PROTOCOL} only`));
    // Concurrency before anything else costs work (and the upgrade carries no body to buffer).
    if (streams.size >= maxStreams) return endSocketWithError(socket, new UnavailableError('too many peer streams'));
    const nonce = req.headers[NONCE_HEADER];
    if (typeof nonce !== 'string' || !/^[0-9a-f]{16,64}$/.test(nonce)) return endSocketWithError(socket, new BadRequestError(`${NONCE_HEADER} must be 16-64 hex digits`));
    const from = req.headers[FROM_HEADER];
    const to = req.headers[TO_HEADER];
    const cluster = req.headers[CLUSTER_HEADER];
    if (!isNodeId(from) || typeof to !== 'string' || typeof cluster !== 'string' || cluster.length > 64) {
      return endSocketWithError(socket, new BadRequestError(`${FROM_HEADER}, ${TO_HEADER} and ${CLUSTER_HEADER} are required`));
    }
    const me = opts.identity?.() ?? { nodeId: to, clusterId: cluster };
    const detail = { from, clusterId: cluster, remoteAddress: req.socket.remoteAddress };
    if (to !== me.nodeId) {
      opts.onRefused?.('wrong-node', detail);
      return endSocketWithError(socket, new WrongNodeError(`this is ${me.nodeId}, not ${to}`));
    }
    if (me.clusterId === null) return endSocketWithError(socket, new NotJoinedError('this node has not joined a cluster yet'));
    if (cluster !== me.clusterId) {
      opts.onRefused?.('wrong-cluster', detail);
      return endSocketWithError(socket, new WrongClusterError(`this node belongs to cluster ${me.clusterId}, not ${cluster}`));
    }
    if (secret !== null) {
      const v = verifyRequest(secret, { method: 'GET', path: url, body: upgradeSignedBody(nonce, cluster, from, to), headers: req.headers });
      if (!v.ok) return endSocketWithError(socket, new UnauthorizedError(v.reason));
    }
    if (isMutualTls && !certificateNames(socket as TLSSocket).includes(from)) {
      opts.onRefused?.('certificate-name', detail);
      return endSocketWithError(socket, new ForbiddenError(`the peer certificate is not issued to ${from}`));
    }
    streams.add(socket);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    (socket as import('node:net').Socket).setNoDelay?.(true);
    const splitter = new LineSplitter(maxLineBytes);
    let taken = 0;
    let acked = 0;
    const ackTimer = setInterval(() => {
      if (taken !== acked && socket.writable) {
        acked = taken;
        socket.write(`${taken}\n`);
      }
    }, ACK_INTERVAL_MS);
    socket.on('close', () => {
      clearInterval(ackTimer);
      streams.delete(socket);
    });
    let isBroken = false;
    const onLine = (line: Buffer): void => {
      if (isBroken) return;
      const json = unframeLine(line, secret === null ? null : { secret, nonce, seq: taken + 1 });
      let parsed: ReturnType<typeof parseMessages> | null = null;
      if (json !== null) {
        try {
          parsed = parseMessages(JSON.parse(json.toString('utf8')));
          // The stream is bound to its sender and receiver: a message naming anyone else is forged.
          if (parsed.messages.some((m) => m.from !== from || m.to !== to)) parsed = null;
        } catch {
          parsed = null;
        }
      }
      if (parsed === null) {
        // A bad line (MAC, JSON or message shape): the stream is closed and the sender opens a new one.
        isBroken = true;
        socket.destroy();
        return;
      }
      taken++;
      opts.onMessages(parsed.messages, parsed.fromAddr);
    };
    const onData = (chunk: Buffer): void => {
      if (!splitter.push(chunk, onLine)) {
        isBroken = true;
        socket.destroy();
      }
    };
    if (head.length > 0) onData(head);
    socket.on('data', onData);
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = Math.min(bodyTimeoutMs, 60_000);
  server.requestTimeout = bodyTimeoutMs + 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : opts.port,
    setSecureContext: (ctx) => {
      if (opts.tls) (server as import('node:https').Server).setSecureContext({ ...ctx });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        // Upgraded sockets are no longer the HTTP server's: end them here.
        for (const s of streams) s.destroy();
        streams.clear();
      }),
  };
}
