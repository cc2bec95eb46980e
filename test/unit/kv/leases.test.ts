/** The lease apply rules (docs/leases.md), one rule each: pure functions, then through the state machine. */
import { expect } from 'chai';
import { applyKvCommand, type KvView } from '../../../src/kv/apply.js';
import { decodeCommand, encodeKvCommand, type KvCommand } from '../../../src/kv/commands.js';
import { LeaseOverlay, LeaseTable } from '../../../src/kv/leases.js';
import { decodeSnapshotState } from '../../../src/kv/snapshot.js';
import { KvStateMachine } from '../../../src/kv/state-machine.js';
import type { LeaseState, StoredValue } from '../../../src/kv/types.js';
import { MemoryKvStore } from '../../../src/storage/memory/index.js';

function view(values: Record<string, StoredValue>): KvView {
  return { get: (k) => values[k] };
}

function table(state: Partial<LeaseState>): LeaseTable {
  return LeaseTable.from({ leases: state.leases ?? [], attached: state.attached ?? [] });
}

const L9 = { id: 'l-9', ttlMs: 5000, grantedIndex: 9, remainingMs: 5000 };
const L12 = { id: 'l-12', ttlMs: 8000, grantedIndex: 12, remainingMs: 8000 };

describe('kv: lease apply rules', () => {
  it('the codec round-trips every lease command and a set op with a lease; malformed lease commands are refused', () => {
    const cmds: KvCommand[] = [
      { kind: 'lease-grant', ttlMs: 3000 },
      { kind: 'lease-revoke', id: 'l-4' },
      { kind: 'lease-expire', id: 'l-4', term: 7 },
      { kind: 'lease-checkpoint', remaining: [['l-4', 1200], ['l-9', 0]] },
      { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '1', lease: 'l-4' }, { op: 'delete', key: 'b' }], conditions: [] },
      { kind: 'txn', txn: { compare: [], success: [{ op: 'set', key: 'a', value: '1', lease: 'l-4' }], failure: [] } },
    ];
    for (const c of cmds) expect(decodeCommand(encodeKvCommand(c))).to.deep.equal(c);
    for (const bad of ['{"kind":"lease-grant","ttlMs":0}', '{"kind":"lease-grant","ttlMs":-1}', '{"kind":"lease-revoke","id":"x"}', '{"kind":"lease-expire","id":"l-1"}',
      '{"kind":"lease-checkpoint","remaining":[["l-1"]]}', '{"kind":"lease-nope"}', '{"ops":[{"op":"set","key":"a","value":"1","lease":3}]}', '{"kind":"lease-grant","ttlMs":5,"extra":1}']) {
      expect(() => decodeCommand(bad), bad).to.throw();
    }
  });

  it('lease-grant creates l-<index> with remainingMs = ttlMs, decided from the entry index alone', () => {
    const o = applyKvCommand(42, { kind: 'lease-grant', ttlMs: 3000 }, view({}), { term: 3, leases: table({}) });
    expect(o.lease).to.deep.equal({ op: 'grant', id: 'l-42', ttlMs: 3000 });
    expect(o.leaseEffects).to.deep.equal([{ type: 'lease-put', lease: { id: 'l-42', ttlMs: 3000, grantedIndex: 42, remainingMs: 3000 } }]);
    expect(o.effects).to.deep.equal([]);
  });

  it('a set with a lease attaches the key (the put effect names the lease)', () => {
    const o = applyKvCommand(20, { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '1', lease: 'l-9' }], conditions: [] }, view({}), { term: 3, leases: table({ leases: [L9] }) });
    expect(o.effects).to.deep.equal([{ type: 'put', key: 'a', value: '1', prevIndex: null, lease: 'l-9' }]);
    expect(o.leaseEffects).to.deep.equal([{ type: 'attach', id: 'l-9', key: 'a' }]);
  });

  it('a plain write of an attached key detaches it; a write with another lease moves it; the same lease changes nothing', () => {
    const leases = table({ leases: [L9, L12], attached: [['l-9', 'a']] });
    const v = view({ a: { value: '1', index: 20 } });
    const plain = applyKvCommand(21, { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '2' }], conditions: [] }, v, { term: 3, leases });
    expect(plain.leaseEffects).to.deep.equal([{ type: 'detach', id: 'l-9', key: 'a' }]);
    const moved = applyKvCommand(21, { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '2', lease: 'l-12' }], conditions: [] }, v, { term: 3, leases });
    expect(moved.leaseEffects).to.deep.equal([{ type: 'detach', id: 'l-9', key: 'a' }, { type: 'attach', id: 'l-12', key: 'a' }]);
    const same = applyKvCommand(21, { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '2', lease: 'l-9' }], conditions: [] }, v, { term: 3, leases });
    expect(same.leaseEffects).to.equal(undefined);
  });

  it('a delete of an attached key detaches it; a txn set attaches like a plain set', () => {
    const leases = table({ leases: [L9], attached: [['l-9', 'a']] });
    const v = view({ a: { value: '1', index: 20 } });
    const del = applyKvCommand(21, { kind: 'ops', ops: [{ op: 'delete', key: 'a' }], conditions: [] }, v, { term: 3, leases });
    expect(del.effects).to.deep.equal([{ type: 'delete', key: 'a', prevIndex: 20 }]);
    expect(del.leaseEffects).to.deep.equal([{ type: 'detach', id: 'l-9', key: 'a' }]);
    const txn = applyKvCommand(22, { kind: 'txn', txn: { compare: [{ key: 'b', exists: false }], success: [{ op: 'set', key: 'b', value: 'x', lease: 'l-9' }], failure: [] } }, v, { term: 3, leases });
    expect(txn.txn?.succeeded).to.equal(true);
    expect(txn.leaseEffects).to.deep.equal([{ type: 'attach', id: 'l-9', key: 'b' }]);
  });

  it('an unknown lease fails the whole entry with nothing written (ops and txn)', () => {
    const leases = table({ leases: [L9] });
    const o = applyKvCommand(30, { kind: 'ops', ops: [{ op: 'set', key: 'x', value: '1' }, { op: 'set', key: 'y', value: '1', lease: 'l-8' }], conditions: [] }, view({}), { term: 3, leases });
    expect(o).to.deep.equal({ index: 30, effects: [], results: [], leaseNotFound: 'l-8' });
    const t = applyKvCommand(30, { kind: 'txn', txn: { compare: [], success: [{ op: 'set', key: 'x', value: '1' }, { op: 'set', key: 'y', value: '1', lease: 'l-8' }], failure: [] } }, view({}), { term: 3, leases });
    expect(t).to.deep.equal({ index: 30, effects: [], results: [], leaseNotFound: 'l-8' });
    const r = applyKvCommand(30, { kind: 'lease-revoke', id: 'l-8' }, view({}), { term: 3, leases });
    expect(r).to.deep.equal({ index: 30, effects: [], results: [], leaseNotFound: 'l-8' });
  });

  it('revoke deletes the lease and all its keys in its one entry, with reason lease-revoked', () => {
    const leases = table({ leases: [L9, L12], attached: [['l-9', 'b'], ['l-9', 'a'], ['l-12', 'c']] });
    const v = view({ a: { value: '1', index: 20 }, b: { value: '2', index: 21 }, c: { value: '3', index: 22 } });
    const o = applyKvCommand(30, { kind: 'lease-revoke', id: 'l-9' }, v, { term: 3, leases });
    expect(o.effects).to.deep.equal([
      { type: 'delete', key: 'a', prevIndex: 20, reason: 'lease-revoked', lease: 'l-9' },
      { type: 'delete', key: 'b', prevIndex: 21, reason: 'lease-revoked', lease: 'l-9' },
    ]);
    expect(o.leaseEffects).to.deep.equal([{ type: 'detach', id: 'l-9', key: 'a' }, { type: 'detach', id: 'l-9', key: 'b' }, { type: 'lease-delete', id: 'l-9' }]);
    expect(o.lease).to.deep.equal({ op: 'revoke', id: 'l-9', deleted: ['a', 'b'] });
  });

  it('expire in the entry\'s own term deletes the lease and its keys with reason lease-expired', () => {
    const leases = table({ leases: [L9], attached: [['l-9', 'a']] });
    const o = applyKvCommand(30, { kind: 'lease-expire', id: 'l-9', term: 4 }, view({ a: { value: '1', index: 20 } }), { term: 4, leases });
    expect(o.effects).to.deep.equal([{ type: 'delete', key: 'a', prevIndex: 20, reason: 'lease-expired', lease: 'l-9' }]);
    expect(o.lease).to.deep.equal({ op: 'expire', id: 'l-9', isApplied: true, deleted: ['a'] });
  });

  it('expire fenced by term: proposed in another term than its entry\'s, it is a no-op (a deposed leader cannot expire)', () => {
    const leases = table({ leases: [L9], attached: [['l-9', 'a']] });
    const o = applyKvCommand(30, { kind: 'lease-expire', id: 'l-9', term: 3 }, view({ a: { value: '1', index: 20 } }), { term: 4, leases });
    expect(o).to.deep.equal({ index: 30, effects: [], results: [], lease: { op: 'expire', id: 'l-9', isApplied: false, deleted: [] } });
    // Unknown lease: also a no-op, never an error (a retried expiry after the first one applied).
    const again = applyKvCommand(31, { kind: 'lease-expire', id: 'l-7', term: 4 }, view({}), { term: 4, leases });
    expect(again.effects).to.deep.equal([]);
    expect(again.leaseEffects).to.equal(undefined);
  });

  it('checkpoint records the remaining time of known leases (capped at the TTL), skipping unknown ones', () => {
    const leases = table({ leases: [L9, L12] });
    const o = applyKvCommand(30, { kind: 'lease-checkpoint', remaining: [['l-9', 1200], ['l-12', 99_999], ['l-3', 5]] }, view({}), { term: 4, leases });
    expect(o.leaseEffects).to.deep.equal([
      { type: 'lease-put', lease: { ...L9, remainingMs: 1200 } },
      { type: 'lease-put', lease: { ...L12, remainingMs: 8000 } },
    ]);
    expect(o.effects).to.deep.equal([]);
  });

  it('the overlay sees the batch\'s earlier effects without changing the table', () => {
    const t = table({ leases: [L9], attached: [['l-9', 'a']] });
    const o = new LeaseOverlay(t);
    o.fold([{ type: 'attach', id: 'l-9', key: 'b' }, { type: 'detach', id: 'l-9', key: 'a' }]);
    expect(o.keysOf('l-9')).to.deep.equal(['b']);
    expect(o.leaseOfKey('a')).to.equal(undefined);
    expect(t.keysOf('l-9')).to.deep.equal(['a']);
    o.fold([{ type: 'lease-delete', id: 'l-9' }]);
    expect(o.lease('l-9')).to.equal(undefined);
    expect(t.lease('l-9')).to.deep.equal(L9);
  });
});

