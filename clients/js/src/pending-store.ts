// Where unsent messages wait across a reload: a small JSON record in a Storage-like object (the
// browser's localStorage, or a fake in tests). The client writes it on every change of its
// pending queue and reads it once when made, so a message typed and sent while offline is
// resent after a reload with the same clientMsgId, which the server dedupes: it is stored once.

/** The part of the Web Storage API the store uses; `localStorage` fits. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** One unsent message as kept in storage. */
export interface StoredSend {
  clientMsgId: string;
  chat: string;
  body: string;
  createdAt: number;
  /** The seq it replies to, if any. */
  replyTo?: number;
  /** True when the server refused it: shown as failed again, not resent by itself. */
  failed?: boolean;
}

export interface PendingStoreOptions {
  storage: StorageLike;
  /** The storage key; one per signed-in user, so two accounts in one browser never mix (default `parley.pending`). */
  key?: string;
  /** At most this many messages are kept (oldest dropped first; default 200). */
  maxEntries?: number;
}

const DEFAULT_MAX = 200;

export class PendingStore {
  readonly #storage: StorageLike;
  readonly #key: string;
  readonly #max: number;

  constructor(opts: PendingStoreOptions) {
    this.#storage = opts.storage;
    this.#key = opts.key ?? 'parley.pending';
    this.#max = opts.maxEntries ?? DEFAULT_MAX;
  }

  /** What was kept, oldest first. Anything unreadable is dropped, never thrown. */
  load(): StoredSend[] {
    let raw: string | null;
    try {
      raw = this.#storage.getItem(this.#key);
    } catch {
      return [];
    }
    if (!raw) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      return [];
    }
    if (!Array.isArray(parsed)) return [];
    const out: StoredSend[] = [];
    for (const e of parsed) {
      if (!e || typeof e !== 'object') continue;
      const r = e as Record<string, unknown>;
      if (typeof r.clientMsgId !== 'string' || typeof r.chat !== 'string' || typeof r.body !== 'string') continue;
      out.push({
        clientMsgId: r.clientMsgId,
        chat: r.chat,
        body: r.body,
        createdAt: typeof r.createdAt === 'number' ? r.createdAt : 0,
        ...(typeof r.replyTo === 'number' ? { replyTo: r.replyTo } : {}),
        ...(r.failed === true ? { failed: true } : {}),
      });
    }
    return out.slice(-this.#max);
  }

  /** Replaces what is kept (an empty list removes the key). Storage errors (quota) are ignored. */
  save(entries: StoredSend[]): void {
    try {
      if (entries.length === 0) this.#storage.removeItem(this.#key);
      else this.#storage.setItem(this.#key, JSON.stringify(entries.slice(-this.#max)));
    } catch {
      // full or disabled storage: the queue still works for this page's life
    }
  }
}
