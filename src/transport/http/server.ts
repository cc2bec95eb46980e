/**
 * The peer RPC server on the raft port, on node:http directly: POST /raft/messages with
 * `{"from","messages":[...]}`. Malformed requests get 400 and change nothing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { MessageHandler } from '../types.js';
import { PeerBadRequest, parseMessages } from '../validate.js';

function reply(res: ServerResponse, status: number, code?: string, message?: string): void {
  if (code) {
    const body = JSON.stringify({ error: { code, message } });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(status);
    res.end();
  }
}

/** Starts the peer server; resolves once listening. */
export async function startPeerServer(opts: { host: string; port: number; onMessages: MessageHandler; maxBodyBytes?: number }): Promise<{ close(): Promise<void>; port: number }> {
  const limit = opts.maxBodyBytes ?? 64 << 20;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/raft/health' && req.method === 'GET') return reply(res, 200, undefined);
    if (path !== '/raft/messages') return reply(res, 404, 'NOT_FOUND', 'no such route');
    if (req.method !== 'POST') return reply(res, 405, 'METHOD_NOT_ALLOWED', 'use POST');
    const chunks: Buffer[] = [];
    let size = 0;
    let isTooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) isTooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (isTooLarge) return reply(res, 413, 'PAYLOAD_TOO_LARGE', 'body too large');
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
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
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
