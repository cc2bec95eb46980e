/**
 * The peer RPC server on the raft port, on node:http (or node:https with mutual TLS) directly:
 * POST /raft/messages with `{"from","messages":[...]}`. With RAFT_TLS_* a peer must present a
 * certificate signed by the cluster CA; with RAFT_CLUSTER_SECRET a request must carry a valid HMAC
 * (401 otherwise). Malformed requests get 400, slow bodies 408; none of them changes anything.
 * Peers normally talk over the long-lived stream of stream-protocol.ts (`GET /raft/stream` with
 * Upgrade); a stream that sends anything malformed is closed, and nothing of the bad line is applied.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { MessageHandler } from '../types.js';
import { PeerBadRequest, parseMessages } from '../validate.js';
import { verifyRequest } from '../../security/hmac.js';
import { answerClientErrors } from '../../security/client-error.js';
import { ACK_INTERVAL_MS, LineSplitter, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, unframeLine } from './stream-protocol.js';

/** The error body every refusal carries, on plain requests and on refused upgrades alike. */
function errorJson(code: string, message: string | undefined): string {
  return JSON.stringify({ error: { code, message } });
}

function reply(res: ServerResponse, status: number, code?: string, message?: string): void {
  if (res.headersSent || res.destroyed) return;
  if (code) {
    const body = errorJson(code, message);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(status);
    res.end();
  }
}

/** Options of the peer server. */
export interface PeerServerOptions {
  host: string;
  port: number;
  onMessages: MessageHandler;
  maxBodyBytes?: number;
  /** Server identity plus the cluster CA: turns on mutual TLS (peers without a CA-signed certificate are refused). */
  tls?: SecureContextOptions;
  /** RAFT_CLUSTER_SECRET: every request to /raft/messages must be signed with it. */
  clusterSecret?: string | null;
  /** How long a request body may take to arrive (408 after). */
  bodyTimeoutMs?: number;
  /** Most peer streams open at once (default 256); more upgrade requests get 503. */
  maxStreams?: number;
}

function refuseUpgrade(socket: Duplex, status: number, reason: string, message: string): void {
  const body = errorJson(reason, message);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
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
  const limit = opts.maxBodyBytes ?? 64 << 20;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? 30_000;
  const secret = opts.clusterSecret ?? null;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '';
    const path = url.split('?')[0];
    if (path === '/raft/health' && req.method === 'GET') return reply(res, 200, undefined);
    if (path !== '/raft/messages') return reply(res, 404, 'NOT_FOUND', 'no such route');
    if (req.method !== 'POST') return reply(res, 405, 'METHOD_NOT_ALLOWED', 'use POST');
    const chunks: Buffer[] = [];
    let size = 0;
    let isTooLarge = false;
    const timer = setTimeout(() => {
      res.setHeader('connection', 'close');
      res.once('finish', () => req.socket.destroy());
      reply(res, 408, 'REQUEST_TIMEOUT', `request body not received within ${bodyTimeoutMs} ms`);
    }, bodyTimeoutMs);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) isTooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => {
      clearTimeout(timer);
      res.destroy();
    });
    req.on('close', () => clearTimeout(timer));
    req.on('end', () => {
      clearTimeout(timer);
      if (res.headersSent) return;
      if (isTooLarge) return reply(res, 413, 'PAYLOAD_TOO_LARGE', 'body too large');
      const raw = Buffer.concat(chunks);
      if (secret !== null) {
        const v = verifyRequest(secret, { method: req.method ?? '', path: url, body: raw, headers: req.headers });
        if (!v.ok) return reply(res, 401, 'UNAUTHORIZED', v.reason);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        return reply(res, 400, 'BAD_REQUEST', 'body is not valid JSON');
      }
      try {
        const { messages, fromAddr } = parseMessages(parsed);
        opts.onMessages(messages, fromAddr);
      } catch (err) {
        if (err instanceof PeerBadRequest) return reply(res, 400, 'BAD_REQUEST', err.message);
        throw err;
      }
      reply(res, 204);
    });
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
    if (url !== STREAM_PATH || req.method !== 'GET') return refuseUpgrade(socket, 404, 'NOT_FOUND', 'no such route');
    if (String(req.headers.upgrade ?? '').toLowerCase() !== STREAM_PROTOCOL) return refuseUpgrade(socket, 400, 'BAD_REQUEST', `upgrade to ${STREAM_PROTOCOL} only`);
    const nonce = req.headers[NONCE_HEADER];
    if (typeof nonce !== 'string' || !/^[0-9a-f]{16,64}$/.test(nonce)) return refuseUpgrade(socket, 400, 'BAD_REQUEST', `${NONCE_HEADER} must be 16-64 hex digits`);
    if (secret !== null) {
      const v = verifyRequest(secret, { method: 'GET', path: url, body: nonce, headers: req.headers });
      if (!v.ok) return refuseUpgrade(socket, 401, 'UNAUTHORIZED', v.reason);
    }
    if (streams.size >= maxStreams) return refuseUpgrade(socket, 503, 'UNAVAILABLE', 'too many peer streams');
    streams.add(socket);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    (socket as import('node:net').Socket).setNoDelay?.(true);
    const splitter = new LineSplitter(limit);
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
