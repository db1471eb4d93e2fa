// StreamWriter: writes one streamed message (issue 19) for a bot. Text given to write() is
// queued and appended in order with msg.stream.append at the byte offset already acknowledged;
// while one append is on its way, later writes gather into the next one. A step that fails for
// want of a connection (disconnected, timeout, unavailable, rate_limited) is retried with the
// very same arguments once the client is online again: the start carries a clientMsgId (a retry
// answers `duplicate` with the same message), an append the same bytes at the same offset (the
// server answers a repeat with the current length and stores nothing twice), so the text the
// viewers see is exactly the text written, across any number of reconnects.

import { randomClientMsgId, type ParleyClient, type Timers } from './client.js';
import { ParleyError } from './errors.js';
import type { Msg } from './types.js';

/** The server's largest delta, in UTF-8 bytes. */
export const MAX_DELTA_BYTES = 16384;

/** Error codes after which the same request is sent again. */
const RETRYABLE: ReadonlySet<string> = new Set(['disconnected', 'timeout', 'unavailable', 'rate_limited']);

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface StreamWriterOptions {
  /** Makes the start idempotent across retries (default: a random one). */
  clientMsgId?: string;
  /** The seq of the message this one answers. */
  replyTo?: number;
  /** Most bytes per append (default and at most 16384). */
  maxDeltaBytes?: number;
  /** A step still failing after this long is given up (default 120000 ms). */
  giveUpMs?: number;
  /** For the waits after rate_limited/unavailable (default the global timers). */
  timers?: Timers;
  now?: () => number;
}

function defaultTimers(): Timers {
  return {
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
  };
}

/** The longest prefix of `s` of at most `max` UTF-8 bytes that ends on a character. */
function takePrefix(s: string, max: number): { text: string; bytes: number } {
  const all = enc.encode(s);
  if (all.length <= max) return { text: s, bytes: all.length };
  let cut = max;
  while (cut > 0 && (all[cut]! & 0xc0) === 0x80) cut--;
  return { text: dec.decode(all.subarray(0, cut)), bytes: cut };
}

export class StreamWriter {
  readonly client: ParleyClient;
  readonly chat: string;
  readonly clientMsgId: string;
  readonly #replyTo: number | undefined;
  readonly #max: number;
  readonly #giveUpMs: number;
  readonly #timers: Timers;
  readonly #now: () => number;

  #msg: Msg | null = null;
  #starting: Promise<Msg> | null = null;
  #queue = '';
  #written = '';
  #acked = 0;
  #pumping = false;
  #error: ParleyError | null = null;
  #ended = false;
  #drainWaiters: (() => void)[] = [];

  /** Who owns what: the writer keeps a reference to `client` (not closed by it). */
  constructor(client: ParleyClient, chat: string, opts: StreamWriterOptions = {}) {
    this.client = client;
    this.chat = chat;
    this.clientMsgId = opts.clientMsgId ?? randomClientMsgId();
    this.#replyTo = opts.replyTo;
    this.#max = Math.max(4, Math.min(MAX_DELTA_BYTES, opts.maxDeltaBytes ?? MAX_DELTA_BYTES));
    this.#giveUpMs = opts.giveUpMs ?? 120000;
    this.#timers = opts.timers ?? defaultTimers();
    this.#now = opts.now ?? Date.now;
  }

  /** The stream's seq once started, else null. */
  get seq(): number | null {
    return this.#msg?.seq ?? null;
  }
  /** Everything given to write() so far. */
  get text(): string {
    return this.#written;
  }
  /** Bytes the server has acknowledged (durable). */
  get length(): number {
    return this.#acked;
  }
  /** Why the writer stopped appending, or null. */
  get error(): ParleyError | null {
    return this.#error;
  }

