/**
 * NEGATIVE CONTROL for conditional writes and transactions; never part of raftkv. The fault harness
 * loads it into the node processes of `propose-control` only (NODE_OPTIONS=--import, set by
 * scenario.ts): the leader decides every condition when it PROPOSES, against its own applied state,
 * and replicates only the outcome (plain writes, no condition), instead of the state machine
 * deciding at apply on every replica. Two clients racing a compare-and-set on the same index then
 * both win while the first write is still replicating; the linearizability checker must flag it.
 *
 * Where it acts: RaftNode.prototype.writeCommand (src/raft/node/node.ts), the one entry of
 * conditional writes and writing transactions. Plain JavaScript (see ack-before-sync.mjs for why).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const root = join(import.meta.dirname, '../..');
  const load = async (rel) => import(existsSync(join(root, 'dist/src/main.js')) ? join(root, 'dist/src', `${rel}.js`) : join(root, 'src', `${rel}.ts`));
  const { RaftNode } = await load('raft/node/node');
  const { preconditionHolds } = await load('kv/conditions');
  const { evaluateTxn, txnKeys } = await load('kv/txn');
  const proto = RaftNode.prototype;
  if (typeof proto.writeCommand !== 'function' || typeof proto.writeOps !== 'function' || typeof proto.readAtomically !== 'function') {
    throw new Error('decide-at-propose: RaftNode.prototype.writeCommand/writeOps/readAtomically is gone; retarget this control to the new code');
  }
  const writeCommand = proto.writeCommand;
  proto.writeCommand = async function (cmd) {
    // Lease commands (grant, keepalive checkpoint, revoke, expire) have no condition: as they are.
    if (cmd.kind !== 'txn' && cmd.kind !== 'ops') return writeCommand.call(this, cmd);
    if (cmd.kind === 'txn') {
      const { read, written } = txnKeys(cmd.txn);
      const { index, values } = await this.readAtomically([...read, ...written]);
      // Decided at -1 (the entry's index is not known yet), then stamped with the index it got.
      const decision = evaluateTxn(cmd.txn, (k) => values.get(k), -1);
      if (decision.writes.length === 0) return { index, results: [], txn: { succeeded: decision.succeeded, results: decision.results } };
      const r = await this.writeOps(decision.writes);
      const results = decision.results.map((x) => (x.index === -1 ? { ...x, index: r.index } : x));
      return { index: r.index, results: r.results, txn: { succeeded: decision.succeeded, results } };
    }
    if (cmd.conditions.length === 0) return this.writeOps(cmd.ops);
    const { index, values } = await this.readAtomically(cmd.conditions.map((c) => c.key));
    const failed = cmd.conditions.filter((c) => !preconditionHolds(c.pre, values.get(c.key))).map((c) => ({ key: c.key, current: values.get(c.key) ?? null }));
    if (failed.length > 0) return { index, results: [], failed };
    return this.writeOps(cmd.ops);
  };
  process.stderr.write('NEGATIVE CONTROL: conditions are decided by the leader at propose time (test/faults/decide-at-propose.mjs)\n');
}
