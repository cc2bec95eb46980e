/** The state machine's snapshot format: round-trip, the exact wire format, and malformed data. */
import { expect } from 'chai';
import { decodeSnapshot } from '../../../src/kv/snapshot.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import { MemoryKvStore } from '../../../src/storage/memory/index.js';

describe('kv: snapshot', () => {
  it('round-trips the whole key space with values and indices, and restores the applied index', async () => {
    const from = new KvStateMachine(new MemoryKvStore());
    await from.applyCommands([{ index: 3, ops: [{ op: 'set', key: 'b/c', value: 'x"y\n' }, { op: 'set', key: 'a', value: '' }, { op: 'set', key: 'é', value: '💾' }] }], 3);
    await from.applyCommands([{ index: 5, ops: [{ op: 'set', key: 'a', value: '5' }, { op: 'delete', key: 'b/c' }] }], 6);
    const data = await from.exportSnapshot();
    const to = new KvStateMachine(new MemoryKvStore());
    await to.applyCommands([{ index: 1, ops: [{ op: 'set', key: 'stale', value: 's' }] }], 1);
    await to.restoreSnapshot(data, 6);
    expect(await to.get('stale')).to.equal(undefined);
    expect(await to.get('a')).to.deep.equal({ value: '5', index: 5 });
    expect(await to.get('b/c')).to.equal(undefined);
    expect(await to.get('é')).to.deep.equal({ value: '💾', index: 3 });
    expect(await to.count()).to.equal(2);
    expect(await to.appliedIndex()).to.equal(6);
    expect(await to.exportSnapshot()).to.equal(data);
  });

  it('the format is unchanged from earlier builds: a JSON array of [key, value, index] rows in key order', async () => {
    const sm = new KvStateMachine(new MemoryKvStore());
    await sm.applyCommands([{ index: 2, ops: [{ op: 'set', key: 'b', value: '2' }, { op: 'set', key: 'a', value: '1' }] }], 2);
    expect(await sm.exportSnapshot()).to.equal('[["a","1",2],["b","2",2]]');
    // What an earlier build sent restores as it did.
    await sm.restoreSnapshot('[["k","v",7]]', 9);
    expect(await sm.get('k')).to.deep.equal({ value: 'v', index: 7 });
    expect(await new KvStateMachine(new MemoryKvStore()).exportSnapshot()).to.equal('[]');
    expect(decodeSnapshot('')).to.deep.equal([]);
  });

  it('malformed snapshot data is refused with a clear error', () => {
    expect(() => decodeSnapshot('{')).to.throw();
    expect(() => decodeSnapshot('{}')).to.throw('kv snapshot: expected an array');
    for (const bad of ['[1]', '[["a","1"]]', '[["a",1,1]]', '[[1,"1",1]]', '[["a","1","1"]]', '[["a","1",1,2]]']) {
      expect(() => decodeSnapshot(bad), bad).to.throw('kv snapshot: malformed row');
    }
  });
});
