// The real Parley server for the browser tests: the project's integration-test harness
// (tests/integration/lib/server.mjs: free port, temporary data directory, log capture,
// sanitizer check on dispose), pointed at the built web app (web/dist) and with a short presence
// grace so "offline" shows within the tests' time.
import fs from 'node:fs';
import path from 'node:path';
import { ParleyServer, ROOT } from '../../integration/lib/server.mjs';

export { ROOT };

export const WEB_DIR = path.join(ROOT, 'web/dist');

// build/parley-asan when present (make test builds it), else the release build.
export function serverBin() {
  if (process.env.PARLEY_BIN) return process.env.PARLEY_BIN;
  return fs.existsSync(path.join(ROOT, 'build/parley-asan')) ? 'build/parley-asan' : 'build/parley';
}

export async function startServer(env = {}) {
  if (!fs.existsSync(path.join(WEB_DIR, 'index.html')) || !fs.existsSync(path.join(WEB_DIR, 'assets'))) {
    throw new Error('web/dist is not built: run scripts/build-web.sh first');
  }
  process.env.PARLEY_BIN = serverBin();
  const s = new ParleyServer({
    webDir: WEB_DIR,
    env: {
      PARLEY_PRESENCE_GRACE_MS: '1500',
      PARLEY_LOG_LEVEL: 'warn',
      ...env,
    },
  });
  await s.start();
  return s;
}
