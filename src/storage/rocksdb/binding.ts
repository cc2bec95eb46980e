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
