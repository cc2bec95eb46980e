/**
 * Fuzz: thousands of random and malformed requests (seeded, so a failure replays with FUZZ_SEED)
 * against the client API and the peer RPC port of every node of a 3-node cluster of real
 * processes. Afterwards every node must be alive and healthy, no response may be a 5xx, and the
 * keys written before must be unchanged.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { makeRng, randInt } from '../../sim/rng.js';
import { removeDir, startNode, stopNode, tempDir, waitFor, type NodeProc } from '../../support/procs.js';
import { call, dumpOnFailure, freeBasePort, nodeEnv, rawRequest, startThreeVoters, view, waitLeader } from './helpers.js';
import { openRawStream } from './peer-stream.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 3000);
const WORKERS = 12;

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];

/** One fuzz case: an HTTP request through undici or raw bytes on a socket. */
type Case = { kind: 'http'; port: number; method: string; path: string; body?: string | Buffer; headers?: Record<string, string> } | { kind: 'raw'; port: number; bytes: Buffer; keepOpen: boolean };

const GARBAGE_JSON = ['', '{', '}', '{"a":', '{"a" "b"}', '[1,2', 'nul', 'tru', '"unterminated', '{"a":"b",}', "{'a':'b'}", '{"a":"\\ud800"}', '{"__proto__":{"x":"y"}}', '{"constructor":{"prototype":1}}', '1e999', '-', '{"a":"b"}garbage', '\u0000', '{"a":1}{"b":2}', 'NaN', '[]', '[{}]', 'null', 'true', '42', '"str"', '{}'];

function randomString(rng: Rng, maxLen: number): string {
  const n = randInt(rng, 0, maxLen);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng();
    if (r < 0.6) s += String.fromCharCode(randInt(rng, 0x20, 0x7e));
    else if (r < 0.8) s += String.fromCharCode(randInt(rng, 0, 0x1f));
    else if (r < 0.95) s += String.fromCodePoint(randInt(rng, 0xa0, 0x2fff));
    else s += String.fromCharCode(randInt(rng, 0xd800, 0xdfff));
  }
  return s;
}

function randomBytes(rng: Rng, maxLen: number): Buffer {
  const b = Buffer.alloc(randInt(rng, 0, maxLen));
  for (let i = 0; i < b.length; i++) b[i] = randInt(rng, 0, 255);
  return b;
}

function randomJsonValue(rng: Rng, depth = 0): unknown {
  const r = rng();
  if (r < 0.15) return null;
  if (r < 0.3) return rng() < 0.5;
  if (r < 0.45) return pick(rng, [0, -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, 2 ** 53]);
  if (r < 0.65) return randomString(rng, 20);
  if (r < 0.8 && depth < 3) return Array.from({ length: randInt(rng, 0, 4) }, () => randomJsonValue(rng, depth + 1));
  if (depth < 3) return Object.fromEntries(Array.from({ length: randInt(rng, 0, 4) }, () => [randomString(rng, 8), randomJsonValue(rng, depth + 1)]));
  return 'x';
}

