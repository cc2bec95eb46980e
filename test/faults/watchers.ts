/**
 * Live watchers for the fault suite (issue 17 point 6): each opens GET /watch?prefix=… on a random
 * member and records everything its stream says (watch-check.ts WatchItem); when the stream ends —
 * `error` NO_LEADER or UNAVAILABLE, COMPACTED, the node killed, paused (no byte for IDLE_MS while
 * progress events are due every WATCH_PROGRESS_INTERVAL_MS) or the connection dropped — it resumes
 * on another member with Last-Event-ID = the last id it saw (fresh, without one, after COMPACTED).
 * Also reads each member's whole history after the run (readMemberLog), the checker's reference.
 * Run by scenario.ts inside the fault namespace, from 127.0.0.1, which no fault rule cuts.
 */
import { Agent, request } from 'undici';
import type { LogRecord, MemberLog, WatchEffect, WatchItem, WatchStream } from './watch-check.js';

/** The progress interval the fault clusters run with (WATCH_PROGRESS_INTERVAL_MS): quiet prefixes hear progress often. */
export const WATCH_PROGRESS_INTERVAL_MS = 400;
/** A stream silent this long (several progress intervals) is taken as dead: the node is paused or gone. */
const IDLE_MS = 2500;
/** A fresh start waits for a ReadIndex barrier; a node without a leader may take this long to refuse. */
const HEADERS_MS = 4000;

/** A member a watcher may connect to. */
export interface WatchTarget {
  id: string;
  api: string;
}

/** One parsed SSE message (comments dropped). */
export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

/**
 * An incremental Server-Sent Events parser (the subset GET /watch sends: `id`, `event`, `data`,
 * comments; LF line ends). push() returns the messages completed by a chunk.
 */
export class SseParser {
  private buf = '';
  private id: string | null = null;
  private event = 'message';
  private data: string[] = [];

  push(chunk: string): SseMessage[] {
    this.buf += chunk;
    const out: SseMessage[] = [];
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (line === '') {
        if (this.data.length > 0 || this.id !== null) out.push({ id: this.id, event: this.event, data: this.data.join('\n') });
        this.id = null;
        this.event = 'message';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') this.id = value;
      else if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
    }
    return out;
  }
}

const errorOf = (body: unknown): { code: string | null; compactedIndex?: number } => {
  const e = (body as { error?: { code?: unknown; details?: { compactedIndex?: unknown } } } | null)?.error;
  const code = typeof e?.code === 'string' ? e.code : null;
  const ci = e?.details?.compactedIndex;
  return typeof ci === 'number' ? { code, compactedIndex: ci } : { code };
};

