/**
 * Error answers written where there is no framework: on a raw socket (a refused peer-stream upgrade,
 * a request Node's parser refused) or on a bare ServerResponse (the peer server's routes). Both carry
 * the registry's body (src/errors.ts), as the Koa API does, and close the connection.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, type RaftKvError } from '../errors.js';

/** Writes `err` as a complete HTTP/1.1 response on `socket` and ends it. */
export function endSocketWithError(socket: Duplex, err: RaftKvError): void {
  const body = JSON.stringify(errorBody(err));
  const extra = Object.entries(err.headers ?? {})
    .filter(([h]) => h.toLowerCase() !== 'connection')
    .map(([h, v]) => `${h}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
}

/** Answers `res` with `err` (unless an answer has begun) and closes the connection after it. */
export function replyWithError(res: ServerResponse, err: RaftKvError): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(errorBody(err));
  res.writeHead(err.status, { ...err.headers, connection: 'close', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
