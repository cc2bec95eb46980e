/**
 * Parses the lines of a peer stream into typed Raft messages. Everything from the network is
 * `unknown` until it passes here; garbage never reaches the core.
 */
import type { ClusterConfig, ConfChange, Entry, Member, Message, SnapshotMeta } from '../raft/core/types.js';
import { isValidCommand } from '../kv/commands.js';
import { isHostPort } from '../net/address.js';

/** A malformed peer message; the peer server closes the stream that carried it. */
export class PeerBadRequest extends Error {}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PeerBadRequest(`${what} must be an object`);
  return v as Obj;
}
function str(o: Obj, k: string): string {
  if (typeof o[k] !== 'string') throw new PeerBadRequest(`${k} must be a string`);
  return o[k] as string;
}
function int(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new PeerBadRequest(`${k} must be a non-negative integer`);
  return v;
}
function bool(o: Obj, k: string): boolean {
  if (typeof o[k] !== 'boolean') throw new PeerBadRequest(`${k} must be a boolean`);
  return o[k] as boolean;
}
function strArray(o: Obj, k: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new PeerBadRequest(`${k} must be an array of strings`);
  return v as string[];
}

function member(v: unknown): Member {
  const o = obj(v, 'member');
  const suffrage = o.suffrage;
  if (suffrage !== 'voter' && suffrage !== 'learner') throw new PeerBadRequest('suffrage must be voter or learner');
  const m: Member = { id: str(o, 'id'), suffrage, raftAddr: str(o, 'raftAddr'), apiAddr: str(o, 'apiAddr') };
  if (o.incarnation !== undefined) m.incarnation = str(o, 'incarnation');
  return m;
}

function config(v: unknown): ClusterConfig {
  const o = obj(v, 'config');
  if (!Array.isArray(o.members)) throw new PeerBadRequest('config.members must be an array');
  return { members: o.members.map(member) };
}

function confChange(v: unknown): ConfChange {
  const o = obj(v, 'change');
  switch (o.op) {
    case 'addLearner':
      return { op: 'addLearner', member: member(o.member) };
    case 'promote':
      return { op: 'promote', id: str(o, 'id') };
    case 'remove':
      return { op: 'remove', id: str(o, 'id') };
    default:
      throw new PeerBadRequest('unknown change op');
  }
}

function entry(v: unknown): Entry {
  const o = obj(v, 'entry');
  const index = int(o, 'index');
  const term = int(o, 'term');
  switch (o.type) {
    case 'normal': {
      // A command that apply could not decode never enters the log (it would be a poison pill).
      const data = str(o, 'data');
      if (!isValidCommand(data)) throw new PeerBadRequest(`entry ${index} carries a malformed command`);
      return { index, term, type: 'normal', data };
    }
    case 'noop':
      return { index, term, type: 'noop' };
    case 'config':
      return { index, term, type: 'config', change: confChange(o.change), config: config(o.config) };
    default:
      throw new PeerBadRequest('unknown entry type');
  }
}

function snapshotMeta(v: unknown): SnapshotMeta {
  const o = obj(v, 'meta');
  return { lastIndex: int(o, 'lastIndex'), lastTerm: int(o, 'lastTerm'), config: config(o.config) };
}

/** Validates one message. */
export function parseMessage(v: unknown): Message {
  const o = obj(v, 'message');
  const base: { from: string; to: string; term: number; fromInc?: string; toInc?: string } = { from: str(o, 'from'), to: str(o, 'to'), term: int(o, 'term') };
  if (o.fromInc !== undefined) base.fromInc = str(o, 'fromInc');
  if (o.toInc !== undefined) base.toInc = str(o, 'toInc');
  switch (o.type) {
    case 'RequestVote':
      return { ...base, type: 'RequestVote', preVote: bool(o, 'preVote'), lastLogIndex: int(o, 'lastLogIndex'), lastLogTerm: int(o, 'lastLogTerm'), transfer: bool(o, 'transfer') };
    case 'RequestVoteResponse':
      return { ...base, type: 'RequestVoteResponse', preVote: bool(o, 'preVote'), granted: bool(o, 'granted') };
    case 'AppendEntries': {
      if (!Array.isArray(o.entries)) throw new PeerBadRequest('entries must be an array');
      const entries = o.entries.map(entry);
      const prevLogIndex = int(o, 'prevLogIndex');
      entries.forEach((e, i) => {
        if (e.index !== prevLogIndex + 1 + i) throw new PeerBadRequest('entries must be contiguous after prevLogIndex');
      });
      return { ...base, type: 'AppendEntries', prevLogIndex, prevLogTerm: int(o, 'prevLogTerm'), entries, leaderCommit: int(o, 'leaderCommit') };
    }
    case 'AppendEntriesResponse':
      return { ...base, type: 'AppendEntriesResponse', success: bool(o, 'success'), matchIndex: int(o, 'matchIndex'), rejectedIndex: int(o, 'rejectedIndex'), conflictIndex: int(o, 'conflictIndex'), conflictTerm: int(o, 'conflictTerm') };
    case 'Heartbeat':
      return { ...base, type: 'Heartbeat', commit: int(o, 'commit'), ctx: int(o, 'ctx') };
    case 'HeartbeatResponse':
      return { ...base, type: 'HeartbeatResponse', ctx: int(o, 'ctx') };
    case 'InstallSnapshot':
      return { ...base, type: 'InstallSnapshot', meta: snapshotMeta(o.meta), offset: int(o, 'offset'), data: str(o, 'data'), done: bool(o, 'done') };
    case 'InstallSnapshotResponse':
      return { ...base, type: 'InstallSnapshotResponse', lastIndex: int(o, 'lastIndex'), received: int(o, 'received'), done: bool(o, 'done'), matchIndex: int(o, 'matchIndex') };
    case 'ReadIndex':
      return { ...base, type: 'ReadIndex', ids: strArray(o, 'ids') };
    case 'ReadIndexResponse':
      return { ...base, type: 'ReadIndexResponse', ids: strArray(o, 'ids'), index: int(o, 'index'), ok: bool(o, 'ok') };
    case 'TimeoutNow':
      return { ...base, type: 'TimeoutNow' };
    default:
      throw new PeerBadRequest('unknown message type');
  }
}

/** Validates one stream line `{"from": id, "fromAddr": "host:port"|null, "messages": [...]}`. */
export function parseMessages(body: unknown): { messages: Message[]; fromAddr: string | null } {
  const o = obj(body, 'body');
  if (!Array.isArray(o.messages)) throw new PeerBadRequest('messages must be an array');
  const fromAddr = o.fromAddr === undefined || o.fromAddr === null ? null : str(o, 'fromAddr');
  if (fromAddr !== null && !isHostPort(fromAddr)) throw new PeerBadRequest('fromAddr must be host:port');
  return { messages: o.messages.map(parseMessage), fromAddr };
}
