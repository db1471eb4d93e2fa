// Vite build of the Parley web app. The C server serves web/dist (PARLEY_WEB_DIR) with an SPA
// fallback, so the app is built with absolute asset paths under /assets. In development,
// `npm run dev` proxies the API and the WebSocket to a server on PARLEY_DEV_SERVER.
import { defineConfig } from 'vite';

const backend = process.env.PARLEY_DEV_SERVER || 'http://127.0.0.1:8080';

export default defineConfig({
  // React 19's automatic JSX runtime, without @vitejs/plugin-react (no Fast Refresh needed).
  oxc: { jsx: { runtime: 'automatic' } },
  server: {
    // The app imports the SDK's sources from ../clients/js/src.
    fs: { allow: ['..'] },
    proxy: {
      '/api': backend,
      '/healthz': backend,
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
