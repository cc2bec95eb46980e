/** The raftkv client library: RaftKvClient, its option and result types, and its typed errors. */
export { RaftKvClient, conditionHeaders, parseClusterInfo, sameServer } from './client.js';
export { SseParser, parseWatchMessage } from './sse.js';
export { LeaseHandle, type LeaseCalls } from './lease.js';
export * from './errors.js';
export type * from './types.js';
