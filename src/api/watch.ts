/**
 * GET /watch?prefix=p/&from=N: every change of a prefix as Server-Sent Events, read from the node's
 * own watch history (followers serve it too). Registered by app.ts. The contract (design section 4,
 * docs/api.md "Watch"):
 *   - one `change` message per index with a matching effect, `id:` = the index, all the entry's
 *     matching effects in it (a transaction is never split); ordered, no gap, no duplicate;
 *   - `progress` (id = the applied index, everything up to it sent) at the start when there is no
 *     `from` (the index after a ReadIndex barrier), and after WATCH_PROGRESS_INTERVAL_MS without a
 *     change; never ahead of a change not yet sent;
 *   - `Last-Event-ID: N` resumes at N + 1 (it wins over `from`, as an EventSource reconnect sends both);
 *   - `from` at or below the history floor: 410 COMPACTED before streaming; a stream that falls
 *     behind the floor later gets `event: error` with the same body, then ends;
 *   - frames are produced only as fast as the client reads (a pull stream over a generator): a slow
 *     client catches up page by page from the history, nothing is buffered for it beyond one page;
 *   - at most MAX_WATCHERS open streams (429 beyond);
 *   - a node without a leader for two election timeouts ends its streams with `error` NO_LEADER, and
 *     a node shutting down with `error` UNAVAILABLE (the client resumes elsewhere with Last-Event-ID).
 */
import { Readable } from 'node:stream';
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { RaftNode } from '../raft/node/node.js';
import type { HistoryEffect, HistoryPage, KvEffect } from '../kv/types.js';
import { isWellFormed } from '../kv/listing.js';
import { BadRequestError, CompactedError, InternalError, NoLeaderError, RaftKvError, TooManyRequestsError, UnavailableError, errorBody } from '../errors.js';
import { authorizeRange } from '../security/auth.js';

/** Defaults of the watch options (config: MAX_WATCHERS, WATCH_PROGRESS_INTERVAL_MS). */
export const DEFAULT_MAX_WATCHERS = 1000;
export const DEFAULT_WATCH_PROGRESS_INTERVAL_MS = 5000;

/** History records read per step: at most one page of frames is ever waiting for a slow client. */
const PAGE_ENTRIES = 256;

export interface WatchOptions {
  maxWatchers: number;
  progressIntervalMs: number;
  maxKeyBytes: number;
  /** A stream on a node without a leader this long ends with `error` NO_LEADER (2 election timeouts; 0: never). */
  noLeaderMs?: number;
  /** Aborted when the node shuts down: every stream ends with an `error` event (UNAVAILABLE), so the server can close. */
  stopSignal?: AbortSignal;
}

/** The parsed request: the prefix and the first index to send (null: after a ReadIndex barrier). */
export interface WatchQuery {
  prefix: string;
  from: number | null;
}

const INDEX = /^[0-9]{1,16}$/;

/** Parses the query and Last-Event-ID (400 on anything malformed or unknown). Exported for the unit tests. */
export function parseWatchQuery(q: URLSearchParams, lastEventId: string | undefined, maxKeyBytes: number): WatchQuery {
  for (const name of q.keys()) if (name !== 'prefix' && name !== 'from') throw new BadRequestError(`unknown parameter ${JSON.stringify(name)}: GET /watch takes prefix and from`);
  if (q.getAll('prefix').length > 1 || q.getAll('from').length > 1) throw new BadRequestError('prefix and from may each be given once');
  const prefix = q.get('prefix') ?? '';
  if (Buffer.byteLength(prefix, 'utf8') > maxKeyBytes) throw new BadRequestError(`prefix must be at most ${maxKeyBytes} bytes`);
  if (!isWellFormed(prefix)) throw new BadRequestError('prefix is not well-formed Unicode (a lone surrogate)');
  const parseIndex = (what: string, v: string): number => {
    const n = INDEX.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw new BadRequestError(`${what} must be a non-negative integer index`);
    return n;
  };
  if (lastEventId !== undefined && lastEventId !== '') return { prefix, from: parseIndex('Last-Event-ID', lastEventId.trim()) + 1 };
  const from = q.get('from');
  if (from === null) return { prefix, from: null };
  const n = parseIndex('from', from);
  if (n < 1) throw new BadRequestError('from must be at least 1');
  return { prefix, from: n };
}

