/**
 * The one registry of errors that reach clients: each has a stable code and HTTP status. The API's
 * error middleware turns them into `{"error":{"code","message"}}`; anything else is a logged 500.
 */
export class RaftKvError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly headers?: Record<string, string>,
    /** Machine-readable facts about the failure, sent as `error.details` (e.g. the current index). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends RaftKvError {
  constructor(message: string) {
    super('BAD_REQUEST', 400, message);
  }
}

export class PayloadTooLargeError extends RaftKvError {
  constructor(message: string) {
    super('PAYLOAD_TOO_LARGE', 413, message);
  }
}

export class KeyNotFoundError extends RaftKvError {
  constructor(readonly key: string) {
    super('KEY_NOT_FOUND', 404, `key not found: ${key}`);
  }
}

/** This node is not the leader; the client (or the forwarding layer) should go to `leaderId`. */
export class NotLeaderError extends RaftKvError {
  constructor(
    readonly leaderId: string,
    readonly leaderApiAddr: string | null,
  ) {
    super('NOT_LEADER', 503, `not the leader; the leader is ${leaderId}`, { 'Retry-After': '1' });
  }
}

export class NoLeaderError extends RaftKvError {
  constructor(message: string) {
    super('NO_LEADER', 503, message, { 'Retry-After': '1' });
  }
}

/** The outcome of the operation is unknown: it may or may not have taken effect. */
export class TimeoutError extends RaftKvError {
  constructor(message: string) {
    super('TIMEOUT', 504, message);
  }
}

export class ConflictError extends RaftKvError {
  constructor(message: string) {
    super('CONFLICT', 409, message);
  }
}

export class UnavailableError extends RaftKvError {
  constructor(message: string) {
    super('UNAVAILABLE', 503, message, { 'Retry-After': '1' });
  }
}

/** The node's disk is (nearly) full: writes are refused until space is freed; reads keep working. */
export class InsufficientStorageError extends RaftKvError {
  constructor(message: string) {
    super('INSUFFICIENT_STORAGE', 507, message, { 'Retry-After': '5' });
  }
}

/** The JSON body for an error response. */
export function errorBody(err: RaftKvError): { error: { code: string; message: string; details?: Record<string, unknown> } } {
  return err.details === undefined
    ? { error: { code: err.code, message: err.message } }
    : { error: { code: err.code, message: err.message, details: err.details } };
}

/** No valid credentials: a missing or unknown Bearer token, or a missing or bad cluster signature. */
export class UnauthorizedError extends RaftKvError {
  constructor(message: string) {
    super('UNAUTHORIZED', 401, message, { 'WWW-Authenticate': 'Bearer' });
  }
}

/** Valid credentials without the right for this request (role or key prefix). */
export class ForbiddenError extends RaftKvError {
  constructor(message: string) {
    super('FORBIDDEN', 403, message);
  }
}

/** The request body did not arrive in time (slow or endless body). */
export class RequestTimeoutError extends RaftKvError {
  constructor(message: string) {
    super('REQUEST_TIMEOUT', 408, message, { Connection: 'close' });
  }
}

/** Too many requests in progress on this node. */
export class TooManyRequestsError extends RaftKvError {
  constructor(message: string) {
    super('TOO_MANY_REQUESTS', 429, message, { 'Retry-After': '1' });
  }
}

/** A conditional write's precondition did not hold at apply; `details` names the current state. */
export class PreconditionFailedError extends RaftKvError {
  constructor(message: string, details: Record<string, unknown>, etag?: number) {
    super('PRECONDITION_FAILED', 412, message, etag === undefined ? undefined : { ETag: `"${etag}"` }, details);
  }
}

/** A transaction with more operations than MAX_TXN_OPS. */
export class TooManyOpsError extends RaftKvError {
  constructor(message: string) {
    super('TOO_MANY_OPS', 400, message);
  }
}

/** One branch of a transaction writes the same key twice. */
export class DuplicateKeyError extends RaftKvError {
  constructor(message: string) {
    super('DUPLICATE_KEY', 400, message);
  }
}
