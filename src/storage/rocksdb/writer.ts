/**
 * The writer thread, where raftkv writes to RocksDB. The binding's batch write runs synchronously on
 * its calling thread, WAL fsync included, and RocksDB makes a writer that arrives during another
 * thread's synced write wait for that fsync; so every write, synced or not, is done here, one after
 * another in the order RocksDatabase posted them. The one exception is RocksDatabase's: an unsynced
 * write issued while nothing is pending here is written on the main thread (nothing to overtake,
 * no fsync to wait behind).
 * Started by RocksDatabase.open while the main thread opens the database (starting a thread and
 * loading the binding take as long as the open), then told the open database's handle; it never
 * closes that database (the main thread does, after this thread has exited).
 */
import { parentPort } from 'node:worker_threads';
import { BatchWriter, loadRocksLevel, type BatchOp, type RawDb } from './binding.js';

/** A message from the main thread. Invariant: batches are written in the order they were posted. */
export type WriterRequest = { type: 'open'; handle: bigint } | { type: 'batch'; id: number; ops: BatchOp[]; sync: boolean } | { type: 'close' };

/** A message to the main thread: `done` settles batch `id` (rejected when `error` is set). */
export type WriterReply = { type: 'ready' } | { type: 'done'; id: number; error?: string } | { type: 'closed' };

const port = parentPort;
if (port === null) throw new Error('rocksdb writer: must run in a worker thread');
const RocksLevel = loadRocksLevel();
/** The main thread's database, opened a second time over its handle ('open' comes first). */
let db: RawDb | null = null;
/** Writes through one reused native batch (see BatchWriter), once the database is open. */
let batches: BatchWriter | null = null;

/**
 * The first write error. Invariant: once set, no later batch is written, so a later synced write
 * never makes durable a state that is missing an earlier, failed batch.
 */
let failure: string | null = null;

async function write(req: { id: number; ops: BatchOp[]; sync: boolean }): Promise<WriterReply> {
  if (failure !== null) return { type: 'done', id: req.id, error: `an earlier write failed: ${failure}` };
  try {
    if (batches === null) throw new Error('not opened');
    batches.write(req.ops, req.sync);
    return { type: 'done', id: req.id };
  } catch (err) {
    failure = err instanceof Error ? err.message : String(err);
    return { type: 'done', id: req.id, error: failure };
  }
}

/** Requests are handled strictly one after another, in the order they arrived. */
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: WriterRequest) => {
  queue = queue.then(async () => {
    if (req.type === 'open') {
      db = new RocksLevel(req.handle);
      await db.open();
      batches = new BatchWriter(db);
      port.postMessage({ type: 'ready' } satisfies WriterReply);
    } else if (req.type === 'batch') {
      port.postMessage(await write(req));
    } else {
      port.postMessage({ type: 'closed' } satisfies WriterReply);
      port.close();
    }
  });
});
