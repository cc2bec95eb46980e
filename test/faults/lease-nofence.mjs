/**
 * NEGATIVE CONTROL for the lease check; never part of raftkv. The fault harness loads it into the node
 * processes of `lease-control` only (NODE_OPTIONS=--import, set by scenario.ts). It removes the term
 * fence of lease expiry, and gives a deposed leader's stale expiries a way into the log so that the
 * fence matters:
 *
 *  1. apply ignores the term of `lease-expire` (KvStateMachine.prototype.applyCommands stamps each
 *     expiry with its own term, so `cmd.term === entry term` always holds) — the fence removed;
 *  2. a leader that loses office keeps its lease clock instead of clearing it, and when a lease's
 *     deadline passes on that stale clock it forwards `lease-expire {id, term: its old term}` to
 *     whoever leads now (a side port, 7901, on every node: proposals forwarded from followers, as
 *     etcd's raft does by default). The new leader appends it in its own, later term.
 *
 * With (2) alone the real apply turns every such entry into a no-op (the fence). With (1) as well, an
 * old leader paused past a lease's TTL deletes keys the new leader keeps alive, which the lease check
 * must flag (lease_ok=false). RAFTKV_LEASE_CONTROL_KEEP_FENCE=1 leaves (1) out (to show the fence
 * is what the check sees). Plain JavaScript (see ack-before-sync.mjs for why).
 */
import { existsSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const root = join(import.meta.dirname, '../..');
  const load = async (rel) => import(existsSync(join(root, 'dist/src/main.js')) ? join(root, 'dist/src', `${rel}.js`) : join(root, 'src', `${rel}.ts`));
  const { RaftNode } = await load('raft/node/node');
  const { LeaseDeadlines } = await load('kv/lease-deadlines');
  const { KvStateMachine } = await load('kv/state-machine');
  const keepFence = process.env.RAFTKV_LEASE_CONTROL_KEEP_FENCE === '1';
  const proto = RaftNode.prototype;
  if (typeof proto.tickLeases !== 'function' || typeof proto.writeCommand !== 'function' || typeof KvStateMachine.prototype.applyCommands !== 'function') {
    throw new Error('lease-nofence: RaftNode.prototype.tickLeases/writeCommand or KvStateMachine.prototype.applyCommands is gone; retarget this control');
  }

  if (!keepFence) {
    const applyCommands = KvStateMachine.prototype.applyCommands;
    KvStateMachine.prototype.applyCommands = function (commands, appliedIndex) {
      const unfenced = commands.map((c) => (c.command?.kind === 'lease-expire' ? { ...c, term: c.command.term } : c));
      return applyCommands.call(this, unfenced, appliedIndex);
    };
  }

  const PORT = 7901;
  let self = null;
  const host = process.env.HOST ?? '127.0.0.1';
  // The new leader's side of the forwarding: append what a deposed leader sends, as it is.
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const done = (status, text) => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(text);
      };
      if (self === null) return done(503, 'no node yet');
      let cmd;
      try {
        cmd = JSON.parse(body);
      } catch {
        return done(400, 'bad json');
      }
      self.writeCommand({ kind: 'lease-expire', id: String(cmd.id), term: Number(cmd.term) }).then(
        (r) => done(200, JSON.stringify({ index: r.index, applied: r.lease?.isApplied ?? null })),
        (err) => done(503, String(err?.message ?? err)),
      );
    });
  });
  server.on('error', (err) => process.stderr.write(`lease-nofence: side port: ${String(err)}\n`));
  server.listen(PORT, host);
  server.unref();

  const forward = (id, term) => {
    const body = JSON.stringify({ id, term });
    // Every other fault-cluster address (127.0.0.11..16); only the leader can append it.
    for (let i = 11; i <= 16; i++) {
      const ip = `127.0.0.${i}`;
      if (ip === host) continue;
      const req = request({ host: ip, port: PORT, method: 'POST', path: '/stale-expire', localAddress: host, timeout: 1000 }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          if (res.statusCode === 200) process.stderr.write(`NEGATIVE CONTROL: stale expiry of ${id} (term ${term}) forwarded to ${ip}: ${text}\n`);
        });
      });
      req.on('error', () => undefined);
      req.on('timeout', () => req.destroy());
      req.end(body);
    }
  };

  const tickLeases = proto.tickLeases;
  proto.tickLeases = function () {
    self = this;
    const isLeader = this.raft.currentLeaderId === this.opts.nodeId;
    if (!isLeader && this.leaseTerm !== 0 && this.staleLeases === undefined) {
      // Stepping down: keep the old clock (the real code clears it) and give the node a fresh one.
      this.staleLeases = { term: this.leaseTerm, clock: this.leaseClock };
      this.leaseClock = new LeaseDeadlines();
    }
    if (isLeader && this.staleLeases !== undefined && this.raft.status().term !== this.staleLeases.term) this.staleLeases = undefined;
    if (!isLeader && this.staleLeases !== undefined) {
      for (const id of this.staleLeases.clock.expired(performance.now())) forward(id, this.staleLeases.term);
    }
    return tickLeases.call(this);
  };
  process.stderr.write(`NEGATIVE CONTROL: deposed leaders forward stale lease expiries${keepFence ? ' (term fence kept)' : ' and apply ignores the term fence'} (test/faults/lease-nofence.mjs)\n`);
}