describe('kv: leases through the state machine', () => {
  it('grant, attach in a batch, then revoke: keys and lease go in one entry; the term reaches apply from entries', async () => {
    const sm = new KvStateMachine(new MemoryKvStore());
    const enc = (c: KvCommand) => encodeKvCommand(c);
    const out = await sm.applyEntries([
      { index: 1, term: 2, type: 'normal', data: enc({ kind: 'lease-grant', ttlMs: 5000 }) },
      { index: 2, term: 2, type: 'normal', data: enc({ kind: 'ops', ops: [{ op: 'set', key: 'a', value: '1', lease: 'l-1' }, { op: 'set', key: 'b', value: '2', lease: 'l-1' }], conditions: [] }) },
      { index: 3, term: 2, type: 'normal', data: enc({ kind: 'ops', ops: [{ op: 'set', key: 'b', value: '3' }], conditions: [] }) },
    ]);
    expect(out.get(1)?.lease).to.deep.equal({ op: 'grant', id: 'l-1', ttlMs: 5000 });
    expect((await sm.readLeases()).keysOf('l-1')).to.deep.equal(['a']);
    // An expiry proposed in term 2 but committed in term 3: fenced.
    const fenced = await sm.applyEntries([{ index: 4, term: 3, type: 'normal', data: enc({ kind: 'lease-expire', id: 'l-1', term: 2 }) }]);
    expect(fenced.get(4)?.lease).to.deep.equal({ op: 'expire', id: 'l-1', isApplied: false, deleted: [] });
    expect(await sm.get('a')).to.deep.equal({ value: '1', index: 2 });
    const expired = await sm.applyEntries([{ index: 5, term: 3, type: 'normal', data: enc({ kind: 'lease-expire', id: 'l-1', term: 3 }) }]);
    expect(expired.get(5)?.lease).to.deep.equal({ op: 'expire', id: 'l-1', isApplied: true, deleted: ['a'] });
    expect(await sm.get('a')).to.equal(undefined);
    expect(await sm.get('b')).to.deep.equal({ value: '3', index: 3 });
    expect((await sm.readLeases()).size).to.equal(0);
    const h = await sm.readHistory(5, 10);
    expect(h.entries).to.deep.equal([{ index: 5, effects: [{ type: 'delete', key: 'a', prevIndex: 2, reason: 'lease-expired', lease: 'l-1', prevValue: '1' }] }]);
  });

  it('a lease granted and used in the same batch, then revoked in it: each entry sees the ones before it', async () => {
    const sm = new KvStateMachine(new MemoryKvStore());
    const out = await sm.applyCommands([
      { index: 1, term: 1, command: { kind: 'lease-grant', ttlMs: 5000 } },
      { index: 2, term: 1, command: { kind: 'ops', ops: [{ op: 'set', key: 'k', value: 'v', lease: 'l-1' }], conditions: [] } },
      { index: 3, term: 1, command: { kind: 'lease-revoke', id: 'l-1' } },
      { index: 4, term: 1, command: { kind: 'ops', ops: [{ op: 'set', key: 'z', value: 'v', lease: 'l-1' }], conditions: [] } },
    ], 4);
    expect(out[2].lease).to.deep.equal({ op: 'revoke', id: 'l-1', deleted: ['k'] });
    expect(out[3].leaseNotFound).to.equal('l-1');
    expect(await sm.get('k')).to.equal(undefined);
    expect(await sm.get('z')).to.equal(undefined);
  });

  it('snapshots carry the lease table (version 2) and restore it; a state without leases keeps the old format', async () => {
    const sm = new KvStateMachine(new MemoryKvStore());
    await sm.applyCommands([
      { index: 1, term: 1, command: { kind: 'lease-grant', ttlMs: 5000 } },
      { index: 2, term: 1, command: { kind: 'ops', ops: [{ op: 'set', key: 'a', value: '1', lease: 'l-1' }, { op: 'set', key: 'b', value: '2' }], conditions: [] } },
      { index: 3, term: 1, command: { kind: 'lease-checkpoint', remaining: [['l-1', 1500]] } },
    ], 3);
    const data = await sm.exportSnapshot();
    expect(data).to.equal('{"v":2,"leases":[{"id":"l-1","ttlMs":5000,"grantedIndex":1,"remainingMs":1500,"keys":["a"]}],"rows":[["a","1",2],["b","2",2]]}');
    const to = new KvStateMachine(new MemoryKvStore());
    await to.restoreSnapshot(data, 3);
    expect((await to.readLeases()).export()).to.deep.equal(decodeSnapshotState(data).leases);
    await to.applyCommands([{ index: 4, term: 1, command: { kind: 'lease-revoke', id: 'l-1' } }], 4);
    expect(await to.get('a')).to.equal(undefined);
    expect(await to.exportSnapshot()).to.equal('[["b","2",2]]');
    expect(() => decodeSnapshotState('{"v":2,"rows":[],"leases":[{"id":"x"}]}')).to.throw('kv snapshot');
  });
});
