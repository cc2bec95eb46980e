/**
 * The storage contract shared by every implementation (memory and RocksDB): each one must pass
 * this same suite.
 */
import { expect } from 'chai';
import type { RangeQuery } from '../../../src/kv/listing.js';
import type { ClusterConfig, Entry, Snapshot } from '../../../src/raft/core/types.js';
import type { KvStore, NodeStorage } from '../../../src/storage/types.js';
import type { EntryOutcome, KvOp } from '../../../src/kv/types.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import type { HistoryLimits } from '../../../src/kv/history.js';

/** Opens a store at one fixed place, again after it has been closed, and removes it at the end. */
export interface StorageHarness {
  /**
   * Opens (or reopens, after both stores were closed) the storage at the harness's place; with
   * `historyLimits`, the watch history is bounded by them (memory: other limits than the last open's
   * make a fresh KV store, so they are set before anything is written).
   */
  open(historyLimits?: HistoryLimits): Promise<NodeStorage>;
  /** Removes whatever the harness created; called after the storage is closed. */
  cleanup(): Promise<void>;
}

const config: ClusterConfig = { members: [{ id: 'n1', suffrage: 'voter', raftAddr: '', apiAddr: '' }] };

function entry(index: number, term: number, data = `cmd-${index}-${term}`): Entry {
  return { index, term, type: 'normal', data };
}