/** Percent-encodes every UTF-8 byte (lone surrogates become U+FFFD instead of throwing). */
function pctEncode(s: string): string {
  return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

/** A bad percent-encoding or invalid UTF-8 key segment, or an odd but valid one. */
function randomKeySegment(rng: Rng): string {
  return pick(rng, [
    '%', '%z', '%zz', '%C3%28', '%FF%FE', '%E2%82', '%ED%A0%80', '%00', '%2F..%2F', '..', '.', pctEncode(randomString(rng, 12)),
    'x'.repeat(randInt(rng, 1000, 5000)), 'fz-' + String(randInt(rng, 0, 50)), '%25', '%%%', '%u0041', 'a%20b', 'keep-ghost',
  ]);
}

const MESSAGE_TYPES = ['RequestVote', 'RequestVoteResponse', 'AppendEntries', 'AppendEntriesResponse', 'Heartbeat', 'HeartbeatResponse', 'InstallSnapshot', 'InstallSnapshotResponse', 'ReadIndex', 'ReadIndexResponse', 'TimeoutNow', 'Bogus'];

/** A peer body: garbage, wrong types, or well-formed messages that Raft must ignore (stale term 0 or addressed to nobody). */
function randomPeerBody(rng: Rng, ids: string[]): string {
  const r = rng();
  if (r < 0.2) return pick(rng, GARBAGE_JSON);
  if (r < 0.35) return JSON.stringify(randomJsonValue(rng));
  const msg: Record<string, unknown> = {
    type: pick(rng, MESSAGE_TYPES),
    from: pick(rng, ['mallory', 'nobody', '', randomString(rng, 10)]),
    to: rng() < 0.5 ? 'nobody' : pick(rng, ids),
    term: 0,
    preVote: rng() < 0.5,
    lastLogIndex: randInt(rng, 0, 1e6),
    lastLogTerm: randInt(rng, 0, 1e6),
    transfer: false,
    granted: rng() < 0.5,
    prevLogIndex: randInt(rng, 0, 5),
    prevLogTerm: randInt(rng, 0, 5),
    leaderCommit: randInt(rng, 0, 1e9),
    entries: rng() < 0.5 ? [] : [{ index: 1, term: 0, type: pick(rng, ['normal', 'noop', 'config', 'x']), data: randomString(rng, 10) }],
    success: rng() < 0.5,
    matchIndex: randInt(rng, 0, 1e9),
    rejectedIndex: 0,
    conflictIndex: 0,
    conflictTerm: 0,
    commit: randInt(rng, 0, 1e9),
    ctx: randInt(rng, 0, 1e9),
    ids: ['a'],
    index: randInt(rng, 0, 1e9),
    ok: true,
    meta: { lastIndex: 1, lastTerm: 0, config: { members: [] } },
    offset: 0,
    data: '',
    done: false,
    received: 0,
    lastIndex: 0,
  };
  // Well-formed messages may reach the core only when they cannot change anything (to=nobody, or
  // term 0 which every node has passed); mutations break one field's type.
  if (msg.to !== 'nobody') msg.term = 0;
  if (rng() < 0.5) {
    const k = pick(rng, Object.keys(msg));
    msg[k] = randomJsonValue(rng);
    if (k === 'term' && msg.to !== 'nobody' && typeof msg[k] === 'number') msg[k] = -1;
  }
  const body: Record<string, unknown> = { from: msg.from, fromAddr: pick(rng, [null, '127.0.0.1:1', 'bad addr', 5, 'x:99999999']), messages: [msg] };
  if (rng() < 0.2) body.messages = randomJsonValue(rng);
  return JSON.stringify(body);
}

function rawHttp(method: string, path: string, headers: string[], body: Buffer | string): Buffer {
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
}

/** A random If-Match / If-None-Match pair: valid, malformed, weak, contradictory or absent. */
function randomConditionHeaders(rng: Rng): Record<string, string> {
  const tag = (): string => pick(rng, ['"1"', '"999999999"', 'W/"1"', '*', '17', '"x"', '"-1"', '""', '"1", "2"', randomString(rng, 12).replace(/[\r\n\u0000-\u001f\u007f-\uffff]/g, ''), '"99999999999999999999"']);
  const v = randInt(rng, 0, 4);
  if (v === 0) return {};
  if (v === 1) return { 'if-match': tag() };
  if (v === 2) return { 'if-none-match': pick(rng, ['*', '"3"', 'W/"3"', '']) };
  return { 'if-match': tag(), 'if-none-match': '*' };
}

/** A random transaction body: well-formed on fz- keys, or broken in one place. */
function randomTxnBody(rng: Rng): string {
  if (rng() < 0.25) return pick(rng, GARBAGE_JSON);
  if (rng() < 0.2) return JSON.stringify(randomJsonValue(rng));
  const key = (): unknown => (rng() < 0.9 ? `fz-${randInt(rng, 0, 20)}` : randomJsonValue(rng));
  const cmp = (): unknown => pick(rng, [{ key: key(), index: randInt(rng, 0, 50) }, { key: key(), exists: rng() < 0.5 }, { key: key(), value: 'v' }, { key: key(), index: { lt: randInt(rng, 0, 99) } }, { key: key(), index: { eq: 1 } }, { key: key() }, randomJsonValue(rng)]);
  const op = (): unknown => pick(rng, [{ op: 'set', key: key(), value: pick(rng, ['v', 'y'.repeat(rng() < 0.1 ? 1_100_000 : 10)]) }, { op: 'delete', key: key() }, { op: 'get', key: key() }, { op: 'put', key: key() }, randomJsonValue(rng)]);
  const n = (max: number): number => randInt(rng, 0, rng() < 0.05 ? 200 : max);
  return JSON.stringify({ compare: Array.from({ length: n(3) }, cmp), success: Array.from({ length: n(3) }, op), failure: Array.from({ length: n(2) }, op), ...(rng() < 0.1 ? { extra: 1 } : {}) });
}

/** A case on the issue-16 routes: conditional PUT/DELETE (also against the kept keys, which must fail and change nothing), /txn and /keys. */
function makeApiDepthCase(rng: Rng, api: number): Case {
  const v = randInt(rng, 0, 4);
  if (v === 0) {
    // Conditional writes on kept keys can only fail: their index is never 999999999 and they exist.
    const keep = `keep-${randInt(rng, 0, 39)}`;
    const headers = pick<Record<string, string>>(rng, [{ 'if-match': '"999999999"' }, { 'if-none-match': '*' }, { 'if-match': 'W/"1"' }]);
    return pick<Case>(rng, [
      { kind: 'http', port: api, method: 'PUT', path: `/key/${keep}`, body: JSON.stringify({ value: 'fuzzed' }), headers },
      { kind: 'http', port: api, method: 'DELETE', path: `/key/${keep}`, headers: { 'if-match': pick(rng, ['"999999999"', 'W/"1"']) } },
      { kind: 'http', port: api, method: 'POST', path: '/key', body: JSON.stringify({ [keep]: 'fuzzed', [`fz-${randInt(rng, 0, 9)}`]: 'x' }), headers: { 'if-none-match': '*' } },
    ]);
  }
  if (v === 1) {
    const body = pick(rng, [JSON.stringify({ value: 'v' }), JSON.stringify({ value: randomJsonValue(rng) }), pick(rng, GARBAGE_JSON), JSON.stringify(randomJsonValue(rng)), '{"value":"\\ud800"}']);
    return { kind: 'http', port: api, method: pick(rng, ['PUT', 'DELETE', 'POST']), path: pick(rng, [`/key/fz-${randInt(rng, 0, 20)}`, `/key/${randomKeySegment(rng)}`, '/key']), body, headers: randomConditionHeaders(rng) };
  }
  if (v === 2) return { kind: 'http', port: api, method: 'POST', path: pick(rng, ['/txn', '/txn', '/txn?consistency=stale', '/txn?consistency=x']), body: randomTxnBody(rng) };
  const param = (): string => pick(rng, ['prefix=fz-', 'prefix=', `prefix=${pctEncode(randomString(rng, 8))}`, 'start=a&end=z', 'start=z&end=a', `limit=${pick(rng, ['0', '1', '1000', '1001', '-1', 'x', '99999999999'])}`, 'keysOnly=true', 'keysOnly=maybe', 'count=true', `continue=${pick(rng, ['', 'x', 'eyJ2IjoxfQ', pctEncode(randomString(rng, 20)), 'eyJ2IjoxLCJmIjoiIiwiYWZ0ZXIiOiJhIiwiaW5kZXgiOjF9'])}`, 'consistency=stale', 'consistency=x', '%zz=1', 'unknown=1']);
  const qs = Array.from({ length: randInt(rng, 0, 4) }, param).join('&');
  return { kind: 'raw', port: api, bytes: rawHttp('GET', `/keys${qs ? `?${qs}` : ''}`, ['Connection: close'], ''), keepOpen: false };
}

function makeCase(rng: Rng, apiPorts: number[], raftPorts: number[], ids: string[]): Case {
  const api = pick(rng, apiPorts);
  const raft = pick(rng, raftPorts);
  if (rng() < 0.2) return makeApiDepthCase(rng, api);
  const r = rng();
  if (r < 0.14) return { kind: 'http', port: api, method: 'POST', path: '/key', body: pick(rng, GARBAGE_JSON) };
  if (r < 0.26) return { kind: 'http', port: api, method: 'POST', path: '/key', body: JSON.stringify(randomJsonValue(rng)) };
  if (r < 0.34) {
    const key = pick(rng, ['', 'x'.repeat(randInt(rng, 1025, 4000)), randomString(rng, 30), `fz-${randInt(rng, 0, 99)}`]);
    const value = pick(rng, ['v', '', 'y'.repeat(rng() < 0.1 ? 1_100_000 : 100)]);
    return { kind: 'http', port: api, method: 'POST', path: '/key', body: JSON.stringify({ [key]: value }) };
  }
  if (r < 0.46) {
    const method = pick(rng, ['GET', 'DELETE', 'GET', 'PUT', 'PATCH']);
    const q = pick(rng, ['', '?consistency=stale', '?consistency=bogus', '?consistency=stale&consistency=linearizable', '?%zz=1', '?consistency=%']);
    return { kind: 'raw', port: api, bytes: rawHttp(method, `/key/${randomKeySegment(rng)}${q}`, ['Connection: close'], ''), keepOpen: false };
  }
  if (r < 0.54) {
    const method = pick(rng, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND', 'MKCOL']);
    const path = pick(rng, ['/', '/keys', '/key', '/key/', '/leases', '/leases/', '/leases/l-1', `/leases/l-${randInt(rng, 0, 99)}/keepalive`, '/leases/x/keepalive', `/key/fz-${randInt(rng, 0, 9)}?lease=${pick(rng, ['l-1', 'l-0', 'x', '', 'l-99999999999999999999'])}`, '/cluster', '/cluster/join', '/cluster/nodes/', `/cluster/nodes/ghost-${randInt(rng, 0, 9)}`, '/metrics', '/health', '/ready', '/admin', '/../etc/passwd', `/${pctEncode(randomString(rng, 10))}`]);
    return { kind: 'http', port: api, method, path, body: method === 'GET' || method === 'HEAD' ? undefined : pick(rng, GARBAGE_JSON) };
  }
  if (r < 0.6) {
    const join = rng() < 0.5 ? JSON.stringify(randomJsonValue(rng)) : JSON.stringify({ id: pick(rng, ['app1', '', 'bad id', 7, 'x'.repeat(100)]), raftAddr: pick(rng, ['127.0.0.1', 'h:p', 5, '']), apiAddr: pick(rng, ['::', 'nope', null]) });
    return { kind: 'http', port: api, method: 'POST', path: '/cluster/join', body: join };
  }
  if (r < 0.72) {
    // Truncated or invalid bytes on a raw socket: declared length larger than sent, invalid UTF-8,
    // bad chunked encoding, garbage request lines and headers.
    const port = rng() < 0.6 ? api : raft;
    const path = port === api ? pick(rng, ['/key', '/cluster/join']) : pick(rng, ['/raft/stream', '/raft/messages']);
    const v = randInt(rng, 0, 6);
    if (v === 0) return { kind: 'raw', port, bytes: rawHttp('POST', path, ['Content-Type: application/json', `Content-Length: ${randInt(rng, 20, 500)}`], '{"trunc'), keepOpen: rng() < 0.3 };
    if (v === 1) return { kind: 'raw', port, bytes: rawHttp('POST', path, ['Content-Type: application/json', 'Content-Length: 8', 'Connection: close'], Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x22, 0x7d])), keepOpen: false };
    if (v === 2) return { kind: 'raw', port, bytes: rawHttp('POST', path, ['Transfer-Encoding: chunked', 'Connection: close'], pick(rng, ['zz\r\nabc\r\n', '5\r\nab', 'ffffffffffff\r\n', '0\r\n'])), keepOpen: false };
    if (v === 3) return { kind: 'raw', port, bytes: randomBytes(rng, 300), keepOpen: false };
    if (v === 4) return { kind: 'raw', port, bytes: Buffer.concat([Buffer.from('GET /key/'), randomBytes(rng, 20), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]), keepOpen: false };
    if (v === 5) return { kind: 'raw', port, bytes: rawHttp('POST', path, ['Content-Length: -1', 'Content-Length: 5', 'Connection: close'], 'abcde'), keepOpen: false };
    return { kind: 'raw', port, bytes: rawHttp(pick(rng, ['G@T', 'POST', 'BREW']), pick(rng, [path, '*', 'http://x/', '/\u00ff']), [pick(rng, ['X: \u0001', 'Bad Header', 'Content-Length: abc', ': empty']), 'Connection: close'], ''), keepOpen: false };
  }
  if (r < 0.92) {
    const path = pick(rng, ['/raft/stream', '/raft/stream', '/raft/messages', '/raft/health', '/raft/', '/raft/snapshot', '/raft/stream?x=1']);
    const method = pick(rng, ['POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE']);
    return { kind: 'http', port: raft, method, path, body: method === 'GET' ? undefined : randomPeerBody(rng, ids) };
  }
  return { kind: 'http', port: rng() < 0.5 ? api : raft, method: 'POST', path: rng() < 0.5 ? '/key' : pick(rng, ['/raft/stream', '/raft/messages']), body: randomBytes(rng, 2000), headers: { 'content-type': pick(rng, ['application/json', 'text/plain', 'application/octet-stream']) } };
}

