/**
 * Server-Sent Events on the client side, browser-safe (no Node imports): a line parser for the
 * `text/event-stream` format, the reader that turns a streamed axios response body (a Node Readable
 * from the http adapter, a WHATWG ReadableStream from the fetch adapter) into text chunks, and the
 * validation of GET /watch messages. Used by RaftKvClient.watch.
 */
import type { WatchEvent, WatchMessage } from './types.js';

/** One dispatched SSE message; `id` is null when the message set none. */
export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Incremental parser of an SSE stream (WHATWG HTML "event stream interpretation"): feed it text as
 * it arrives, it returns the messages completed by that text. Comment lines (`:`) are skipped; a
 * line may end in LF, CR or CRLF, also when the CR and LF arrive in different chunks.
 */
export class SseParser {
  private buffer = '';
  private isAfterCr = false;
  private id: string | null = null;
  private event = '';
  private data: string[] = [];
  private hasData = false;

  /** Parses `text`; returns every message that a blank line completed. */
  push(text: string): SseMessage[] {
    const out: SseMessage[] = [];
    let s = text;
    if (this.isAfterCr && s.startsWith('\n')) s = s.slice(1);
    this.isAfterCr = false;
    this.buffer += s;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) this.isAfterCr = true;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') {
      if (!this.hasData) {
        this.event = '';
        return null;
      }
      const msg = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
      this.event = '';
      this.data = [];
      this.hasData = false;
      this.id = null;
      return msg;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.hasData = true;
    } else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return null;
  }
}

/** A streamed response body: a Node Readable (http adapter) or a ReadableStream (fetch adapter). */
export interface StreamBody {
  /** Yields the body as text, decoded as UTF-8 across chunk boundaries. */
  chunks(): AsyncGenerator<string>;
  /** Stops reading and releases the connection. */
  cancel(): void;
}

interface WebReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

/** Wraps whatever axios handed back as a `responseType: 'stream'` body. */
export function streamBody(body: unknown): StreamBody {
  const decoder = new TextDecoder('utf-8');
  const decode = (c: unknown): string => (typeof c === 'string' ? c : decoder.decode(c as Uint8Array, { stream: true }));
  const b = body as { getReader?: () => WebReader; destroy?: () => void; [Symbol.asyncIterator]?: () => AsyncIterator<unknown> } | null;
  if (b && typeof b.getReader === 'function') {
    const reader = b.getReader();
    return {
      async *chunks() {
        for (;;) {
          const r = await reader.read();
          if (r.done) return;
          if (r.value) yield decode(r.value);
        }
      },
      cancel() {
        reader.cancel().catch((err: unknown) => void err); // already closed or errored: nothing to release
      },
    };
  }
  if (b && typeof b[Symbol.asyncIterator] === 'function') {
    const iterable = b as AsyncIterable<unknown>;
    return {
      async *chunks() {
        for await (const c of iterable) yield decode(c);
      },
      cancel() {
        b.destroy?.();
      },
    };
  }
  if (typeof body === 'string') {
    return {
      async *chunks() {
        yield body;
      },
      cancel() {},
    };
  }
  throw new TypeError('the response body is not a stream');
}

/** Reads a whole (error) body as text, at most `maxChars`. */
export async function readText(body: StreamBody, maxChars = 64 * 1024): Promise<string> {
  let text = '';
  try {
    for await (const c of body.chunks()) {
      text += c;
      if (text.length >= maxChars) break;
    }
  } finally {
    body.cancel();
  }
  return text;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function watchEvent(v: unknown): WatchEvent | null {
  if (!isRecord(v) || typeof v.key !== 'string') return null;
  const extra: { reason?: string; lease?: string } = {};
  if (typeof v.reason === 'string') extra.reason = v.reason;
  if (typeof v.lease === 'string') extra.lease = v.lease;
  if (v.type === 'put' && typeof v.value === 'string') return { type: 'put', key: v.key, value: v.value, prevIndex: isIndex(v.prevIndex) ? v.prevIndex : null, ...extra };
  if (v.type === 'delete') return { type: 'delete', key: v.key, prevIndex: isIndex(v.prevIndex) ? v.prevIndex : null, ...extra };
  return null;
}

/**
 * Validates one `change` or `progress` message of GET /watch; null when it is malformed (a message
 * whose id and index disagree, a change without events, an unknown event type).
 */
export function parseWatchMessage(m: SseMessage): WatchMessage | null {
  let body: unknown;
  try {
    body = JSON.parse(m.data);
  } catch {
    return null;
  }
  if (!isRecord(body) || !isIndex(body.index) || (m.id !== null && m.id.trim() !== String(body.index))) return null;
  if (m.event === 'progress') return { type: 'progress', index: body.index };
  if (m.event !== 'change' || !Array.isArray(body.events) || body.events.length === 0) return null;
  const events: WatchEvent[] = [];
  for (const e of body.events) {
    const ev = watchEvent(e);
    if (!ev) return null;
    events.push(ev);
  }
  return { type: 'change', index: body.index, events };
}

/** The `{"error":{"code","message","details"}}` of an answer or an `error` event, when it has that shape. */
export function errorOf(text: string): { code: string; message: string; details: Record<string, unknown> } | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecord(body) || !isRecord(body.error) || typeof body.error.code !== 'string') return null;
  return {
    code: body.error.code,
    message: typeof body.error.message === 'string' ? body.error.message : body.error.code,
    details: isRecord(body.error.details) ? body.error.details : {},
  };
}
