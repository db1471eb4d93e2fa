// The Realtime surface of the app on top of the project's SDK (clients/js ParleyClient). The SDK
// does the hard parts: reconnect with jittered backoff, resume of every subscribed chat from its
// last seq (gap-free, duplicate-free), pending sends retried with the same clientMsgId, typing
// refresh, visibility/idle presence. This adapter adds what a React tree needs on top:
// - reference-counted subscriptions (several components, or StrictMode's double mount, may
//   subscribe to one chat), with a short linger before `unsub` so a quick remount or navigation
//   back does not race an unsub against a new sub;
// - per-chat views of the outgoing queue.
// Requests and events pass straight through, typed by the SDK (clients/js/src/types.ts).
import { ParleyClient } from '../../../clients/js/src/client.js';
import type { OutgoingMessage } from '../../../clients/js/src/client.js';
import { wsUrlFor } from '../../../clients/js/src/http.js';
import type { Op, OpArgs, OpResults } from '../../../clients/js/src/types.js';
import { clearRemoval, recordRemoval } from './removals';
import type { ConnState, PendingSend, Realtime, SubHandlers, SubReply } from './realtime-types';
import type { FullMsg } from './types';

const UNSUB_LINGER_MS = 1500;

interface ChatSub {
  handlers: Set<SubHandlers>;
  last: SubReply | null;
  lingerTimer: ReturnType<typeof setTimeout> | null;
}

export interface RealtimeOptions {
  url?: string;
  /** The signed-in user: names this user's stored pending sends and removals. */
  userId?: number;
  onSessionEnded?: () => void;
}

function toPending(o: OutgoingMessage): PendingSend {
  return {
    clientMsgId: o.clientMsgId,
    chat: o.chat,
    body: o.body,
    createdAt: o.createdAt,
    status: o.status === 'failed' ? 'failed' : 'pending',
    error: o.error ? { code: String(o.error.code), message: o.error.message } : undefined,
  };
}

