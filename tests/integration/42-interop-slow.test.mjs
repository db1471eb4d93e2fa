// 42 - Interop with an independent WebSocket client (Debian's python3-websockets, driven by
// interop/py_ws_client.py) exchanging messages with a Node `ws` client; and slow HTTP clients
// with PARLEY_HTTP_IDLE_MS=500: a client trickling its headers is cut about 500 ms after its first
// byte (slowloris), a keep-alive client sending a request every 200 ms stays connected, an idle
// keep-alive connection is closed after the idle time, and an idle WebSocket is not.
//
// The before hook installs python3-websockets with apt-get when /usr/bin/python3 cannot import it
// (the suite runs as root in CI); a failed install fails the suite rather than skipping it.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { TIMEOUT_MS, connect, makeChat, signupMany } from './lib/client.mjs';
import { rawHttp } from './lib/raw.mjs';
import { ROOT, useServer } from './lib/server.mjs';

const PY = '/usr/bin/python3';
const PY_CLIENT = path.join(ROOT, 'tests/integration/interop/py_ws_client.py');

function pyHasWebsockets() {
  try {
    execFileSync(PY, ['-c', 'import websockets'], { stdio: 'ignore', timeout: 20000 });
    return true;
  } catch {
    return false;
  }
}

function ensurePyWebsockets() {
  if (pyHasWebsockets()) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-websockets'], {
      env,
      stdio: 'pipe',
      timeout: 300000,
    });
  try {
    install();
  } catch {
    execFileSync('apt-get', ['update'], { env, stdio: 'pipe', timeout: 300000 });
    install();
  }
  assert.ok(pyHasWebsockets(), 'python3-websockets installed but not importable by /usr/bin/python3');
}

