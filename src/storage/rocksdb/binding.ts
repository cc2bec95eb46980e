/**
 * The RocksDB binding (`@nxtedition/rocksdb`, RocksDB 9.7, prebuilt N-API binary), typed locally with
 * just what raftkv uses: the package ships no type declarations. Loaded by RocksDatabase (main thread)
 * and by the writer thread (writer.ts), each over the same native database.
 */
import { createRequire } from 'node:module';

/** One operation of a RocksDB write batch. */
export type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

/** Options of RawIterator: a key range in order; values left out when `values` is false. */
export interface RawIteratorOptions {
  gte: string;
  lt: string;
  values: boolean;
  keyEncoding: 'utf8';
  valueEncoding: 'utf8';
  /** One nextv stops once it has read more than this many bytes of keys and values (default: no bound). */
  highWaterMarkBytes?: number;
}

/** An iterator of the binding; nextv runs in the libuv thread pool. */
export interface RawIterator {
  /** Up to `size` rows; an empty array once the range is exhausted. */
  nextv(size: number): Promise<Array<[string, string | undefined]>>;
  /** Moves to the first key at or after `target` (synchronous), within the iterator's own view. */
  seek(target: string): void;
  close(): Promise<void>;
}

/** The binding's database object (abstract-level 1.x API of RocksLevel). */
export interface RawDb {
  open(options?: { createIfMissing?: boolean }): Promise<void>;
  close(): Promise<void>;
  /** Runs in the libuv thread pool; undefined where a key is absent. */
  getMany(keys: string[], options: { valueEncoding: 'utf8' }): Promise<Array<string | undefined>>;
  /** The same lookup on the calling thread (the package's `_getManySync`, binding `db_get_many_sync`). */
  _getManySync(keys: string[], options: { valueEncoding: 'utf8' }): Array<string | undefined>;
  /** Runs synchronously on the calling thread (the WAL fsync too, when `sync` is set). */
  batch(ops: BatchOp[], options: { sync: boolean }): Promise<void>;
  iterator(options: RawIteratorOptions): RawIterator;
  /** A RocksDB property, e.g. 'rocksdb.stats' (synchronous). */
  getProperty(property: string): string;
  /** The native database as a number another thread can open a second RocksLevel over. */
  readonly handle: bigint;
  readonly status: string;
}

/** The RocksLevel constructor: a location to open, or the handle of an already open database. */
export type RocksLevelCtor = new (locationOrHandle: string | bigint) => RawDb;

const require = createRequire(import.meta.url);

/** Loads the binding (the native module is loaded once per thread). */
export function loadRocksLevel(): RocksLevelCtor {
  return (require('@nxtedition/rocksdb') as { RocksLevel: RocksLevelCtor }).RocksLevel;
}

/** The native functions behind the package's chained batch (binding.js of the pinned version). */
interface BatchBinding {
  batch_init(): unknown;
  batch_put(batch: unknown, key: Buffer, value: Buffer, options: object): void;
  batch_del(batch: unknown, key: Buffer, options: object): void;
  batch_write(db: unknown, batch: unknown, options: { sync: boolean }): void;
  batch_clear(batch: unknown): void;
}

/**
 * Writes batches through one reused native rocksdb::WriteBatch. The package's own `batch(ops)`
 * allocates a WriteBatch per call (a copy of every key and value) whose memory returns only when
 * V8 finalizes its handle, and those finalizers did not run here: RSS grew by the size of every
 * batch ever written (3,000 batches of 1,000 puts: 723 MB, against 301 MB with one reused batch;
 * it also keeps every such batch in the database's open-resources set). A fresh batch for big
 * writes would leak the same way, so every write uses the one batch; it keeps a buffer as big as the
 * largest batch written, one buffer per node.
 */
export class BatchWriter {
  private readonly binding: BatchBinding;
  private readonly context: unknown;
  private readonly reused: unknown;

  constructor(db: RawDb) {
    this.binding = require('@nxtedition/rocksdb/binding.js') as BatchBinding;
    const symbol = Object.getOwnPropertySymbols(db).find((s) => s.description === 'context');
    this.context = symbol === undefined ? undefined : (db as unknown as Record<symbol, unknown>)[symbol];
    if (typeof this.context !== 'object' || this.context === null) throw new Error('rocksdb: this version of @nxtedition/rocksdb has no native database context where raftkv expects it');
    this.reused = this.binding.batch_init();
  }

  /** Writes `ops` atomically (synchronously, on the calling thread; the WAL fsync too when `sync`). */
  write(ops: readonly BatchOp[], sync: boolean): void {
    for (const op of ops) {
      if (typeof op.key !== 'string' || (op.type === 'put' && typeof op.value !== 'string')) throw new Error(`a ${op.type} of ${String(op.key)} without a string key and value`);
    }
    const batch = this.reused;
    const none = {};
    try {
      for (const op of ops) {
        if (op.type === 'put') this.binding.batch_put(batch, Buffer.from(op.key), Buffer.from(op.value), none);
        else this.binding.batch_del(batch, Buffer.from(op.key), none);
      }
      this.binding.batch_write(this.context, batch, { sync });
    } finally {
      this.binding.batch_clear(batch);
    }
  }
}