/** Turns one SSE message of GET /watch into a WatchItem. */
export function itemOf(m: SseMessage, tMs: number): WatchItem {
  let data: unknown;
  try {
    data = JSON.parse(m.data);
  } catch {
    return { kind: 'bad', what: `${m.event} data is not JSON: ${m.data.slice(0, 80)}`, tMs };
  }
  const id = m.id === null ? NaN : Number(m.id);
  if (m.event === 'error') return { kind: 'error', ...errorOf(data), tMs };
  if ((m.event === 'change' || m.event === 'progress') && Number.isSafeInteger(id)) {
    const d = data as { index?: unknown; events?: unknown };
    return m.event === 'change' ? { kind: 'change', id, index: d.index, events: d.events, tMs } : { kind: 'progress', id, index: d.index, tMs };
  }
  return { kind: 'bad', what: `event ${m.event} with id ${String(m.id)}`, tMs };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The watchers of one scenario. Roaming watchers resume on another member whenever a stream ends;
 * sticky ones (one per member at the start) resume on their own member as long as it is a member —
 * a client pinned to its local node — so they are the ones that meet a node that lost its history
 * (a snapshot installed, a wiped disk): COMPACTED, then a fresh start.
 */
export class Watchers {
  readonly streams: WatchStream[] = [];
  /** each watcher's resume point (the last id it saw; null = it would start fresh) */
  private readonly resume: (number | null)[] = [];
  /** the member a sticky watcher keeps returning to (null: roaming) */
  private readonly homes: (string | null)[] = [];
  private readonly aborts = new Set<AbortController>();
  private readonly agent = new Agent({ connect: { timeout: 1000 } });
  private readonly loops: Promise<void>[] = [];
  private isStopping = false;

  /**
   * `prefixes`: one roaming watcher each; `stickyPrefix`: the prefix of the sticky watchers (null:
   * none); `targets` is read before every (re)connection (scenarios change the members); `rng`
   * picks members; `now` stamps the items.
   */
  constructor(
    private readonly prefixes: readonly string[],
    private readonly stickyPrefix: string | null,
    private readonly targets: () => WatchTarget[],
    private readonly rng: () => number,
    private readonly now: () => number,
  ) {}

  /** Opens every watcher: roaming ones on shuffled members in turn (with as many watchers as members each member serves one), a sticky one on each member. */
  start(): void {
    const ts = [...this.targets()];
    for (let i = ts.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [ts[i], ts[j]] = [ts[j], ts[i]];
    }
    const add = (name: string, prefix: string, home: string | null, first: WatchTarget | null) => {
      const i = this.streams.length;
      this.streams.push({ name, prefix, items: [] });
      this.resume.push(null);
      this.homes.push(home);
      this.loops.push(this.run(i, first));
    };
    this.prefixes.forEach((prefix, i) => add(`w${i}`, prefix, null, ts.length === 0 ? null : ts[i % ts.length]));
    if (this.stickyPrefix !== null) for (const t of this.targets()) add(`s-${t.id}`, this.stickyPrefix, t.id, t);
  }

  /** Resolves when every watcher has seen an id of at least `index` (false at the deadline). */
  async caughtUp(index: number, timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      if (this.resume.every((r) => r !== null && r >= index)) return true;
      await sleep(100);
    }
    return false;
  }

  /** The highest id any watcher saw. */
  highestSeen(): number {
    let max = 0;
    for (const s of this.streams) for (const it of s.items) if ((it.kind === 'change' || it.kind === 'progress') && it.id > max) max = it.id;
    return max;
  }

  /** Which watchers are behind `index`, for a note. */
  behind(index: number): string[] {
    return this.streams.flatMap((s, i) => ((this.resume[i] ?? -1) < index ? [`${s.name}@${String(this.resume[i])}`] : []));
  }

  async stop(): Promise<void> {
    this.isStopping = true;
    for (const ac of this.aborts) ac.abort();
    await Promise.all(this.loops);
    await this.agent.close();
  }

  private async run(i: number, first: WatchTarget | null): Promise<void> {
    let target = first;
    while (!this.isStopping) {
      if (target === null) {
        await sleep(100);
        target = this.pickOther(null);
        continue;
      }
      const hadData = await this.connect(i, target);
      if (this.isStopping) break;
      const home = this.targets().find((t) => t.id === this.homes[i]);
      target = home ?? this.pickOther(target);
      await sleep(hadData ? 20 : 150); // no busy loop against a member that refuses
    }
  }

  private pickOther(current: WatchTarget | null): WatchTarget | null {
    const ts = this.targets();
    const others = ts.filter((t) => t.id !== current?.id);
    const from = others.length > 0 ? others : ts;
    return from.length === 0 ? null : from[Math.floor(this.rng() * from.length)];
  }

  /** One connection: records its items; returns whether the stream got as far as streaming. */
  private async connect(i: number, target: WatchTarget): Promise<boolean> {
    const s = this.streams[i];
    const lastEventId = this.resume[i];
    s.items.push({ kind: 'open', member: target.id, lastEventId, tMs: this.now() });
    const ac = new AbortController();
    this.aborts.add(ac);
    let isStreaming = false;
    try {
      const res = await request(`${target.api}/watch?prefix=${encodeURIComponent(s.prefix)}`, {
        method: 'GET',
        headers: lastEventId === null ? {} : { 'last-event-id': String(lastEventId) },
        dispatcher: this.agent,
        signal: ac.signal,
        headersTimeout: HEADERS_MS,
        bodyTimeout: IDLE_MS,
      });
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          body = null;
        }
        const e = errorOf(body);
        s.items.push({ kind: 'refused', status: res.statusCode, ...e, tMs: this.now() });
        if (e.code === 'COMPACTED') this.resume[i] = null;
        return false;
      }
      isStreaming = true;
      const parser = new SseParser();
      res.body.setEncoding('utf8');
      for await (const chunk of res.body) {
        for (const m of parser.push(chunk as string)) {
          const it = itemOf(m, this.now());
          s.items.push(it);
          if (it.kind === 'change' || it.kind === 'progress') this.resume[i] = Math.max(it.id, this.resume[i] ?? 0);
          if (it.kind === 'error' && it.code === 'COMPACTED') this.resume[i] = null;
        }
      }
      s.items.push({ kind: 'end', why: 'eof', tMs: this.now() });
    } catch (err) {
      const e = err as Error & { code?: unknown };
      const why = this.isStopping ? 'stopped' : String(typeof e.code === 'string' ? e.code : e.name);
      s.items.push(isStreaming ? { kind: 'end', why, tMs: this.now() } : { kind: 'refused', status: 0, code: why, tMs: this.now() });
    } finally {
      this.aborts.delete(ac);
    }
    return isStreaming;
  }
}

