// useChatDetails(slug): the chat object and its participants (with their presence as of the
// reply), from `chat.get`, kept current. The chat room and the settings page both show these; this
// is the one place that loads them: again on every membership event of the chat, on `chat.updated`
// (merged, keeping the caller's role, which that event does not carry) and after a reconnect.
// Being removed from the chat is an error (`forbidden`); the user leaves the participants shown.
// Participants come a page at a time (PAGE, by user id): chat.get gives the first, loadMore()
// asks chat.members for the next while `more` (issue 15: a big chat has up to 10,000).
import { useCallback, useEffect, useRef, useState } from 'react';
import { useRealtime } from '../lib/session';
import type { ProtoError } from '../lib/realtime-types';
import type { Chat, Participant } from '../lib/types';

export interface ChatDetails {
  chat: Chat | null;
  participants: Participant[];
  /** More participants than those loaded: loadMore() fetches the next page. */
  more: boolean;
  error: ProtoError | null;
  reload(): void;
  loadMore(): void;
}

export const PARTICIPANTS_PAGE = 200;

type DetailsState = {
  slug: string;
  chat: Chat | null;
  participants: Participant[];
  more: boolean;
  error: ProtoError | null;
};

export function useChatDetails(slug: string): ChatDetails {
  const rt = useRealtime();
  const [state, setState] = useState<DetailsState>(() => ({ slug, chat: null, participants: [], more: false, error: null }));
  const current = useRef(slug);
  current.current = slug;
  const loading = useRef(false);

  const reload = useCallback(() => {
    rt.request('chat.get', { chat: slug, limit: PARTICIPANTS_PAGE }).then(
      (r) => {
        if (current.current === slug)
          setState({ slug, chat: r.chat, participants: r.participants, more: r.participantsMore === true, error: null });
      },
      (err: ProtoError) => {
        if (current.current === slug)
          setState((s) => ({ ...(s.slug === slug ? s : { chat: null, participants: [], more: false }), slug, error: err }));
      },
    );
  }, [rt, slug]);

  const last = state.slug === slug ? state.participants[state.participants.length - 1]?.id : undefined;
  const loadMore = useCallback(() => {
    if (last === undefined || loading.current) return;
    loading.current = true;
    rt.request('chat.members', { chat: slug, after: last, limit: PARTICIPANTS_PAGE }).then(
      (r) => {
        loading.current = false;
        if (current.current !== slug) return;
        setState((s) => {
          if (s.slug !== slug || s.participants[s.participants.length - 1]?.id !== last) return s; // reloaded meanwhile
          return { ...s, participants: [...s.participants, ...r.members], more: r.hasMore };
        });
      },
      () => {
        loading.current = false;
      },
    );
  }, [rt, slug, last]);

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
  if (state.slug !== slug) return { chat: null, participants: [], more: false, error: null, reload, loadMore };
  return { chat: state.chat, participants: state.participants, more: state.more, error: state.error, reload, loadMore };
}
