/** The peer transport used by the node driver to send Raft messages; delivery is best effort (Raft tolerates loss). */
import type { Message } from '../raft/core/types.js';

export interface Transport {
  /** Sends `msgs` to one peer as one batch (one stream line); never throws and never blocks the caller. */
  send(to: { id: string; raftAddr: string }, msgs: Message[]): void;
  close(): Promise<void>;
}

/** Receives the messages of one batch (one stream line) from a peer. */
export type MessageHandler = (msgs: Message[], fromAddr: string | null) => void;
