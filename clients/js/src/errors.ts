import type { ErrorBody, ServerErrorCode } from './types.js';

/**
 * Codes the SDK itself produces, besides the server's:
 * - `timeout`: no reply within the request's timeout;
 * - `disconnected`: the socket dropped while the request was in flight (it may or may not have
 *   been applied: only `msg.send` through `send()` is retried, safely, with its clientMsgId);
 * - `closed`: the client was closed (`close()`, or it went offline for good) before a reply.
 */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'closed';

export type ParleyErrorCode = ServerErrorCode | ClientErrorCode;

/** The error every failed request rejects with. */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  /** A server error code (docs/protocol.md) or a client one (`timeout`, `disconnected`, `closed`). */
  readonly code: ParleyErrorCode | string;
  /** With `rate_limited`, and `unavailable` from a busy server: milliseconds until a retry may
   * succeed (the body's retryAfter, else the HTTP Retry-After header). */
  readonly retryAfter?: number;
  /** The op of the request that failed, when there was one. */
  readonly op?: string;
  /** With `conflict` from msg.stream.append: the stream's current length in bytes. */
  readonly length?: number;

  constructor(
    code: ParleyErrorCode | string,
    message: string,
    opts: { retryAfter?: number; op?: string; length?: number } = {},
  ) {
    super(message);
    this.code = code;
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
    if (opts.op !== undefined) this.op = opts.op;
    if (opts.length !== undefined) this.length = opts.length;
  }

  static fromBody(body: ErrorBody | undefined, op?: string): ParleyError {
    const code = body && typeof body.code === 'string' ? body.code : 'internal';
    const message = body && typeof body.message === 'string' ? body.message : code;
    const opts: { retryAfter?: number; op?: string; length?: number } = {};
    if (body && typeof body.retryAfter === 'number') opts.retryAfter = body.retryAfter;
    if (body && typeof body.length === 'number') opts.length = body.length;
    if (op !== undefined) opts.op = op;
    return new ParleyError(code, message, opts);
  }
}

/**
 * Errors after which a send is given up (status `failed`): retrying the same request cannot
 * succeed. Anything else (timeouts, disconnects, `unavailable`, `internal`, `rate_limited`) is
 * retried.
 */
export const NON_RETRYABLE_SEND_ERRORS: ReadonlySet<string> = new Set([
  'bad_request',
  'forbidden',
  'not_found',
  'too_large',
  'unauthorized',
  'conflict',
  'chat_full',
  'expired',
]);
