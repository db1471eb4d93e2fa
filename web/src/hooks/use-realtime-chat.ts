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
import {
  applyBatch,
  applyDelta,
  applyEntries,
  applyStreams,
  emptyTimeline,
  isItemKind,
  type Timeline,
} from '../../../clients/js/src/timeline.js';
import type { MsgDeltaEvent } from '../../../clients/js/src/types.js';
import { useConnectionState } from './use-connection-state';
import { useChatDetails } from './use-chat-details';
import { cachedUiMsg, EMPTY_MODEL, toUiMsg } from '../lib/ui-msgs';

export { toUiMsg };

const PAGE = 50;
const READ_EVERY_MS = 300; // the most often a room sends `read`

// 'visitor': a public chat the user is not in (chat.get answered with role null): nothing is
// subscribed or loaded, since the server refuses both to a non-participant.
export type RoomStatus = 'loading' | 'ready' | 'error' | 'removed' | 'visitor';

interface State {
  slug: string;
  status: RoomStatus;
  error: ProtoError | null;
  chat: Chat | null; // from the sub reply, until chat.get answers
  msgs: Msg[]; // confirmed, ascending seq, no duplicates: timeline.items (text and notices)
  timeline: Timeline; // every entry folded (clients/js/src/timeline.ts)
  hasMore: boolean;
  historyLoaded: boolean; // the first page arrived
  loadingOlder: boolean;
  presence: Record<number, Presence>; // by user id
  typing: { users: User[]; others: number };
  activeUsers: User[];
  /** How many have the chat open: activeUsers is only the first ones in a big chat. */
  activeCount: number;
  pending: PendingSend[];
  removedBy: User | null;
  anchor: number | null; // opened at this seq: the list may stop short of the newest message
  // Opened at a message: the seq up to which the list has every entry (items beyond it would
  // leave a hole, so they wait for loadNewer). Infinity when the list follows the newest entry.
  loadedTo: number;
  loadingNewer: boolean;
  // A stream's delta arrived with bytes missing before it: a fresh `sub` brings the text so far.
  needResync: boolean;
}

type Action =
  | { type: 'reset'; slug: string; anchor: number | null }
  | { type: 'subscribed'; reply: SubReply; resumed: boolean; selfId?: number }
  | { type: 'msgs'; msgs: Msg[] }
  | { type: 'delta'; d: MsgDeltaEvent }
  | { type: 'resyncing' }
  | { type: 'history'; msgs: Msg[]; hasMore: boolean; initial: boolean }
  | { type: 'newer'; msgs: Msg[] }
  | { type: 'loadingNewer'; on: boolean }
  | { type: 'loadingOlder'; on: boolean }
  | { type: 'presence'; p: Presence }
  | { type: 'participants'; participants: Participant[] }
  | { type: 'typing'; users: User[]; others: number }
  | { type: 'active'; users: User[]; count: number }
  | { type: 'pending'; pending: PendingSend[] }
  | { type: 'error'; error: ProtoError }
  | { type: 'subError'; error: ProtoError }
  | { type: 'removed'; by: User | null };

