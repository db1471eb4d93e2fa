// 17 - The scale-out settings refuse bad values at start-up with a clear message, and a store URI
// that cannot be reached stops the server without printing the URI's password.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { binPath, freePort } from './lib/server.mjs';

// Starts the server with `env` and resolves with {code, log} once it exits (it must, by itself).
async function startExpectingExit(env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cfg-'));
  const port = await freePort();
  try {
    return await new Promise((resolve, reject) => {
      const proc = spawn(binPath(), [], {
        env: { ...process.env, PARLEY_LISTEN: `127.0.0.1:${port}`, PARLEY_DATA: dir, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      proc.stdout.on('data', (d) => (log += d));
      proc.stderr.on('data', (d) => (log += d));
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`the server kept running with ${JSON.stringify(env)}:\n${log}`));
      }, 15000);
      proc.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, log });
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('scale-out settings', () => {
  test('PARLEY_STORE must be a PostgreSQL URI', async () => {
    const { code, log } = await startExpectingExit({ PARLEY_STORE: 'mysql://db.example/parley' });
    assert.notEqual(code, 0);
    assert.match(log, /PARLEY_STORE must be a postgres:\/\/ or postgresql:\/\/ URI/);
  });

  test('PARLEY_STORE_CONNS must be a number from 1 to 16', async () => {
    for (const bad of ['0', '17', 'four']) {
      const { code, log } = await startExpectingExit({ PARLEY_STORE_CONNS: bad });
      assert.notEqual(code, 0);
      assert.match(log, /PARLEY_STORE_CONNS must be a whole number from 1 to 16/);
    }
  });

  test('PARLEY_BUS must be a Redis URL', async () => {
    const { code, log } = await startExpectingExit({ PARLEY_BUS: 'http://127.0.0.1:6379' });
    assert.notEqual(code, 0);
    assert.match(log, /PARLEY_BUS must be redis:\/\/host:port/);
  });

  test('an unreachable PostgreSQL stops the start-up and the password is never logged', async () => {
    const port = await freePort(); // nobody listens there
    const { code, log } = await startExpectingExit({
      PARLEY_STORE: `postgres://parley:s3cret-Passw0rd@127.0.0.1:${port}/parley`,
    });
    assert.notEqual(code, 0);
    assert.match(log, /cannot connect to PostgreSQL/);
    assert.match(log, /start-up failed/);
    assert.doesNotMatch(log, /s3cret-Passw0rd/);
  });
});