/** Sends one case; returns the status (0 when the server closed or reset without an HTTP answer). */
async function send(c: Case): Promise<number> {
  if (c.kind === 'http') {
    try {
      const res = await request(`http://127.0.0.1:${c.port}${c.path}`, { method: c.method as 'GET', body: c.body, headers: { 'content-type': 'application/json', ...(c.headers ?? {}) }, headersTimeout: 15_000, bodyTimeout: 15_000 });
      await res.body.dump();
      return res.statusCode;
    } catch {
      return 0;
    }
  }
  return new Promise<number>((resolve) => {
    let text = '';
    const s = connect(c.port, '127.0.0.1', () => {
      if (c.keepOpen) s.write(c.bytes);
      else s.end(c.bytes);
    });
    const timer = setTimeout(() => s.destroy(), 15_000);
    s.on('data', (b: Buffer) => (text += b.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve(m ? Number(m[1]) : 0);
    });
  });
}

describe('security: fuzzing the client API and the peer RPC of a 3-node cluster', function () {
  this.timeout(600_000);
  let port = 0;
  const nodes: NodeProc[] = [];
  const api = (i: number) => `http://127.0.0.1:${port + i}`;
  const env = (i: number): Record<string, string> => nodeEnv(port, i, { BODY_TIMEOUT_MS: '2000', MAX_BODY_BYTES: '500000', REQUEST_TIMEOUT_MS: '10000' });

  before(async () => {
    port = await freeBasePort();
    await startThreeVoters(nodes, env, api(1));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  });

  it(`survives ${REQUESTS} malformed requests (seed ${SEED}) with no 5xx, no crash and no data change`, async () => {
    const kept: Record<string, string> = {};
    for (let i = 0; i < 40; i++) kept[`keep-${i}`] = `value-${i}-${'é'.repeat(i % 5)}`;
    const entries = Object.entries(kept);
    for (let i = 0; i < entries.length; i += 10) {
      const w = await call('POST', `${api(1 + (i % 3))}/key`, { body: Object.fromEntries(entries.slice(i, i + 10)) });
      expect(w.status, w.text).to.equal(200);
    }

    const rng = makeRng(SEED);
    const cases = Array.from({ length: REQUESTS }, () => makeCase(rng, [port + 1, port + 2, port + 3], [port + 11, port + 12, port + 13], ['app1', 'app2', 'app3']));
    const statuses = new Map<number, number>();
    const fiveXx: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (next < cases.length) {
          const c = cases[next++];
          const status = await send(c);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status >= 500) fiveXx.push(c.kind === 'http' ? `${status} ${c.method} :${c.port}${c.path.slice(0, 80)} ${String(c.body ?? '').slice(0, 120)}` : `${status} raw :${c.port} ${c.bytes.toString('latin1').slice(0, 160)}`);
        }
      }),
    );

    const crashed = nodes.filter((n) => n.proc === null || n.proc.exitCode !== null || n.proc.signalCode !== null).length;
    for (const n of nodes) await waitFor(`${n.id} healthy`, async () => (await call('GET', `${api(Number(n.id.slice(3)))}/health`)).status === 200, 30_000);
    await waitLeader([api(1), api(2), api(3)]);
    let isIntact = true;
    for (const i of [1, 2, 3]) {
      for (const [k, v] of entries) {
        const r = await call('GET', `${api(i)}/key/${k}`);
        if (JSON.stringify(r.body) !== JSON.stringify({ [k]: v })) isIntact = false;
      }
    }
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
    console.log(`      fuzz statuses (0 = closed without an HTTP answer): ${summary}`);
    for (const f of fiveXx.slice(0, 20)) console.log(`      5xx: ${f}`);
    console.log(`fuzz: requests=${cases.length} 5xx=${fiveXx.length} crashed=${crashed} data_intact=${isIntact}`);
    expect(fiveXx, fiveXx.slice(0, 5).join('\n')).to.deep.equal([]);
    expect(crashed).to.equal(0);
    expect(isIntact).to.equal(true);
    for (const n of nodes) expect(n.output.join(''), n.id).to.not.include('unhandled error in request');
  });
});

