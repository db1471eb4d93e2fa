// useOpenDm(): "Message" on a person. Asks the server for the direct-message chat with them
// (`dm.open`: created on first use, the same chat afterwards from either side) and opens it.
import { useCallback, useState } from 'react';
import { useRealtime } from '../lib/session';
import { navigate } from '../lib/router';
import { errorText } from '../lib/format';

export function useOpenDm(): { open(username: string): Promise<boolean>; busy: string | null; error: string | null } {
  const rt = useRealtime();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const open = useCallback(
    async (username: string) => {
      setBusy(username);
      setError(null);
      try {
        const chat = await rt.openDm(username);
        navigate(`/chat/${encodeURIComponent(chat.slug)}`);
        return true;
      } catch (err) {
        setError(errorText(err));
        return false;
      } finally {
        setBusy(null);
      }
    },
    [rt],
  );
  return { open, busy, error };
}
