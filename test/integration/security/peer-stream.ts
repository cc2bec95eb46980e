/** Opens a peer stream by hand (plain or mutual TLS), as an attacker or a test would, and writes lines on it. */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { signRequest } from '../../../src/security/hmac.js';
import { CLUSTER_HEADER, FROM_HEADER, NONCE_HEADER, STREAM_PATH, STREAM_PROTOCOL, TO_HEADER, frameLine, upgradeSignedBody } from '../../../src/transport/http/stream-protocol.js';

export interface RawStreamOptions {
  port: number;
  from: string;
  to: string;
  clusterId: string;
  /** Signs the upgrade (and frames lines) with this secret. */
  secret?: string;
  /** Client certificate and trust for mutual TLS. */
  tls?: { cert: Buffer; key: Buffer; ca: Buffer };
  /** Extra or replacing headers (e.g. a signature over something else). */
  headers?: Record<string, string>;
}

/** An opened (or refused) stream: the server's first answer and a way to send lines. */
export interface RawStream {
  socket: Socket;
  /** The status of the server's answer (101 when the stream is open), 0 when the connection failed. */
  status: number;
  head: string;
  send(json: string): void;
  closed: Promise<void>;
}

const NONCE = 'feedfacecafebeef0011223344556677';

export function openRawStream(o: RawStreamOptions): Promise<RawStream> {
  return new Promise((resolve) => {
    const signed = o.secret ? signRequest(o.secret, 'GET', STREAM_PATH, upgradeSignedBody(NONCE, o.clusterId, o.from, o.to)) : {};
    const headers = { host: 'x', connection: 'Upgrade', upgrade: STREAM_PROTOCOL, [NONCE_HEADER]: NONCE, [FROM_HEADER]: o.from, [TO_HEADER]: o.to, [CLUSTER_HEADER]: o.clusterId, ...signed, ...o.headers };
    const request = `GET ${STREAM_PATH} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
    const socket: Socket = o.tls
      ? tlsConnect({ host: '127.0.0.1', port: o.port, cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, servername: 'localhost' }, () => socket.write(request))
      : netConnect(o.port, '127.0.0.1', () => socket.write(request));
    let seq = 0;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const stream: RawStream = {
      socket,
      status: 0,
      head: '',
      send(json: string) {
        seq++;
        socket.write(frameLine(json, o.secret ? { secret: o.secret, nonce: NONCE, seq } : null));
      },
      closed,
    };
    socket.once('data', (b) => {
      stream.head = b.toString();
      stream.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(stream.head)?.[1] ?? 0);
      resolve(stream);
    });
    socket.once('error', (err) => {
      stream.head = err.message;
      resolve(stream);
    });
    socket.once('close', () => resolve(stream));
  });
}
