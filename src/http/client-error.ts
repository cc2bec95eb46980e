/**
 * Answers requests that Node's HTTP parser refuses (malformed request line or headers, oversized
 * headers, header timeout) with a 4xx carrying the JSON error body, instead of Node's bare 400.
 * Installed on the client API server and the peer server.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { BadRequestError, HeadersTooLargeError, RequestTimeoutError, type RaftKvError } from '../errors.js';
import { endSocketWithError } from './answer.js';

function errorFor(code: string | undefined): RaftKvError {
  if (code === 'HPE_HEADER_OVERFLOW') return new HeadersTooLargeError('malformed HTTP request');
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return new RequestTimeoutError('malformed HTTP request');
  return new BadRequestError('malformed HTTP request');
}

/** Replaces the server's default clientError handling. */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    endSocketWithError(socket, errorFor(err.code));
  });
}
