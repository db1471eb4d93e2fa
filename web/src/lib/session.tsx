// Who is signed in, and the one realtime connection of this tab. The connection is made when a
// user is known (after /api/me, login or signup: the session cookie authenticates the WebSocket)
// and closed on logout. A 4001 close (session ended elsewhere) sends the user back to log in.
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { logout as apiLogout } from '../../../clients/js/src/http.js';
import { createRealtime } from './realtime';
import { navigate } from './router';
import { onUserUpdated } from './live';
import { clearUsers, putUser } from './users';
import type { Realtime } from './realtime-types';
import type { User } from './types';

interface Session {
  user: User | null;
  rt: Realtime | null;
  setUser(u: User | null): void;
  logout(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ initialUser, children }: { initialUser: User | null; children: ReactNode }) {
  const [user, setUser] = useState<User | null>(initialUser);
  const [rt, setRt] = useState<Realtime | null>(null);

  useEffect(() => {
    if (!user) {
      setRt(null);
      return;
    }
    const conn = createRealtime({
      userId: user.id,
      onSessionEnded: () => setUser(null),
    });
    setRt(conn);
    // Profile changes (ours from another tab, or anyone's we share a chat with).
    const off = onUserUpdated(conn, ({ user: u }) => {
      if (!u || typeof u.id !== 'number') return;
      putUser(u);
      setUser((cur) => (cur && cur.id === u.id ? { ...cur, ...u } : cur));
    });
    return () => {
      off();
      conn.close();
      clearUsers();
    };
  }, [user?.id]);

  const value = useMemo<Session>(
    () => ({
      user,
      rt: rt,
      setUser,
      async logout() {
        try {
          await apiLogout();
        } finally {
          setUser(null);
          // Logging out on purpose goes to a plain /login: only a session that ended by itself
          // keeps `next` (the page to return to), which another account should not inherit.
          navigate('/login', { replace: true });
        }
      },
    }),
    [user, rt],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

// The realtime connection; only call under a signed-in part of the tree (see AuthedApp).
export function useRealtime(): Realtime {
  const { rt } = useSession();
  if (!rt) throw new Error('useRealtime without a connection');
  return rt;
}