const PEER_STREAMS = Number(process.env.FUZZ_PEER_STREAMS ?? 400);

/**
 * One peer-stream case: the upgrade's headers (right, wrong or missing cluster id, sender, receiver,
 * nonce), then lines: garbage, random JSON, messages that must change nothing (term 0, or from a
 * non-member at a far higher term, or naming another sender or receiver than the stream), random
 * incarnations, and an oversized line (never buffered whole; the stream closes).
 */
interface StreamCase {
  port: number;
  from: string;
  to: string;
  clusterId: string;
  headers: Record<string, string>;
  lines: string[];
}

function makeStreamCase(rng: Rng, raftPorts: number[], ids: string[], clusterId: string, term: number): StreamCase {
  const i = randInt(rng, 0, raftPorts.length - 1);
  const self = ids[i]!;
  const member = pick(rng, ids.filter((x) => x !== self));
  const from = pick(rng, [member, member, member, 'mallory', 'evil', self]);
  const to = rng() < 0.9 ? self : pick(rng, [member, 'nobody']);
  const cluster = rng() < 0.85 ? clusterId : pick(rng, ['another-cluster', '', 'x'.repeat(80), 'legacy']);
  const headers: Record<string, string> = {};
  if (rng() < 0.08) headers['x-raftkv-stream-nonce'] = pick(rng, ['', 'zz', 'abc', 'f'.repeat(100)]);
  if (rng() < 0.05) headers['x-raftkv-from'] = pick(rng, ['', 'bad id!', 'x'.repeat(200)]);
  if (rng() < 0.04) headers.upgrade = pick(rng, ['websocket', 'raftkv-stream/2', '']);
  if (rng() < 0.04) headers['content-length'] = String(randInt(rng, 1, 50_000_000));
  const lines: string[] = [];
  // Half the streams carry only well-formed messages, so that the core (not just the parser) is fuzzed.
  const isClean = rng() < 0.5;
  for (let k = randInt(rng, 1, 6); k > 0; k--) {
    const r = rng();
    if (isClean) {
      const type = pick(rng, MESSAGE_TYPES.filter((t) => t !== 'Bogus'));
      const isStranger = from === 'mallory' || from === 'evil';
      const m: Record<string, unknown> = {
        type, from, to, term: isStranger && rng() < 0.5 ? term + randInt(rng, 1, 1000) : 0, preVote: rng() < 0.5, lastLogIndex: randInt(rng, 0, 1e6), lastLogTerm: randInt(rng, 0, 1e6), transfer: rng() < 0.5,
        granted: rng() < 0.5, prevLogIndex: randInt(rng, 0, 5), prevLogTerm: randInt(rng, 0, 5), leaderCommit: randInt(rng, 0, 1e9), entries: [], success: rng() < 0.5, matchIndex: randInt(rng, 0, 1e9),
        rejectedIndex: randInt(rng, 0, 9), conflictIndex: randInt(rng, 0, 9), conflictTerm: randInt(rng, 0, 9), commit: randInt(rng, 0, 1e9), ctx: randInt(rng, 0, 1e9), ids: ['fz-read'], index: randInt(rng, 0, 1e9), ok: rng() < 0.5,
        meta: { lastIndex: randInt(rng, 1, 1e6), lastTerm: randInt(rng, 0, 9), config: { members: [] } }, offset: 0, data: '', done: rng() < 0.5, received: 0, lastIndex: 0,
      };
      if (rng() < 0.5) m.fromInc = pick(rng, ['', 'abc', 'ffffffffffffffffffffffffffffffff', randomString(rng, 6).replace(/[^0-9A-Za-z]/g, 'x')]);
      if (rng() < 0.3) m.toInc = pick(rng, ['', 'abc']);
      lines.push(JSON.stringify({ from, fromAddr: pick(rng, [null, '127.0.0.1:1']), messages: [m] }));
      continue;
    }
    if (r < 0.08) lines.push('y'.repeat(600_000)); // over MAX_BODY_BYTES (500000): the stream must close
    else if (r < 0.15 && (from === 'mallory' || from === 'evil')) {
      // A non-member claiming leadership or candidacy far ahead: must be ignored (docs/cluster-identity.md rule 3).
      const type = pick(rng, ['AppendEntries', 'RequestVote', 'Heartbeat', 'TimeoutNow', 'InstallSnapshot']);
      const m = { type, from, to, term: term + randInt(rng, 1, 1000), fromInc: randomString(rng, 8), preVote: false, lastLogIndex: 1e9, lastLogTerm: 1e9, transfer: true, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 1e9, commit: 1e9, ctx: 1, meta: { lastIndex: 1e9, lastTerm: 1e9, config: { members: [] } }, offset: 0, data: '', done: true };
      lines.push(JSON.stringify({ from, messages: [m] }));
    } else {
      const raw = randomPeerBody(rng, ids);
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        lines.push(raw);
        continue;
      }
      if (body !== null && typeof body === 'object' && Array.isArray((body as { messages?: unknown }).messages)) {
        const b = body as { from: unknown; messages: Record<string, unknown>[] };
        // Most lines name the stream's own ends (else the stream closes at once, also a case); a
        // member sender gets term 0 or a random incarnation so that nothing can change.
        if (rng() < 0.8) {
          b.from = from;
          for (const m of b.messages) {
            if (m === null || typeof m !== 'object') continue;
            m.from = from;
            m.to = to;
            if (from !== 'mallory' && from !== 'evil') m.term = 0;
            if (rng() < 0.5) m.fromInc = pick(rng, [randomString(rng, 10), 'x'.repeat(200), 7, null]);
            if (rng() < 0.3) m.toInc = pick(rng, [randomString(rng, 10), '', 5]);
          }
        }
      }
      lines.push(rng() < 0.9 ? JSON.stringify(body) : pick(rng, GARBAGE_JSON));
    }
  }
  return { port: raftPorts[i]!, from, to, clusterId: cluster, headers, lines };
}

