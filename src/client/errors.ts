/**
 * Typed errors thrown by RaftKvClient. Server answers map one-to-one onto the server's error codes
 * (src/errors.ts); the client adds OutcomeUnknownError (a write may or may not have applied) and
 * ClusterUnavailableError (no endpoint could serve the request). Browser-safe: no Node imports.
 */

/** Base class of every error the client throws; `code` is the server's code or a client code. */
export class RaftKvClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** HTTP status of the answer this error came from, or null when there was no answer. */
    readonly status: number | null = null,
    /** The endpoint that gave the answer, when there was one. */
    readonly endpoint: string | null = null,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400 BAD_REQUEST: the server rejected the input and changed nothing. */
export class BadRequestError extends RaftKvClientError {
  constructor(message: string, endpoint: string | null = null) {
    super('BAD_REQUEST', message, 400, endpoint);
  }
}

/** 413 PAYLOAD_TOO_LARGE: the request body is over the server's limit; nothing changed. */
export class PayloadTooLargeError extends RaftKvClientError {
  constructor(message: string, endpoint: string | null = null) {
    super('PAYLOAD_TOO_LARGE', message, 413, endpoint);
  }
}

/** 404 KEY_NOT_FOUND from get or delete: the key does not exist. */
export class KeyNotFoundError extends RaftKvClientError {
  constructor(
    readonly key: string,
    message = `key not found: ${key}`,
    endpoint: string | null = null,
  ) {
    super('KEY_NOT_FOUND', message, 404, endpoint);
  }
}

/** 404 NODE_NOT_FOUND from removeNode: no member has this id (older servers answered KEY_NOT_FOUND, also accepted). */
export class NodeNotFoundError extends RaftKvClientError {
  constructor(
    readonly nodeId: string,
    endpoint: string | null = null,
  ) {
    super('NODE_NOT_FOUND', `no member with id ${nodeId}`, 404, endpoint);
  }
}

/** 409 CONFLICT: e.g. another membership change is still in progress; nothing changed. */
export class ConflictError extends RaftKvClientError {
  constructor(message: string, endpoint: string | null = null) {
    super('CONFLICT', message, 409, endpoint);
  }
}

/** 503 NOT_LEADER: the answering node knows the leader but could not forward; retried internally. */
export class NotLeaderError extends RaftKvClientError {
  constructor(
    message: string,
    readonly leaderId: string | null,
    endpoint: string | null = null,
  ) {
    super('NOT_LEADER', message, 503, endpoint);
  }
}

/** 503 NO_LEADER: no leader right now (an election is running); nothing was applied. */
export class NoLeaderError extends RaftKvClientError {
  constructor(message: string, endpoint: string | null = null) {
    super('NO_LEADER', message, 503, endpoint);
  }
}

/** 503 UNAVAILABLE: the node is shutting down or its storage failed. */
export class UnavailableError extends RaftKvClientError {
  constructor(message: string, endpoint: string | null = null) {
    super('UNAVAILABLE', message, 503, endpoint);
  }
}

/** 504 TIMEOUT: the server gave up waiting (for a read: not confirmed in time). */
export class TimeoutError extends RaftKvClientError {
  constructor(message: string, endpoint: string | null = null) {
    super('TIMEOUT', message, 504, endpoint);
  }
}

/** 500 INTERNAL or any other unexpected answer. */
export class ServerError extends RaftKvClientError {
  constructor(code: string, message: string, status: number, endpoint: string | null = null) {
    super(code, message, status, endpoint);
  }
}

/**
 * A write may or may not have been applied: the request may have reached a server (timeout,
 * connection reset, 504 TIMEOUT, shutdown) and the client did not retry it, because repeating a
 * write that already applied is not always harmless. Read the key to find out.
 */
export class OutcomeUnknownError extends RaftKvClientError {
  constructor(
    message: string,
    /** What happened: the server error or the network error that left the outcome open. */
    override readonly cause: Error,
    status: number | null = null,
    endpoint: string | null = null,
  ) {
    super('OUTCOME_UNKNOWN', message, status, endpoint);
  }
}

/** No endpoint could serve the request within the retries; nothing was applied by this call. */
export class ClusterUnavailableError extends RaftKvClientError {
  constructor(
    message: string,
    /** The last failure seen on each endpoint tried. */
    readonly attempts: { endpoint: string; error: string }[],
  ) {
    super('CLUSTER_UNAVAILABLE', message);
  }
}

/** The current state of a key named by a failed precondition (null: the key does not exist). */
export interface KeyVersion {
  key: string;
  index: number;
}

/**
 * 412 PRECONDITION_FAILED: a conditional write's condition did not hold when the entry was applied;
 * nothing changed. `current` is the key's state then (single-key writes); `existing` lists the keys
 * that already existed (a create-only batch).
 */
export class PreconditionFailedError extends RaftKvClientError {
  constructor(
    message: string,
    readonly current: KeyVersion | null,
    readonly existing: KeyVersion[],
    endpoint: string | null = null,
  ) {
    super('PRECONDITION_FAILED', message, 412, endpoint);
  }
}

/**
 * 410 CONTINUE_EXPIRED from listPage (and so from list): the listing's first index is older than the
 * server's watch history, so its later pages can no longer show the state at that index. Nothing is
 * retried: list again from the start for one consistent listing, or pass `continueToken` to listPage
 * to resume after the last key at `currentIndex` (the pages before and after are then not one snapshot).
 */
export class ContinueExpiredError extends RaftKvClientError {
  constructor(
    message: string,
    /** Resumes after the same key at `currentIndex` (the server's details.continue). */
    readonly continueToken: string | null,
    /** The listing's first index (its pages' `index`). */
    readonly listIndex: number | null,
    /** The server's history starts after this index. */
    readonly compactedIndex: number | null,
    /** The index the fresh token lists at. */
    readonly currentIndex: number | null,
    endpoint: string | null = null,
  ) {
    super('CONTINUE_EXPIRED', message, 410, endpoint);
  }
}
