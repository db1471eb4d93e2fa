// Starts and stops the real Parley binary for the integration tests.
//
// Each ParleyServer owns a free loopback port, a fresh temporary data directory (the SQLite file
// lives there) and a temporary web directory holding a small index.html, so every test file runs
// against its own server and leaves nothing behind. The server's stdout and stderr are collected:
// a failing test prints what the server logged while it ran, and a sanitizer report (ASan, LSan,
// UBSan) anywhere in the log fails the suite when the server is disposed.
//
// useServer() registers the node:test hooks (start in before, dispose in after, log dump in
// afterEach on failure) so a test file only writes `const srv = useServer();`.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach } from 'node:test';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// Marker put in the test web directory's index.html, so tests can tell it was served.
export const INDEX_MARKER = 'parley-integration-index';

// valgrind runs with --quiet (scripts/valgrind-parley.sh), so any "==pid==" line is a report.
const SANITIZER_RE =
  /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (?:Address|Undefined|Leak)Sanitizer|^==\d+== \S/m;

// Every server process still running, so an exiting test process never leaves one behind.
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function binPath() {
  return path.resolve(ROOT, process.env.PARLEY_BIN || 'build/parley-asan');
}

// A port that was free a moment ago: listen on port 0, read it, close.
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// PARLEY_TEST_STORE=postgres://... runs every server on PostgreSQL instead of its SQLite file
// (make integration-pg). Each ParleyServer gets a schema of its own, created here with psql and
// named in the URI's search_path, so servers start empty as they do on SQLite; a restart keeps
// the schema (durability tests), dispose drops it.
let pgSchemas = 0;
function psql(url, sql) {
  return new Promise((resolve, reject) => {
    execFile('psql', ['-qAtX', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], (err, stdout, stderr) =>
      err ? reject(new Error(`psql: ${sql}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}
function storeUrl(base, schema) {
  const sep = base.includes('?') ? '&' : '?';
  return `${base}${sep}options=${encodeURIComponent(`-csearch_path=${schema}`)}`;
}

export class ParleyServer {
  // opts.env: extra environment (merged over the defaults below).
  // opts.webDir: serve this directory instead of a generated one.
  constructor(opts = {}) {
    this.opts = opts;
    this.port = opts.port ?? null;
    this.host = '127.0.0.1';
    this.tmpRoot = null; // parent of dataDir and webDir, removed on dispose
    this.dataDir = null;
    this.webDir = opts.webDir ?? null;
    this.proc = null;
    this.exited = null; // promise of {code, signal} for the current process
    this.log = ''; // stdout + stderr of every process this object started
    this.starts = 0;
    this.pgSchema = null; // PARLEY_TEST_STORE: this server's schema
  }

  get url() {
    return `http://${this.host}:${this.port}`;
  }
  get wsUrl() {
    return `ws://${this.host}:${this.port}/ws`;
  }
  // The origin a browser loading the app from this server would send.
  get origin() {
    return this.url;
  }
  get running() {
    return this.proc !== null;
  }

  async start() {
    if (this.proc) throw new Error('server already running');
    if (this.port === null) this.port = await freePort();
    if (this.tmpRoot === null) {
      this.tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-it-'));
      this.dataDir = path.join(this.tmpRoot, 'data');
      await fs.mkdir(this.dataDir);
      if (this.webDir === null) {
        this.webDir = path.join(this.tmpRoot, 'web');
        await fs.mkdir(path.join(this.webDir, 'assets'), { recursive: true });
        await fs.writeFile(
          path.join(this.webDir, 'index.html'),
          `<!doctype html>\n<html><head><title>Parley</title></head>` +
            `<body><div id="root">${INDEX_MARKER}</div></body></html>\n`,
        );
        await fs.writeFile(path.join(this.webDir, 'assets', 'app.js'), 'console.log("parley");\n');
        // A file outside the web root: path traversal must never reach it.
        await fs.writeFile(path.join(this.tmpRoot, 'secret.txt'), 'TOP-SECRET-OUTSIDE-WEBROOT\n');
      }
    }
    const pgBase = process.env.PARLEY_TEST_STORE;
    if (pgBase && this.pgSchema === null) {
      pgSchemas += 1;
      const schema = `it_${process.pid}_${pgSchemas}_${Date.now().toString(36)}`;
      await psql(pgBase, `CREATE SCHEMA ${schema}`);
      this.pgSchema = schema;
    }
    const env = {
      ...process.env,
      ...(pgBase ? { PARLEY_STORE: storeUrl(pgBase, this.pgSchema) } : {}),
      PARLEY_LISTEN: `${this.host}:${this.port}`,
      PARLEY_DATA: this.dataDir,
      PARLEY_WEB_DIR: this.webDir,
      PARLEY_RATE_LIMITS: '0',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1',
      ...(this.opts.env || {}),
    };
    const bin = binPath();
    const logStart = this.log.length;
    this.starts += 1;
    this.log += `\n----- start #${this.starts}: ${bin} on ${this.host}:${this.port} -----\n`;
    const proc = spawn(bin, this.opts.args || [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    live.add(proc);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => (this.log += d));
    proc.stderr.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) => {
      proc.on('error', (err) => {
        this.log += `spawn error: ${err.message}\n`;
      });
      proc.on('close', (code, signal) => {
        live.delete(proc);
        if (this.proc === proc) this.proc = null;
        this.log += `----- exited: code=${code} signal=${signal} -----\n`;
        resolve({ code, signal });
      });
    });
    await this.waitHealthy();
    // A server that ignored PARLEY_STORE would pass every test on SQLite: make sure it did not.
    if (env.PARLEY_STORE && !/opened postgres backend/.test(this.log.slice(logStart))) {
      throw new Error('PARLEY_STORE is set but the server did not open PostgreSQL\n' + this.tail(40));
    }
    return this;
  }

  // Polls GET /healthz until it answers 200; fails at once if the process exits.
  async waitHealthy(timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    let exited = null;
    this.exited.then((e) => (exited = e));
    for (;;) {
      if (exited) {
        throw new Error(
          `server exited during start-up (code=${exited.code} signal=${exited.signal})\n` +
            this.tail(60),
        );
      }
      try {
        const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`server not healthy after ${timeoutMs} ms\n` + this.tail(60));
      }
      await delay(25);
    }
  }

  // Graceful stop: SIGTERM, wait for the exit. Returns {code, signal}. Kills with SIGKILL and
  // throws if the process does not exit in time.
  async stop(timeoutMs = 15000) {
    if (!this.proc) return { code: null, signal: null, notRunning: true };
    const proc = this.proc;
    const exited = this.exited;
    proc.kill('SIGTERM');
    let timer;
    const res = await Promise.race([
      exited,
      new Promise((r) => (timer = setTimeout(() => r(null), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (res === null) {
      proc.kill('SIGKILL');
      await exited;
      throw new Error(`server did not exit within ${timeoutMs} ms of SIGTERM\n` + this.tail(40));
    }
    return res;
  }

  // Runs `sql` straight on this server's database (its SQLite file, or its PostgreSQL schema),
  // beside the running server: for what no op does yet (an edit in place, a delete) and for
  // checking what was stored. Resolves with the output rows, one a line, columns split by '|'.
  async sql(sql) {
    if (this.pgSchema) {
      return psql(storeUrl(process.env.PARLEY_TEST_STORE, this.pgSchema), sql);
    }
    const db = path.join(this.dataDir, 'parley.db');
    return new Promise((resolve, reject) => {
      execFile('sqlite3', ['-cmd', '.timeout 5000', db, sql], (err, stdout, stderr) =>
        err ? reject(new Error(`sqlite3: ${sql}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  }

  // Crash: SIGKILL, wait for the exit.
  async kill9() {
    if (!this.proc) throw new Error('server not running');
    const exited = this.exited;
    this.proc.kill('SIGKILL');
    return exited;
  }

  // Runs SQL on the stopped server's store (its SQLite file with the sqlite3 shell, or its
  // PostgreSQL schema with psql): to build what the protocol would be too slow to, e.g. a chat
  // of 10,000 members. The SQL must be valid in both dialects.
  async sql(statement) {
    if (this.proc) throw new Error('sql() needs the server stopped');
    if (this.pgSchema) return psql(storeUrl(process.env.PARLEY_TEST_STORE, this.pgSchema), statement);
    return new Promise((resolve, reject) => {
      execFile('sqlite3', [path.join(this.dataDir, 'parley.db'), statement], (err, stdout, stderr) =>
        err ? reject(new Error(`sqlite3: ${statement}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  }

  // Same port, same data directory: a graceful stop (unless already stopped) then a start.
  async restart() {
    if (this.proc) await this.stop();
    await this.start();
    return this;
  }

  // Runs one SQL statement on this server's database (the sqlite3 CLI on the SQLite file, psql on
  // its PostgreSQL schema) and resolves with the rows, '|'-separated lines (for tests that look at
  // what is stored, such as a deleted message's body).
  async sql(query) {
    const pgBase = process.env.PARLEY_TEST_STORE;
    if (pgBase) return psql(storeUrl(pgBase, this.pgSchema), query);
    return new Promise((resolve, reject) => {
      execFile('sqlite3', [path.join(this.dataDir, 'parley.db'), query], (err, stdout, stderr) =>
        err ? reject(new Error(`sqlite3: ${query}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  }

  mark() {
    return this.log.length;
  }
  since(mark) {
    return this.log.slice(mark);
  }
  tail(lines = 80, text = this.log) {
    const all = text.split('\n');
    return all.slice(-lines).join('\n');
  }

  sanitizerReport() {
    const m = SANITIZER_RE.exec(this.log);
    if (!m) return null;
    return this.log.slice(Math.max(0, m.index - 200), m.index + 6000);
  }

  // Stops the server (SIGTERM, then SIGKILL if it hangs), removes the temp directories, and
  // throws if a sanitizer reported anything during the server's whole life.
  async dispose() {
    let stopErr = null;
    try {
      if (this.proc) await this.stop();
    } catch (err) {
      stopErr = err;
    }
    if (this.tmpRoot && !process.env.PARLEY_KEEP_TMP) {
      await fs.rm(this.tmpRoot, { recursive: true, force: true });
    }
    if (this.pgSchema && !process.env.PARLEY_KEEP_TMP) {
      await psql(process.env.PARLEY_TEST_STORE, `DROP SCHEMA ${this.pgSchema} CASCADE`);
      this.pgSchema = null;
    }
    const report = this.sanitizerReport();
    if (report) throw new Error(`sanitizer report in the server log:\n${report}`);
    if (stopErr) throw stopErr;
  }
}

export async function startServer(opts = {}) {
  const s = new ParleyServer(opts);
  try {
    await s.start();
  } catch (err) {
    await s.dispose().catch(() => {});
    throw err;
  }
  return s;
}

// Registers hooks on the current suite (file or describe): the server starts in `before` and is
// disposed in `after`; when a test fails, what the server logged during it is printed. Returns
// the ParleyServer at once (its port is known once `before` ran).
//
// Call it inside a describe() when the file adds its own before/after hooks: Node 20 runs
// root-level `before` hooks concurrently, so a root-level setup hook could run before the server
// is up. Hooks of one describe() run in order.
export function useServer(opts = {}) {
  const s = new ParleyServer(opts);
  let mark = 0;
  before(async () => {
    await s.start();
  });
  beforeEach(() => {
    mark = s.mark();
  });
  afterEach((t) => {
    if (t.passed) return;
    const text = s.since(mark);
    console.error(
      `\n===== server log during failed test "${t.name}" (last 150 lines) =====\n` +
        `${s.tail(150, text)}\n===== end of server log =====`,
    );
  });
  after(async () => {
    await s.dispose();
  });
  return s;
}