describe('security: fuzzing peer messages over the peer stream of a 3-node cluster', function () {
  this.timeout(600_000);
  let port = 0;
  const nodes: NodeProc[] = [];
  const api = (i: number) => `http://127.0.0.1:${port + i}`;
  const env = (i: number): Record<string, string> => nodeEnv(port, i, { BODY_TIMEOUT_MS: '2000', MAX_BODY_BYTES: '500000', REQUEST_TIMEOUT_MS: '10000' });

  before(async () => {
    port = await freeBasePort();
    await startThreeVoters(nodes, env, api(1));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  });

  it(`survives ${PEER_STREAMS} fuzzed peer streams (seed ${SEED}): malformed lines, non-member senders, wrong incarnations, oversized lines; no 5xx, no crash, no data change`, async () => {
    const kept: Record<string, string> = {};
    for (let i = 0; i < 20; i++) kept[`keep-${i}`] = `value-${i}`;
    expect((await call('POST', `${api(1)}/key`, { body: kept })).status).to.equal(200);
    const l0 = (await waitLeader([api(1), api(2), api(3)])) + 1;
    const v0 = (await view(api(l0)))!;
    const rng = makeRng(SEED + 1);
    const statuses = new Map<number, number>();
    const fiveXx: string[] = [];
    let opened = 0;
    let closedByServer = 0;
    const cases = Array.from({ length: PEER_STREAMS }, () => makeStreamCase(rng, [port + 11, port + 12, port + 13], ['app1', 'app2', 'app3'], v0.clusterId as string, v0.term));
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < cases.length) {
          const c = cases[next++]!;
          const s = await openRawStream({ port: c.port, from: c.from, to: c.to, clusterId: c.clusterId, headers: c.headers });
          statuses.set(s.status, (statuses.get(s.status) ?? 0) + 1);
          if (s.status >= 500) fiveXx.push(`${s.status} ${c.from}->${c.to} ${s.head.slice(0, 120)}`);
          if (s.status === 101) {
            opened++;
            for (const line of c.lines) if (!s.socket.destroyed) s.send(line);
            // Give the server a moment to judge the lines, then hang up (if it has not already).
            const isClosed = await Promise.race([s.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 150))]);
            if (isClosed) closedByServer++;
          }
          s.socket.destroy();
        }
      }),
    );
    const crashed = nodes.filter((n) => n.proc === null || n.proc.exitCode !== null || n.proc.signalCode !== null).length;
    for (const n of nodes) await waitFor(`${n.id} healthy`, async () => (await call('GET', `${api(Number(n.id.slice(3)))}/health`)).status === 200, 30_000);
    const l1 = (await waitLeader([api(1), api(2), api(3)])) + 1;
    expect((await call('POST', `${api(l1)}/key`, { body: { afterPeerFuzz: 'ok' } })).status).to.equal(200);
    let isIntact = true;
    for (const i of [1, 2, 3]) {
      await waitFor(`app${i} to apply the write after the fuzz`, async () => (await call('GET', `${api(i)}/key/afterPeerFuzz?consistency=stale`)).status === 200, 30_000);
      for (const [k, v] of Object.entries(kept)) if (JSON.stringify((await call('GET', `${api(i)}/key/${k}`)).body) !== JSON.stringify({ [k]: v })) isIntact = false;
      const own = (await view(api(i)))!;
      // Nobody follows, or counts, a sender the fuzz invented.
      if (own.leader !== null && !['app1', 'app2', 'app3'].includes(own.leader.id)) isIntact = false;
      if (own.nodes.some((m) => !['app1', 'app2', 'app3'].includes(m.id))) isIntact = false;
    }
    const summary = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([st, n]) => `${st}:${n}`).join(' ');
    console.log(`      peer stream statuses (101 = opened): ${summary}; closed by the server (a bad line): ${closedByServer}/${opened}`);
    for (const f of fiveXx.slice(0, 20)) console.log(`      5xx: ${f}`);
    console.log(`fuzz: peer_streams=${cases.length} opened=${opened} 5xx=${fiveXx.length} crashed=${crashed} data_intact=${isIntact}`);
    expect(fiveXx, fiveXx.slice(0, 5).join('\n')).to.deep.equal([]);
    expect(crashed).to.equal(0);
    expect(isIntact).to.equal(true);
    expect(opened, 'the fuzz must open streams to reach the message parser').to.be.greaterThan(PEER_STREAMS / 2);
    expect(opened - closedByServer, 'some streams must carry only valid lines, to reach the core').to.be.greaterThan(PEER_STREAMS / 8);
    for (const n of nodes) expect(n.output.join(''), n.id).to.not.include('unhandled');
  });
});