function initial(slug: string, anchor: number | null = null): State {
  return {
    anchor,
    loadedTo: anchor !== null ? 0 : Infinity,
    loadingNewer: false,
    needResync: false,
    slug,
    status: 'loading',
    error: null,
    chat: null,
    timeline: emptyTimeline(),
    msgs: [],
    hasMore: true,
    historyLoaded: false,
    loadingOlder: false,
    presence: {},
    typing: { users: [], others: 0 },
    activeUsers: [],
    activeCount: 0,
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

// Opened at a message (loadedTo finite): the entries that may join the timeline now. Changes
// (edit, delete, reaction) always may: they only touch a message that is loaded. A text message or
// notice joins only where the list reaches (no hole), and only once the first page is there;
// the others come later by loadNewer, folded as of that read.
function admit(s: State, entries: Msg[]): { entries: Msg[]; loadedTo: number } {
  if (s.loadedTo === Infinity) return { entries, loadedTo: Infinity };
  let loadedTo = s.loadedTo;
  const out: Msg[] = [];
  for (const m of [...entries].sort((x, y) => x.seq - y.seq)) {
    if (s.historyLoaded && m.seq <= loadedTo + 1) {
      out.push(m);
      loadedTo = Math.max(loadedTo, m.seq);
    } else if (!isItemKind(m)) {
      out.push(m);
    }
  }
  return { entries: out, loadedTo };
}

// The newest seq of a page read from msg.history: entries of every kind come back, so the list
// has every entry up to it (one committed after the read arrives live, or by the next page).
function pageEnd(loadedTo: number, msgs: Msg[]): number {
  let end = loadedTo;
  for (const m of msgs) if (m.seq > end) end = m.seq;
  return end;
}

function reducer(s: State, a: Action): State {
  if (a.type === 'reset') return initial(a.slug, a.anchor);
  switch (a.type) {
    case 'subscribed': {
      const r = a.reply;
      // Folded: edits, deletions and reactions change the message they name (issue 17).
      const base = r.reset ? emptyTimeline(a.selfId ?? null) : { ...s.timeline, me: a.selfId ?? s.timeline.me };
      // A reset (too much missed) starts over from the newest entries: the list follows them.
      const adm = r.reset ? { entries: r.msgs || [], loadedTo: Infinity } : admit(s, r.msgs || []);
      // Streams still open, with their text so far (deltas beyond it follow).
      const timeline = applyStreams(applyBatch(base, adm.entries, r.lastSeq), r.streams, r.lastSeq);
      const msgs = timeline.items;
      return {
        ...s,
        timeline,
        loadedTo: adm.loadedTo,
        status: s.status === 'removed' ? s.status : 'ready',
        error: null,
        chat: r.chat ? { ...(s.chat || {}), ...r.chat } : s.chat,
        msgs,
        hasMore: r.reset ? true : s.hasMore,
        presence: presenceMap(r.presence, s.presence),
        typing: { users: (r.typing || []).filter((u) => u.id !== a.selfId), others: r.typingOthers || 0 },
        activeUsers: r.activeUsers || s.activeUsers,
        activeCount: r.activeCount ?? r.activeUsers?.length ?? s.activeCount,
      };
    }
    case 'msgs': {
      const adm = admit(s, a.msgs);
      let timeline = applyEntries(s.timeline, adm.entries);
      // Entries left out still count as seen: the chat goes on past the list (hasNewer), and a
      // later read is folded as of them.
      for (const m of a.msgs) if (m.seq > timeline.lastSeq) timeline = { ...timeline, lastSeq: m.seq };
      return { ...s, timeline, loadedTo: adm.loadedTo, msgs: timeline.items };
    }
    case 'delta': {
      // Only the streaming message changes: every other item keeps its identity (memoised rows).
      const r = applyDelta(s.timeline, a.d);
      if (r.gap) return s.needResync ? s : { ...s, needResync: true };
      if (!r.applied) return s;
      return { ...s, timeline: r.timeline, msgs: r.timeline.items };
    }
    case 'resyncing':
      return { ...s, needResync: false };
    case 'newer': {
      // A page after the list's end, folded as of the read (newer than every entry seen).
      const timeline = applyBatch(s.timeline, a.msgs);
      return { ...s, timeline, msgs: timeline.items, loadedTo: pageEnd(s.loadedTo, a.msgs), loadingNewer: false };
    }
    case 'loadingNewer':
      return { ...s, loadingNewer: a.on };
    case 'history': {
      const timeline = applyBatch(s.timeline, a.msgs);
      return {
        ...s,
        timeline,
        msgs: timeline.items,
        hasMore: a.hasMore,
        historyLoaded: s.historyLoaded || a.initial,
        loadedTo: a.initial && s.loadedTo !== Infinity ? pageEnd(s.loadedTo, a.msgs) : s.loadedTo,
        loadingOlder: false,
      };
    }
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
      return { ...s, activeUsers: a.users, activeCount: a.count };
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
  /** More participants than loaded (a big chat): loadMoreParticipants() fetches the next page. */
  participantsMore: boolean;
  loadMoreParticipants(): void;
  messages: UiMsg[];
  presence: Record<number, Presence>;
  typingUsers: User[];
  typingOthers: number;
  activeUsers: User[];
  /** How many have the chat open: activeUsers is only the first ones in a big chat. */
  activeCount: number;
  connectionState: ConnState;
  hasMore: boolean;
  historyLoaded: boolean;
  loadingOlder: boolean;
  removedBy: User | null;
  /** `replyTo`: the seq of the message answered. */
  send(body: string, replyTo?: number): void;
  edit(seq: number, body: string): Promise<void>;
  remove(seq: number): Promise<void>;
  react(seq: number, emoji: string, on: boolean): Promise<void>;
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
      onDelta(d) {
        dispatch({ type: 'delta', d });
      },
      onError(err) {
        dispatch({ type: 'subError', error: err });
      },
    });
    return unsub;
  }, [rt, slug, loadInitialHistory, member]);

  // A gap in a stream's deltas: ask where the chat stands (the sub reply's `streams`).
  useEffect(() => {
    if (!s.needResync) return;
    dispatch({ type: 'resyncing' });
    rt.resync(slug);
  }, [rt, slug, s.needResync]);

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
        if (e.chat === slug) dispatch({ type: 'active', users: e.activeUsers, count: e.activeCount ?? e.activeUsers.length });
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

  // Read marker: while the page is visible, mark the newest message read, at most every
  // READ_EVERY_MS: at once when the last read is older, else when that time is up. (A timer
  // restarted by every new message never fired in a busy chat, and one cancelled by leaving the
  // room lost the read: the list kept the badge.) Leaving the chat marks what it showed.
  const lastSeq = s.msgs.length ? s.msgs[s.msgs.length - 1].seq : 0;
  const readSent = useRef(0);
  const readAt = useRef(0);
  const readShown = useRef(0);
  const sendRead = useCallback(
    (seq: number) => {
      if (document.visibilityState !== 'visible' || seq <= readSent.current) return;
      readSent.current = seq;
      readAt.current = Date.now();
      // The server tells this user's sockets (this one too) with a `read` event: the chat list
      // listens to that.
      rt.request('read', { chat: slug, seq }).catch(() => {
        readSent.current = 0;
      });
    },
    [rt, slug],
  );
  useEffect(() => {
    if (!lastSeq || s.status !== 'ready') return;
    readShown.current = lastSeq;
    const mark = () => sendRead(lastSeq);
    const wait = READ_EVERY_MS - (Date.now() - readAt.current);
    const timer = wait > 0 ? setTimeout(mark, wait) : null;
    if (wait <= 0) mark();
    document.addEventListener('visibilitychange', mark);
    return () => {
      if (timer) clearTimeout(timer);
      document.removeEventListener('visibilitychange', mark);
    };
  }, [sendRead, lastSeq, s.status]);
  useEffect(
    () => () => {
      if (readShown.current) sendRead(readShown.current);
    },
    [sendRead],
  );
  useEffect(() => {
    readSent.current = 0;
    readAt.current = 0;
    readShown.current = 0;
  }, [slug]);

  const messages = useMemo<UiMsg[]>(() => {
    const confirmedIds = new Set<string>();
    const out: UiMsg[] = [];
    for (const m of s.msgs) {
      const ui = cachedUiMsg(m, me?.id);
      if (!ui) continue;
      if (ui.clientMsgId && m.author.id === me?.id) confirmedIds.add(ui.clientMsgId);
      out.push(ui);
    }
    if (me) {
      for (const p of s.pending) {
        if (confirmedIds.has(p.clientMsgId)) continue;
        out.push({
          ...EMPTY_MODEL,
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
    if (cur.loadingNewer || !cur.historyLoaded || cur.loadedTo === Infinity) return;
    const from = cur.loadedTo;
    dispatch({ type: 'loadingNewer', on: true });
    try {
      // The PAGE entries after `from`: those before from + PAGE + 1, newest PAGE of them.
      const r = await rt.request('msg.history', { chat: slug, limit: PAGE, before: from + PAGE + 1 });
      if (sRef.current.slug === slug) dispatch({ type: 'newer', msgs: r.msgs });
    } catch (err) {
      if (sRef.current.slug === slug) dispatch({ type: 'loadingNewer', on: false });
      throw err;
    }
  }, [rt, slug]);
  const hasNewer = s.loadedTo !== Infinity && s.historyLoaded && s.loadedTo < s.timeline.lastSeq;

  const send = useCallback(
    (body: string, replyTo?: number) => {
      if (!body.trim()) return;
      rt.send(slug, body, replyTo ? { replyTo } : {});
    },
    [rt, slug],
  );
  // The new entry arrives as a live `msg` event too, which is what updates the view; the reply
  // only says it worked.
  const edit = useCallback(async (seq: number, body: string) => void (await rt.editMessage(slug, seq, body)), [rt, slug]);
  const remove = useCallback(async (seq: number) => void (await rt.deleteMessage(slug, seq)), [rt, slug]);
  const react = useCallback(
    async (seq: number, emoji: string, on: boolean) => void (await rt.react(slug, seq, emoji, on)),
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
    participantsMore: details.more,
    loadMoreParticipants: details.loadMore,
    messages,
    presence: s.presence,
    typingUsers: s.typing.users,
    typingOthers: s.typing.others,
    activeUsers: s.activeUsers,
    activeCount: s.activeCount,
    connectionState,
    hasMore: s.hasMore,
    historyLoaded: s.historyLoaded,
    loadingOlder: s.loadingOlder,
    removedBy: s.removedBy,
    send,
    edit,
    remove,
    react,
    retry,
    discard,
    setTyping,
    loadOlder,
    hasNewer,
    loadNewer,
    refresh: details.reload,
  };
}
