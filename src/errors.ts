/**
 * The one registry of errors that reach clients and peers: each has a stable code and HTTP status.
 * The API's error middleware turns them into `{"error":{"code","message"}}`; the peer server and the
 * HTTP parser-error handler write the same body on raw sockets (src/http/answer.ts). Anything else is
 * a logged 500 INTERNAL. No error body is built anywhere else (test/unit/api/error-codes.test.ts checks).
 */

/** Every error code raftkv answers with, and its HTTP status. */
export const ERROR_CODES = {
  /** The input is malformed or out of bounds; nothing changed. */
  BAD_REQUEST: 400,
  /** No valid credentials (token, client certificate or cluster signature). */
  UNAUTHORIZED: 401,
  /** Valid credentials without the right for this request. */
  FORBIDDEN: 403,
  /** GET or DELETE of a key that does not exist. */
  KEY_NOT_FOUND: 404,
  /** DELETE /cluster/nodes/:id for an id that is not a member. */
  NODE_NOT_FOUND: 404,
  /** A lease that does not exist (never granted, revoked or expired), or whose expiry is pending; nothing changed. */
  LEASE_NOT_FOUND: 404,
  /** No such route. */
  NOT_FOUND: 404,
  /** The route exists but not with this method. */
  METHOD_NOT_ALLOWED: 405,
  /** A transaction with more operations than MAX_TXN_OPS. */
  TOO_MANY_OPS: 400,
  /** The same key twice in one write or transaction. */
  DUPLICATE_KEY: 400,
  /** POST /leases with a ttlMs that is not an integer in [2 × the maximum election timeout, 24 h]. */
  INVALID_TTL: 400,
  /** The request (body or headers) did not arrive in time. */
  REQUEST_TIMEOUT: 408,
  /** Another operation is in the way (e.g. a membership change in progress); nothing changed. */
  CONFLICT: 409,
  /** A peer stream from another cluster. */
  WRONG_CLUSTER: 409,
  /** GET /watch from an index whose history is gone (at or below the floor); `details` names the floor and the applied index. */
  COMPACTED: 410,
  /** GET /keys with a continue token whose listing index the history no longer covers; `details.continue` resumes at the same key at a fresh index. */
  CONTINUE_EXPIRED: 410,
  /** A conditional write's precondition did not hold at apply; `details` names the current state. */
  PRECONDITION_FAILED: 412,
  /** The request body is over the limit; nothing changed. */
  PAYLOAD_TOO_LARGE: 413,
  /** A peer stream meant for another node. */
  WRONG_NODE: 421,
  /** POST /admin/reload: a file could not be loaded; the node kept its old files. */
  RELOAD_FAILED: 422,
  /** Too many requests in progress on this node. */
  TOO_MANY_REQUESTS: 429,
  /** The request headers are over Node's limit. */
  HEADERS_TOO_LARGE: 431,
  /** A bug: logged by the node; the outcome of a write is unknown. */
  INTERNAL: 500,
  /** This node is not the leader and could not forward. */
  NOT_LEADER: 503,
  /** There is no leader right now; nothing was applied. */
  NO_LEADER: 503,
  /** The node cannot serve now (shutting down, storage failed, too many peer streams). */
  UNAVAILABLE: 503,
  /** A peer stream to a node that has not joined a cluster yet. */
  NOT_JOINED: 503,
  /** The outcome is unknown: the operation may or may not have taken effect. */
  TIMEOUT: 504,
  /** The disk is (nearly) full: writes are refused. */
  INSUFFICIENT_STORAGE: 507,
} as const;

/** A code of the registry. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Base of every error that reaches a client or peer; its status comes from ERROR_CODES. */
export class RaftKvError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers?: Record<string, string>,
    /** Machine-readable facts about the failure, sent as `error.details` (e.g. the current index). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
    this.status = ERROR_CODES[code];
  }
}

/** The JSON body for an error response, on every server. */
export function errorBody(err: RaftKvError): { error: { code: string; message: string; details?: Record<string, unknown> } } {
  return err.details === undefined
    ? { error: { code: err.code, message: err.message } }
    : { error: { code: err.code, message: err.message, details: err.details } };
}

export class BadRequestError extends RaftKvError {
  constructor(message: string) {
    super('BAD_REQUEST', message);
  }
}

export class PayloadTooLargeError extends RaftKvError {
  constructor(message: string) {
    super('PAYLOAD_TOO_LARGE', message);
  }
}

export class KeyNotFoundError extends RaftKvError {
  constructor(readonly key: string) {
    super('KEY_NOT_FOUND', `key not found: ${key}`);
  }
}

/** The lease named does not exist (or its expiry is pending). */
export class LeaseNotFoundError extends RaftKvError {
  constructor(readonly leaseId: string, why = 'it does not exist (never granted, revoked or expired)') {
    super('LEASE_NOT_FOUND', `lease ${leaseId} not found: ${why}`);
  }
}

/** POST /leases with a TTL out of bounds. */
export class InvalidTtlError extends RaftKvError {
  constructor(message: string) {
    super('INVALID_TTL', message);
  }
}

/** DELETE /cluster/nodes/:id named no member. */
export class NodeNotFoundError extends RaftKvError {
  constructor(readonly nodeId: string) {
    super('NODE_NOT_FOUND', `no member with id ${nodeId}`);
  }
}

