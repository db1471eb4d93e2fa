// useRealtimeChat(slug): everything the chat room shows, kept live.
//
// It subscribes to the chat through the realtime client (which resumes from the last seq after a
// reconnect, so nothing is missed and nothing repeats), loads the newest page of history, and
// listens to the chat's events: messages, typing (the server sends the whole set of typers each
// time), presence, who has the chat open (activeUsers), membership changes and removal. Our own
// sends show at once as pending and turn into normal messages when the server confirms them by
// seq; failed ones can be retried with the same clientMsgId, so a retry never duplicates.
// Opened at a message (`around`, from a search result), it loads the page of history around that
// message instead of the newest one; newer messages then come by pages (loadNewer), and live ones
// join the list only once it reaches them, so the list never has a hole.
// The chat object and its participants come from useChatDetails (chat.get, kept current), whose
// reply also carries each participant's presence: that is how a newcomer's dot gets right.
import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react';
import { useRealtime, useSession } from '../lib/session';
import type { ConnState, PendingSend, ProtoError, SubReply } from '../lib/realtime-types';
import type { Chat, Msg, Participant, Presence, UiMsg, User } from '../lib/types';
import { useConnectionState } from './use-connection-state';
import { useChatDetails } from './use-chat-details';

const PAGE = 50;

// 'visitor': a public chat the user is not in (chat.get answered with role null): nothing is
// subscribed or loaded, since the server refuses both to a non-participant.
export type RoomStatus = 'loading' | 'ready' | 'error' | 'removed' | 'visitor';

interface State {
  slug: string;
  status: RoomStatus;
  error: ProtoError | null;
  chat: Chat | null; // from the sub reply, until chat.get answers
  msgs: Msg[]; // confirmed, ascending seq, no duplicates
  hasMore: boolean;
  historyLoaded: boolean; // the first page arrived
  loadingOlder: boolean;
  presence: Record<number, Presence>; // by user id
  typing: { users: User[]; others: number };
  activeUsers: User[];
  pending: PendingSend[];
  removedBy: User | null;
  anchor: number | null; // opened at this seq: the list may stop short of the newest message
  newestSeq: number; // the chat's newest seq as far as we know (sub reply, live messages)
  loadingNewer: boolean;
}

type Action =
  | { type: 'reset'; slug: string; anchor: number | null }
  | { type: 'subscribed'; reply: SubReply; resumed: boolean; selfId?: number }
  | { type: 'msgs'; msgs: Msg[] }
  | { type: 'history'; msgs: Msg[]; hasMore: boolean; initial: boolean }
  | { type: 'newer'; msgs: Msg[] }
  | { type: 'loadingNewer'; on: boolean }
  | { type: 'loadingOlder'; on: boolean }
  | { type: 'presence'; p: Presence }
  | { type: 'participants'; participants: Participant[] }
  | { type: 'typing'; users: User[]; others: number }
  | { type: 'active'; users: User[] }
  | { type: 'pending'; pending: PendingSend[] }
  | { type: 'error'; error: ProtoError }
  | { type: 'subError'; error: ProtoError }
  | { type: 'removed'; by: User | null };

function initial(slug: string, anchor: number | null = null): State {
  return {
    anchor,
    newestSeq: 0,
    loadingNewer: false,
    slug,
    status: 'loading',
    error: null,
    chat: null,
    msgs: [],
    hasMore: true,
    historyLoaded: false,
    loadingOlder: false,
    presence: {},
    typing: { users: [], others: 0 },
    activeUsers: [],
    pending: [],
    removedBy: null,
  };
}

