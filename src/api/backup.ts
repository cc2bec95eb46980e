/**
 * GET /backup (admin): streams the whole key space as a `raftkv-backup/1` NDJSON file (src/kv/backup.ts,
 * docs/backup.md) from ONE point-in-time view of the local store, taken after a ReadIndex barrier
 * (linearizable, the default) or at once (`?consistency=stale`). Rows are pulled from the view in
 * batches only as fast as the client reads (stream backpressure), so memory stays flat in the number
 * of keys; gzip when the client accepts it. A download cut off (client gone, node failing) ends
 * without the last line, which is how a reader knows. Registered by app.ts.
 */
import { Readable, pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import type Koa from 'koa';
import type { RaftNode } from '../raft/node/node.js';
import { BackupEncoder } from '../kv/backup.js';
import { BadRequestError } from '../errors.js';

/** Rows read from the view per step (one iterator round trip in RocksDB). */
const ROWS_PER_STEP = 1000;

/** The lines of a backup of `node`'s local state, opened at once (call the barrier before). */
async function* backupLines(node: RaftNode, nodeId: string, view: Awaited<ReturnType<RaftNode['openKvView']>>): AsyncGenerator<string> {
  const enc = new BackupEncoder();
  const status = node.status();
  try {
    yield enc.header({
      index: view.appliedIndex,
      term: status.term,
      lastIndex: Math.max(status.lastIndex, view.appliedIndex),
      members: node.members(),
      clusterId: node.identity().clusterId,
      nodeId,
      createdAt: new Date().toISOString(),
    });
    for (;;) {
      const rows = await view.nextRows(ROWS_PER_STEP);
      if (rows.length === 0) break;
      let chunk = '';
      for (const [key, v] of rows) chunk += enc.row(key, v);
      yield chunk;
    }
    // The lease table of the same view, after the keys (src/kv/backup.ts).
    const keys = new Map<string, string[]>();
    for (const [id, key] of view.leases.attached) keys.set(id, [...(keys.get(id) ?? []), key]);
    for (const l of view.leases.leases) yield enc.lease(l, keys.get(l.id) ?? []);
    yield enc.trailer();
  } finally {
    await view.close();
  }
}

/** The handler of GET /backup. */
export function backupRoute(node: RaftNode, nodeId: string): Koa.Middleware {
  return async (ctx) => {
    const consistency = ctx.query.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'stale') throw new BadRequestError('consistency must be "linearizable" or "stale"');
    if (consistency === 'linearizable') await node.linearizableBarrier();
    const view = await node.openKvView();
    const source = Readable.from(backupLines(node, nodeId, view), { objectMode: false });
    // Also when the stream is destroyed before the generator ever ran (its finally would not run).
    source.once('close', () => void view.close().catch(() => undefined));
    ctx.set('X-Raft-Index', String(view.appliedIndex));
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Disposition', `attachment; filename="raftkv-backup-${view.appliedIndex}.ndjson"`);
    ctx.type = 'application/x-ndjson';
    if (ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
      ctx.set('Content-Encoding', 'gzip');
      // pipeline destroys the source (closing the view) when the gzip stream is destroyed: Koa
      // destroys the body when the response closes early.
      ctx.body = pipeline(source, createGzip(), () => undefined);
    } else {
      ctx.body = source;
    }
  };
}
