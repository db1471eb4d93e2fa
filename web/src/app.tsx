// Routes: /login, /signup, /chat, /chat/:slug (?msg=seq: opened at that message, from a search
// result), /chat/:slug/settings, /browse, /profile, /bots (the user's bot accounts).
// Signed-out visitors of an app route are sent to /login?next=<where they were going>, and come
// back there after logging in or signing up (a shared chat link survives login); signed-in
// visitors of the auth pages go to `next` or /chat. Ctrl/Cmd+K opens the quick switcher.
import { useEffect, useState } from 'react';
import { matchPath, navigate, usePath, useQuery } from './lib/router';
import { useSession } from './lib/session';
import { AuthPage, nextPath } from './pages/auth-page';
import { ChatSidebar } from './pages/chat-list';
import { ChatRoom } from './pages/chat-room';
import { ChatSettings } from './pages/chat-settings';
import { BrowsePage } from './pages/browse';
import { ProfilePage } from './pages/profile';
import { BotsPage } from './pages/bots';
import { ChatListProvider } from './hooks/use-chat-list';
import { useConnectionState } from './hooks/use-connection-state';
import { setPageTitle } from './lib/attention';
import { IconChat } from './components/ui/icons';
import { SearchPanel } from './components/chat/search-panel';
import { QuickSwitcher } from './components/chat/quick-switcher';

export function App() {
  const path = usePath();
  const { user, rt } = useSession();
  const isAuthPage = path === '/login' || path === '/signup';

  useEffect(() => {
    if (!user && !isAuthPage) {
      const here = location.pathname + location.search;
      navigate(here === '/' || here === '/chat' ? '/login' : `/login?next=${encodeURIComponent(here)}`, { replace: true });
    } else if (user && (isAuthPage || path === '/')) navigate(isAuthPage ? nextPath() : '/chat', { replace: true });
  }, [user, isAuthPage, path]);

  // Rooms and settings set their own title (the chat's); everything else is just "Parley".
  useEffect(() => {
    if (!matchPath('/chat/:slug', path) && !matchPath('/chat/:slug/settings', path)) {
      setPageTitle(
        path === '/browse' ? 'Browse chats · Parley' : path === '/profile' ? 'Profile · Parley' : path === '/bots' ? 'Bots · Parley' : 'Parley',
      );
    }
  }, [path]);

  if (!user) return isAuthPage ? <AuthPage mode={path === '/signup' ? 'signup' : 'login'} /> : null;
  if (!rt) return null;
  return <Shell path={path} />;
}

function Shell({ path }: { path: string }) {
  const connection = useConnectionState();
  const settings = matchPath('/chat/:slug/settings', path);
  const room = matchPath('/chat/:slug', path);
  const slug = settings?.slug ?? room?.slug;
  const page = path === '/browse' || path === '/profile' || path === '/bots';
  const msgParam = Number(useQuery().get('msg'));
  const around = room && Number.isSafeInteger(msgParam) && msgParam > 0 ? msgParam : undefined;
  const [overlay, setOverlay] = useState<'search' | 'switcher' | null>(null);

  // Ctrl+K (Cmd+K on a Mac) opens the quick switcher from anywhere, and closes it again.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        setOverlay((o) => (o === 'switcher' ? null : 'switcher'));
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  return (
    <ChatListProvider activeSlug={room?.slug}>
      <div className={`shell ${slug || page ? 'shell--room' : 'shell--list'}`}>
        <a className="skip-link" href="#main">
          Skip to content
        </a>
        <ChatSidebar activeSlug={slug} connection={connection} path={path} onSearch={() => setOverlay('search')} />
        <main className="main" id="main">
          {settings ? (
            <ChatSettings key={`s:${settings.slug}`} slug={settings.slug} />
          ) : room ? (
            <ChatRoom key={`${room.slug}?${around ?? ''}`} slug={room.slug} around={around} />
          ) : path === '/browse' ? (
            <BrowsePage />
          ) : path === '/profile' ? (
            <ProfilePage />
          ) : path === '/bots' ? (
            <BotsPage />
          ) : path === '/chat' ? (
            <div className="empty-state">
              <div className="empty-state__art">
                <IconChat />
              </div>
              <h2>Pick a chat</h2>
              <p>Choose a conversation on the left, start a new one, or browse public chats.</p>
            </div>
          ) : (
            <div className="empty-state">
              <h2>Page not found</h2>
              <a href="/chat" className="btn">
                Go to your chats
              </a>
            </div>
          )}
        </main>
        {overlay === 'search' && <SearchPanel onClose={() => setOverlay(null)} />}
        {overlay === 'switcher' && <QuickSwitcher onClose={() => setOverlay(null)} />}
      </div>
    </ChatListProvider>
  );
}