/** One SSE message. JSON never contains a raw CR or LF, so `data` is one line. Exported for the unit tests. */
export function sseFrame(id: number | null, event: string, data: unknown): string {
  return `${id === null ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The event of one effect: exactly the KvEffect fields (the history's `prevValue` is for listings, never sent). */
function changeEvent(e: HistoryEffect): KvEffect {
  if (e.prevValue === undefined) return e;
  const { prevValue, ...event } = e;
  void prevValue;
  return event;
}

/** The frame of a `change`: the entry's effects under `prefix`, or '' when none matches. */
export function changeFrame(index: number, effects: readonly HistoryEffect[], prefix: string): string {
  const events = (prefix === '' ? effects : effects.filter((e) => e.key.startsWith(prefix))).map(changeEvent);
  return events.length === 0 ? '' : sseFrame(index, 'change', { index, events });
}

/** What one stream needs from the node (RaftNode; a fake in the unit tests). */
export type WatchSource = Pick<RaftNode, 'readHistory' | 'onAppliedIndex' | 'appliedIndex' | 'leaderId'>;

/** Wakes the stream's generator when the client goes away or the node stops. */
interface StreamControl {
  isClosed: boolean;
  wake: (() => void) | null;
  isStopping?: boolean;
}

/**
 * The frames of one stream from index `next` on (`startProgress`: a progress frame to send first).
 * Pulled by the response stream, so it runs only as fast as the client reads. Exported for the unit tests.
 */
export async function* watchFrames(
  node: WatchSource,
  prefix: string,
  next: number,
  startProgress: number | null,
  progressIntervalMs: number,
  control: StreamControl = { isClosed: false, wake: null },
  logger?: Logger,
  noLeaderMs = 0,
): AsyncGenerator<string> {
  // A comment first, so the response headers go out at once even on a quiet prefix.
  yield `: watching ${JSON.stringify(prefix)} from ${startProgress ?? next}\n\n`;
  if (startProgress !== null) yield sseFrame(startProgress, 'progress', { index: startProgress });
  let lastSentMs = performance.now();
  /** Since when this node has had no leader (null: it has one). */
  let leaderlessSinceMs: number | null = null;
  while (!control.isClosed) {
    if (control.isStopping === true) {
      yield sseFrame(null, 'error', errorBody(new UnavailableError('the node is shutting down; resume on another member with Last-Event-ID')));
      return;
    }
    if (noLeaderMs > 0) {
      // A node cut off from the leader may be behind the cluster for good: send the client elsewhere.
      if (node.leaderId() !== null) leaderlessSinceMs = null;
      else if ((leaderlessSinceMs ??= performance.now()) + noLeaderMs <= performance.now()) {
        yield sseFrame(null, 'error', errorBody(new NoLeaderError(`no leader for ${noLeaderMs} ms on this node; resume on another member with Last-Event-ID`)));
        return;
      }
    }
    let page: HistoryPage;
    try {
      page = await node.readHistory(next, PAGE_ENTRIES);
    } catch (err) {
      if (control.isClosed) return;
      if (!(err instanceof RaftKvError)) logger?.error({ err }, 'watch stream: reading the history failed');
      yield sseFrame(null, 'error', errorBody(err instanceof RaftKvError ? err : new InternalError()));
      return;
    }
    if (next <= page.floor) {
      yield sseFrame(null, 'error', errorBody(new CompactedError(page.floor, page.appliedIndex)));
      return;
    }
    let chunk = '';
    for (const e of page.entries) chunk += changeFrame(e.index, e.effects, prefix);
    if (page.upTo >= next) next = page.upTo + 1;
    if (chunk !== '') {
      lastSentMs = performance.now();
      yield chunk;
    }
    if (page.upTo < page.appliedIndex) continue; // cut at the page size: read on at once
    const dueMs = lastSentMs + progressIntervalMs - performance.now();
    // A client that resumed ahead of this node's applied index hears no progress until it is reached.
    if (dueMs <= 0 && next - 1 > page.appliedIndex) {
      lastSentMs = performance.now();
      continue;
    }
    if (dueMs <= 0) {
      // Everything up to next - 1 was read and sent: the resume point of a quiet prefix advances.
      lastSentMs = performance.now();
      yield sseFrame(next - 1, 'progress', { index: next - 1 });
      continue;
    }
    // Without a leader, look again soon enough to end the stream on time.
    await waitForApply(node, next, noLeaderMs > 0 ? Math.min(dueMs, noLeaderMs / 4) : dueMs, control);
  }
}

/** Resolves once index `next` is applied, after `timeoutMs`, or when the client goes away. */
function waitForApply(node: WatchSource, next: number, timeoutMs: number, control: StreamControl): Promise<void> {
  return new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    const done = (): void => {
      unsubscribe();
      if (timer !== null) clearTimeout(timer);
      control.wake = null;
      resolve();
    };
    const unsubscribe = node.onAppliedIndex((index) => {
      if (index >= next) done();
    });
    // An apply between the history read and the subscription is not missed.
    if (node.appliedIndex() >= next || control.isClosed || control.isStopping === true) {
      done();
      return;
    }
    timer = setTimeout(done, timeoutMs);
    control.wake = done;
  });
}

/** The handler of GET /watch. */
export function watchRoute(node: RaftNode, opts: WatchOptions, logger: Logger): Koa.Middleware {
  let watchers = 0;
  return async (ctx) => {
    const q = parseWatchQuery(new URLSearchParams(ctx.querystring), ctx.get('last-event-id') || undefined, opts.maxKeyBytes);
    authorizeRange(ctx, { start: q.prefix, end: null, prefix: q.prefix });
    if (opts.stopSignal?.aborted === true) throw new UnavailableError('the node is shutting down');
    if (watchers >= opts.maxWatchers) throw new TooManyRequestsError(`this node serves at most ${opts.maxWatchers} watch streams (MAX_WATCHERS); try another member`);
    // The slot is taken before the first await, so concurrent opens cannot pass the check together.
    watchers++;
    let next: number;
    let startProgress: number | null = null;
    try {
      if (q.from === null) {
        // Linearizable start: after the index ReadIndex confirmed (applied here by then), told at once.
        await node.linearizableBarrier();
        startProgress = node.appliedIndex();
        next = startProgress + 1;
      } else {
        next = q.from;
        const page = await node.readHistory(next, 1);
        if (next <= page.floor) throw new CompactedError(page.floor, page.appliedIndex);
      }
    } catch (err) {
      watchers--;
      throw err;
    }
    const control: StreamControl = { isClosed: false, wake: null };
    const source = Readable.from(watchFrames(node, q.prefix, next, startProgress, opts.progressIntervalMs, control, logger, opts.noLeaderMs ?? 0), { objectMode: false });
    const stop = (): void => {
      control.isStopping = true;
      control.wake?.();
    };
    opts.stopSignal?.addEventListener('abort', stop, { once: true });
    let isCounted = true;
    const release = (): void => {
      if (isCounted) watchers--;
      isCounted = false;
      opts.stopSignal?.removeEventListener('abort', stop);
      control.isClosed = true;
      control.wake?.();
    };
    source.once('close', release);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache, no-store');
    ctx.set('X-Accel-Buffering', 'no');
    // The connection ends with the stream (a stream ended by shutdown must not keep it open idle).
    ctx.set('Connection', 'close');
    ctx.set('X-Raft-Index', String(node.appliedIndex()));
    // Piped here rather than through Koa: a client going away is the normal end of a watch, not an
    // error for Koa to print. The pipe ends the response when the frames end (an error event).
    ctx.respond = false;
    source.pipe(ctx.res);
    ctx.res.once('close', () => {
      // The slot is free and a waiting generator woken at once, before the stream finishes closing.
      release();
      source.destroy();
    });
  };
}
