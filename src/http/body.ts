/**
 * The one request-body reader: a size limit and a deadline, so neither a large nor a slow body is
 * buffered without bound. The client API reads every body through it (the peer server reads none:
 * peers send only on streams, which have their own line limit).
 */
import type { IncomingMessage } from 'node:http';
import { BadRequestError, PayloadTooLargeError, RequestTimeoutError } from '../errors.js';

/**
 * Reads `req`'s body as UTF-8, up to `limitBytes`: a larger body is a 413 (refused from its
 * Content-Length before anything is read, or as soon as it passes the limit), a body that has not
 * fully arrived after `timeoutMs` a 408, and an aborted one a 400. After a refusal the rest of the
 * body is not read: the caller must close the connection.
 */
export function readBody(req: IncomingMessage, limitBytes: number, timeoutMs: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limitBytes) return Promise.reject(new PayloadTooLargeError(`request body over ${limitBytes} bytes`));
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: Error | null, text?: string): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      if (err) reject(err);
      else resolve(text ?? '');
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) done(new PayloadTooLargeError(`request body over ${limitBytes} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = (): void => done(null, Buffer.concat(chunks).toString('utf8'));
    const onError = (): void => done(new BadRequestError('the request body was not received completely'));
    const timer = setTimeout(() => done(new RequestTimeoutError(`request body not received within ${timeoutMs} ms`)), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}
