/**
 * Issue 19: a key named `__proto__` was silently dropped from a write (`{"__proto__":"x"}` → 200 `{}`
 * and an empty entry committed), because the parsed pairs were copied into a plain object. Request
 * parsing now uses null-prototype objects: such keys are stored like any other key.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createApp, parseSetBody } from '../../../src/api/app.js';
import type { RaftNode } from '../../../src/raft/node/node.js';
import type { KvOp } from '../../../src/kv/types.js';
import { http } from '../../support/procs.js';

const LIMITS = { maxKeyBytes: 100, maxValueBytes: 100, maxBodyBytes: 1000 };

/** A leader that keeps what it is asked to write; only what POST and GET /key touch. */
function recordingLeader(writes: KvOp[][]): RaftNode {
  const kv = new Map<string, string>();
  const stub = {
    leaderId: () => 'L',
    write: (ops: KvOp[]) => {
      writes.push(ops);
      for (const op of ops) if (op.op === 'set') kv.set(op.key, op.value);
      return Promise.resolve(writes.length);
    },
    linearizableBarrier: () => Promise.resolve(),
    get: (key: string) => Promise.resolve(kv.has(key) ? { value: kv.get(key), index: 1 } : null),
  };
  return stub as unknown as RaftNode;
}

describe('security: keys named like Object.prototype members are stored like any other key', () => {
  let server: Server;
  let base = '';
  const writes: KvOp[][] = [];

  before(async () => {
    const app = createApp({ node: recordingLeader(writes), nodeId: 'L', limits: LIMITS, logger: pino({ level: 'silent' }), registry: new Registry(), requestTimeoutMs: 1000 });
    server = createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('parseSetBody keeps a "__proto__" key as an own pair', () => {
    const pairs = parseSetBody(JSON.parse('{"__proto__":"x","a":"b"}'), LIMITS);
    expect(Object.entries(pairs)).to.deep.equal([['__proto__', 'x'], ['a', 'b']]);
  });

  it('POST {"__proto__":"x"} writes the key __proto__ and answers with it; GET returns it', async () => {
    const r = await http('POST', `${base}/key`, '{"__proto__":"x"}');
    expect(r.status, r.text).to.equal(200);
    expect(r.text).to.equal('{"__proto__":"x"}');
    expect(writes).to.deep.equal([[{ op: 'set', key: '__proto__', value: 'x' }]]);
    const g = await http('GET', `${base}/key/__proto__`);
    expect(g.status, g.text).to.equal(200);
    expect(g.text).to.equal('{"__proto__":"x"}');
  });

  it('constructor, toString and hasOwnProperty are ordinary keys too; no write is ever empty', async () => {
    const r = await http('POST', `${base}/key`, '{"constructor":"c","toString":"t","hasOwnProperty":"h","__proto__":"p"}');
    expect(r.status, r.text).to.equal(200);
    expect(JSON.parse(r.text)).to.deep.equal(JSON.parse('{"constructor":"c","toString":"t","hasOwnProperty":"h","__proto__":"p"}'));
    for (const ops of writes) expect(ops.length).to.be.greaterThan(0);
  });
});
