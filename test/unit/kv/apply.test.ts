/** The key-value state machine's apply rules, one rule each, through the pure function and through KvStateMachine. */
import { expect } from 'chai';
import { applyCommand, type KvView } from '../../../src/kv/apply.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import { encodeCommand } from '../../../src/kv/commands.js';
import { MemoryKvStore } from '../../../src/storage/memory/index.js';
import type { EffectBatch, StoredValue } from '../../../src/kv/types.js';
import type { Entry } from '../../../src/raft/core/types.js';

/** A view over fixed values. */
function view(values: Record<string, StoredValue>): KvView {
  return { get: (key) => values[key] };
}

/** A memory store that records every persist call (what the backends are asked to write). */
class RecordingStore extends MemoryKvStore {
  readonly persisted: Array<{ batches: EffectBatch[]; appliedIndex: number }> = [];
  override async persist(batches: EffectBatch[], appliedIndex: number): Promise<void> {
    this.persisted.push({ batches: JSON.parse(JSON.stringify(batches)) as EffectBatch[], appliedIndex });
    await super.persist(batches, appliedIndex);
  }
}

describe('kv: apply rules', () => {
  it('set of a new key: a put effect with prevIndex null, the result carries the entry index', () => {
    const o = applyCommand(7, [{ op: 'set', key: 'a', value: '1' }], view({}));
    expect(o).to.deep.equal({
      index: 7,
      effects: [{ type: 'put', key: 'a', value: '1', prevIndex: null }],
      results: [{ op: 'set', key: 'a', index: 7, prevIndex: null }],
    });
  });

  it('set of an existing key: a put effect with the replaced value\'s index', () => {
    const o = applyCommand(9, [{ op: 'set', key: 'a', value: '2' }], view({ a: { value: '1', index: 4 } }));
    expect(o.effects).to.deep.equal([{ type: 'put', key: 'a', value: '2', prevIndex: 4 }]);
    expect(o.results).to.deep.equal([{ op: 'set', key: 'a', index: 9, prevIndex: 4 }]);
  });

  it('delete of an existing key: a delete effect with its index, deleted: true', () => {
    const o = applyCommand(9, [{ op: 'delete', key: 'a' }], view({ a: { value: '1', index: 4 } }));
    expect(o.effects).to.deep.equal([{ type: 'delete', key: 'a', prevIndex: 4 }]);
    expect(o.results).to.deep.equal([{ op: 'delete', key: 'a', deleted: true, prevIndex: 4 }]);
  });

  it('delete of an absent key: no effect at all, deleted: false', () => {
    const o = applyCommand(9, [{ op: 'delete', key: 'a' }], view({}));
    expect(o.effects).to.deep.equal([]);
    expect(o.results).to.deep.equal([{ op: 'delete', key: 'a', deleted: false, prevIndex: null }]);
  });

  it('operations of one command see the ones before them, in order', () => {
    const o = applyCommand(
      5,
      [
        { op: 'set', key: 'x', value: '1' },
        { op: 'delete', key: 'x' },
        { op: 'delete', key: 'x' },
        { op: 'set', key: 'y', value: 'a' },
        { op: 'set', key: 'y', value: 'b' },
      ],
      view({ y: { value: 'old', index: 2 } }),
    );
    expect(o.effects).to.deep.equal([
      { type: 'put', key: 'x', value: '1', prevIndex: null },
      { type: 'delete', key: 'x', prevIndex: 5 },
      { type: 'put', key: 'y', value: 'a', prevIndex: 2 },
      { type: 'put', key: 'y', value: 'b', prevIndex: 5 },
    ]);
    expect(o.results.map((r) => (r.op === 'delete' ? r.deleted : r.prevIndex))).to.deep.equal([null, true, false, 2, 5]);
  });

  it('apply never modifies the view it is decided against', () => {
    const values = { a: { value: '1', index: 1 } };
    applyCommand(2, [{ op: 'delete', key: 'a' }, { op: 'set', key: 'b', value: '2' }], view(values));
    expect(values).to.deep.equal({ a: { value: '1', index: 1 } });
  });

  it('the same command against the same state decides the same on every replica', () => {
    const ops = [{ op: 'set', key: 'a', value: '1' }, { op: 'delete', key: 'b' }, { op: 'delete', key: 'c' }] as const;
    const state = { b: { value: 'x', index: 3 } };
    expect(applyCommand(8, [...ops], view(state))).to.deep.equal(applyCommand(8, [...ops], view({ ...state })));
  });
});

