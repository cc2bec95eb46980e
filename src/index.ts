/** Package entry point (`import { RaftKvClient } from 'raftkv'`): the client library and its errors. */
export * from './client/index.js';