// Merges messages into an ascending, duplicate-free list. The common cases (append one newer
// message, prepend an older page) avoid a full sort.
export function mergeMsgs(list: Msg[], add: Msg[]): Msg[] {
  if (add.length === 0) return list;
  const last = list.length ? list[list.length - 1].seq : 0;
  const sortedAdd = add.length > 1 ? [...add].sort((a, b) => a.seq - b.seq) : add;
  if (sortedAdd[0].seq > last) return list.concat(dedupe(sortedAdd));
  const first = list.length ? list[0].seq : Infinity;
  if (sortedAdd[sortedAdd.length - 1].seq < first) return dedupe(sortedAdd).concat(list);
  const bySeq = new Map<number, Msg>();
  for (const m of list) bySeq.set(m.seq, m);
  for (const m of add) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

function dedupe(sorted: Msg[]): Msg[] {
  const out: Msg[] = [];
  for (const m of sorted) if (!out.length || out[out.length - 1].seq !== m.seq) out.push(m);
  return out;
}

function presenceMap(list: Presence[] | undefined, prev: Record<number, Presence>) {
  if (!list) return prev;
  const next = { ...prev };
  for (const p of list) if (p?.user) next[p.user.id] = p;
  return next;
}

function reducer(s: State, a: Action): State {
  if (a.type === 'reset') return initial(a.slug, a.anchor);
  switch (a.type) {
    case 'subscribed': {
      const r = a.reply;
      const msgs = r.reset ? mergeMsgs([], r.msgs || []) : mergeMsgs(s.msgs, r.msgs || []);
      return {
        ...s,
        status: s.status === 'removed' ? s.status : 'ready',
        error: null,
        chat: r.chat ? { ...(s.chat || {}), ...r.chat } : s.chat,
        msgs,
        hasMore: r.reset ? true : s.hasMore,
        presence: presenceMap(r.presence, s.presence),
        typing: { users: (r.typing || []).filter((u) => u.id !== a.selfId), others: r.typingOthers || 0 },
        activeUsers: r.activeUsers || s.activeUsers,
        newestSeq: Math.max(s.newestSeq, r.lastSeq || 0),
      };
    }
    case 'msgs': {
      const newestSeq = Math.max(s.newestSeq, ...a.msgs.map((m) => m.seq));
      if (s.anchor !== null) {
        // Opened at a message: a live one joins only where the list reaches (no hole).
        const last = s.msgs.length ? s.msgs[s.msgs.length - 1].seq : 0;
        const next = s.historyLoaded ? a.msgs.filter((m) => m.seq <= last + 1) : [];
        return { ...s, newestSeq, msgs: mergeMsgs(s.msgs, next) };
      }
      return { ...s, newestSeq, msgs: mergeMsgs(s.msgs, a.msgs) };
    }
    case 'newer':
      return { ...s, msgs: mergeMsgs(s.msgs, a.msgs), loadingNewer: false };
    case 'loadingNewer':
      return { ...s, loadingNewer: a.on };
    case 'history':
      return {
        ...s,
        msgs: mergeMsgs(s.msgs, a.msgs),
        hasMore: a.hasMore,
        historyLoaded: s.historyLoaded || a.initial,
        loadingOlder: false,
      };
    case 'loadingOlder':
      return { ...s, loadingOlder: a.on };
    case 'presence':
      return { ...s, presence: { ...s.presence, [a.p.user.id]: a.p } };
    case 'participants': {
      // chat.get answers with each participant's presence as of the reply.
      const next = { ...s.presence };
      for (const p of a.participants) {
        if (p.state) next[p.id] = { user: { id: p.id, username: p.username }, state: p.state, lastSeen: p.lastSeen ?? null };
      }
      return { ...s, presence: next };
    }
    case 'typing':
      return { ...s, typing: { users: a.users, others: a.others } };
    case 'active':
      return { ...s, activeUsers: a.users };
    case 'pending':
      return { ...s, pending: a.pending };
    case 'error':
      return { ...s, status: s.status === 'ready' ? s.status : 'error', error: a.error, loadingOlder: false };
    case 'subError':
      // The subscription was refused (not a participant, no such chat): the room is closed.
      return { ...s, status: s.status === 'removed' ? s.status : 'error', error: a.error, loadingOlder: false };
    case 'removed':
      return { ...s, status: 'removed', removedBy: a.by, typing: { users: [], others: 0 } };
  }
}

export interface RealtimeChat {
  status: RoomStatus;
  error: ProtoError | null;
  chat: Chat | null;
  participants: Participant[];
  messages: UiMsg[];
  presence: Record<number, Presence>;
  typingUsers: User[];
  typingOthers: number;
  activeUsers: User[];
  connectionState: ConnState;
  hasMore: boolean;
  historyLoaded: boolean;
  loadingOlder: boolean;
  removedBy: User | null;
  send(body: string): void;
  retry(clientMsgId: string): void;
  discard(clientMsgId: string): void;
  setTyping(on: boolean): void;
  loadOlder(): Promise<void>;
  /** Opened at a message and the list stops short of the newest one. */
  hasNewer: boolean;
  loadNewer(): Promise<void>;
  refresh(): void;
}

export function useRealtimeChat(slug: string, around?: number): RealtimeChat {
  const rt = useRealtime();
  const { user: me } = useSession();
  const connectionState = useConnectionState();
  const anchor = around ?? null;
  const [s, dispatch] = useReducer(reducer, slug, (sl) => initial(sl, anchor));
  const sRef = useRef(s);
  sRef.current = s;
  const meId = useRef(me?.id);
  meId.current = me?.id;

  if (s.slug !== slug || s.anchor !== anchor) dispatch({ type: 'reset', slug, anchor });

  const details = useChatDetails(slug);
  useEffect(() => {
    if (details.participants.length) dispatch({ type: 'participants', participants: details.participants });
  }, [details.participants]);

  const loadInitialHistory = useCallback(() => {
    // Around a message: the page that has it in the middle (msg.history's `before` is exclusive).
    const at = anchor !== null ? { before: anchor + PAGE / 2 + 1 } : {};
    rt.request('msg.history', { chat: slug, limit: PAGE, ...at }).then(
      (r) => {
        if (sRef.current.slug === slug) dispatch({ type: 'history', msgs: r.msgs, hasMore: r.hasMore, initial: true });
      },
      (err: ProtoError) => {
        if (sRef.current.slug === slug) dispatch({ type: 'error', error: err });
      },
    );
  }, [rt, slug, anchor]);

  // Participant or not, as chat.get says (null until it answers). Only a participant subscribes
  // and loads history: for anyone else the server answers both with `forbidden`, which the room
  // would show as an error above the Join button.
  const member: boolean | null = details.chat ? details.chat.role != null : null;

  // Subscription and first page. The SDK re-subscribes with `since` after a reconnect (and
  // useChatDetails reloads the participants then); a reset (too much missed) reloads the newest
  // page.
  useEffect(() => {
    if (member !== true) return;
    let first = true;
    const unsub = rt.subscribe(slug, {
      onSubscribed(reply, resumed) {
        dispatch({ type: 'subscribed', reply, resumed, selfId: meId.current });
        if (first) {
          first = false;
          loadInitialHistory();
        }
      },
      onMsg(msg) {
        dispatch({ type: 'msgs', msgs: [msg] });
      },
      onError(err) {
        dispatch({ type: 'subError', error: err });
      },
    });
    return unsub;
  }, [rt, slug, loadInitialHistory, member]);

  // Chat events.
  useEffect(() => {
    const offs = [
      rt.on('typing', (e) => {
        if (e.chat !== slug) return;
        const users = e.users.filter((u) => u.id !== me?.id);
        dispatch({ type: 'typing', users, others: e.others || 0 });
      }),
      rt.on('presence', (e) => dispatch({ type: 'presence', p: e })),
      rt.on('chat.active', (e) => {
        if (e.chat === slug) dispatch({ type: 'active', users: e.activeUsers });
      }),
      // The joiner's presence rides on the event (useChatDetails reloads the participants).
      rt.on('participant.joined', (e) => {
        if (e.chat === slug && e.presence) dispatch({ type: 'presence', p: e.presence });
      }),
      rt.on('removed', (e) => {
        if (e.chat === slug) dispatch({ type: 'removed', by: e.by || null });
      }),
    ];
    return () => offs.forEach((f) => f());
  }, [rt, slug, me?.id]);

  // Our own pending and failed sends.
  useEffect(() => {
    dispatch({ type: 'pending', pending: rt.pending(slug) });
    return rt.onPending(slug, (p) => dispatch({ type: 'pending', pending: p }));
  }, [rt, slug]);

  // Read marker: while the page is visible, mark the newest message read (throttled).
  const lastSeq = s.msgs.length ? s.msgs[s.msgs.length - 1].seq : 0;
  const readSent = useRef(0);
  useEffect(() => {
    if (!lastSeq || s.status !== 'ready') return;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const mark = () => {
      if (document.visibilityState !== 'visible' || lastSeq <= readSent.current) return;
      readSent.current = lastSeq;
      // The server tells this user's sockets (this one too) with a `read` event: the chat list
      // listens to that.
      rt.request('read', { chat: slug, seq: lastSeq }).catch(() => {
        readSent.current = 0;
      });
    };
    timer = setTimeout(mark, 300);
    document.addEventListener('visibilitychange', mark);
    return () => {
      if (timer) clearTimeout(timer);
      document.removeEventListener('visibilitychange', mark);
    };
  }, [rt, slug, lastSeq, s.status]);
  useEffect(() => {
    readSent.current = 0;
  }, [slug]);

  const messages = useMemo<UiMsg[]>(() => {
    const confirmedIds = new Set<string>();
    const out: UiMsg[] = s.msgs.map((m) => {
      if (m.clientMsgId && m.author.id === me?.id) confirmedIds.add(m.clientMsgId);
      return {
        key: m.clientMsgId && m.author.id === me?.id ? m.clientMsgId : `s${m.seq}`,
        seq: m.seq,
        author: m.author,
        body: m.body,
        createdAt: m.createdAt,
        clientMsgId: m.clientMsgId,
        status: 'sent',
      };
    });
    if (me) {
      for (const p of s.pending) {
        if (confirmedIds.has(p.clientMsgId)) continue;
        out.push({
          key: p.clientMsgId,
          seq: null,
          author: me,
          body: p.body,
          createdAt: p.createdAt,
          clientMsgId: p.clientMsgId,
          status: p.status,
          error: p.error?.message ? `${p.error.code}: ${p.error.message}` : p.error?.code,
        });
      }
    }
    return out;
  }, [s.msgs, s.pending, me]);

  const loadOlder = useCallback(async () => {
    const cur = sRef.current;
    if (cur.loadingOlder || !cur.hasMore || !cur.historyLoaded) return;
    const before = cur.msgs.length ? cur.msgs[0].seq : undefined;
    if (before === 1) {
      dispatch({ type: 'history', msgs: [], hasMore: false, initial: false });
      return;
    }
    dispatch({ type: 'loadingOlder', on: true });
    try {
      const r = await rt.request('msg.history', {
        chat: slug,
        limit: PAGE,
        ...(before ? { before } : {}),
      });
      if (sRef.current.slug === slug) dispatch({ type: 'history', msgs: r.msgs, hasMore: r.hasMore, initial: false });
    } catch (err) {
      if (sRef.current.slug === slug) dispatch({ type: 'loadingOlder', on: false });
      throw err;
    }
  }, [rt, slug]);

  const loadNewer = useCallback(async () => {
    const cur = sRef.current;
    if (cur.loadingNewer || !cur.historyLoaded || !cur.msgs.length) return;
    const last = cur.msgs[cur.msgs.length - 1].seq;
    dispatch({ type: 'loadingNewer', on: true });
    try {
      // The PAGE messages after `last`: those before last + PAGE + 1, newest PAGE of them.
      const r = await rt.request('msg.history', { chat: slug, limit: PAGE, before: last + PAGE + 1 });
      if (sRef.current.slug === slug) dispatch({ type: 'newer', msgs: r.msgs });
    } catch (err) {
      if (sRef.current.slug === slug) dispatch({ type: 'loadingNewer', on: false });
      throw err;
    }
  }, [rt, slug]);
  const lastLoaded = s.msgs.length ? s.msgs[s.msgs.length - 1].seq : 0;
  const hasNewer = s.anchor !== null && s.historyLoaded && lastLoaded < s.newestSeq;

  const send = useCallback(
    (body: string) => {
      if (!body.trim()) return;
      rt.send(slug, body);
    },
    [rt, slug],
  );
  const retry = useCallback((id: string) => rt.retry(slug, id), [rt, slug]);
  const discard = useCallback((id: string) => rt.discard(slug, id), [rt, slug]);
  const setTyping = useCallback((on: boolean) => rt.typing(slug, on), [rt, slug]);

  // chat.get is the authority on the chat; the sub reply's copy fills in until it answers. A
  // refused chat.get before anything else worked closes the room like a refused sub.
  const status: RoomStatus =
    s.status === 'loading' && details.error ? 'error' : s.status === 'loading' && member === false ? 'visitor' : s.status;
  return {
    status,
    error: s.error ?? (status === 'error' ? details.error : null),
    chat: details.chat ?? s.chat,
    participants: details.participants,
    messages,
    presence: s.presence,
    typingUsers: s.typing.users,
    typingOthers: s.typing.others,
    activeUsers: s.activeUsers,
    connectionState,
    hasMore: s.hasMore,
    historyLoaded: s.historyLoaded,
    loadingOlder: s.loadingOlder,
    removedBy: s.removedBy,
    send,
    retry,
    discard,
    setTyping,
    loadOlder,
    hasNewer,
    loadNewer,
    refresh: details.reload,
  };
}