/** Variants of a canonical path that a lenient router or a normalising proxy might treat as the same route. */
function pathVariants(rng: Rng, path: string): string[] {
  const letters = [...path].map((c, i) => (/[a-z]/i.test(c) ? i : -1)).filter((i) => i >= 0);
  const at = (i: number, repl: string): string => path.slice(0, i) + repl + path.slice(i + 1);
  const slashes = [...path].map((c, i) => (c === '/' && i > 0 ? i : -1)).filter((i) => i >= 0);
  const lastSeg = path.slice(path.lastIndexOf('/') + 1);
  const out = [
    path.toUpperCase(),
    path.replace(/\/([a-z])/g, (_, c: string) => `/${c.toUpperCase()}`),
    [...path].map((c) => (rng() < 0.5 ? c.toUpperCase() : c)).join(''),
    `${path}/`,
    `/${path}`,
    `${path}//`,
    `${path}/.`,
    `/.${path}`,
    `/x/..${path}`,
    `/%2e%2e${path}`,
    `${path}/..`,
    `${path}%2F`,
    `${path}%00`,
    `${path};x`,
  ];
  if (slashes.length > 0) {
    const i = pick(rng, slashes);
    out.push(at(i, '//'), at(i, '%2F'), at(i, '/./'), at(i, `/${lastSeg}/../`));
  }
  if (letters.length > 0) {
    const i = pick(rng, letters);
    const code = path.charCodeAt(i).toString(16);
    out.push(at(i, `%${code}`), at(i, `%${code.toUpperCase()}`), at(i, path[i].toUpperCase()));
  }
  return [...new Set(out)].filter((v) => v !== path);
}

