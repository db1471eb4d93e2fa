// The signed-in user's chats (most recent activity first, with unread counts and the last
// message) and pending invitations, kept current: any event that can change the list triggers
// a debounced reload of chat.list, and so does every reconnection. The server announces this
// user's own changes too (`read` for a read marker, `chat.created`, `participant.joined` for a
// join, `participant.left` for a leave, `invite` for an answer), to every one of their sockets.
import { useCallback, useEffect, useRef, useState } from 'react';
import { useRealtime } from '../lib/session';
import type { ProtoError } from '../lib/realtime-types';
import type { ServerEventName } from '../../../clients/js/src/types.js';
import type { Chat, Invitation } from '../lib/types';

const EVENTS: ServerEventName[] = [
  'msg',
  'read',
  'chat.created',
  'chat.updated',
  'participant.joined',
  'participant.left',
  'participant.removed',
  'participant.updated',
  'removed',
  'invite',
  // A mention in a chat not open here: its mention count changed (issue 17).
  'mention',
];

export interface ChatList {
  chats: Chat[];
  invitations: Invitation[];
  loaded: boolean;
  error: ProtoError | null;
  reload(): void;
}

export function useChatList(): ChatList {
  const rt = useRealtime();
  const [chats, setChats] = useState<Chat[]>([]);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<ProtoError | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const inflight = useRef(false);
  const again = useRef(false);

  const load = useCallback(() => {
    if (inflight.current) {
      again.current = true;
      return;
    }
    inflight.current = true;
    rt.request('chat.list', {})
      .then(
        (r) => {
          setChats(r.chats || []);
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
    return () => {
      offs.forEach((f) => f());
      if (timer.current) clearTimeout(timer.current);
    };
  }, [rt, load, schedule]);

  return { chats, invitations, loaded, error, reload: load };
}
