// Entry point: learn who is signed in (GET /api/me, answered from the session cookie), then
// render the app. The SDK's HTTP helpers are used same-origin, so the browser sends the cookie.
import { createRoot } from 'react-dom/client';
import { StrictMode } from 'react';
import { App } from './app';
import { RouterProvider } from './lib/router';
import { SessionProvider } from './lib/session';
import { me } from '../../clients/js/src/http.js';
import type { User } from './lib/types';
import './styles.css';

async function start() {
  let user: User | null = null;
  try {
    user = await me();
  } catch {
    // The server is unreachable: show the login page, which reports errors when used.
  }
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <RouterProvider>
        <SessionProvider initialUser={user}>
          <App />
        </SessionProvider>
      </RouterProvider>
    </StrictMode>,
  );
}

start();
