/**
 * Cluster membership (Raft thesis §4): single-server changes, each a config entry that takes effect
 * as soon as it is in the log (committed or not), and is undone when a conflicting leader truncates
 * it. `nextConfig` is the pure rule for what a change yields; `Membership` tracks the configuration
 * in force over a node's log (the latest config entry, or the base configuration of the compacted
 * prefix) and answers who is a member, a voter, and of which incarnation. Used by raft.ts.
 */
import type { RaftLog } from './log.js';
import { assertNever } from './messages.js';
import type { RejectReason } from './status.js';
import type { ClusterConfig, ConfChange, Entry, Member, NodeId, Suffrage } from './types.js';

/** A config entry. */
export type ConfigEntry = Entry & { type: 'config' };

/** What the leader knows when it checks a change: itself, its commit index and each follower's match. */
export interface ChangeContext {
  selfId: NodeId;
  commitIndex: number;
  /** The follower's match index, or undefined when the leader tracks no progress for it. */
  matchIndexOf(id: NodeId): number | undefined;
}

/** The configuration after `change`, or why the change is refused. Pure. */
export type NextConfig = { ok: true; config: ClusterConfig } | { ok: false; reason: RejectReason };

/** The configuration `change` turns `config` into (thesis §4.1: one server added, promoted or removed). */
export function nextConfig(config: ClusterConfig, change: ConfChange, ctx: ChangeContext): NextConfig {
  const members = config.members;
  let next: Member[];
  switch (change.op) {
    case 'addLearner': {
      const old = members.find((mb) => mb.id === change.member.id);
      if (!old) {
        next = [...members, { ...change.member, suffrage: 'learner' }];
        break;
      }
      // A new incarnation of a member (it lost its state) replaces the old one as a learner: one
      // voter leaves and nothing joins the voters, still a single-server change (thesis §4.1). It
      // votes again only once caught up and promoted. The leader cannot be replaced this way.
      if ((old.incarnation ?? '') === (change.member.incarnation ?? '') || old.id === ctx.selfId) return { ok: false, reason: 'already-member' };
      next = members.map((x) => (x.id === old.id ? { ...change.member, suffrage: 'learner' as const } : x));
      break;
    }
    case 'promote': {
      const mb = members.find((x) => x.id === change.id);
      if (!mb) return { ok: false, reason: 'unknown-member' };
      if (mb.suffrage === 'voter') return { ok: false, reason: 'already-member' };
      // A learner votes only once it holds the committed log, hence the entry that made it a member:
      // a voter that does not know it is one (an empty node) would never answer a vote request.
      const match = ctx.matchIndexOf(change.id);
      // MUTATION-POINT: promote-caught-up
      if (change.id !== ctx.selfId && (match === undefined || match < ctx.commitIndex)) return { ok: false, reason: 'not-caught-up' };
      next = members.map((x) => (x.id === change.id ? { ...x, suffrage: 'voter' as const } : x));
      break;
    }
    case 'remove':
      if (!members.some((mb) => mb.id === change.id)) return { ok: false, reason: 'unknown-member' };
      next = members.filter((x) => x.id !== change.id);
      break;
    default:
      return assertNever(change);
  }
  return { ok: true, config: { members: next } };
}

/** The configuration in force on one node, tracked over its log. */
export class Membership {
  private current: ClusterConfig;
  /** Index of the config entry in force; 0 when it came from the snapshot or there is none. */
  private currentIndex = 0;
  /** The configuration in force at log.snapshotIndex (the last compacted index). */
  private base: ClusterConfig;

  /** Starts from the configuration of the snapshot the node restarts from (empty without one). */
  constructor(base: ClusterConfig) {
    this.base = base;
    this.current = base;
  }

  /** The configuration in force (the latest config entry in the log, or the base). */
  get config(): ClusterConfig { return this.current; }
  /** Index of the config entry in force; 0 when it came from the snapshot or there is none. */
  get configIndex(): number { return this.currentIndex; }

  /** A config entry appended to the log takes effect at once (thesis §4.1). */
  apply(e: ConfigEntry): void {
    this.current = e.config;
    this.currentIndex = e.index;
  }

  /** After the log changed under the configuration (restart, truncation): the latest config entry, or the base. */
  recompute(log: RaftLog): void {
    const e = this.lastConfigEntry(log, log.lastIndex);
    if (e) {
      this.apply(e);
      return;
    }
    this.current = this.base;
    this.currentIndex = 0;
  }

  /** A snapshot replaced the log: its configuration is both the base and the one in force. */
  restore(config: ClusterConfig): void {
    this.base = config;
    this.current = config;
    this.currentIndex = 0;
  }

  /** The log is about to be compacted through `index`: the base becomes the configuration in force there. */
  compactTo(log: RaftLog, index: number): void {
    this.base = this.configAt(log, index);
  }

  /** Thesis §4.1: a leader accepts one change at a time, until the one in force is committed. */
  isChangePending(commitIndex: number): boolean {
    // MUTATION-POINT: one-conf-change
    return this.currentIndex > commitIndex;
  }

  /** Whether appending `entries` replaces the config entry in force (a conflicting leader truncates it). */
  isTruncatedBy(log: RaftLog, entries: Entry[]): boolean {
    return entries.some((e) => e.index <= this.currentIndex && log.termAt(e.index) !== e.term);
  }

  /** Whether `e`, just merged into the log, is a config entry newer than the one in force. */
  isNewConfigEntry(log: RaftLog, e: Entry): e is ConfigEntry {
    return e.type === 'config' && e.index > this.currentIndex && log.termAt(e.index) === e.term;
  }

  /** Thesis §4.2.2: the change removing `id` is committed (a removed leader then steps down). */
  isRemovalCommitted(id: NodeId, commitIndex: number): boolean {
    return this.currentIndex <= commitIndex && !this.current.members.some((mb) => mb.id === id);
  }

  /** The configuration in force at `index` (>= log.snapshotIndex): the last config entry at or before it. */
  configAt(log: RaftLog, index: number): ClusterConfig {
    return this.lastConfigEntry(log, index)?.config ?? this.base;
  }

  /** The last config entry in memory at or before `index`, or null when the base config is in force. */
  private lastConfigEntry(log: RaftLog, index: number): ConfigEntry | null {
    for (let i = Math.min(index, log.lastIndex); i > log.snapshotIndex; i--) {
      const e = log.entryAt(i);
      if (e && e.type === 'config') return e;
    }
    return null;
  }

  /** The incarnation of member `id` in the configuration in force, or undefined for a non-member. */
  incarnationOf(id: NodeId): string | undefined {
    const mb = this.current.members.find((x) => x.id === id);
    return mb === undefined ? undefined : mb.incarnation ?? '';
  }

  /** Whether `id` is a voter or a learner, or undefined for a non-member. */
  suffrageOf(id: NodeId): Suffrage | undefined {
    return this.current.members.find((mb) => mb.id === id)?.suffrage;
  }

  isVoter(id: NodeId): boolean {
    return this.suffrageOf(id) === 'voter';
  }

  /** The voters, in configuration order: the quorum for elections, commits and reads. */
  voterIds(): NodeId[] {
    return this.current.members.filter((mb) => mb.suffrage === 'voter').map((mb) => mb.id);
  }

  /** Every member but `selfId`: the followers a leader replicates to. */
  peerIds(selfId: NodeId): NodeId[] {
    return this.current.members.map((mb) => mb.id).filter((id) => id !== selfId);
  }
}
