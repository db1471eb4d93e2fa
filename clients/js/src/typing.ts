// Typing indicator, sending side: turns keystrokes into as few `typing` requests as the
// protocol allows. The server forgets a typer 6 s after its last `on: true`, so a typer
// refreshes every 3 s while keystrokes continue, and says `on: false` when it stops.

import type { Timers } from './client.js';

export interface TypingOptions {
  /** Refresh interval while keystrokes continue, ms (default 3000). Also the minimum gap between two `typing` requests while typing. */
  refreshMs?: number;
  /** No keystroke for this long ends typing, ms (default 4000). */
  idleMs?: number;
}

/** What a TypingController needs from its client. */
export interface TypingHost {
  sendTyping(on: boolean): void;
  timers: Timers;
  now: () => number;
  isOnline: () => boolean;
  dispose?: () => void;
}

/**
 * One chat's typing state. Call `keystroke()` on every input event of the composer, `cleared()`
 * when the input is emptied, `sent()` when the message is sent (ParleyClient.send() does it).
 *
 * - the first keystroke sends `on: true` at once;
 * - while keystrokes continue, `on: true` again every `refreshMs` (never more often);
 * - `on: false` after `idleMs` without a keystroke, on cleared() and on sent();
 * - after a reconnect (the server forgot it) `on: true` is sent again if still typing.
 */
export class TypingController {
  readonly #host: TypingHost;
  readonly #refreshMs: number;
  readonly #idleMs: number;
  #typing = false;
  #lastKey = 0;
  #lastSent = 0;
  #dirty = false; // a keystroke since the last `on: true`
  #refreshTimer: unknown = null;
  #idleTimer: unknown = null;

  constructor(host: TypingHost, opts: TypingOptions = {}) {
    this.#host = host;
    this.#refreshMs = opts.refreshMs ?? 3000;
    this.#idleMs = opts.idleMs ?? 4000;
  }

  /** Whether this side currently reports typing. */
  get typing(): boolean {
    return this.#typing;
  }

  /** A keystroke in the composer. */
  keystroke(): void {
    const now = this.#host.now();
    this.#lastKey = now;
    if (!this.#typing) {
      this.#typing = true;
      this.#sendOn(now);
      this.#armIdle(this.#idleMs);
      return;
    }
    this.#dirty = true;
    if (this.#refreshTimer === null) {
      const since = now - this.#lastSent;
      if (since >= this.#refreshMs) this.#sendOn(now);
      else this.#armRefresh(this.#refreshMs - since);
    }
    if (this.#idleTimer === null) this.#armIdle(this.#idleMs);
  }

  /** The input was cleared: stop typing now. */
  cleared(): void {
    this.stop();
  }

  /** The message was sent: stop typing now. */
  sent(): void {
    this.stop();
  }

  /** Stops typing (sends `on: false` if it was on). */
  stop(): void {
    if (!this.#typing) return;
    this.#typing = false;
    this.#dirty = false;
    this.#clearTimers();
    this.#host.sendTyping(false);
  }

  /** Stops typing and forgets this controller. */
  dispose(): void {
    this.stop();
    this.#host.dispose?.();
  }

  /** @internal The client is online again: the server forgot us, say it again. */
  _reconnected(): void {
    if (this.#typing) this.#sendOn(this.#host.now());
  }

  /** @internal The client went offline for good. */
  _disconnected(): void {
    this.#typing = false;
    this.#dirty = false;
    this.#clearTimers();
  }

  #sendOn(now: number): void {
    this.#lastSent = now;
    this.#dirty = false;
    this.#host.sendTyping(true);
    this.#armRefresh(this.#refreshMs);
  }

  #armRefresh(ms: number): void {
    if (this.#refreshTimer !== null) this.#host.timers.clearTimeout(this.#refreshTimer);
    this.#refreshTimer = this.#host.timers.setTimeout(() => {
      this.#refreshTimer = null;
      // Refresh only if keystrokes continued; otherwise the idle timer ends typing.
      if (this.#typing && this.#dirty) this.#sendOn(this.#host.now());
    }, ms);
  }

  #armIdle(ms: number): void {
    this.#idleTimer = this.#host.timers.setTimeout(() => {
      this.#idleTimer = null;
      if (!this.#typing) return;
      const quiet = this.#host.now() - this.#lastKey;
      if (quiet >= this.#idleMs) this.stop();
      else this.#armIdle(this.#idleMs - quiet);
    }, ms);
  }

  #clearTimers(): void {
    if (this.#refreshTimer !== null) this.#host.timers.clearTimeout(this.#refreshTimer);
    if (this.#idleTimer !== null) this.#host.timers.clearTimeout(this.#idleTimer);
    this.#refreshTimer = null;
    this.#idleTimer = null;
  }
}
