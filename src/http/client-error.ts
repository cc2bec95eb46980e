/**
 * Answers requests that Node's HTTP parser refuses (malformed request line or headers, oversized
 * headers, header timeout) with a 4xx carrying the JSON error body, instead of Node's bare 400.
 * Installed on the client API server and the peer server.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

function statusFor(code: string | undefined): [number, string, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE'];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'Request Timeout', 'REQUEST_TIMEOUT'];
  return [400, 'Bad Request', 'BAD_REQUEST'];
}

/** Replaces the server's default clientError handling. */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, code] = statusFor(err.code);
    const body = JSON.stringify({ error: { code, message: 'malformed HTTP request' } });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
}