/** No route matches the request's path. */
export class RouteNotFoundError extends RaftKvError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** The path exists, the method does not. */
export class MethodNotAllowedError extends RaftKvError {
  constructor(message: string) {
    super('METHOD_NOT_ALLOWED', message);
  }
}

/** This node is not the leader; the client (or the forwarding layer) should go to `leaderId`. */
export class NotLeaderError extends RaftKvError {
  constructor(
    readonly leaderId: string,
    readonly leaderApiAddr: string | null,
  ) {
    super('NOT_LEADER', `not the leader; the leader is ${leaderId}`, { 'Retry-After': '1' });
  }
}

export class NoLeaderError extends RaftKvError {
  constructor(message: string) {
    super('NO_LEADER', message, { 'Retry-After': '1' });
  }
}

/** The outcome of the operation is unknown: it may or may not have taken effect. */
export class TimeoutError extends RaftKvError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

export class ConflictError extends RaftKvError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

export class UnavailableError extends RaftKvError {
  constructor(message: string) {
    super('UNAVAILABLE', message, { 'Retry-After': '1' });
  }
}

/** The node's disk is (nearly) full: writes are refused until space is freed; reads keep working. */
export class InsufficientStorageError extends RaftKvError {
  constructor(message: string) {
    super('INSUFFICIENT_STORAGE', message, { 'Retry-After': '5' });
  }
}

/** No valid credentials: a missing or unknown Bearer token, or a missing or bad cluster signature. */
export class UnauthorizedError extends RaftKvError {
  constructor(message: string) {
    super('UNAUTHORIZED', message, { 'WWW-Authenticate': 'Bearer' });
  }
}

/** Valid credentials without the right for this request (role or key prefix). */
export class ForbiddenError extends RaftKvError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** The request body did not arrive in time (slow or endless body). */
export class RequestTimeoutError extends RaftKvError {
  constructor(message: string) {
    super('REQUEST_TIMEOUT', message, { Connection: 'close' });
  }
}

/** Too many requests in progress on this node. */
export class TooManyRequestsError extends RaftKvError {
  constructor(message: string) {
    super('TOO_MANY_REQUESTS', message, { 'Retry-After': '1' });
  }
}

/** The request headers are larger than Node's HTTP parser accepts. */
export class HeadersTooLargeError extends RaftKvError {
  constructor(message: string) {
    super('HEADERS_TOO_LARGE', message);
  }
}

/** POST /admin/reload could not load a file; the node kept its old ones. */
export class ReloadFailedError extends RaftKvError {
  constructor(message: string) {
    super('RELOAD_FAILED', message);
  }
}

/** A bug: anything thrown that is not a RaftKvError; the details go to the log, not the client. */
export class InternalError extends RaftKvError {
  constructor() {
    super('INTERNAL', 'internal error');
  }
}

/** A peer stream for another node (the sender has a stale address). */
export class WrongNodeError extends RaftKvError {
  constructor(message: string) {
    super('WRONG_NODE', message);
  }
}

/** A peer stream from another cluster. */
export class WrongClusterError extends RaftKvError {
  constructor(message: string) {
    super('WRONG_CLUSTER', message);
  }
}

/** A peer stream before this node has a cluster id (not bootstrapped or joined yet). */
export class NotJoinedError extends RaftKvError {
  constructor(message: string) {
    super('NOT_JOINED', message);
  }
}

/** A conditional write's precondition did not hold at apply; `details` names the current state. */
export class PreconditionFailedError extends RaftKvError {
  constructor(message: string, details: Record<string, unknown>, etag?: number) {
    super('PRECONDITION_FAILED', message, etag === undefined ? undefined : { ETag: `"${etag}"` }, details);
  }
}

/** A transaction with more operations than MAX_TXN_OPS. */
export class TooManyOpsError extends RaftKvError {
  constructor(message: string) {
    super('TOO_MANY_OPS', message);
  }
}

/** One branch of a transaction writes the same key twice. */
export class DuplicateKeyError extends RaftKvError {
  constructor(message: string) {
    super('DUPLICATE_KEY', message);
  }
}

/** A watch from an index the history no longer covers: `details` = {compactedIndex, currentIndex}. */
export class CompactedError extends RaftKvError {
  constructor(compactedIndex: number, currentIndex: number) {
    super('COMPACTED', `the watch history starts after index ${compactedIndex} (applied: ${currentIndex}); list again and watch from the listing's index + 1`, undefined, { compactedIndex, currentIndex });
  }
}

/**
 * A later page of a listing whose first index I0 is below the watch history's floor (or needs a
 * record written before the history kept previous values): it can no longer be shown as it was at I0.
 * `details.continue` resumes after the same key at `currentIndex` (a new listing index, so the pages
 * before and after it are no longer one snapshot); `details.{listIndex,compactedIndex,currentIndex}`.
 */
export class ContinueExpiredError extends RaftKvError {
  constructor(listIndex: number, compactedIndex: number, currentIndex: number, freshToken: string) {
    super(
      'CONTINUE_EXPIRED',
      `the listing's index ${listIndex} is older than the history kept (it starts after ${compactedIndex}, applied: ${currentIndex}): list again, or resume with details.continue at index ${currentIndex}`,
      undefined,
      { continue: freshToken, listIndex, compactedIndex, currentIndex },
    );
  }
}