/** What the server decided about a request: refused for lack of rights, no such route, or let through to a handler. */
type Decision = 'denied' | 'noroute' | 'allowed';
function decisionOf(r: { status: number; code: string | null }): Decision {
  if (r.status === 401 || r.status === 403) return 'denied';
  if ((r.status === 404 && r.code === 'NOT_FOUND') || r.status === 405) return 'noroute';
  return 'allowed';
}

describe('security: fuzzing path variants against route roles (case, slashes, encodings, dot segments)', function () {
  this.timeout(180_000);
  const TOKENS = { 'admin-token-0001': { role: 'admin' }, 'write-token-0001': { role: 'write' }, 'read-token-00001': { role: 'read' } };
  const WHO: [string, Record<string, string>][] = [
    ['none', {}],
    ['read', { authorization: 'Bearer read-token-00001' }],
    ['write', { authorization: 'Bearer write-token-0001' }],
    ['admin', { authorization: 'Bearer admin-token-0001' }],
  ];
  let port = 0;
  let dir = '';
  let n: NodeProc;
  let base = '';

  before(async () => {
    port = await freeBasePort();
    base = `http://127.0.0.1:${port}`;
    dir = tempDir('raftkv-fuzz-paths-');
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(TOKENS));
    n = startNode('solo', { NODE_ID: 'solo', PORT: String(port), HOST: '127.0.0.1', RAFT_BIND_ADDR: `127.0.0.1:${port + 1}`, AUTH_TOKENS_FILE: join(dir, 'tokens.json'), METRICS_AUTH: 'true' });
    await dumpOnFailure([n], () => waitFor('node ready', async () => (await call('GET', `${base}/ready`)).status === 200, 60_000));
    expect((await call('POST', `${base}/key`, { body: { keep: 'original' }, headers: WHO[3][1] })).status).to.equal(200);
  });

  after(async () => {
    await stopNode(n, 'SIGKILL');
    removeDir(dir);
  });

  it(`every variant gets the canonical path's role decision or no route, never more (seed ${SEED})`, async () => {
    const rng = makeRng(SEED);
    // Each canonical request does nothing lasting even when allowed (absent keys, an invalid join).
    const canonical: [string, string, string][] = [
      ['GET', '/', ''],
      ['GET', '/health', ''],
      ['GET', '/metrics', ''],
      ['POST', '/key', JSON.stringify({ 'fzv-written': 'x' })],
      ['GET', '/key/keep', ''],
      ['DELETE', '/key/fzv-absent', ''],
      ['GET', '/cluster', ''],
      ['POST', '/cluster/join', JSON.stringify({ id: 'bad id', raftAddr: '127.0.0.1:3', apiAddr: '127.0.0.1:4' })],
      ['DELETE', '/cluster/nodes/ghost', ''],
    ];
    const wrong: string[] = [];
    let escalations = 0;
    let sent = 0;
    for (const [method, path, body] of canonical) {
      const variants = pathVariants(rng, path);
      for (const [who, headers] of WHO) {
        const want = decisionOf(await rawRequest(port, method, path, headers, body));
        const got = await Promise.all(variants.map((v) => rawRequest(port, method, v, headers, body)));
        sent += variants.length;
        got.forEach((r, i) => {
          const d = decisionOf(r);
          if (d === want || d === 'noroute') return;
          // A variant let through where the canonical path is refused is the dangerous kind: list those first.
          const line = `${method} ${variants[i]} as ${who}: ${r.status} ${r.code ?? ''} (canonical ${path}: ${want})`;
          if (d === 'allowed') {
            escalations++;
            wrong.unshift(line);
          } else wrong.push(line);
        });
      }
    }
    console.log(`fuzz-paths: requests=${sent} wrong_decisions=${wrong.length} escalations=${escalations}`);
    expect(wrong, wrong.slice(0, 10).join('\n')).to.deep.equal([]);
    expect((await call('GET', `${base}/key/keep`, { headers: WHO[1][1] })).body).to.deep.equal({ keep: 'original' });
    expect(((await view(base, { headers: WHO[3][1] }))?.nodes ?? []).map((m) => m.id)).to.deep.equal(['solo']);
  });
});
