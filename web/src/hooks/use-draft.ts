// useDraft(key): the composer's text, kept per chat in localStorage, so what was typed and not sent
// survives switching chats and reloading the page. Written on every change (a draft is small);
// emptied on send. Without a key (no user yet) it is plain state.
import { useCallback, useState } from 'react';

const MAX_CHARS = 20_000; // above the 16 KB message limit; a runaway paste is not kept

function load(key: string | undefined): string {
  if (!key) return '';
  try {
    return localStorage.getItem(key) ?? '';
  } catch {
    return '';
  }
}

export function useDraft(key: string | undefined): [string, (text: string) => void] {
  const [state, setState] = useState(() => ({ key, text: load(key) }));
  // Another chat: its own draft (render-time reset, as React recommends for props-derived state).
  let current = state;
  if (state.key !== key) {
    current = { key, text: load(key) };
    setState(current);
  }
  const set = useCallback(
    (text: string) => {
      setState({ key, text });
      if (!key) return;
      try {
        if (text && text.length <= MAX_CHARS) localStorage.setItem(key, text);
        else localStorage.removeItem(key);
      } catch {
        // storage full or disabled: the draft lives as long as the page
      }
    },
    [key],
  );
  return [current.text, set];
}
