// The signed-in user's chats (most recent activity first, with unread counts and the last
// message) and pending invitations, kept current for every chat the user is in, open or not.
// One provider (at the shell) owns the list, so the sidebar, the room's "New messages" divider,
// the tab title and notifications all read the same numbers.
// - `chat.activity` (one small event per new entry, to every socket of every participant; for the
//   chat a socket has open the SDK makes it from the msg; and to the reader's own sockets when a
//   read marker moves) patches the chat in place: preview,
//   unread and mention counts, and its position; no reload.
// - `chat.notify` (the level changed in another tab) patches `notify`.
// - Membership and chat changes (`chat.created`, `chat.updated`, `participant.*`, `removed`,
//   `invite`), an activity for a chat not in the list, and every reconnection trigger a
//   debounced reload of chat.list.
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { useRealtime, useSession } from '../lib/session';
import type { ProtoError } from '../lib/realtime-types';
import type { ServerEventName } from '../../../clients/js/src/types.js';
import type { Chat, Invitation } from '../lib/types';
import { onChatActivity, onChatNotify } from '../lib/live';
import { setUnreadTotal } from '../lib/attention';
import { notifyForActivity } from '../lib/notify-activity';
import { applyActivity, placeByActivity } from '../lib/live-rules';

const EVENTS: ServerEventName[] = [
  'chat.created',
  'chat.updated',
  'participant.joined',
  'participant.left',
  'participant.removed',
  'participant.updated',
  'removed',
  'invite',
  // Not 'mention': the chat.activity of the same message carries the new mention count.
];

export interface ChatList {
  chats: Chat[];
  invitations: Invitation[];
  loaded: boolean;
  error: ProtoError | null;
  reload(): void;
  /** Applies a change this tab made (the server tells only the user's other sockets). */
  patchChat(slug: string, patch: Partial<Chat>): void;
}

const ChatListContext = createContext<ChatList | null>(null);

export function ChatListProvider({ activeSlug, children }: { activeSlug?: string; children: ReactNode }) {
  const rt = useRealtime();
  const { user } = useSession();
  const [chats, setChats] = useState<Chat[]>([]);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<ProtoError | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const inflight = useRef(false);
  const again = useRef(false);
  const chatsRef = useRef<Chat[]>([]);
  chatsRef.current = chats;
  const activeRef = useRef(activeSlug);
  activeRef.current = activeSlug;
  const meRef = useRef(user?.id);
  meRef.current = user?.id;

  const load = useCallback(() => {
    if (inflight.current) {
      again.current = true;
      return;
    }
    inflight.current = true;
    rt.request('chat.list', {})
      .then(
        (r) => {
          setChats((r.chats || []) as Chat[]);
          setInvitations((r.invitations || []).filter((i) => i.status === 'pending'));
          setLoaded(true);
          setError(null);
        },
        (err: ProtoError) => setError(err),
      )
      .finally(() => {
        inflight.current = false;
        if (again.current) {
          again.current = false;
          load();
        }
      });
  }, [rt]);

  const schedule = useCallback(() => {
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(load, 120);
  }, [load]);

  useEffect(() => {
    load();
    const offs = EVENTS.map((ev) => rt.on(ev, schedule));
    offs.push(rt.onReconnect(schedule));
    offs.push(
      onChatActivity(rt, (e) => {
        const before = chatsRef.current.find((c) => c.slug === e.chat);
        if (!before) {
          schedule(); // a chat we have not listed yet (joined from elsewhere): ask for the list
          return;
        }
        notifyForActivity(e, before, { selfId: meRef.current, activeSlug: activeRef.current });
        setChats((list) => {
          const c = list.find((x) => x.slug === e.chat);
          return c ? placeByActivity(list, applyActivity(c, e)) : list;
        });
      }),
      onChatNotify(rt, (e) => setChats((list) => list.map((c) => (c.slug === e.chat ? { ...c, notify: e.level } : c)))),
    );
    return () => {
      offs.forEach((f) => f());
      if (timer.current) clearTimeout(timer.current);
    };
  }, [rt, load, schedule]);

  // The unread total in the tab title and on the favicon.
  const total = chats.reduce((n, c) => n + (c.unread || 0), 0);
  useEffect(() => {
    setUnreadTotal(total);
  }, [total]);
  useEffect(() => () => setUnreadTotal(0), []);

  const patchChat = useCallback((slug: string, patch: Partial<Chat>) => {
    setChats((list) => list.map((c) => (c.slug === slug ? { ...c, ...patch } : c)));
  }, []);
  const value: ChatList = { chats, invitations, loaded, error, reload: load, patchChat };
  return createElement(ChatListContext.Provider, { value }, children);
}

export function useChatList(): ChatList {
  const v = useContext(ChatListContext);
  if (!v) throw new Error('useChatList outside ChatListProvider');
  return v;
}

// The level a chat's notifications are at, after local changes (settings page) are applied.
export function useChatListEntry(slug: string): Chat | undefined {
  return useChatList().chats.find((c) => c.slug === slug);
}
