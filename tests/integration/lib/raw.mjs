// Raw-socket helpers for the conformance tests (30-ws-conformance, 31-http-conformance): a
// WebSocket client built by hand on node:net (handshake, frame encoder, frame parser) and a raw
// HTTP/1.1 connection that parses responses. Nothing here hides protocol details: every frame is
// encoded byte by byte as the test asks, so the server is the only system under test.
//
// Everything waits on socket events with a timeout; no fixed sleeps.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';

import { TIMEOUT_MS } from './client.mjs';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa };

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const hex = (buf, max = 64) => {
  const b = Buffer.from(buf);
  const s = b.subarray(0, max).toString('hex').replace(/(..)/g, '$1 ').trim();
  return b.length > max ? `${s} ... (${b.length} bytes)` : s;
};
export { hex };

// The status code of a status line, NaN unless it is exactly "HTTP/1.x NNN ..." (so stray body
// bytes in front of a response are noticed, not skipped).
function statusOf(statusLine) {
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  return m ? Number(m[1]) : NaN;
}

function timeoutError(what, ms) {
  return new Error(`timed out after ${ms} ms waiting for ${what}`);
}

// Encodes one WebSocket frame. payload: Buffer or string (UTF-8). opts:
//   fin (true), rsv (0..7, the three RSV bits as a number: 4 = RSV1), opcode,
//   mask (true): client frames are masked; maskKey: a 4-byte Buffer (random by default),
//   len: force the length encoding: 7, 16 or 64 (minimal by default),
//   declaredLength: a length to put in the header instead of payload.length (BigInt or number).
export function encodeFrame(opcode, payload = Buffer.alloc(0), opts = {}) {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const fin = opts.fin ?? true;
  const rsv = opts.rsv ?? 0;
  const masked = opts.mask ?? true;
  const declared = BigInt(opts.declaredLength ?? data.length);
  const enc = opts.len ?? (declared < 126n ? 7 : declared < 65536n ? 16 : 64);
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  const parts = [];
  const maskBit = masked ? 0x80 : 0;
  if (enc === 7) {
    parts.push(Buffer.from([b0, maskBit | Number(declared)]));
  } else if (enc === 16) {
    const h = Buffer.alloc(4);
    h[0] = b0;
    h[1] = maskBit | 126;
    h.writeUInt16BE(Number(declared), 2);
    parts.push(h);
  } else {
    const h = Buffer.alloc(10);
    h[0] = b0;
    h[1] = maskBit | 127;
    h.writeBigUInt64BE(declared, 2);
    parts.push(h);
  }
  if (masked) {
    const key = opts.maskKey ?? crypto.randomBytes(4);
    parts.push(key);
    const out = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[i & 3];
    parts.push(out);
  } else {
    parts.push(data);
  }
  return Buffer.concat(parts);
}

// A close frame payload: 2-byte code (unless code is null) and a reason (string or Buffer).
export function closePayload(code, reason = '') {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : Buffer.from(reason);
  if (code === null || code === undefined) return r;
  const h = Buffer.alloc(2);
  h.writeUInt16BE(code, 0);
  return Buffer.concat([h, r]);
}

// Parses server frames out of a byte stream. Server frames must not be masked.
class FrameParser {
  constructor() {
    this.buf = Buffer.alloc(0);
  }
  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames = [];
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      const fin = (b[0] & 0x80) !== 0;
      const rsv = (b[0] >> 4) & 7;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      let key = null;
      if (masked) {
        if (b.length < off + 4) break;
        key = b.subarray(off, off + 4);
        off += 4;
      }
      if (b.length < off + len) break;
      let payload = Buffer.from(b.subarray(off, off + len));
      if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      frames.push({ fin, rsv, opcode, masked, payload, raw: Buffer.from(b.subarray(0, off + len)) });
      this.buf = b.subarray(off + len);
    }
    return frames;
  }
}

// A WebSocket connection driven by hand. Use rawWs(server) to open one.
export class RawWs {
  constructor(sock, leftover) {
    this.sock = sock;
    this.parser = new FrameParser();
    this.frames = []; // every frame received, parsed
    this.received = []; // every raw chunk received after the handshake
    this.sent = []; // every Buffer written
    this.ended = false; // the server closed its side (FIN) or the socket closed
    this.waiters = new Set();
    this.closedP = new Promise((resolve) => {
      sock.on('close', () => {
        this.ended = true;
        this.#check();
        resolve();
      });
    });
    sock.on('end', () => {
      this.ended = true;
      this.#check();
    });
    sock.on('error', (err) => {
      this.error = err;
    });
    sock.on('data', (d) => this.#onData(d));
    if (leftover && leftover.length) this.#onData(leftover);
  }

  #onData(d) {
    this.received.push(Buffer.from(d));
    for (const f of this.parser.push(Buffer.from(d))) this.frames.push(f);
    this.#check();
  }

