// useChatDetails(slug): the chat object and its participants (with their presence as of the
// reply), from `chat.get`, kept current. The chat room and the settings page both show these; this
// is the one place that loads them: again on every membership event of the chat, on `chat.updated`
// (merged, keeping the caller's role, which that event does not carry) and after a reconnect.
// Being removed from the chat is an error (`forbidden`); the user leaves the participants shown.
import { useCallback, useEffect, useRef, useState } from 'react';
import { useRealtime } from '../lib/session';
import type { ProtoError } from '../lib/realtime-types';
import type { Chat, Participant } from '../lib/types';

export interface ChatDetails {
  chat: Chat | null;
  participants: Participant[];
  error: ProtoError | null;
  reload(): void;
}

export function useChatDetails(slug: string): ChatDetails {
  const rt = useRealtime();
  const [state, setState] = useState<{ slug: string; chat: Chat | null; participants: Participant[]; error: ProtoError | null }>(
    () => ({ slug, chat: null, participants: [], error: null }),
  );
  const current = useRef(slug);
  current.current = slug;

  const reload = useCallback(() => {
    rt.request('chat.get', { chat: slug }).then(
      (r) => {
        if (current.current === slug) setState({ slug, chat: r.chat, participants: r.participants, error: null });
      },
      (err: ProtoError) => {
        if (current.current === slug) setState((s) => ({ ...(s.slug === slug ? s : { chat: null, participants: [] }), slug, error: err }));
      },
    );
  }, [rt, slug]);

  useEffect(() => {
    reload();
    const mine = (e: { chat: string }) => e.chat === slug && reload();
    const offs = [
      rt.on('participant.joined', mine),
      rt.on('participant.left', mine),
      rt.on('participant.removed', mine),
      rt.on('participant.updated', mine),
      rt.on('chat.updated', (e) => {
        if (e.chat.slug !== slug) return;
        const { role: _role, ...rest } = e.chat;
        setState((s) => (s.slug === slug && s.chat ? { ...s, chat: { ...s.chat, ...rest } } : s));
      }),
      rt.on('removed', (e) => {
        if (e.chat !== slug) return;
        // No participant.removed reaches the removed user: take them out of what they see here.
        const error = { code: 'forbidden', message: 'You were removed from this chat.' };
        const me = rt.user?.id;
        setState((s) => ({
          ...s,
          slug,
          error,
          participants: s.participants.filter((p) => p.id !== me),
          chat: s.chat ? { ...s.chat, role: null, participantCount: Math.max(0, s.chat.participantCount - 1) } : s.chat,
        }));
      }),
      rt.onReconnect(reload),
    ];
    return () => offs.forEach((f) => f());
  }, [rt, slug, reload]);

  // A new slug shows nothing of the old chat while its own reply is on the way.
  if (state.slug !== slug) return { chat: null, participants: [], error: null, reload };
  return { chat: state.chat, participants: state.participants, error: state.error, reload };
}
