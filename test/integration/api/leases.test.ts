/**
 * Issue 17, leases over real HTTP on a real three-node in-memory cluster (TICK_MS=20,
 * ELECTION_TIMEOUT_TICKS=15: election timeout 300-600 ms, shortest TTL 1200 ms): a lease nobody keeps
 * alive is expired by the leader and its keys deleted (watch events with reason lease-expired, all at
 * one index, no earlier than the TTL); revoke deletes the keys in one index; a paused old leader
 * cannot expire a lease after losing leadership; keepalives through a follower keep a lease alive
 * across a leader kill.
 */
import { expect } from 'chai';
import { request } from 'undici';
import { http, waitFor, waitForLeader, stopNode, type NodeProc } from '../../support/procs.js';
import { startThreeNodes, type ThreeNodes } from '../client/three-nodes.js';

interface Change {
  index: number;
  events: Array<{ type: string; key: string; prevIndex: number; reason?: string; lease?: string }>;
}

/** A GET /watch stream collecting its change messages. */
class Watcher {
  readonly changes: Change[] = [];
  status = 0;
  private readonly ac = new AbortController();
  readonly done: Promise<void>;

  constructor(url: string) {
    this.done = (async () => {
      let buffer = '';
      try {
        const res = await request(url, { signal: this.ac.signal });
        this.status = res.statusCode;
        for await (const chunk of res.body) {
          buffer += (chunk as Buffer).toString('utf8');
          let at: number;
          while ((at = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            if (!block.includes('event: change')) continue;
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (data) this.changes.push(JSON.parse(data.slice(6)) as Change);
          }
        }
      } catch {
        // closed
      }
    })();
  }

  async close(): Promise<void> {
    this.ac.abort();
    await this.done;
  }
}

describe('leases (3 nodes)', function () {
  this.timeout(240_000);
  let c: ThreeNodes;
  const watchers: Watcher[] = [];

  before(async () => {
    c = await startThreeNodes({ LEASE_CHECKPOINT_INTERVAL_MS: '500' });
  });

  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.close()));
  });

  after(async () => {
    for (const n of c?.nodes ?? []) n.proc?.kill('SIGCONT');
    await c?.stop();
  });

  const live = (): NodeProc[] => c.nodes.filter((n) => n.proc !== null);

  async function follower(): Promise<NodeProc> {
    const leader = await waitForLeader(live());
    return live().find((n) => n !== leader) as NodeProc;
  }

  async function grant(ttlMs: number, via?: NodeProc): Promise<string> {
    const node = via ?? (await waitForLeader(live()));
    const r = await http('POST', `${node.api}/leases`, { ttlMs });
    expect(r.status, r.text).to.equal(201);
    const body = r.body as { id: string; ttlMs: number; index: number };
    expect(body.id).to.equal(`l-${body.index}`);
    expect(body.ttlMs).to.equal(ttlMs);
    return body.id;
  }

  /** Opens a watch on `prefix` at a follower and waits until it streams. */
  async function watch(prefix: string): Promise<Watcher> {
    const f = await follower();
    const w = new Watcher(`${f.api}/watch?prefix=${encodeURIComponent(prefix)}`);
    watchers.push(w);
    await waitFor('the watch to open', () => w.status === 200, 10_000);
    return w;
  }

  it('refuses a TTL out of bounds (400 INVALID_TTL) and writes naming an unknown lease (404 LEASE_NOT_FOUND, nothing written)', async () => {
    const f = await follower();
    for (const ttlMs of [0, 1199, 86_400_001, 1.5, '2000']) {
      const r = await http('POST', `${f.api}/leases`, { ttlMs });
      expect(r.status, r.text).to.equal(400);
      expect(r.body).to.have.nested.property('error.code', 'INVALID_TTL');
    }
    const bad = await http('PUT', `${f.api}/key/nl%2Fa?lease=l-999999`, { value: 'x' });
    expect(bad.status, bad.text).to.equal(404);
    expect(bad.body).to.have.nested.property('error.code', 'LEASE_NOT_FOUND');
    const batch = await http('POST', `${f.api}/key?lease=l-999999`, { 'nl/b': '1', 'nl/c': '2' });
    expect(batch.status, batch.text).to.equal(404);
    const txn = await http('POST', `${f.api}/txn`, { success: [{ op: 'set', key: 'nl/d', value: '1' }, { op: 'set', key: 'nl/e', value: '1', lease: 'l-999999' }] });
    expect(txn.status, txn.text).to.equal(404);
    expect((await http('PUT', `${f.api}/key/nl%2Fa?lease=nope`, { value: 'x' })).status).to.equal(400);
    for (const k of ['nl/a', 'nl/b', 'nl/c', 'nl/d', 'nl/e']) expect((await http('GET', `${f.api}/key/${encodeURIComponent(k)}`)).status).to.equal(404);
    expect((await http('GET', `${f.api}/leases/l-999999`)).status).to.equal(404);
    expect((await http('POST', `${f.api}/leases/l-999999/keepalive`)).status).to.equal(404);
    expect((await http('DELETE', `${f.api}/leases/l-999999`)).status).to.equal(404);
  });

  it('revoke deletes the lease and every attached key in one index; a key rewritten without the lease is detached and stays', async () => {
    const f = await follower();
    const id = await grant(60_000, f);
    const w = await watch('rv/');
    expect((await http('PUT', `${f.api}/key/rv%2Fa?lease=${id}`, { value: '1' })).status).to.equal(200);
    expect((await http('POST', `${f.api}/key?lease=${id}`, { 'rv/b': '2', 'rv/c': '3', 'rv/d': '4' })).status).to.equal(200);
    const t = await http('POST', `${f.api}/txn`, { success: [{ op: 'set', key: 'rv/e', value: '5', lease: id }] });
    expect(t.status, t.text).to.equal(200);
    expect((await http('PUT', `${f.api}/key/rv%2Fd`, { value: 'mine now' })).status).to.equal(200);
    const info = await http('GET', `${f.api}/leases/${id}?keys=true`);
    expect(info.status, info.text).to.equal(200);
    expect(info.body).to.include({ id, ttlMs: 60_000 });
    expect((info.body as { keys: string[] }).keys).to.deep.equal(['rv/a', 'rv/b', 'rv/c', 'rv/e']);
    const list = await http('GET', `${f.api}/leases`);
    expect((list.body as { leases: Array<{ id: string }> }).leases.map((l) => l.id)).to.include(id);

    const r = await http('DELETE', `${f.api}/leases/${id}`);
    expect(r.status, r.text).to.equal(200);
    const body = r.body as { id: string; revoked: boolean; index: number; deleted: string[] };
    expect(body).to.deep.include({ id, revoked: true, deleted: ['rv/a', 'rv/b', 'rv/c', 'rv/e'] });
    expect(Number(r.headers['x-raft-index'])).to.equal(body.index);
    await waitFor('the revoke on the watch', () => w.changes.some((ch) => ch.index === body.index), 10_000);
    const ch = w.changes.find((x) => x.index === body.index) as Change;
    expect(ch.events.map((e) => [e.type, e.key, e.reason, e.lease])).to.deep.equal(['rv/a', 'rv/b', 'rv/c', 'rv/e'].map((k) => ['delete', k, 'lease-revoked', id]));
    for (const k of ['rv/a', 'rv/b', 'rv/c', 'rv/e']) expect((await http('GET', `${f.api}/key/${encodeURIComponent(k)}`)).status).to.equal(404);
    expect((await http('GET', `${f.api}/key/rv%2Fd`)).body).to.deep.equal({ 'rv/d': 'mine now' });
    expect((await http('DELETE', `${f.api}/leases/${id}`)).status).to.equal(404);
  });

  it('a lease nobody keeps alive expires no earlier than its TTL: its keys are deleted in one index, watched as reason lease-expired', async () => {
    const f = await follower();
    const w = await watch('ex/');
    const sentAt = performance.now();
    const id = await grant(1500, f);
    expect((await http('POST', `${f.api}/key?lease=${id}`, { 'ex/a': '1', 'ex/b': '2' })).status).to.equal(200);
    const gone = await waitFor('the keys to be expired', async () => ((await http('GET', `${f.api}/key/ex%2Fa`)).status === 404 ? performance.now() : null), 20_000);
    expect(gone - sentAt).to.be.at.least(1500);
    await waitFor('the expiry on the watch', () => w.changes.some((ch) => ch.events.some((e) => e.type === 'delete')), 10_000);
    const ch = w.changes.find((x) => x.events.some((e) => e.type === 'delete')) as Change;
    expect(ch.events.map((e) => [e.type, e.key, e.reason, e.lease])).to.deep.equal([['delete', 'ex/a', 'lease-expired', id], ['delete', 'ex/b', 'lease-expired', id]]);
    expect((await http('GET', `${f.api}/key/ex%2Fb`)).status).to.equal(404);
    expect((await http('GET', `${f.api}/leases/${id}`)).status).to.equal(404);
    const k = await http('POST', `${f.api}/leases/${id}/keepalive`);
    expect(k.status, k.text).to.equal(404);
    expect(k.body).to.have.nested.property('error.code', 'LEASE_NOT_FOUND');
  });

  /** Keeps `id` alive through whichever live follower answers, every `everyMs`, until stopped. */
  function keepAlive(id: string, everyMs: number, via: () => NodeProc[]): { stop: () => Promise<void>; failures: string[]; oks: number } {
    let isStopped = false;
    const state = { failures: [] as string[], oks: 0 };
    const loop = (async () => {
      while (!isStopped) {
        for (const n of via()) {
          const r = await http('POST', `${n.api}/leases/${id}/keepalive`, undefined, {}, { timeoutMs: 2000 });
          if (r.status === 200) {
            state.oks++;
            break;
          }
          state.failures.push(`${n.id}: ${r.status} ${r.text.slice(0, 120)}`);
          if (r.status === 404) return;
        }
        await new Promise((res) => setTimeout(res, everyMs));
      }
    })();
    return {
      failures: state.failures,
      get oks() {
        return state.oks;
      },
      stop: async () => {
        isStopped = true;
        await loop;
      },
    };
  }

  it('a paused old leader cannot expire a lease after losing leadership; the lease kept alive through the new leader survives', async () => {
    const old = await waitForLeader(live());
    const others = live().filter((n) => n !== old);
    const id = await grant(2000, others[0]);
    expect((await http('PUT', `${others[0].api}/key/ps%2Fa?lease=${id}`, { value: '1' })).status).to.equal(200);
    const k = keepAlive(id, 300, () => live().filter((n) => n !== old));
    try {
      old.proc?.kill('SIGSTOP');
      // The old leader's clock runs on while it is paused: its deadline passes long before it wakes.
      const next = await waitForLeader(others, 30_000);
      await new Promise((res) => setTimeout(res, 4000));
      old.proc?.kill('SIGCONT');
      await new Promise((res) => setTimeout(res, 3000));
      expect((await http('GET', `${next.api}/key/ps%2Fa`)).status, k.failures.join('\n')).to.equal(200);
      expect((await http('GET', `${old.api}/key/ps%2Fa`)).status).to.equal(200);
      expect((await http('GET', `${next.api}/leases/${id}`)).status).to.equal(200);
    } finally {
      old.proc?.kill('SIGCONT');
      await k.stop();
    }
    await http('DELETE', `${others[0].api}/leases/${id}`);
  });

  it('keepalives through a follower keep a lease alive across a leader kill; once they stop, it expires', async () => {
    const leader = await waitForLeader(live());
    const followers = live().filter((n) => n !== leader);
    const id = await grant(2000, followers[0]);
    expect((await http('PUT', `${followers[0].api}/key/kl%2Fa?lease=${id}`, { value: '1' })).status).to.equal(200);
    const k = keepAlive(id, 300, () => followers);
    try {
      await new Promise((res) => setTimeout(res, 1000));
      await stopNode(leader, 'SIGKILL');
      await waitForLeader(followers, 30_000);
      // Three TTLs under the new leader, kept alive all along.
      await new Promise((res) => setTimeout(res, 6000));
      expect((await http('GET', `${followers[0].api}/key/kl%2Fa`)).status, k.failures.join('\n')).to.equal(200);
      expect(k.oks).to.be.greaterThan(10);
    } finally {
      await k.stop();
    }
    const stoppedAt = performance.now();
    const gone = await waitFor('the lease to expire', async () => ((await http('GET', `${followers[1].api}/key/kl%2Fa`)).status === 404 ? performance.now() : null), 20_000);
    expect(gone - stoppedAt).to.be.greaterThan(0);
  });
});
