/** The peer transport used by the node driver to send Raft messages; delivery is best effort (Raft tolerates loss). */
import type { Message } from '../raft/core/types.js';

export interface Transport {
  /** Sends `msgs` to one peer in one request; never throws and never blocks the caller. */
  send(to: { id: string; raftAddr: string }, msgs: Message[]): void;
  close(): Promise<void>;
}

/** Receives the messages of one peer request. */
export type MessageHandler = (msgs: Message[], fromAddr: string | null) => void;
