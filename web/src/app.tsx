// Routes: /login, /signup, /chat, /chat/:slug (?msg=seq: opened at that message, from a search
// result), /chat/:slug/settings. Signed-out visitors of
// an app route are sent to /login; signed-in visitors of the auth pages to /chat.
import { useEffect, useState } from 'react';
import { matchPath, navigate, usePath, useQuery } from './lib/router';
import { useSession } from './lib/session';
import { AuthPage } from './pages/auth-page';
import { ChatSidebar } from './pages/chat-list';
import { ChatRoom } from './pages/chat-room';
import { ChatSettings } from './pages/chat-settings';
import { useConnectionState } from './hooks/use-connection-state';
import { IconChat } from './components/ui/icons';
import { SearchPanel } from './components/chat/search-panel';
import { QuickSwitcher } from './components/chat/quick-switcher';

export function App() {
  const path = usePath();
  const { user, rt } = useSession();
  const isAuthPage = path === '/login' || path === '/signup';

  useEffect(() => {
    if (!user && !isAuthPage) navigate('/login', { replace: true });
    else if (user && (isAuthPage || path === '/')) navigate('/chat', { replace: true });
  }, [user, isAuthPage, path]);

  // Rooms set their own title (the chat's); everything else is just "Parley".
  useEffect(() => {
    if (!matchPath('/chat/:slug', path) && !matchPath('/chat/:slug/settings', path)) document.title = 'Parley';
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
    <div className={`shell ${slug ? 'shell--room' : 'shell--list'}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <ChatSidebar activeSlug={slug} connection={connection} onSearch={() => setOverlay('search')} />
      <main className="main" id="main">
        {settings ? (
          <ChatSettings key={`s:${settings.slug}`} slug={settings.slug} />
        ) : room ? (
          <ChatRoom key={`${room.slug}?${around ?? ''}`} slug={room.slug} around={around} />
        ) : path === '/chat' ? (
          <div className="empty-state">
            <div className="empty-state__art">
              <IconChat />
            </div>
            <h2>Pick a chat</h2>
            <p>Choose a conversation on the left, or start a new one.</p>
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
  );
}