function range(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function snapshot(lastIndex: number, lastTerm: number, data = 'snap'): Snapshot {
  return { meta: { lastIndex, lastTerm, config }, data };
}

/** Applies `ops` at `index` through the state machine over `kv` (the stores only persist what it decides). */
export async function applyOps(kv: KvStore, index: number, ops: KvOp[]): Promise<EntryOutcome> {
  return (await new KvStateMachine(kv).applyCommands([{ index, ops }], index))[0];
}

/** Per op of an outcome: whether its key existed just before it. */
function existed(o: EntryOutcome): boolean[] {
  return o.results.map((r) => r.prevIndex !== null);
}

/** Registers the storage contract suite for one implementation, named `name`. */
export function storageContract(name: string, makeHarness: () => StorageHarness): void {
  describe(`storage contract: ${name}`, () => {
    let harness: StorageHarness;
    let s: NodeStorage;

    /** The state machine over the store as it is now (it holds no state of its own). */
    const sm = () => new KvStateMachine(s.kv);

    /** The history limits the storage was last opened with (kept on reopen). */
    let limits: HistoryLimits | undefined;

    async function reopen(): Promise<NodeStorage> {
      await s.log.close();
      await s.kv.close();
      s = await harness.open(limits);
      return s;
    }

    beforeEach(async () => {
      limits = undefined;
      harness = makeHarness();
      s = await harness.open();
    });

    afterEach(async () => {
      await s.log.close();
      await s.kv.close();
      await harness.cleanup();
    });

    it('loads an empty state from a fresh store', async () => {
      const st = await s.log.load();
      expect(st).to.deep.equal({ hardState: { term: 0, votedFor: null }, snapshot: null, entries: [] });
      expect(await s.kv.appliedIndex()).to.equal(0);
      expect(await s.kv.count()).to.equal(0);
      expect(await s.kv.get('missing')).to.equal(undefined);
    });

    it('appends entries and loads them back in order', async () => {
      const entries: Entry[] = [
        entry(1, 1),
        { index: 2, term: 1, type: 'noop' },
        { index: 3, term: 2, type: 'config', change: { op: 'remove', id: 'n2' }, config },
      ];
      await s.log.write({ hardState: null, entries: entries.slice(0, 2) });
      await s.log.write({ hardState: null, entries: entries.slice(2) });
      expect((await s.log.load()).entries).to.deep.equal(entries);
    });

    it('orders entries by index beyond one digit', async () => {
      await s.log.write({ hardState: null, entries: range(1, 12, 1) });
      expect((await s.log.load()).entries.map((e) => e.index)).to.deep.equal(range(1, 12, 1).map((e) => e.index));
    });

    it('overwrites a suffix, deleting every entry at or after the first new index', async () => {
      await s.log.write({ hardState: null, entries: range(1, 5, 1) });
      await s.log.write({ hardState: null, entries: range(3, 4, 2) });
      const st = await s.log.load();
      expect(st.entries).to.deep.equal([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
    });

    it('after load, overwriting a suffix deletes exactly the replaced entries, also after a snapshot discarded the log', async () => {
      await s.log.load();
      await s.log.write({ hardState: null, entries: range(1, 5, 1) });
      await s.log.write({ hardState: null, entries: range(3, 4, 2) });
      expect((await s.log.load()).entries).to.deep.equal([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
      await s.log.write({ hardState: null, entries: range(2, 2, 3) });
      expect((await s.log.load()).entries).to.deep.equal([entry(1, 1), entry(2, 3)]);
      await s.log.write({ hardState: null, entries: range(3, 9, 3) });
      await s.log.saveSnapshot(snapshot(20, 4, 'from leader'), true);
      await s.log.write({ hardState: null, entries: range(21, 24, 4) });
      await s.log.write({ hardState: null, entries: range(23, 23, 5) });
      expect((await s.log.load()).entries).to.deep.equal([entry(21, 4), entry(22, 4), entry(23, 5)]);
      await s.log.saveSnapshot(snapshot(22, 4), false);
      await s.log.write({ hardState: null, entries: range(24, 25, 5) });
      await s.log.saveSnapshot(snapshot(24, 5), false);
      const st = await s.log.load();
      expect(st.snapshot).to.deep.equal(snapshot(24, 5));
      expect(st.entries).to.deep.equal([entry(25, 5)]);
    });

    it('persists the hard state, alone or with entries', async () => {
      await s.log.write({ hardState: { term: 3, votedFor: 'n2' }, entries: [] });
      expect((await s.log.load()).hardState).to.deep.equal({ term: 3, votedFor: 'n2' });
      await s.log.write({ hardState: { term: 4, votedFor: null }, entries: [entry(1, 4)] });
      const st = await s.log.load();
      expect(st.hardState).to.deep.equal({ term: 4, votedFor: null });
      expect(st.entries).to.deep.equal([entry(1, 4)]);
      await s.log.write({ hardState: null, entries: [entry(2, 4)] });
      expect((await s.log.load()).hardState).to.deep.equal({ term: 4, votedFor: null });
    });

    it('saveSnapshot drops entries up to lastIndex and keeps the later ones', async () => {
      await s.log.write({ hardState: null, entries: range(1, 6, 1) });
      await s.log.saveSnapshot(snapshot(4, 1), false);
      const st = await s.log.load();
      expect(st.snapshot).to.deep.equal(snapshot(4, 1));
      expect(st.entries).to.deep.equal(range(5, 6, 1));
    });

    it('saveSnapshot with discardLog drops every entry', async () => {
      await s.log.write({ hardState: null, entries: range(1, 6, 1) });
      await s.log.saveSnapshot(snapshot(3, 1, 'from leader'), true);
      const st = await s.log.load();
      expect(st.snapshot).to.deep.equal(snapshot(3, 1, 'from leader'));
      expect(st.entries).to.deep.equal([]);
      await s.log.write({ hardState: null, entries: range(4, 5, 2) });
      expect((await s.log.load()).entries).to.deep.equal(range(4, 5, 2));
    });

    it('a snapshot without data (the KV store holds its state) round-trips, survives reopen and replaces a snapshot with data', async () => {
      await s.log.write({ hardState: null, entries: range(1, 6, 1) });
      await s.log.saveSnapshot(snapshot(2, 1, 'x'.repeat(3 * 1024 * 1024)), false);
      const bare = { meta: snapshot(4, 1).meta, data: null };
      await s.log.saveSnapshot(bare, false);
      let st = await s.log.load();
      expect(st.snapshot).to.deep.equal(bare);
      expect(st.entries).to.deep.equal(range(5, 6, 1));
      await reopen();
      st = await s.log.load();
      expect(st.snapshot).to.deep.equal(bare);
      expect(st.entries).to.deep.equal(range(5, 6, 1));
      // And a received snapshot with data replaces it again.
      await s.log.saveSnapshot(snapshot(6, 1, 'from leader'), true);
      await reopen();
      expect((await s.log.load()).snapshot).to.deep.equal(snapshot(6, 1, 'from leader'));
    });

    it('a later snapshot replaces the earlier one', async () => {
      await s.log.write({ hardState: null, entries: range(1, 6, 1) });
      await s.log.saveSnapshot(snapshot(2, 1, 'a'), false);
      await s.log.saveSnapshot(snapshot(5, 1, 'b'), false);
      const st = await s.log.load();
      expect(st.snapshot).to.deep.equal(snapshot(5, 1, 'b'));
      expect(st.entries).to.deep.equal([entry(6, 1)]);
    });

    it('a large snapshot (several MiB of data) round-trips and survives reopen', async () => {
      const big = 'x'.repeat(3 * 1024 * 1024 + 17) + 'é"\\end';
      await s.log.write({ hardState: { term: 3, votedFor: 'n1' }, entries: range(1, 4, 3) });
      await s.log.saveSnapshot(snapshot(3, 3, big), false);
      let st = await s.log.load();
      expect(st.snapshot?.data?.length).to.equal(big.length);
      expect(st.snapshot?.data === big).to.equal(true);
      await reopen();
      st = await s.log.load();
      expect(st.snapshot?.meta).to.deep.equal(snapshot(3, 3).meta);
      expect(st.snapshot?.data === big).to.equal(true);
      expect(st.entries).to.deep.equal([entry(4, 3)]);
      // A smaller snapshot afterwards replaces every piece of the large one.
      await s.log.saveSnapshot(snapshot(4, 3, 'small'), true);
      await reopen();
      expect((await s.log.load()).snapshot).to.deep.equal(snapshot(4, 3, 'small'));
    });

    it('restart after a snapshot: the snapshot, later entries, hard state and imported KV state all come back', async () => {
      await s.log.write({ hardState: { term: 2, votedFor: 'n1' }, entries: range(1, 10, 2) });
      await applyOps(s.kv, 7, [{ op: 'set', key: 'k', value: 'v7' }]);
      const data = await sm().exportSnapshot();
      await s.log.saveSnapshot(snapshot(7, 2, data), false);
      await s.log.write({ hardState: { term: 3, votedFor: null }, entries: range(11, 12, 3) });
      await reopen();
      const st = await s.log.load();
      expect(st.snapshot).to.deep.equal(snapshot(7, 2, data));
      expect(st.entries.map((e) => e.index)).to.deep.equal([8, 9, 10, 11, 12]);
      expect(st.hardState).to.deep.equal({ term: 3, votedFor: null });
      // A snapshot received from a leader: persisted with the log discarded, then imported.
      const received = snapshot(20, 4, JSON.stringify([['r', 'from-leader', 18]]));
      await s.log.saveSnapshot(received, true);
      await sm().restoreSnapshot(received.data, 20);
      await reopen();
      expect((await s.log.load()).entries).to.deep.equal([]);
      expect((await s.log.load()).snapshot).to.deep.equal(received);
      expect(await s.kv.appliedIndex()).to.equal(20);
      expect(await s.kv.get('r')).to.deep.equal({ value: 'from-leader', index: 18 });
      expect(await s.kv.get('k')).to.equal(undefined);
    });

    it('reports a non-negative size', async () => {
      await s.log.write({ hardState: null, entries: range(1, 3, 1) });
      expect(await s.log.sizeBytes()).to.be.a('number').and.to.be.at.least(0);
    });

    it('applies sets with their index and records the applied index', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: '2' }]);
      await applyOps(s.kv, 2, [{ op: 'set', key: 'a', value: '3' }]);
      expect(await s.kv.get('a')).to.deep.equal({ value: '3', index: 2 });
      expect(await s.kv.get('b')).to.deep.equal({ value: '2', index: 1 });
      expect(await s.kv.appliedIndex()).to.equal(2);
      expect(await s.kv.count()).to.equal(2);
    });

    it('applies deletes', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: '2' }]);
      await applyOps(s.kv, 2, [{ op: 'delete', key: 'a' }, { op: 'delete', key: 'never-set' }]);
      expect(await s.kv.get('a')).to.equal(undefined);
      expect(await s.kv.get('b')).to.deep.equal({ value: '2', index: 1 });
      expect(await s.kv.count()).to.equal(1);
      expect(await s.kv.appliedIndex()).to.equal(2);
    });

    it('applies several ops on one key in order', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'x', value: '1' }, { op: 'delete', key: 'x' }]);
      expect(await s.kv.get('x')).to.equal(undefined);
      expect(await s.kv.count()).to.equal(0);
      await applyOps(s.kv, 2, [{ op: 'delete', key: 'x' }, { op: 'set', key: 'x', value: '2' }]);
      expect(await s.kv.get('x')).to.deep.equal({ value: '2', index: 2 });
      expect(await s.kv.count()).to.equal(1);
    });

    it('apply reports, per op, whether its key existed just before it (deletes of absent keys are detected at apply)', async () => {
      expect(existed(await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]))).to.deep.equal([false]);
      expect(existed(await applyOps(s.kv, 2, [{ op: 'delete', key: 'a' }, { op: 'delete', key: 'a' }, { op: 'set', key: 'a', value: '2' }, { op: 'delete', key: 'nope' }]))).to.deep.equal([true, false, false, false]);
      expect(existed(await applyOps(s.kv, 3, [{ op: 'set', key: 'a', value: '3' }]))).to.deep.equal([true]);
      // Read back from the store (RocksDB: also past its cache), the effects carry the replaced index.
      await reopen();
      expect((await applyOps(s.kv, 4, [{ op: 'set', key: 'a', value: '4' }])).effects).to.deep.equal([{ type: 'put', key: 'a', value: '4', prevIndex: 3 }]);
    });

    it('a batch of several entries applies in order, each op seeing the ones before it, and records the last index', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      const outcomes = await sm().applyCommands(
        [
          { index: 2, ops: [{ op: 'delete', key: 'a' }, { op: 'set', key: 'b', value: '2' }] },
          { index: 4, ops: [{ op: 'delete', key: 'a' }, { op: 'set', key: 'b', value: '4' }, { op: 'set', key: 'c', value: '4' }] },
        ],
        5,
      );
      expect(outcomes.map(existed)).to.deep.equal([[true, false], [false, true, false]]);
      expect(await s.kv.get('a')).to.equal(undefined);
      expect(await s.kv.get('b')).to.deep.equal({ value: '4', index: 4 });
      expect(await s.kv.get('c')).to.deep.equal({ value: '4', index: 4 });
      expect(await s.kv.appliedIndex()).to.equal(5);
      expect(await s.kv.count()).to.equal(2);
    });

    it('a batch with no operations only moves the applied index', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      expect(await sm().applyCommands([], 3)).to.deep.equal([]);
      expect(await s.kv.appliedIndex()).to.equal(3);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
    });

    it('persist without effects records the applied index without changing keys', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      await s.kv.persist([{ index: 2, effects: [] }], 2);
      expect(await s.kv.appliedIndex()).to.equal(2);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
    });

    it('exportSnapshot captures the state at the moment of the call, even if it resolves after later applies', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: '1' }]);
      // One state machine, as a node has: its applies wait until the export has taken its view (two
      // instances do not exclude each other, and the apply could land before the view is taken).
      const m = sm();
      const exporting = m.exportSnapshot();
      await m.applyCommands([{ index: 2, ops: [{ op: 'set', key: 'a', value: '2' }, { op: 'delete', key: 'b' }, { op: 'set', key: 'c', value: '2' }] }], 2);
      const data = await exporting;
      await sm().restoreSnapshot(data, 1);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
      expect(await s.kv.get('b')).to.deep.equal({ value: '1', index: 1 });
      expect(await s.kv.get('c')).to.equal(undefined);
    });

    it('exports and imports a snapshot, replacing the whole key space', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b/c', value: 'x"y' }]);
      await applyOps(s.kv, 2, [{ op: 'set', key: 'd', value: '' }]);
      const data = await sm().exportSnapshot();
      expect(JSON.parse(data)).to.deep.equal([['a', '1', 1], ['b/c', 'x"y', 1], ['d', '', 2]]);

      await applyOps(s.kv, 3, [{ op: 'set', key: 'stale', value: 's' }, { op: 'delete', key: 'a' }]);
      await sm().restoreSnapshot(data, 7);
      expect(await s.kv.get('stale')).to.equal(undefined);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
      expect(await s.kv.get('b/c')).to.deep.equal({ value: 'x"y', index: 1 });
      expect(await s.kv.get('d')).to.deep.equal({ value: '', index: 2 });
      expect(await s.kv.count()).to.equal(3);
      expect(await s.kv.appliedIndex()).to.equal(7);
      expect(await sm().exportSnapshot()).to.equal(data);

      await sm().restoreSnapshot(JSON.stringify([]), 9);
      expect(await s.kv.count()).to.equal(0);
      expect(await s.kv.appliedIndex()).to.equal(9);
    });

    it('persist writes exactly the effects it is given: a put stores the value with its entry\'s index, a delete removes the key', async () => {
      await s.kv.persist(
        [
          { index: 3, effects: [{ type: 'put', key: 'a', value: '1', prevIndex: null }, { type: 'put', key: 'b', value: '2', prevIndex: null }] },
          { index: 5, effects: [{ type: 'delete', key: 'a', prevIndex: 3 }, { type: 'put', key: 'b', value: '5', prevIndex: 3 }, { type: 'put', key: 'c', value: '', prevIndex: null }] },
        ],
        6,
      );
      expect(await s.kv.getMany(['a', 'b', 'c', 'never'])).to.deep.equal([undefined, { value: '5', index: 5 }, { value: '', index: 5 }, undefined]);
      expect(await s.kv.get('b')).to.deep.equal({ value: '5', index: 5 });
      expect(await s.kv.count()).to.equal(2);
      expect(await s.kv.appliedIndex()).to.equal(6);
      await reopen();
      expect(await s.kv.getMany(['a', 'b', 'c'])).to.deep.equal([undefined, { value: '5', index: 5 }, { value: '', index: 5 }]);
      expect(await s.kv.count()).to.equal(2);
      expect(await s.kv.appliedIndex()).to.equal(6);
    });

    it('forEachRow yields every key in order with its value and index; replaceRows replaces them all with the applied index', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'b', value: '1' }, { op: 'set', key: 'a', value: '1' }]);
      await applyOps(s.kv, 2, [{ op: 'set', key: 'c', value: '2' }]);
      const rows: Array<[string, unknown]> = [];
      await s.kv.forEachRow((k, v) => rows.push([k, v]));
      expect(rows).to.deep.equal([['a', { value: '1', index: 1 }], ['b', { value: '1', index: 1 }], ['c', { value: '2', index: 2 }]]);
      await s.kv.replaceRows([['x', { value: 'y', index: 4 }]], 9);
      expect(await s.kv.getMany(['a', 'x'])).to.deep.equal([undefined, { value: 'y', index: 4 }]);
      expect(await s.kv.count()).to.equal(1);
      expect(await s.kv.appliedIndex()).to.equal(9);
    });

    it('openView shows one point in time: the applied index and every row in UTF-8 byte order, unchanged by later applies', async () => {
      // '\u{1F600}' sorts after '\uFFFD' in UTF-8 bytes but before it in UTF-16 code units.
      await applyOps(s.kv, 1, [{ op: 'set', key: 'b', value: '1' }, { op: 'set', key: '\uFFFD', value: 'r' }, { op: 'set', key: '\u{1F600}', value: 'e' }]);
      await applyOps(s.kv, 2, [{ op: 'set', key: 'a', value: '2' }, { op: 'set', key: 'c', value: '2' }]);
      const view = await s.kv.openView();
      expect(view.appliedIndex).to.equal(2);
      // Applied after the view opened: not in it.
      await applyOps(s.kv, 3, [{ op: 'set', key: 'a', value: '3' }, { op: 'delete', key: 'b' }, { op: 'set', key: 'bb', value: '3' }]);
      const rows: Array<[string, unknown]> = [];
      for (;;) {
        const batch = await view.nextRows(2);
        if (batch.length === 0) break;
        expect(batch.length).to.be.at.most(2);
        rows.push(...batch);
      }
      await view.close();
      await view.close();
      expect(rows).to.deep.equal([
        ['a', { value: '2', index: 2 }], ['b', { value: '1', index: 1 }], ['c', { value: '2', index: 2 }],
        ['\uFFFD', { value: 'r', index: 1 }], ['\u{1F600}', { value: 'e', index: 1 }],
      ]);
      const fresh = await s.kv.openView();
      expect(fresh.appliedIndex).to.equal(3);
      expect((await fresh.nextRows(100)).map(([k]) => k)).to.deep.equal(['a', 'bb', 'c', '\uFFFD', '\u{1F600}']);
      await fresh.close();
    });

    it('openView of an empty store has applied index 0 and no rows', async () => {
      const view = await s.kv.openView();
      expect(view.appliedIndex).to.equal(0);
      expect(await view.nextRows(10)).to.deep.equal([]);
      await view.close();
    });

    it('restoring a malformed snapshot is refused and changes nothing', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      for (const bad of ['{', '{}', '[["a","1"]]', '[["a",1,1]]', '[["a","1","1"]]']) {
        let error: unknown = null;
        await sm().restoreSnapshot(bad, 5).catch((err: unknown) => (error = err));
        expect(error, bad).to.be.instanceOf(Error);
      }
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
      expect(await s.kv.appliedIndex()).to.equal(1);
    });

    it('keeps everything across close and reopen', async () => {
      await s.log.write({ hardState: { term: 2, votedFor: 'n1' }, entries: range(1, 5, 1) });
      await s.log.write({ hardState: null, entries: range(4, 6, 2) });
      await s.log.saveSnapshot(snapshot(2, 1), false);
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: '2' }]);
      await applyOps(s.kv, 2, [{ op: 'delete', key: 'b' }]);
      await s.kv.persist([], 3);
      const before = await s.log.load();
      const kvBefore = await sm().exportSnapshot();

      await reopen();
      const after = await s.log.load();
      expect(after).to.deep.equal(before);
      expect(after.entries).to.deep.equal([entry(3, 1), ...range(4, 6, 2)]);
      expect(after.hardState).to.deep.equal({ term: 2, votedFor: 'n1' });
      expect(await sm().exportSnapshot()).to.equal(kvBefore);
      expect(await s.kv.get('a')).to.deep.equal({ value: '1', index: 1 });
      expect(await s.kv.count()).to.equal(1);
      expect(await s.kv.appliedIndex()).to.equal(3);

      await s.log.write({ hardState: null, entries: range(5, 5, 3) });
      await reopen();
      expect((await s.log.load()).entries).to.deep.equal([entry(3, 1), entry(4, 2), entry(5, 3)]);
    });

    it('leases: lease rows and attached keys are persisted in the apply batch, survive reopen, and replaceRows replaces them', async () => {
      const l1 = { id: 'l-1', ttlMs: 5000, grantedIndex: 1, remainingMs: 5000 };
      const l2 = { id: 'l-2', ttlMs: 9000, grantedIndex: 2, remainingMs: 9000 };
      expect(await s.kv.loadLeases()).to.deep.equal({ leases: [], attached: [] });
      await s.kv.persist([
        { index: 1, effects: [], leaseEffects: [{ type: 'lease-put', lease: l1 }] },
        { index: 2, effects: [{ type: 'put', key: 'b', value: '1', prevIndex: null, lease: 'l-1' }, { type: 'put', key: 'a', value: '1', prevIndex: null, lease: 'l-1' }],
          leaseEffects: [{ type: 'lease-put', lease: l2 }, { type: 'attach', id: 'l-1', key: 'b' }, { type: 'attach', id: 'l-1', key: 'a' }, { type: 'attach', id: 'l-2', key: 'é\u0000x' }] },
      ], 2);
      expect(await s.kv.loadLeases()).to.deep.equal({ leases: [l1, l2], attached: [['l-1', 'a'], ['l-1', 'b'], ['l-2', 'é\u0000x']] });
      await s.kv.persist([{ index: 3, effects: [], leaseEffects: [{ type: 'detach', id: 'l-1', key: 'b' }, { type: 'lease-put', lease: { ...l1, remainingMs: 10 } }, { type: 'detach', id: 'l-2', key: 'é\u0000x' }, { type: 'lease-delete', id: 'l-2' }] }], 3);
      const expected = { leases: [{ ...l1, remainingMs: 10 }], attached: [['l-1', 'a']] };
      expect(await s.kv.loadLeases()).to.deep.equal(expected);
      const view = await s.kv.openView();
      expect(view.leases).to.deep.equal(expected);
      await view.close();
      await reopen();
      expect(await s.kv.loadLeases()).to.deep.equal(expected);
      await s.kv.replaceRows([['z', { value: 'z', index: 4 }]], 9, { leases: [l2], attached: [['l-2', 'z']] });
      expect(await s.kv.loadLeases()).to.deep.equal({ leases: [l2], attached: [['l-2', 'z']] });
      await s.kv.replaceRows([], 10);
      expect(await s.kv.loadLeases()).to.deep.equal({ leases: [], attached: [] });
    });

    it('leases: a snapshot exported from one store and restored into another carries the lease table', async () => {
      await sm().applyCommands([
        { index: 1, term: 1, command: { kind: 'lease-grant', ttlMs: 5000 } },
        { index: 2, term: 1, command: { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '1', lease: 'l-1' }], conditions: [] } },
      ], 2);
      const data = await sm().exportSnapshot();
      await sm().restoreSnapshot('[]', 3);
      expect(await s.kv.loadLeases()).to.deep.equal({ leases: [], attached: [] });
      await sm().restoreSnapshot(data, 4);
      const fresh = sm();
      const out = await fresh.applyCommands([{ index: 5, term: 1, command: { kind: 'lease-revoke', id: 'l-1' } }], 5);
      expect(out[0].lease).to.deep.equal({ op: 'revoke', id: 'l-1', deleted: ['a'] });
      expect(await s.kv.get('a')).to.equal(undefined);
    });

    describe('watch history', () => {
      const set = (key: string, value = 'v'): KvOp => ({ op: 'set', key, value });
      async function openWith(l: HistoryLimits): Promise<void> {
        limits = l;
        await reopen();
      }

      it('keeps each applied entry\'s effects at its index, written with the apply; an entry without effects leaves no record', async () => {
        expect(await s.kv.readHistory(1, 100)).to.deep.equal({ floor: 0, appliedIndex: 0, entries: [], upTo: 0 });
        await applyOps(s.kv, 1, [set('a', '1')]);
        await applyOps(s.kv, 2, [{ op: 'delete', key: 'absent' }]);
        await sm().applyCommands([{ index: 3, ops: [set('b', '2'), { op: 'delete', key: 'a' }] }, { index: 4, ops: [set('b', '3')] }], 5);
        const all = await s.kv.readHistory(1, 100);
        expect(all).to.deep.equal({
          floor: 0,
          appliedIndex: 5,
          upTo: 5,
          entries: [
            { index: 1, effects: [{ type: 'put', key: 'a', value: '1', prevIndex: null }] },
            // Each record keeps the value an effect replaced or removed (prevValue), for listings at an older index.
            { index: 3, effects: [{ type: 'put', key: 'b', value: '2', prevIndex: null }, { type: 'delete', key: 'a', prevIndex: 1, prevValue: '1' }] },
            { index: 4, effects: [{ type: 'put', key: 'b', value: '3', prevIndex: 3, prevValue: '2' }] },
          ],
        });
        expect((await s.kv.readHistory(2, 100)).entries.map((e) => e.index)).to.deep.equal([3, 4]);
        expect((await s.kv.readHistory(5, 100)).entries).to.deep.equal([]);
        // Cut at the limit: upTo is the last record read, not the applied index.
        const cut = await s.kv.readHistory(1, 2);
        expect(cut.entries.map((e) => e.index)).to.deep.equal([1, 3]);
        expect(cut.upTo).to.equal(3);
        const exact = await s.kv.readHistory(3, 2);
        expect(exact.entries.map((e) => e.index)).to.deep.equal([3, 4]);
        expect(exact.upTo).to.equal(5);
        await reopen();
        expect(await s.kv.readHistory(1, 100)).to.deep.equal(all);
      });

      it('is bounded by WATCH_HISTORY_ENTRIES: the oldest records go in the same batch and the floor moves up to the last one dropped; survives reopen', async () => {
        await openWith({ maxEntries: 3, maxBytes: 1 << 20 });
        for (let i = 1; i <= 6; i++) await applyOps(s.kv, i, i === 4 ? [{ op: 'delete', key: 'none' }] : [set(`k${i}`)]);
        const h = await s.kv.readHistory(1, 100);
        expect(h.floor).to.equal(2);
        expect(h.entries.map((e) => e.index)).to.deep.equal([3, 5, 6]);
        expect(h.appliedIndex).to.equal(6);
        await reopen();
        expect(await s.kv.readHistory(1, 100)).to.deep.equal(h);
        await applyOps(s.kv, 7, [set('k7')]);
        const after = await s.kv.readHistory(1, 100);
        expect(after.entries.map((e) => e.index)).to.deep.equal([5, 6, 7]);
        expect(after.floor).to.equal(3);
      });

      it('is bounded by WATCH_HISTORY_BYTES, always keeping the newest record however large', async () => {
        await openWith({ maxEntries: 1000, maxBytes: 300 });
        await applyOps(s.kv, 1, [set('a', 'x'.repeat(50))]);
        await applyOps(s.kv, 2, [set('b', 'x'.repeat(50))]);
        expect((await s.kv.readHistory(1, 100)).entries.map((e) => e.index)).to.deep.equal([1, 2]);
        await applyOps(s.kv, 3, [set('c', 'x'.repeat(500))]);
        const h = await s.kv.readHistory(1, 100);
        expect(h.entries.map((e) => e.index)).to.deep.equal([3]);
        expect(h.floor).to.equal(2);
      });

      it('restoring a snapshot drops the history and moves the floor up to the snapshot index; later applies are recorded above it', async () => {
        await applyOps(s.kv, 1, [set('a')]);
        await applyOps(s.kv, 2, [set('b')]);
        const data = await sm().exportSnapshot();
        await sm().restoreSnapshot(data, 10);
        expect(await s.kv.readHistory(1, 100)).to.deep.equal({ floor: 10, appliedIndex: 10, entries: [], upTo: 10 });
        await applyOps(s.kv, 11, [set('c')]);
        await reopen();
        const h = await s.kv.readHistory(11, 100);
        expect(h.floor).to.equal(10);
        expect(h.entries).to.deep.equal([{ index: 11, effects: [{ type: 'put', key: 'c', value: 'v', prevIndex: null }] }]);
      });
    });

    it('watch history: a persist without history (an offline restore) writes no record, drops every one and sets the floor to its applied index', async () => {
      await applyOps(s.kv, 1, [{ op: 'set', key: 'a', value: '1' }]);
      await s.kv.persist([{ index: 7, effects: [{ type: 'put', key: 'r', value: 'x', prevIndex: null }] }], 0, false);
      expect(await s.kv.readHistory(1, 100)).to.deep.equal({ floor: 0, appliedIndex: 0, entries: [], upTo: 0 });
      await s.kv.persist([{ index: 9, effects: [{ type: 'put', key: 's', value: 'y', prevIndex: null }] }], 50, false);
      await reopen();
      expect(await s.kv.readHistory(1, 100)).to.deep.equal({ floor: 50, appliedIndex: 50, entries: [], upTo: 50 });
      expect(await s.kv.get('s')).to.deep.equal({ value: 'y', index: 9 });
      await applyOps(s.kv, 51, [{ op: 'set', key: 'a', value: '2' }]);
      expect((await s.kv.readHistory(1, 100)).entries.map((e) => e.index)).to.deep.equal([51]);
    });

    describe('listRange', () => {
      const keys = ['a', 'b/1', 'b/2', 'b/3', 'b0', 'c', '\uFF5E', '\u{1F600}', 'b/\u{1F600}', 'b/\uFF5E'];
      const q = (over: Partial<RangeQuery>): RangeQuery => ({ start: '', end: null, prefix: null, after: null, limit: 100, keysOnly: false, count: false, ...over });
      beforeEach(async () => {
        await applyOps(s.kv, 5, keys.map((key) => ({ op: 'set', key, value: `v-${key}` })));
        await applyOps(s.kv, 6, [{ op: 'set', key: 'b/2', value: 'new' }]);
      });

      it('lists every key in UTF-8 byte order with values and indexes, at the applied index', async () => {
        const page = await s.kv.listRange(q({}));
        expect(page.index).to.equal(6);
        expect(page.items.map((i) => i.key)).to.deep.equal([...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
        expect(page.items.find((i) => i.key === 'b/2')).to.deep.equal({ key: 'b/2', value: 'new', index: 6 });
        expect(page.more).to.equal(false);
      });

      it('a prefix holds exactly the keys that start with it, paged with after, counted whole', async () => {
        const p1 = await s.kv.listRange(q({ start: 'b/', prefix: 'b/', limit: 2, count: true }));
        expect(p1.items.map((i) => i.key)).to.deep.equal(['b/1', 'b/2']);
        expect(p1.more).to.equal(true);
        expect(p1.count).to.equal(5);
        const p2 = await s.kv.listRange(q({ start: 'b/', prefix: 'b/', limit: 2, after: 'b/2', keysOnly: true }));
        expect(p2.items).to.deep.equal([{ key: 'b/3', index: 5 }, { key: 'b/\uFF5E', index: 5 }]);
        expect(p2.more).to.equal(true);
        const p3 = await s.kv.listRange(q({ start: 'b/', prefix: 'b/', limit: 2, after: 'b/\uFF5E' }));
        expect(p3.items.map((i) => i.key)).to.deep.equal(['b/\u{1F600}']);
        expect(p3.more).to.equal(false);
        expect(p3.count).to.equal(undefined);
      });

      it('a half-open start/end range; an empty range; a limit that ends exactly at the last key', async () => {
        const r = await s.kv.listRange(q({ start: 'b/2', end: 'c', count: true }));
        expect(r.items.map((i) => i.key)).to.deep.equal(['b/2', 'b/3', 'b/\uFF5E', 'b/\u{1F600}', 'b0']);
        expect(r.count).to.equal(5);
        const none = await s.kv.listRange(q({ start: 'x/', prefix: 'x/', count: true }));
        expect(none).to.deep.equal({ index: 6, items: [], more: false, count: 0 });
        const exact = await s.kv.listRange(q({ start: 'c', end: 'd', limit: 1 }));
        expect(exact.items.map((i) => i.key)).to.deep.equal(['c']);
        expect(exact.more).to.equal(false);
      });

      it('sees deletes and new keys after it was listed once (no stale order)', async () => {
        await s.kv.listRange(q({}));
        await applyOps(s.kv, 7, [{ op: 'delete', key: 'b/1' }, { op: 'set', key: 'b/0', value: 'z' }]);
        const page = await s.kv.listRange(q({ start: 'b/', prefix: 'b/', limit: 1 }));
        expect(page.items).to.deep.equal([{ key: 'b/0', value: 'z', index: 7 }]);
        expect(page.index).to.equal(7);
      });

      describe('at the first page\'s index I0 (atIndex): later pages undo the changes after I0 from the history', () => {
        const b = (over: Partial<RangeQuery>): RangeQuery => q({ start: 'b/', prefix: 'b/', ...over });
        const set = (key: string, value: string): KvOp => ({ op: 'set', key, value });

        it('keys added, changed and deleted after I0 do not show; keys deleted after I0 show with their I0 value; count is at I0', async () => {
          const p1 = await s.kv.listRange(b({ limit: 2, count: true }));
          expect(p1.items.map((i) => i.key)).to.deep.equal(['b/1', 'b/2']);
          expect(p1.count).to.equal(5);
          const i0 = p1.index;
          expect(i0).to.equal(6);
          // After I0: a new key on the next page, a changed one (twice in one entry), a deleted one,
          // one deleted then created again, one created then deleted, and changes outside the prefix.
          await applyOps(s.kv, 7, [set('b/25', 'new'), set('b/3', 'x1'), { op: 'delete', key: 'b/\uFF5E' }, set('c', 'other')]);
          await applyOps(s.kv, 8, [set('b/3', 'x2'), set('b/3', 'x3'), { op: 'delete', key: 'b/\u{1F600}' }, set('b/4', 'gone-again')]);
          await applyOps(s.kv, 9, [set('b/\u{1F600}', 'back'), { op: 'delete', key: 'b/4' }, { op: 'delete', key: 'b/1' }]);
          const p2 = await s.kv.listRange(b({ limit: 2, after: 'b/2', atIndex: i0, count: true }));
          expect(p2).to.deep.equal({
            index: 6,
            items: [
              { key: 'b/3', value: 'v-b/3', index: 5 },
              { key: 'b/\uFF5E', value: 'v-b/\uFF5E', index: 5 },
            ],
            more: true,
            count: 5,
          });
          const p3 = await s.kv.listRange(b({ limit: 2, after: 'b/\uFF5E', atIndex: i0, keysOnly: true }));
          expect(p3).to.deep.equal({ index: 6, items: [{ key: 'b/\u{1F600}', index: 5 }], more: false });
          // A key absent at I0 is skipped, even where it would have filled the page.
          const p2b = await s.kv.listRange(b({ limit: 1, after: 'b/2', atIndex: i0 }));
          expect(p2b.items).to.deep.equal([{ key: 'b/3', value: 'v-b/3', index: 5 }]);
          expect(p2b.more).to.equal(true);
          // The whole range at I0 equals the first listing at I0; the current state differs.
          const all = await s.kv.listRange(q({ atIndex: i0, count: true }));
          const before = await s.kv.listRange(q({}));
          expect(before.index).to.equal(9);
          expect(all.count).to.equal(keys.length);
          expect(all.items.map((i) => i.key).sort()).to.deep.equal([...keys].sort());
          expect(all.items.find((i) => i.key === 'b/2')).to.deep.equal({ key: 'b/2', value: 'new', index: 6 });
          expect(all.items.find((i) => i.key === 'b/1')).to.deep.equal({ key: 'b/1', value: 'v-b/1', index: 5 });
          await reopen();
          expect(await s.kv.listRange(b({ limit: 2, after: 'b/2', atIndex: i0, count: true }))).to.deep.equal(p2);
        });

        it('a page at the applied index needs no history; above it is "behind"; below the floor is "expired" with the floor and applied index', async () => {
          expect(await s.kv.listRange(b({ limit: 2, after: 'b/2', atIndex: 6 }))).to.deep.equal(await s.kv.listRange(b({ limit: 2, after: 'b/2' })));
          expect((await s.kv.listRange(b({ atIndex: 7 }))).unavailable).to.deep.equal({ reason: 'behind', floor: 0, appliedIndex: 6 });
          // A small history (memory: reopening with other limits starts empty; RocksDB keeps rows 5 and 6).
          limits = { maxEntries: 2, maxBytes: 1 << 20 };
          await reopen();
          const e = (over: Partial<RangeQuery>): RangeQuery => q({ start: 'e/', prefix: 'e/', ...over });
          await applyOps(s.kv, 10, [set('e/1', 'a'), set('e/2', 'a'), set('e/3', 'a')]);
          await applyOps(s.kv, 11, [set('e/2', 'b')]);
          // Records 10 and 11 kept, floor below 10: at I0 = 10 the listing can still be undone.
          expect((await s.kv.listRange(e({ atIndex: 10 }))).items.find((i) => i.key === 'e/2')).to.deep.equal({ key: 'e/2', value: 'a', index: 10 });
          await applyOps(s.kv, 12, [set('e/3', 'c')]);
          await applyOps(s.kv, 13, [set('e/3', 'd')]);
          const expired = await s.kv.listRange(e({ after: 'e/1', atIndex: 10 }));
          expect(expired).to.deep.equal({ index: 10, items: [], more: false, unavailable: { reason: 'expired', floor: 11, appliedIndex: 13 } });
          // At the floor itself every record after it is kept.
          const atFloor = await s.kv.listRange(e({ after: 'e/1', atIndex: 11 }));
          expect(atFloor.items).to.deep.equal([{ key: 'e/2', value: 'b', index: 11 }, { key: 'e/3', value: 'a', index: 10 }]);
        });

        it('a record without the previous value (written before the history kept it) cannot be undone: "expired"', async () => {
          await s.kv.persist([{ index: 7, effects: [{ type: 'put', key: 'b/3', value: 'old-record', prevIndex: 5 }] }], 7);
          expect((await s.kv.listRange(b({ after: 'b/2', atIndex: 6 }))).unavailable).to.deep.equal({ reason: 'expired', floor: 0, appliedIndex: 7 });
          // Outside the listed range it is not needed.
          expect((await s.kv.listRange(q({ start: 'c', prefix: 'c', atIndex: 6 }))).items.map((i) => i.key)).to.deep.equal(['c']);
        });
      });
    });
  });
}
