/** Reconnect policy: exponential backoff with full jitter. */
export interface BackoffOptions {
  /** The cap of the first attempt, ms (default 100). */
  baseMs?: number;
  /** The largest cap, ms (default 15000). */
  maxMs?: number;
}

export const DEFAULT_BACKOFF_BASE_MS = 100;
export const DEFAULT_BACKOFF_MAX_MS = 15000;

/** The upper bound of the delay before reconnect attempt `attempt` (0 for the first). */
export function backoffCap(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const max = opts.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
  // 2^attempt overflows to Infinity for large attempts, and min() takes care of it.
  return Math.min(max, base * 2 ** Math.max(0, attempt));
}

/**
 * Full jitter: a delay drawn uniformly from [0, min(maxMs, baseMs * 2^attempt)), so that clients
 * dropped together by a restart do not come back together.
 */
export function backoffDelay(attempt: number, random: () => number, opts: BackoffOptions = {}): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * backoffCap(attempt, opts));
}