// Runs the Python client; resolves {steps, waitStep(name), exit}, where steps fill in as the
// client prints them.
function runPy(args) {
  const proc = spawn(PY, [PY_CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const steps = [];
  const waiters = new Set();
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => (stderr += d));
  const rl = readline.createInterface({ input: proc.stdout });
  rl.on('line', (line) => {
    let s;
    try {
      s = JSON.parse(line);
    } catch {
      s = { step: 'garbage', line };
    }
    steps.push(s);
    for (const w of [...waiters]) w();
  });
  const exit = new Promise((resolve) => proc.on('close', (code) => resolve(code)));
  let exited = false;
  exit.then(() => {
    exited = true;
    for (const w of [...waiters]) w();
  });
  const describeSteps = () => `steps: ${JSON.stringify(steps)}\nstderr: ${stderr.slice(-2000)}`;
  const waitStep = (name, timeout = TIMEOUT_MS) =>
    new Promise((resolve, reject) => {
      const w = () => {
        const s = steps.find((x) => x.step === name);
        const err = steps.find((x) => x.step === 'error');
        if (s || err || exited) {
          waiters.delete(w);
          clearTimeout(timer);
          if (s) resolve(s);
          else reject(new Error(`python client did not reach "${name}"\n${describeSteps()}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`timed out waiting for python step "${name}"\n${describeSteps()}`));
      }, timeout);
      waiters.add(w);
      w();
    });
  return { proc, steps, waitStep, exit, describeSteps };
}

describe('interop: python3-websockets and Node ws', () => {
  const srv = useServer();
  const socks = [];
  let py = null;
  before(() => ensurePyWebsockets());
  after(async () => {
    if (py && py.proc.exitCode === null) py.proc.kill('SIGKILL');
    await Promise.all(socks.map((s) => s.close().catch(() => {})));
  });

  test('a Python client authenticates with a token, subscribes, and exchanges messages with a Node client both ways', async () => {
    const [pu, nu] = await signupMany(srv, ['py', 'node']);
    const node = await connect(srv, { token: nu.token });
    socks.push(node);
    const chat = await makeChat(node, { title: 'interop' });
    // The Python user joins through its own invitation-free path: the chat is public.
    const nodeBody = `from node ✓ ${Date.now()}`;
    const pyBody = `from python ✓ ${Date.now()}`;
    await node.ok('sub', { chat });

    const pyJoin = await connect(srv, { token: pu.token });
    socks.push(pyJoin);
    await pyJoin.ok('chat.join', { chat });
    await pyJoin.close();

    py = runPy([srv.wsUrl, pu.token, chat, nodeBody, pyBody]);
    const auth = await py.waitStep('auth');
    assert.equal(auth.reply.ok, true, JSON.stringify(auth));
    assert.equal(auth.reply.user.username, pu.user.username);
    const hello = await py.waitStep('hello');
    assert.equal(hello.event.user.username, pu.user.username);
    const sub = await py.waitStep('sub');
    assert.equal(sub.ok, true);
    await py.waitStep('ready');

    // Node -> Python.
    const sent = await node.ok('msg.send', { chat, body: nodeBody, clientMsgId: 'node-1' });
    const recv = await py.waitStep('received');
    assert.equal(recv.event.chat, chat);
    assert.equal(recv.event.msg.body, nodeBody, 'UTF-8 body intact');
    assert.equal(recv.event.msg.seq, sent.msg.seq);
    assert.equal(recv.event.msg.author.username, nu.user.username);

    // Python -> Node.
    const ev = await node.waitFor((e) => e.ev === 'msg' && e.chat === chat && e.msg.body === pyBody, {
      what: 'the python message',
    });
    assert.equal(ev.msg.author.username, pu.user.username);
    assert.equal(ev.msg.clientMsgId, 'py-1');
    assert.equal(ev.msg.seq, sent.msg.seq + 1);
    const pySent = await py.waitStep('sent');
    assert.equal(pySent.reply.ok, true);
    assert.equal(pySent.reply.msg.seq, ev.msg.seq);
    await py.waitStep('own');
    const closed = await py.waitStep('closed');
    assert.equal(closed.code, 1000, JSON.stringify(closed));
    assert.equal(await py.exit, 0, py.describeSteps());
  });
});

describe('slow HTTP clients (PARLEY_HTTP_IDLE_MS=500)', () => {
  const IDLE = 500;
  const srv = useServer({ env: { PARLEY_HTTP_IDLE_MS: String(IDLE) } });
  const conns = [];
  after(() => {
    for (const c of conns) c.destroy();
  });
  const delay = (ms) => new Promise((r) => setTimeout(r, ms));

  test('slowloris: a client trickling one header byte every 100 ms is cut about 500 ms after its first byte', async () => {
    const c = await rawHttp(srv);
    conns.push(c);
    let closedAt = null;
    c.sock.on('close', () => (closedAt ??= Date.now()));
    c.sock.on('end', () => (closedAt ??= Date.now()));
    const head = Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ');
    const first = Date.now();
    let i = 0;
    let sent = 0;
    // One byte every 100 ms, the header never ending, until the server closes.
    const timer = setInterval(() => {
      if (c.sock.destroyed || c.ended) return;
      c.sock.write(i < head.length ? head.subarray(i, i + 1) : Buffer.from('a'), () => {});
      i++;
      sent++;
    }, 100);
    c.sock.write(head.subarray(0, 1));
    i = 1;
    try {
      await c.waitEnd({ timeout: 5000 });
    } finally {
      clearInterval(timer);
    }
    const took = (closedAt ?? Date.now()) - first;
    assert.ok(took >= IDLE - 50, `cut after ${took} ms, before the ${IDLE} ms timeout`);
    assert.ok(took <= IDLE + 700, `cut after ${took} ms (${sent} bytes trickled), long after the ${IDLE} ms timeout`);
    assert.ok(!c.responses.some((r) => r.status === 200), `no response to the unfinished request: ${c.raw}`);
  });

  test('a keep-alive client sending a request every 200 ms stays connected; once idle it is closed after the idle time', async () => {
    const c = await rawHttp(srv);
    conns.push(c);
    const N = 8; // 8 x 200 ms: well over the idle time in total
    for (let n = 0; n < N; n++) {
      if (n > 0) await delay(200);
      await c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const res = await c.response(n);
      assert.equal(res.status, 200, res.head);
      assert.equal(c.ended, false, `connection closed after request ${n + 1}`);
    }
    const lastAt = Date.now();
    await c.waitEnd({ timeout: 5000 });
    const idle = Date.now() - lastAt;
    assert.ok(idle >= IDLE - 50, `idle connection closed after ${idle} ms, before ${IDLE} ms`);
    assert.ok(idle <= IDLE + 700, `idle connection closed after ${idle} ms, long after ${IDLE} ms`);
    assert.equal(c.responses.length, N, 'nothing but the answers was sent');
  });

  test('a request split in a few parts well within the idle time is answered', async () => {
    const c = await rawHttp(srv);
    conns.push(c);
    await c.write('GET /heal');
    await delay(100);
    await c.write('thz HTTP/1.1\r\nHost');
    await delay(100);
    await c.write(': x\r\n\r\n');
    const res = await c.response(0);
    assert.equal(res.status, 200);
  });

  test('the HTTP idle timeout does not apply to WebSockets', async () => {
    const [u] = await signupMany(srv, ['wsidle']);
    const s = await connect(srv, { token: u.token });
    await delay(IDLE * 3);
    assert.equal(s.closeInfo, null, `websocket closed: ${JSON.stringify(s.closeInfo)}`);
    await s.ok('ping');
    await s.close();
  });
});
