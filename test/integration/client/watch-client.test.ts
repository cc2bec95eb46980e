import { expect } from 'chai';
import { RaftKvClient, WatchCompactedError, type WatchMessage } from '../../../src/index.js';
import { stopNode, waitFor, waitForLeader, type NodeProc } from '../../support/procs.js';
import { startThreeNodes, type ThreeNodes } from './three-nodes.js';

describe('client.watch against a real three-node cluster', function () {
  this.timeout(240_000);
  let c: ThreeNodes;

  before(async () => {
    // A small history, so the COMPACTED case needs few writes; big enough for a reconnect under load.
    c = await startThreeNodes({ WATCH_HISTORY_ENTRIES: '200', WATCH_PROGRESS_INTERVAL_MS: '500' });
  });

  after(async () => {
    await c?.stop();
  });

  it('the leader the watch is on is SIGKILLed mid-stream: the iterator resumes on another node with no gap and no repeat', async () => {
    const leader = await waitForLeader(c.nodes);
    const others = c.nodes.filter((n) => n !== leader) as NodeProc[];
    // The watch opens on the first endpoint: the leader's.
    const watcher = new RaftKvClient({ endpoints: [leader.api, ...others.map((n) => n.api)], backoffBaseMs: 20, backoffMaxMs: 200 });
    const writer = new RaftKvClient({ endpoints: c.endpoints, backoffBaseMs: 20, backoffMaxMs: 500, retries: 20 });
    await writer.set('outside', 'x');
    const seen: WatchMessage[] = [];
    const connects: string[] = [];
    const ac = new AbortController();
    let watchError: Error | null = null;
    const watching = (async () => {
      try {
        for await (const m of watcher.watch('w/', { signal: ac.signal, onConnect: (e) => connects.push(e) })) seen.push(m);
      } catch (err) {
        watchError = err as Error;
      }
    })();
    await waitFor('the watch to start', () => seen.length > 0, 30_000, 20);
    expect(seen[0].type).to.equal('progress');
    const unknown: string[] = [];
    for (let i = 0; i < 60; i++) {
      if (i === 20) await stopNode(leader, 'SIGKILL');
      try {
        await writer.set(`w/${String(i).padStart(2, '0')}`, `v${i}`);
        if (i % 10 === 0) await writer.set(`outside/${i}`, 'not watched');
      } catch (err) {
        unknown.push(`${i}: ${String(err)}`); // outcome unknown while the leader dies: the listing below decides
      }
    }
    // What the cluster holds under w/ (each key written once): exactly what the watch must have delivered.
    const listed = [];
    for await (const item of writer.list('w/')) listed.push(item);
    const expected = listed.map((it) => ({ index: it.index, key: it.key })).sort((a, b) => a.index - b.index);
    expect(expected.length).to.be.greaterThan(50);
    const lastExpected = expected[expected.length - 1].index;
    await waitFor('the watch to reach the last write', () => seen.some((m) => m.index >= lastExpected) || watchError !== null, 60_000, 20);
    ac.abort();
    await watching;
    expect(watchError, String(watchError)).to.equal(null);
    const indexes = seen.map((m) => m.index);
    for (let i = 1; i < indexes.length; i++) expect(indexes[i], `message ${i} after ${indexes[i - 1]}`).to.be.greaterThan(indexes[i - 1]);
    const changes = seen.filter((m): m is Extract<WatchMessage, { type: 'change' }> => m.type === 'change');
    const delivered = changes.flatMap((m) => m.events.map((e) => ({ index: m.index, key: e.key })));
    expect(delivered, `outcome unknown: ${unknown.join('; ')}`).to.deep.equal(expected);
    expect(connects[0]).to.equal(leader.api);
    expect(connects.length).to.be.greaterThan(1);
    expect(connects.slice(1)).to.not.include(leader.api);
  });

  it('a watch from an index the history no longer covers throws WatchCompactedError with the floor and the applied index', async () => {
    const client = new RaftKvClient({ endpoints: c.nodes.filter((n) => n.proc !== null).map((n) => n.api) });
    for (let i = 0; i < 260; i++) await client.set(`fill/${i}`, 'x');
    let caught: unknown = null;
    try {
      for await (const m of client.watch('', { from: 1 })) throw new Error(`unexpected message ${JSON.stringify(m)}`);
    } catch (err) {
      caught = err;
    }
    expect(caught, String(caught)).to.be.instanceOf(WatchCompactedError);
    const e = caught as WatchCompactedError;
    expect(e.compactedIndex).to.be.greaterThan(1);
    expect(e.currentIndex).to.be.greaterThan(e.compactedIndex);
    // From just above the floor it streams.
    const ac = new AbortController();
    for await (const m of client.watch('fill/', { from: e.compactedIndex + 1, signal: ac.signal })) {
      expect(m.index).to.be.greaterThan(e.compactedIndex);
      break;
    }
  });
});