describe('kv: KvStateMachine', () => {
  it('a multi-key command lands atomically: all its effects and the applied index in one persist call', async () => {
    const store = new RecordingStore();
    const sm = new KvStateMachine(store);
    await sm.applyCommands([{ index: 1, ops: [{ op: 'set', key: 'a', value: '1' }, { op: 'set', key: 'b', value: '2' }, { op: 'delete', key: 'c' }] }], 1);
    expect(store.persisted).to.deep.equal([
      { batches: [{ index: 1, effects: [{ type: 'put', key: 'a', value: '1', prevIndex: null }, { type: 'put', key: 'b', value: '2', prevIndex: null }] }], appliedIndex: 1 },
    ]);
  });

  it('several entries in one batch: one persist call, each entry decided against the state the earlier ones left', async () => {
    const store = new RecordingStore();
    const sm = new KvStateMachine(store);
    await sm.applyCommands([{ index: 1, ops: [{ op: 'set', key: 'a', value: '1' }] }], 1);
    const outcomes = await sm.applyCommands(
      [
        { index: 2, ops: [{ op: 'set', key: 'a', value: '2' }] },
        { index: 3, ops: [{ op: 'delete', key: 'a' }] },
        { index: 4, ops: [{ op: 'delete', key: 'a' }, { op: 'set', key: 'b', value: 'x' }] },
      ],
      5,
    );
    expect(outcomes.map((o) => o.effects)).to.deep.equal([
      [{ type: 'put', key: 'a', value: '2', prevIndex: 1 }],
      [{ type: 'delete', key: 'a', prevIndex: 2 }],
      [{ type: 'put', key: 'b', value: 'x', prevIndex: null }],
    ]);
    expect(outcomes[2].results[0]).to.deep.equal({ op: 'delete', key: 'a', deleted: false, prevIndex: null });
    expect(store.persisted).to.have.length(2);
    expect(store.persisted[1].appliedIndex).to.equal(5);
    expect(store.persisted[1].batches.map((b) => b.index)).to.deep.equal([2, 3, 4]);
    expect(await sm.get('a')).to.equal(undefined);
    expect(await sm.get('b')).to.deep.equal({ value: 'x', index: 4 });
    expect(await sm.appliedIndex()).to.equal(5);
  });

  it('when persisting fails, the outcome is never handed out (the driver stops the node)', async () => {
    const store = new MemoryKvStore();
    store.persist = () => Promise.reject(new Error('disk on fire'));
    const sm = new KvStateMachine(store);
    let error: unknown = null;
    await sm.applyCommands([{ index: 1, ops: [{ op: 'set', key: 'a', value: '1' }] }], 1).catch((err: unknown) => (error = err));
    expect((error as Error).message).to.equal('disk on fire');
  });

  it('applyEntries: normal entries are decoded and applied, noop and config entries change nothing but move the applied index', async () => {
    const store = new RecordingStore();
    const sm = new KvStateMachine(store);
    const entries: Entry[] = [
      { index: 1, term: 1, type: 'noop' },
      { index: 2, term: 1, type: 'normal', data: encodeCommand([{ op: 'set', key: 'a', value: '1' }]) },
      { index: 3, term: 1, type: 'config', change: { op: 'remove', id: 'n2' }, config: { members: [] } },
    ];
    const outcomes = await sm.applyEntries(entries);
    expect([...outcomes.keys()]).to.deep.equal([2]);
    expect(outcomes.get(2)?.effects).to.deep.equal([{ type: 'put', key: 'a', value: '1', prevIndex: null }]);
    expect(store.persisted.map((p) => p.appliedIndex)).to.deep.equal([3]);
    expect(await sm.appliedIndex()).to.equal(3);
  });

  it('applyEntries: an entry whose command cannot be decoded is applied as a no-op and reported, never fatal', async () => {
    const bad: Array<[number, Error]> = [];
    const sm = new KvStateMachine(new MemoryKvStore(), { onBadEntry: (index, err) => bad.push([index, err]) });
    const outcomes = await sm.applyEntries([
      { index: 1, term: 1, type: 'normal', data: 'not json' },
      { index: 2, term: 1, type: 'normal', data: JSON.stringify({ ops: [{ op: 'rename', key: 'a' }] }) },
      { index: 3, term: 1, type: 'normal', data: encodeCommand([{ op: 'set', key: 'ok', value: 'v' }]) },
    ]);
    expect(bad.map(([i]) => i)).to.deep.equal([1, 2]);
    expect(outcomes.get(1)).to.deep.equal({ index: 1, effects: [], results: [] });
    expect(await sm.get('ok')).to.deep.equal({ value: 'v', index: 3 });
    expect(await sm.count()).to.equal(1);
    expect(await sm.appliedIndex()).to.equal(3);
  });
});