  /** Starts the stream (msg.stream.start, retried with the same clientMsgId). Idempotent. */
  start(): Promise<Msg> {
    if (!this.#starting) {
      const args = this.#replyTo !== undefined ? { clientMsgId: this.clientMsgId, replyTo: this.#replyTo } : { clientMsgId: this.clientMsgId };
      this.#starting = this.#retry(() => this.client.streamStart(this.chat, args)).then((r) => {
        this.#msg = r.msg;
        this.#pump();
        return r.msg;
      });
      this.#starting.catch((err: ParleyError) => {
        this.#error ??= err;
        this.#wakeDrain();
      });
    }
    return this.#starting;
  }

  /** Queues text (sent in order, as soon as possible). Throws once the stream is ended. */
  write(text: string): void {
    if (this.#ended) throw new ParleyError('conflict', 'the stream is ended');
    if (typeof text !== 'string' || text.length === 0) return;
    this.#queue += text;
    this.#written += text;
    if (this.#msg) this.#pump();
  }

  /** Resolves when every byte written so far is acknowledged (rejects if the writer failed). */
  async flush(): Promise<void> {
    if (!this.#msg) await this.start();
    await this.#drained();
    if (this.#error) throw this.#error;
  }

  /**
   * Sends what is queued, then ends the stream: `state` "done", or "error" (the answer failed).
   * If appending failed, the stream is ended with "error" and the promise rejects with why.
   * Resolves with the `stream.end` entry (null when an earlier try had ended it already).
   */
  async end(state: 'done' | 'error' = 'done'): Promise<Msg | null> {
    if (this.#ended) throw new ParleyError('conflict', 'end() was called already');
    this.#ended = true;
    const msg = this.#msg ?? (await this.start());
    await this.#drained();
    const failed = this.#error;
    let entry: Msg | null = null;
    try {
      entry = (await this.#retry(() => this.client.streamEnd(this.chat, msg.seq, failed ? 'error' : state))).msg;
    } catch (err) {
      // A repeat after an end whose reply was lost is `conflict`: ended all the same.
      if (!(err instanceof ParleyError) || err.code !== 'conflict') throw failed ?? err;
    }
    if (failed) throw failed;
    return entry;
  }

  #drained(): Promise<void> {
    if (!this.#pumping && (this.#queue.length === 0 || this.#error)) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #wakeDrain(): void {
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  async #pump(): Promise<void> {
    if (this.#pumping || !this.#msg) return;
    this.#pumping = true;
    const seq = this.#msg.seq;
    try {
      while (this.#queue.length > 0 && !this.#error) {
        const chunk = takePrefix(this.#queue, this.#max);
        const offset = this.#acked;
        try {
          await this.#retry(() => this.client.streamAppend(this.chat, seq, chunk.text, offset));
        } catch (err) {
          // An earlier try stored it and only its reply was lost: the server says where it is.
          const e = err as ParleyError;
          if (!(e instanceof ParleyError && e.code === 'conflict' && e.length === offset + chunk.bytes)) {
            this.#error = e instanceof ParleyError ? e : new ParleyError('internal', String(e));
            break;
          }
        }
        this.#acked = offset + chunk.bytes;
        this.#queue = this.#queue.slice(chunk.text.length);
      }
    } finally {
      this.#pumping = false;
      this.#wakeDrain();
    }
  }

  /** Runs `fn` until it succeeds or fails for a reason a repeat cannot fix. */
  async #retry<T>(fn: () => Promise<T>): Promise<T> {
    const since = this.#now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = err instanceof ParleyError ? err : new ParleyError('internal', String(err));
        if (!RETRYABLE.has(e.code) || this.#now() - since >= this.#giveUpMs) throw e;
        // disconnected/timeout: the next request waits in the client's queue until it is online.
        // A socket that is closing before the client has seen its close event still counts as
        // online: wait for the state to change (or a moment) rather than spin on it.
        if (e.code === 'disconnected' && this.client.state === 'online') {
          await new Promise<void>((resolve) => {
            const timer = this.#timers.setTimeout(() => {
              off();
              resolve();
            }, 100);
            const off = this.client.on('state', () => {
              off();
              this.#timers.clearTimeout(timer);
              resolve();
            });
          });
        } else if (e.code === 'rate_limited' || e.code === 'unavailable') {
          const ms = e.retryAfter ?? Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
          await new Promise<void>((r) => this.#timers.setTimeout(r, ms));
        }
      }
    }
  }
}