export function createSdkRealtime(opts: RealtimeOptions = {}): Realtime {
  const url = opts.url ?? wsUrlFor(location);
  // Unsent messages survive a reload: the SDK keeps its pending queue in localStorage (per user)
  // and resends it with the same clientMsgIds, which the server dedupes.
  const client = new ParleyClient({
    url,
    ...(opts.userId !== undefined && typeof localStorage !== 'undefined'
      ? { pendingStore: { storage: localStorage, key: `parley.pending.${opts.userId}` } }
      : {}),
  });
  const subs = new Map<string, ChatSub>();
  // How many times the socket came online. The listener that counts is registered first, so an
  // onReconnect listener sees 1 on the first connection (no reconnect: nothing to reload) and 2+
  // after a drop. (A flag set first made the first connection count as a reconnect: every page
  // loaded its chat list twice.)
  let onlineTimes = 0;
  let closed = false;

  // Subscription plumbing: one SDK listener set, dispatched to this adapter's handlers.
  const offs: (() => void)[] = [];
  offs.push(
    client.on('subscribed', ({ chat, result, resumed }) => {
      clearRemoval(opts.userId, chat); // a participant again
      const s = subs.get(chat);
      if (!s) return;
      s.last = result;
      for (const h of [...s.handlers]) h.onSubscribed(result, resumed);
    }),
    client.on('msg', ({ chat, msg }) => {
      const s = subs.get(chat);
      if (s) for (const h of [...s.handlers]) h.onMsg(msg);
    }),
    client.on('msg.delta', (d) => {
      const s = subs.get(d.chat);
      if (s) for (const h of [...s.handlers]) h.onDelta?.(d);
    }),
    client.on('subscriptionError', ({ chat, error }) => {
      const s = subs.get(chat);
      if (!s) return;
      // The SDK dropped the subscription; forget ours so a later subscribe() asks again.
      subs.delete(chat);
      for (const h of [...s.handlers]) h.onError({ code: String(error.code), message: error.message });
    }),
    client.on('removed', ({ chat, by }) => {
      recordRemoval(opts.userId, chat, by ?? null);
      // The SDK ends the subscription of a removed participant; so do we.
      const s = subs.get(chat);
      if (s?.lingerTimer) clearTimeout(s.lingerTimer);
      subs.delete(chat);
    }),
    client.on('unauthorized', () => {
      if (!closed) opts.onSessionEnded?.();
    }),
    client.on('state', ({ state, prev }) => {
      if (state === 'online' && prev !== 'online') onlineTimes++;
    }),
  );

  // Presence: hidden / idle / active from the page, re-sent by the SDK after reconnects.
  offs.push(client.attachVisibility(document, window));

  // The browser knows when the network is back: try at once instead of waiting for the backoff.
  const onOnline = () => client.reconnectNow();
  window.addEventListener('online', onOnline);
  offs.push(() => window.removeEventListener('online', onOnline));

  client.connect().catch(() => {
    // unauthorized or closed: reported through the events above
  });

  const api: Realtime = {
    get state() {
      // Before the first connection the SDK says "connecting"; afterwards "reconnecting".
      return client.state as ConnState;
    },
    get user() {
      return client.user;
    },
    onState(cb) {
      return client.on('state', ({ state }) => cb(state as ConnState));
    },
    request<K extends Op>(op: K, args: OpArgs[K]): Promise<OpResults[K]> {
      // Leaving through the SDK also ends its subscription, so it is not resumed after a reconnect.
      if (op === 'chat.leave') return client.leaveChat((args as OpArgs['chat.leave']).chat) as Promise<OpResults[K]>;
      const p = client.request(op, args);
      if (op === 'chat.join' || op === 'invite.accept') {
        p.then((r) => {
          const slug = (r as { chat?: { slug?: string } }).chat?.slug;
          if (slug) clearRemoval(opts.userId, slug);
        }, () => {});
      }
      return p;
    },
    on(ev, cb) {
      return client.on(ev, cb);
    },
    setNotify(chat, level) {
      return client.setNotify(chat, level);
    },
    browse(args) {
      return client.browse(args);
    },
    updateMe(displayName) {
      return client.updateMe({ displayName });
    },
    onReconnect(cb) {
      return client.on('state', ({ state, prev }) => {
        if (state === 'online' && prev !== 'online' && onlineTimes > 1) cb();
      });
    },
    subscribe(chat, h) {
      let s = subs.get(chat);
      if (!s) {
        s = { handlers: new Set(), last: null, lingerTimer: null };
        subs.set(chat, s);
        s.handlers.add(h);
        client.subscribe(chat).catch(() => {
          // refusals arrive as subscriptionError
        });
      } else {
        if (s.lingerTimer) {
          clearTimeout(s.lingerTimer);
          s.lingerTimer = null;
        }
        s.handlers.add(h);
        // Already live: tell the newcomer where things stand.
        if (s.last) h.onSubscribed(s.last, false);
      }
      const mine = s;
      return () => {
        mine.handlers.delete(h);
        if (mine.handlers.size > 0 || subs.get(chat) !== mine) return;
        mine.lingerTimer = setTimeout(() => {
          if (subs.get(chat) !== mine || mine.handlers.size > 0) return;
          subs.delete(chat);
          client.typingController(chat).dispose();
          client.unsubscribe(chat).catch(() => {});
        }, UNSUB_LINGER_MS);
      };
    },
    resync(chat) {
      client.resync(chat);
    },
    send(chat, body, o = {}) {
      return client.send(chat, body, o.replyTo ? { replyTo: o.replyTo } : {}).clientMsgId;
    },
    editMessage(chat, seq, body) {
      return client.editMessage(chat, seq, body).then((r) => r.msg as FullMsg);
    },
    deleteMessage(chat, seq) {
      return client.deleteMessage(chat, seq).then((r) => r.msg as FullMsg);
    },
    react(chat, seq, emoji, on) {
      return client.react(chat, seq, emoji, on).then((r) => (r.msg ?? null) as FullMsg | null);
    },
    openDm(username) {
      return client.openDm(username).then((r) => r.chat);
    },
    retry(_chat, clientMsgId) {
      client.retry(clientMsgId);
    },
    discard(_chat, clientMsgId) {
      client.discard(clientMsgId);
    },
    pending(chat) {
      return client
        .outgoing(chat)
        .filter((o) => o.status === 'pending' || o.status === 'failed')
        .map(toPending);
    },
    onPending(chat, cb) {
      return client.on('outgoing', (o) => {
        if (o.chat === chat) cb(api.pending(chat));
      });
    },
    typing(chat, on) {
      const t = client.typingController(chat);
      if (on) t.keystroke();
      else t.cleared();
    },
    close() {
      closed = true;
      for (const s of subs.values()) if (s.lingerTimer) clearTimeout(s.lingerTimer);
      subs.clear();
      for (const off of offs) off();
      client.close();
    },
  };
  return api;
}