  #check() {
    for (const w of [...this.waiters]) w.check();
  }

  // Resolves with the first frame at index >= from that satisfies pred. Rejects on timeout or when
  // the server closes the connection without sending such a frame.
  waitFrame(pred = () => true, { from = 0, timeout = TIMEOUT_MS, what = 'a frame' } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          for (let i = from; i < this.frames.length; i++) {
            if (pred(this.frames[i])) {
              this.waiters.delete(w);
              clearTimeout(w.timer);
              resolve(this.frames[i]);
              return;
            }
          }
          if (this.ended) {
            this.waiters.delete(w);
            clearTimeout(w.timer);
            reject(new Error(`connection closed while waiting for ${what}; ${this.describe()}`));
          }
        },
      };
      this.waiters.add(w);
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${timeoutError(what, timeout).message}; ${this.describe()}`));
      }, timeout);
      w.check();
    });
  }

  // What was exchanged, for assertion messages.
  describe() {
    const sent = this.sent.map((b) => hex(b, 40)).slice(-6);
    const frames = this.frames.map((f) => {
      let s = `op=${f.opcode} fin=${f.fin ? 1 : 0} rsv=${f.rsv} len=${f.payload.length}`;
      if (f.opcode === OP.CLOSE && f.payload.length >= 2) s += ` code=${f.payload.readUInt16BE(0)} reason=${JSON.stringify(f.payload.subarray(2).toString())}`;
      else if (f.opcode === OP.TEXT) s += ` ${JSON.stringify(f.payload.toString('utf8').slice(0, 120))}`;
      else s += ` [${hex(f.payload, 24)}]`;
      return s;
    });
    return `sent (last ${sent.length}): [${sent.join(' | ')}]; received frames: [${frames.join('; ')}]; tcp ended: ${this.ended}`;
  }

  // Writes bytes; resolves when handed to the kernel.
  write(bytes) {
    const b = Buffer.from(bytes);
    this.sent.push(b);
    return new Promise((resolve, reject) => {
      if (this.sock.destroyed) {
        resolve(false);
        return;
      }
      this.sock.write(b, (err) => (err ? (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? resolve(false) : reject(err)) : resolve(true)));
    });
  }

  // Writes bytes in pieces of `size` bytes, each its own write (Nagle is off), awaiting each.
  async writeChopped(bytes, size = 1) {
    const b = Buffer.from(bytes);
    this.sent.push(b);
    for (let i = 0; i < b.length; i += size) {
      if (this.sock.destroyed) return false;
      await new Promise((resolve) => this.sock.write(b.subarray(i, i + size), () => resolve()));
    }
    return true;
  }

  frame(opcode, payload, opts) {
    return this.write(encodeFrame(opcode, payload, opts));
  }
  text(payload, opts) {
    return this.frame(OP.TEXT, payload, opts);
  }
  close(code, reason) {
    return this.frame(OP.CLOSE, closePayload(code, reason));
  }

  // Resolves with the parsed JSON of the first text frame (index >= from) whose JSON satisfies pred.
  async waitJson(pred = () => true, opts = {}) {
    const f = await this.waitFrame((fr) => {
      if (fr.opcode !== OP.TEXT) return false;
      try {
        return pred(JSON.parse(fr.payload.toString('utf8')));
      } catch {
        return false;
      }
    }, { what: 'a JSON text frame', ...opts });
    return JSON.parse(f.payload.toString('utf8'));
  }

  // The reply to request id.
  waitReply(id, opts = {}) {
    return this.waitJson((j) => j && j.id === id, { what: `the reply with id ${id}`, ...opts });
  }

  // Resolves with {code, reason, frame} of the server's close frame (code null for an empty payload).
  async waitClose(opts = {}) {
    const f = await this.waitFrame((fr) => fr.opcode === OP.CLOSE, { what: 'a close frame', ...opts });
    return {
      code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null,
      reason: f.payload.subarray(2).toString('utf8'),
      frame: f,
    };
  }

  // Resolves once the server has closed the TCP connection (FIN or reset); rejects on timeout.
  waitTcpClosed({ timeout = TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          if (this.ended) {
            this.waiters.delete(w);
            clearTimeout(w.timer);
            resolve();
          }
        },
      };
      this.waiters.add(w);
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${timeoutError('the server to close the TCP connection', timeout).message}; ${this.describe()}`));
      }, timeout);
      w.check();
    });
  }

  destroy() {
    this.sock.destroy();
    return this.closedP;
  }
}

function connectTcp(server) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, server.host ?? '127.0.0.1');
    sock.setNoDelay(true);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