/**
 * Reads one member's whole history up to `upTo` with GET /watch?from=1 (prefix ''), or from just
 * above its floor when it answers COMPACTED: every record in (floor, upTo]. Stops at the first id
 * at or past `upTo` (a progress event comes within one progress interval).
 */
export async function readMemberLog(member: WatchTarget, upTo: number, timeoutMs = 15_000): Promise<MemberLog> {
  const agent = new Agent({ connect: { timeout: 1000 } });
  const log: MemberLog = { member: member.id, floor: 0, upTo: 0, records: [] };
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    let from = 1;
    for (let attempt = 0; ; attempt++) {
      if (from > upTo) {
        log.upTo = upTo; // its floor is at or past the converged index: it holds nothing to read
        return log;
      }
      const res = await request(`${member.api}/watch?from=${from}`, { method: 'GET', dispatcher: agent, signal: ac.signal, headersTimeout: HEADERS_MS, bodyTimeout: IDLE_MS });
      if (res.statusCode === 410 && attempt < 3) {
        const e = errorOf(JSON.parse(await res.body.text()) as unknown);
        if (e.code !== 'COMPACTED' || e.compactedIndex === undefined) throw new Error(`410 without COMPACTED details`);
        log.floor = e.compactedIndex;
        from = e.compactedIndex + 1;
        continue;
      }
      if (res.statusCode !== 200) throw new Error(`GET /watch?from=${from}: ${res.statusCode} ${(await res.body.text()).slice(0, 200)}`);
      const parser = new SseParser();
      res.body.setEncoding('utf8');
      for await (const chunk of res.body) {
        for (const m of parser.push(chunk as string)) {
          const it = itemOf(m, 0);
          if (it.kind === 'change') {
            if (it.id <= upTo) log.records.push({ index: it.id, effects: Array.isArray(it.events) ? (it.events as WatchEffect[]) : [] } satisfies LogRecord);
            log.upTo = Math.max(log.upTo, Math.min(it.id, upTo));
          } else if (it.kind === 'progress') log.upTo = Math.max(log.upTo, Math.min(it.id, upTo));
          else throw new Error(`stream said ${JSON.stringify(it)}`);
          if (log.upTo >= upTo) return log; // leaving the loop closes the stream
        }
      }
      throw new Error(`stream ended at ${log.upTo}, before ${upTo}`);
    }
  } catch (err) {
    if (log.upTo >= upTo) return log;
    log.error = (err as Error).message;
    return log;
  } finally {
    clearTimeout(timer);
    await agent.destroy();
  }
}
