// A very small client-side router: the app has seven routes, so history.pushState and a
// popstate listener are all it needs (no router library in the bundle). The server answers any
// unknown path without a dot with index.html, so deep links and reloads work.
import { createContext, useContext, useMemo, useSyncExternalStore, type AnchorHTMLAttributes, type ReactNode } from 'react';

const RouteContext = createContext<string>('/');

const listeners = new Set<() => void>();

export function navigate(to: string, opts: { replace?: boolean } = {}) {
  if (to === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
}

function subscribe(cb: () => void) {
  listeners.add(cb);
  window.addEventListener('popstate', cb);
  return () => {
    listeners.delete(cb);
    window.removeEventListener('popstate', cb);
  };
}

// The path is read from location on every render (useSyncExternalStore), so a navigate() made in
// a child's effect, before this provider's own effects ran, is never missed.
export function RouterProvider({ children }: { children: ReactNode }) {
  const path = useSyncExternalStore(subscribe, () => location.pathname);
  return <RouteContext.Provider value={path}>{children}</RouteContext.Provider>;
}

export function usePath() {
  return useContext(RouteContext);
}

// The query string's parameters (?msg=12 opens a chat at that message), kept current like the path.
export function useQuery(): URLSearchParams {
  const search = useSyncExternalStore(subscribe, () => location.search);
  return useMemo(() => new URLSearchParams(search), [search]);
}

// Matches "/chat/:slug/settings" style patterns; returns the decoded params or null.
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) {
      try {
        params[p[i].slice(1)] = decodeURIComponent(s[i]);
      } catch {
        return null;
      }
    } else if (p[i] !== s[i]) return null;
  }
  return params;
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string; replace?: boolean };

// An ordinary <a href> (so middle-click, copy link and keyboard focus work) that navigates in
// place on a plain click.
export function Link({ to, replace, onClick, ...rest }: LinkProps) {
  return (
    <a
      href={to}
      onClick={(e) => {
        onClick?.(e);
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to, { replace });
      }}
      {...rest}
    />
  );
}