// Reads one HTTP response head (up to \r\n\r\n) from sock; resolves {status, headers, head, rest}.
function readHead(sock, timeout = TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (fn, v) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      fn(v);
    };
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      const head = buf.subarray(0, i).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      done(resolve, { status: statusOf(statusLine), statusLine, headers, head, rest: buf.subarray(i + 4) });
    };
    const onClose = () => done(reject, new Error(`connection closed before a response head: ${JSON.stringify(buf.toString('latin1'))}`));
    const timer = setTimeout(() => done(reject, timeoutError('a response head', timeout)), timeout);
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

// Opens a raw WebSocket to /ws. opts.key: the Sec-WebSocket-Key (random by default); opts.headers:
// extra header lines; opts.extra: bytes sent right behind the upgrade request in the same write.
// Asserts the 101 and the Sec-WebSocket-Accept; resolves with a RawWs.
export async function rawWs(server, opts = {}) {
  const sock = await connectTcp(server);
  const key = opts.key ?? crypto.randomBytes(16).toString('base64');
  const lines = [
    `GET ${opts.path ?? '/ws'} HTTP/1.1`,
    `Host: ${server.host ?? '127.0.0.1'}:${server.port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...(opts.headers ?? []),
  ];
  const req = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  const headP = readHead(sock);
  sock.write(opts.extra ? Buffer.concat([req, opts.extra]) : req);
  const res = await headP.catch((err) => {
    sock.destroy();
    throw err;
  });
  assert.equal(res.status, 101, `upgrade: ${res.head}`);
  assert.match(res.headers.upgrade ?? '', /^websocket$/i, res.head);
  assert.match(res.headers.connection ?? '', /upgrade/i, res.head);
  const expected = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  assert.equal(res.headers['sec-websocket-accept'], expected, `Sec-WebSocket-Accept for key ${key}`);
  return new RawWs(sock, res.rest);
}

// ---------------------------------------------------------------------------------------------
// HTTP

// A raw HTTP/1.1 connection. responses are parsed as they arrive (Content-Length bodies; a
// response to HEAD has no body: call expectHead() before sending the HEAD request).
export class RawHttp {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.responses = [];
    this.ended = false;
    this.headIdx = new Set();
    this.waiters = new Set();
    this.raw = '';
    sock.on('data', (d) => {
      this.raw += d.toString('latin1');
      this.buf = Buffer.concat([this.buf, d]);
      this.#parse();
      this.#check();
    });
    sock.on('end', () => {
      this.ended = true;
      this.#check();
    });
    sock.on('close', () => {
      this.ended = true;
      this.#check();
    });
    sock.on('error', (err) => {
      this.error = err;
    });
  }

  // Response number n (0-based, on this connection) answers a HEAD request: it has no body.
  expectHead(n) {
    this.headIdx.add(n);
  }

  #parse() {
    for (;;) {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      const head = this.buf.subarray(0, i).toString('latin1');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      const isHead = this.headIdx.has(this.responses.length);
      const len = isHead ? 0 : Number(headers['content-length'] ?? 0);
      if (this.buf.length < i + 4 + len) return;
      const body = this.buf.subarray(i + 4, i + 4 + len).toString('utf8');
      this.buf = this.buf.subarray(i + 4 + len);
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        json = null;
      }
      this.responses.push({ status: statusOf(statusLine), statusLine, headers, head, body, json });
    }
  }

  #check() {
    for (const w of [...this.waiters]) w();
  }

  write(bytes) {
    return new Promise((resolve) => this.sock.write(bytes, () => resolve()));
  }

  async writeChopped(bytes, size = 1) {
    const b = Buffer.from(bytes);
    for (let i = 0; i < b.length; i += size) {
      if (this.sock.destroyed) return;
      await new Promise((resolve) => this.sock.write(b.subarray(i, i + size), () => resolve()));
    }
  }

  // Resolves with the n-th response (0-based); rejects on timeout or if the connection ends first.
  response(n, { timeout = TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const w = () => {
        if (this.responses.length > n) {
          this.waiters.delete(w);
          clearTimeout(timer);
          resolve(this.responses[n]);
        } else if (this.ended) {
          this.waiters.delete(w);
          clearTimeout(timer);
          reject(new Error(`connection closed after ${this.responses.length} responses, waiting for #${n}; raw: ${JSON.stringify(this.raw.slice(0, 600))}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${timeoutError(`response #${n}`, timeout).message}; raw: ${JSON.stringify(this.raw.slice(0, 600))}`));
      }, timeout);
      this.waiters.add(w);
      w();
    });
  }

  // Resolves once the server closed the connection.
  waitEnd({ timeout = TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const w = () => {
        if (this.ended) {
          this.waiters.delete(w);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(timeoutError('the server to close the connection', timeout));
      }, timeout);
      this.waiters.add(w);
      w();
    });
  }

  destroy() {
    this.sock.destroy();
  }
}

export async function rawHttp(server) {
  return new RawHttp(await connectTcp(server));
}
