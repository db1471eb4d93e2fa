// 30 - WebSocket conformance (RFC 6455), modelled on the Autobahn testsuite sections 1-7 and 9:
// framing, ping/pong, reserved bits, opcodes, fragmentation, UTF-8, close handling, limits.
//
// Everything goes over raw TCP sockets (lib/raw.mjs): the upgrade is done by hand, every client
// frame is encoded and masked here, and the server's frames are parsed byte for byte, so no
// WebSocket library sits between the test and the server. Requests are the `ping` op, which needs
// no authentication: `{"id": N, "op": "ping"}` is answered `{"id": N, "ok": true, "now": ...}`.
// Padding fields (ignored by the server) give a request an exact byte length.
//
// "Fail the WebSocket connection" (RFC 6455 7.1.7) is asserted as: a close frame with the
// expected code, then the server closes the TCP connection (7.1.1: the server closes first).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { OP, closePayload, encodeFrame, hex, rawWs } from './lib/raw.mjs';
import { useServer } from './lib/server.mjs';

// A ping request of exactly `len` bytes (len >= 26), optionally with `pad` bytes inside its
// padding string: {"id":N,"op":"ping","p":"xxxx"}.
function pingReq(id, len, fill = 'x') {
  const base = `{"id":${id},"op":"ping","p":""}`;
  const n = len - Buffer.byteLength(base);
  assert.ok(n >= 0, `a ping request cannot be ${len} bytes`);
  return Buffer.from(`{"id":${id},"op":"ping","p":"${fill.repeat(n)}"}`, 'utf8');
}

// A ping request whose padding string holds the raw bytes `inner`.
function pingWith(id, inner) {
  return Buffer.concat([Buffer.from(`{"id":${id},"op":"ping","p":"`), Buffer.from(inner), Buffer.from('"}')]);
}

const ping = (id) => Buffer.from(`{"id":${id},"op":"ping"}`);

// Asserts that the server fails the connection with `codes` (a code or a list of allowed codes):
// a close frame with that code, then the TCP connection closed by the server.
async function expectFail(ws, codes, what = '') {
  const allowed = [].concat(codes);
  const { code } = await ws.waitClose({ what: `close ${allowed.join('/')} ${what}` });
  assert.ok(allowed.includes(code), `${what}: expected close ${allowed.join(' or ')}, got ${code}; ${ws.describe()}`);
  await ws.waitTcpClosed();
  return code;
}

// Asserts that the server answers request `id` with an ok ping reply, in a well-formed frame.
async function expectReply(ws, id) {
  const f = await ws.waitFrame(
    (fr) => fr.opcode === OP.TEXT && /^\{/.test(fr.payload.toString()) && JSON.parse(fr.payload.toString()).id === id,
    { what: `the reply to ping ${id}` },
  );
  assert.equal(f.fin, true, 'a reply is one unfragmented frame');
  assert.equal(f.rsv, 0, 'no RSV bits without an extension');
  assert.equal(f.masked, false, 'server frames are never masked (RFC 6455 5.1)');
  const j = JSON.parse(f.payload.toString('utf8'));
  assert.equal(j.ok, true, JSON.stringify(j));
  assert.equal(typeof j.now, 'number');
  return j;
}

// Asserts nothing but the given frames came: after a final ping request, the reply is the only
// new frame (so an earlier frame that should be ignored produced no answer).
async function expectOnly(ws, opcodesBefore, id = 99) {
  const from = ws.frames.length;
  await ws.text(ping(id));
  await expectReply(ws, id);
  const unexpected = ws.frames.slice(0, from).filter((f) => !opcodesBefore.includes(f.opcode));
  assert.deepEqual(unexpected.map((f) => f.opcode), [], ws.describe());
}

describe('WebSocket conformance (RFC 6455)', () => {
  const srv = useServer();

  describe('opening handshake', () => {
    test('the RFC 6455 example key gets the example Sec-WebSocket-Accept', async () => {
      // rawWs asserts the 101, Upgrade, Connection and the accept value computed from the key.
      const ws = await rawWs(srv, { key: 'dGhlIHNhbXBsZSBub25jZQ==' });
      await ws.text(ping(1));
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('frames sent in the same write as the upgrade request are processed', async () => {
      const extra = Buffer.concat([encodeFrame(OP.TEXT, ping(1)), encodeFrame(OP.TEXT, ping(2))]);
      const ws = await rawWs(srv, { extra });
      await expectReply(ws, 1);
      await expectReply(ws, 2);
      await ws.destroy();
    });
  });

  describe('1 framing: text payload lengths and encodings', () => {
    test('1.1.1 an empty text message is a message (answered with a null-id error, socket open)', async () => {
      const ws = await rawWs(srv);
      await ws.text('');
      const r = await ws.waitJson((j) => j.id === null, { what: 'a reply with id null' });
      assert.equal(r.ok, false);
      assert.equal(r.error.code, 'bad_request');
      await ws.text(ping(2));
      await expectReply(ws, 2);
      await ws.destroy();
    });

    for (const len of [125, 126, 127, 128, 65535, 65536]) {
      const enc = len < 126 ? 7 : len < 65536 ? 16 : 64;
      test(`1.1 text of ${len} bytes (${enc}-bit length) in one write`, async () => {
        const ws = await rawWs(srv);
        const frame = encodeFrame(OP.TEXT, pingReq(1, len));
        assert.equal(frame[1] & 0x7f, enc === 7 ? len : enc === 16 ? 126 : 127, 'length encoding');
        await ws.write(frame);
        await expectReply(ws, 1);
        await ws.destroy();
      });

      test(`1.1 text of ${len} bytes (${enc}-bit length) chopped into small writes`, async () => {
        const ws = await rawWs(srv);
        const frame = encodeFrame(OP.TEXT, pingReq(1, len));
        if (len <= 128) {
          await ws.writeChopped(frame, 1); // byte by byte
        } else {
          // The header byte by byte, then the payload in 997-byte pieces.
          const hdr = enc === 16 ? 8 : 14;
          await ws.writeChopped(frame.subarray(0, hdr), 1);
          await ws.writeChopped(frame.subarray(hdr), 997);
        }
        await expectReply(ws, 1);
        await ws.destroy();
      });
    }

    test('several frames in one write are all answered, in order', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([1, 2, 3, 4, 5].map((id) => encodeFrame(OP.TEXT, pingReq(id, 30 + id * 40)))));
      for (const id of [1, 2, 3, 4, 5]) await expectReply(ws, id);
      const ids = ws.frames.filter((f) => f.opcode === OP.TEXT).map((f) => JSON.parse(f.payload).id);
      assert.deepEqual(ids, [1, 2, 3, 4, 5]);
      await ws.destroy();
    });

    for (const len of [0, 125, 65536]) {
      test(`1.2 binary of ${len} bytes closes with 1003 (text only, protocol.md)`, async () => {
        const ws = await rawWs(srv);
        await ws.frame(OP.BINARY, Buffer.alloc(len, 0xfe));
        await expectFail(ws, 1003, `binary ${len}`);
      });
    }
  });

  describe('2 ping and pong', () => {
    const cases = [
      ['2.1 empty ping', Buffer.alloc(0)],
      ['2.2 ping with a text payload', Buffer.from('Hello, world!')],
      ['2.3 ping with a binary payload', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])],
      ['2.4 ping with a 125-byte payload', Buffer.alloc(125, 0xfe)],
    ];
    for (const [name, payload] of cases) {
      test(`${name} is answered with a pong carrying the same payload`, async () => {
        const ws = await rawWs(srv);
        await ws.frame(OP.PING, payload);
        const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, { what: 'a pong' });
        assert.equal(pong.fin, true);
        assert.equal(pong.masked, false);
        assert.deepEqual(pong.payload, payload, `pong payload ${hex(pong.payload)} != ${hex(payload)}`);
        await ws.destroy();
      });
    }

    test('2.5 a ping with a 126-byte payload (over 125) fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.PING, Buffer.alloc(126, 0xfe));
      await expectFail(ws, 1002, 'ping 126');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.PONG).length, 0, 'no pong for an invalid ping');
    });

    test('2.6 a 125-byte ping sent byte by byte is answered with the same payload', async () => {
      const ws = await rawWs(srv);
      const payload = Buffer.from(Array.from({ length: 125 }, (_, i) => i));
      await ws.writeChopped(encodeFrame(OP.PING, payload), 1);
      const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, { what: 'a pong' });
      assert.deepEqual(pong.payload, payload);
      await ws.destroy();
    });

    test('2.7 an unsolicited empty pong is ignored', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.PONG, Buffer.alloc(0));
      await expectOnly(ws, []);
      await ws.destroy();
    });

    test('2.8 an unsolicited pong with a payload is ignored', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.PONG, Buffer.from('unsolicited pong payload'));
      await expectOnly(ws, []);
      await ws.destroy();
    });

    test('2.9 an unsolicited pong, then a ping: only the ping is answered', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.PONG, 'unsolicited'), encodeFrame(OP.PING, 'solicited')]));
      const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, { what: 'a pong' });
      assert.equal(pong.payload.toString(), 'solicited');
      await expectOnly(ws, [OP.PONG]);
      assert.equal(ws.frames.filter((f) => f.opcode === OP.PONG).length, 1);
      await ws.destroy();
    });

    test('2.10 ten pings in one write: pongs carry ping payloads, the last one answered', async () => {
      const ws = await rawWs(srv);
      const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
      await ws.write(Buffer.concat(payloads.map((p) => encodeFrame(OP.PING, p))));
      await ws.waitFrame((f) => f.opcode === OP.PONG && f.payload.toString() === 'payload-9', { what: 'the last pong' });
      for (const f of ws.frames.filter((fr) => fr.opcode === OP.PONG)) {
        assert.ok(payloads.includes(f.payload.toString()), `pong with unknown payload ${hex(f.payload)}`);
      }
      await ws.destroy();
    });

    test('2.11 ten pings chopped byte by byte: the last one answered', async () => {
      const ws = await rawWs(srv);
      const payloads = Array.from({ length: 10 }, (_, i) => `chopped-${i}`);
      await ws.writeChopped(Buffer.concat(payloads.map((p) => encodeFrame(OP.PING, p))), 1);
      await ws.waitFrame((f) => f.opcode === OP.PONG && f.payload.toString() === 'chopped-9', { what: 'the last pong' });
      await ws.destroy();
    });
  });

  describe('3 reserved bits', () => {
    for (const rsv of [1, 2, 3, 4, 5, 6, 7]) {
      test(`3.${rsv} a text frame with RSV=${rsv} (no extension negotiated) fails with 1002`, async () => {
        const ws = await rawWs(srv);
        await ws.text(ping(1), { rsv });
        await expectFail(ws, 1002, `rsv ${rsv}`);
        assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, `no reply: ${ws.describe()}`);
      });
    }

    test('3.2 a valid request, then RSV=2, then a ping: the first is answered, then 1002, no pong', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([
        encodeFrame(OP.TEXT, ping(1)),
        encodeFrame(OP.TEXT, ping(2), { rsv: 2 }),
        encodeFrame(OP.PING, 'after'),
      ]));
      await expectReply(ws, 1);
      await expectFail(ws, 1002, 'rsv 2 after a valid frame');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.PONG).length, 0, ws.describe());
    });

    test('3.7 a ping with RSV=7 fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.PING, 'rsv', { rsv: 7 });
      await expectFail(ws, 1002, 'ping rsv 7');
    });

    test('3.x a close frame with RSV=1 fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.CLOSE, closePayload(1000), { rsv: 4 });
      await expectFail(ws, 1002, 'close rsv 1');
    });
  });

  describe('4 opcodes', () => {
    for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
      test(`4.${op < 8 ? 1 : 2} reserved ${op < 8 ? 'non-control' : 'control'} opcode ${op} fails with 1002`, async () => {
        const ws = await rawWs(srv);
        await ws.frame(op, Buffer.from('reserved opcode payload'));
        await expectFail(ws, 1002, `opcode ${op}`);
      });
    }

    test('4.1.3 a valid request, reserved opcode 5, a ping: first answered, then 1002, no pong', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.TEXT, ping(1)), encodeFrame(5, ''), encodeFrame(OP.PING, 'x')]));
      await expectReply(ws, 1);
      await expectFail(ws, 1002, 'opcode 5 after a valid frame');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.PONG).length, 0, ws.describe());
    });

    test('an unmasked client text frame fails with 1002 (RFC 6455 5.1)', async () => {
      const ws = await rawWs(srv);
      await ws.text(ping(1), { mask: false });
      await expectFail(ws, 1002, 'unmasked text');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, ws.describe());
    });

    test('an unmasked client ping fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.PING, 'x', { mask: false });
      await expectFail(ws, 1002, 'unmasked ping');
    });

    test('a 64-bit length with the most significant bit set fails with 1002 (RFC 6455 5.2)', async () => {
      const ws = await rawWs(srv);
      const hdr = encodeFrame(OP.TEXT, Buffer.alloc(0), { len: 64, declaredLength: 1n << 63n });
      await ws.write(Buffer.concat([hdr, Buffer.from('{"id":1')]));
      await expectFail(ws, 1002, 'length MSB set');
    });
  });

  describe('5 fragmentation', () => {
    test('5.1 a fragmented ping fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.PING, 'frag', { fin: false }), encodeFrame(OP.CONT, 'ment', { fin: true })]));
      await expectFail(ws, 1002, 'fragmented ping');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.PONG).length, 0, ws.describe());
    });

    test('5.2 a fragmented pong fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.PONG, 'frag', { fin: false }), encodeFrame(OP.CONT, 'ment')]));
      await expectFail(ws, 1002, 'fragmented pong');
    });

    test('a fragmented close fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.CLOSE, closePayload(1000), { fin: false }), encodeFrame(OP.CONT, 'x')]));
      await expectFail(ws, 1002, 'fragmented close');
    });

    for (const n of [2, 3, 7, 31]) {
      test(`5.3 a request in ${n} fragments is reassembled and answered once`, async () => {
        const ws = await rawWs(srv);
        const msg = pingReq(1, 200);
        const cuts = Array.from({ length: n - 1 }, (_, i) => Math.floor(((i + 1) * msg.length) / n));
        const parts = [0, ...cuts, msg.length].slice(1).map((end, i, ends) => msg.subarray(i === 0 ? 0 : ends[i - 1], end));
        assert.equal(parts.length, n);
        const frames = parts.map((p, i) => encodeFrame(i === 0 ? OP.TEXT : OP.CONT, p, { fin: i === n - 1 }));
        await ws.write(Buffer.concat(frames));
        await expectReply(ws, 1);
        await expectOnly(ws, [OP.TEXT]);
        assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 2, ws.describe());
        await ws.destroy();
      });
    }

    test('5.4 fragments sent in separate writes, byte by byte, are reassembled', async () => {
      const ws = await rawWs(srv);
      const msg = pingReq(1, 60);
      await ws.writeChopped(encodeFrame(OP.TEXT, msg.subarray(0, 20), { fin: false }), 1);
      await ws.writeChopped(encodeFrame(OP.CONT, msg.subarray(20, 40), { fin: false }), 1);
      await ws.writeChopped(encodeFrame(OP.CONT, msg.subarray(40)), 1);
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('empty fragments (first and middle) are allowed', async () => {
      const ws = await rawWs(srv);
      const msg = ping(1);
      await ws.write(Buffer.concat([
        encodeFrame(OP.TEXT, '', { fin: false }),
        encodeFrame(OP.CONT, msg, { fin: false }),
        encodeFrame(OP.CONT, '', { fin: false }),
        encodeFrame(OP.CONT, ''),
      ]));
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('5.6 a ping between two fragments is answered, and the message too', async () => {
      const ws = await rawWs(srv);
      const msg = ping(1);
      await ws.write(Buffer.concat([
        encodeFrame(OP.TEXT, msg.subarray(0, 8), { fin: false }),
        encodeFrame(OP.PING, 'between'),
        encodeFrame(OP.CONT, msg.subarray(8)),
      ]));
      const pong = await ws.waitFrame((f) => f.opcode === OP.PONG, { what: 'the pong' });
      assert.equal(pong.payload.toString(), 'between');
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('5.8 a ping between fragments sent in separate writes, chopped', async () => {
      const ws = await rawWs(srv);
      const msg = ping(1);
      await ws.writeChopped(encodeFrame(OP.TEXT, msg.subarray(0, 8), { fin: false }), 1);
      await ws.writeChopped(encodeFrame(OP.PING, 'between'), 1);
      await ws.waitFrame((f) => f.opcode === OP.PONG, { what: 'the pong, before the message is complete' });
      await ws.writeChopped(encodeFrame(OP.CONT, msg.subarray(8)), 1);
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('5.19 pings and an unsolicited pong between several fragments', async () => {
      const ws = await rawWs(srv);
      const msg = pingReq(1, 100);
      await ws.write(Buffer.concat([
        encodeFrame(OP.TEXT, msg.subarray(0, 10), { fin: false }),
        encodeFrame(OP.PING, 'p1'),
        encodeFrame(OP.CONT, msg.subarray(10, 50), { fin: false }),
        encodeFrame(OP.PONG, 'unsolicited'),
        encodeFrame(OP.CONT, msg.subarray(50, 90), { fin: false }),
        encodeFrame(OP.PING, 'p2'),
        encodeFrame(OP.CONT, msg.subarray(90)),
      ]));
      await expectReply(ws, 1);
      const pongs = ws.frames.filter((f) => f.opcode === OP.PONG).map((f) => f.payload.toString());
      assert.deepEqual(pongs, ['p1', 'p2'], ws.describe());
      await ws.destroy();
    });

    for (const fin of [true, false]) {
      test(`5.9 a continuation (fin=${fin}) with no message started fails with 1002`, async () => {
        const ws = await rawWs(srv);
        await ws.frame(OP.CONT, ping(1), { fin });
        await expectFail(ws, 1002, 'continuation without start');
        assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, ws.describe());
      });
    }

    test('5.15 a continuation after a finished message fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.TEXT, ping(1)), encodeFrame(OP.CONT, ping(2))]));
      await expectReply(ws, 1);
      await expectFail(ws, 1002, 'continuation after fin');
    });

    test('5.18 a new text frame before the fragmented message finished fails with 1002', async () => {
      const ws = await rawWs(srv);
      const msg = ping(1);
      await ws.write(Buffer.concat([
        encodeFrame(OP.TEXT, msg.subarray(0, 8), { fin: false }),
        encodeFrame(OP.TEXT, ping(2)),
      ]));
      await expectFail(ws, 1002, 'text inside a fragmented message');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, ws.describe());
    });

    test('a binary frame inside a fragmented text message fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([encodeFrame(OP.TEXT, '{"id":', { fin: false }), encodeFrame(OP.BINARY, '1}')]));
      await expectFail(ws, 1002, 'binary inside a fragmented message');
    });
  });

  describe('6 UTF-8', () => {
    const valid = [
      ['two-byte (Greek)', 'κόσμε'],
      ['three-byte (euro sign, CJK)', '€ 漢字'],
      ['four-byte (U+1D11E, emoji)', '𝄞 😀'],
      ['boundaries U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFD, U+10000, U+10FFFF', '\u0080\u07ff\u0800\ud7ff\ue000\ufffd\u{10000}\u{10ffff}'],
    ];
    for (const [name, s] of valid) {
      test(`6.x valid ${name} is accepted`, async () => {
        const ws = await rawWs(srv);
        await ws.text(pingWith(1, Buffer.from(s, 'utf8')));
        await expectReply(ws, 1);
        await ws.destroy();
      });
    }

    const b = (...x) => Buffer.from(x);
    const invalid = [
      ['a lone continuation byte 0x80', b(0x80)],
      ['a lone continuation byte 0xBF', b(0xbf)],
      ['a start byte not followed by a continuation (0xC3 0x28)', b(0xc3, 0x28)],
      ['a truncated 3-byte sequence (0xE2 0x82)', b(0xe2, 0x82)],
      ['a truncated 4-byte sequence (0xF0 0x9D 0x84)', b(0xf0, 0x9d, 0x84)],
      ['overlong NUL (0xC0 0x80)', b(0xc0, 0x80)],
      ['overlong 2-byte (0xC1 0xBF)', b(0xc1, 0xbf)],
      ['overlong 3-byte "/" (0xE0 0x80 0xAF)', b(0xe0, 0x80, 0xaf)],
      ['overlong 3-byte U+07FF (0xE0 0x9F 0xBF)', b(0xe0, 0x9f, 0xbf)],
      ['overlong 4-byte "/" (0xF0 0x80 0x80 0xAF)', b(0xf0, 0x80, 0x80, 0xaf)],
      ['overlong 4-byte U+FFFF (0xF0 0x8F 0xBF 0xBF)', b(0xf0, 0x8f, 0xbf, 0xbf)],
      ['a high surrogate U+D800 (0xED 0xA0 0x80)', b(0xed, 0xa0, 0x80)],
      ['a low surrogate U+DFFF (0xED 0xBF 0xBF)', b(0xed, 0xbf, 0xbf)],
      ['a surrogate pair encoded as two 3-byte sequences (CESU-8)', b(0xed, 0xa0, 0xb4, 0xed, 0xb4, 0x9e)],
      ['U+110000 (0xF4 0x90 0x80 0x80)', b(0xf4, 0x90, 0x80, 0x80)],
      ['a 0xF5 start byte (> U+10FFFF)', b(0xf5, 0x80, 0x80, 0x80)],
      ['a 5-byte sequence (0xF8 0x88 0x80 0x80 0x80)', b(0xf8, 0x88, 0x80, 0x80, 0x80)],
      ['a 6-byte sequence (0xFC 0x84 0x80 0x80 0x80 0x80)', b(0xfc, 0x84, 0x80, 0x80, 0x80, 0x80)],
      ['0xFE', b(0xfe)],
      ['0xFF', b(0xff)],
    ];
    for (const [name, bytes] of invalid) {
      test(`6.x invalid: ${name} closes with 1007`, async () => {
        const ws = await rawWs(srv);
        await ws.text(pingWith(1, bytes));
        await expectFail(ws, 1007, name);
        assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, `no reply to an invalid message: ${ws.describe()}`);
      });
    }

    test('6.x a message ending inside a multi-byte sequence closes with 1007', async () => {
      const ws = await rawWs(srv);
      await ws.text(Buffer.concat([ping(1), b(0xce)]));
      await expectFail(ws, 1007, 'truncated at the end');
    });

    test('6.x a valid 4-byte code point split across two fragments is accepted', async () => {
      const ws = await rawWs(srv);
      const msg = pingWith(1, Buffer.from('a𝄞b', 'utf8')); // F0 9D 84 9E
      const cut = msg.indexOf(0xf0) + 2; // F0 9D | 84 9E
      await ws.write(Buffer.concat([encodeFrame(OP.TEXT, msg.subarray(0, cut), { fin: false }), encodeFrame(OP.CONT, msg.subarray(cut))]));
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('6.x a valid message with one fragment per byte (code points split everywhere) is accepted', async () => {
      const ws = await rawWs(srv);
      const msg = pingWith(1, Buffer.from('κόσμε€😀', 'utf8'));
      const frames = [...msg].map((byte, i) => encodeFrame(i === 0 ? OP.TEXT : OP.CONT, Buffer.from([byte]), { fin: i === msg.length - 1 }));
      await ws.write(Buffer.concat(frames));
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('6.x invalid UTF-8 split across fragments (a surrogate) closes with 1007', async () => {
      const ws = await rawWs(srv);
      const msg = pingWith(1, b(0xed, 0xa0, 0x80));
      const cut = msg.indexOf(0xed) + 1;
      await ws.write(Buffer.concat([encodeFrame(OP.TEXT, msg.subarray(0, cut), { fin: false }), encodeFrame(OP.CONT, msg.subarray(cut))]));
      await expectFail(ws, 1007, 'surrogate split across fragments');
    });
  });

  describe('7 close handling', () => {
    test('7.1.1 close 1000 with a reason: the server echoes a close and closes the TCP connection', async () => {
      const ws = await rawWs(srv);
      await ws.text(ping(1));
      await expectReply(ws, 1);
      await ws.close(1000, 'bye now');
      const { code, frame } = await ws.waitClose();
      assert.equal(code, 1000, ws.describe());
      assert.equal(frame.masked, false);
      assert.ok(frame.payload.length <= 125);
      await ws.waitTcpClosed();
    });

    test('7.1.2/7.1.3 data and pings after the close frame are ignored', async () => {
      const ws = await rawWs(srv);
      await ws.write(Buffer.concat([
        encodeFrame(OP.CLOSE, closePayload(1000, 'done')),
        encodeFrame(OP.TEXT, ping(2)),
        encodeFrame(OP.PING, 'after close'),
      ]));
      const { code } = await ws.waitClose();
      assert.equal(code, 1000);
      await ws.waitTcpClosed();
      const other = ws.frames.filter((f) => f.opcode !== OP.CLOSE);
      assert.deepEqual(other.map((f) => f.opcode), [], `nothing but the close after a close: ${ws.describe()}`);
    });

    test('7.1.5 a fragmented message left open by a close is not processed', async () => {
      const ws = await rawWs(srv);
      const msg = ping(1);
      await ws.write(Buffer.concat([
        encodeFrame(OP.TEXT, msg.subarray(0, 8), { fin: false }),
        encodeFrame(OP.CLOSE, closePayload(1000)),
        encodeFrame(OP.CONT, msg.subarray(8)),
      ]));
      const { code } = await ws.waitClose();
      assert.equal(code, 1000);
      await ws.waitTcpClosed();
      assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, ws.describe());
    });

    test('7.3.1 a close with no payload is answered with a close (empty or 1000)', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.CLOSE, Buffer.alloc(0));
      const { code } = await ws.waitClose();
      assert.ok(code === null || code === 1000, `close code ${code}; ${ws.describe()}`);
      await ws.waitTcpClosed();
    });

    test('7.3.2 a close with a 1-byte payload fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.frame(OP.CLOSE, Buffer.from([0x03]));
      await expectFail(ws, 1002, 'close with 1 byte');
    });

    test('7.3.3 a close with code 1000 and no reason', async () => {
      const ws = await rawWs(srv);
      await ws.close(1000);
      const { code } = await ws.waitClose();
      assert.equal(code, 1000);
      await ws.waitTcpClosed();
    });

    test('7.3.5 a close with a 123-byte reason (125-byte payload)', async () => {
      const ws = await rawWs(srv);
      await ws.close(1000, 'r'.repeat(123));
      const { code } = await ws.waitClose();
      assert.equal(code, 1000);
      await ws.waitTcpClosed();
    });

    test('7.3.6 a close with a 124-byte reason (126-byte control payload) fails with 1002', async () => {
      const ws = await rawWs(srv);
      await ws.close(1000, 'r'.repeat(124));
      await expectFail(ws, 1002, 'close payload 126');
    });

    test('7.5.1 a close reason with invalid UTF-8 fails with 1007 (or 1002)', async () => {
      const ws = await rawWs(srv);
      await ws.close(1000, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64]));
      await expectFail(ws, [1007, 1002], 'invalid UTF-8 close reason');
    });

    test('a close reason with valid multi-byte UTF-8 is accepted', async () => {
      const ws = await rawWs(srv);
      await ws.close(1000, 'κόσμε 😀');
      const { code } = await ws.waitClose();
      assert.equal(code, 1000);
      await ws.waitTcpClosed();
    });

    for (const sent of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
      test(`7.7 valid close code ${sent} is answered with a close (echoed or 1000)`, async () => {
        const ws = await rawWs(srv);
        await ws.close(sent, 'ok');
        const { code } = await ws.waitClose();
        assert.ok(code === sent || code === 1000, `sent ${sent}, got ${code}; ${ws.describe()}`);
        await ws.waitTcpClosed();
      });
    }

    for (const sent of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      test(`7.9 invalid close code ${sent} fails with 1002`, async () => {
        const ws = await rawWs(srv);
        await ws.close(sent, 'bad code');
        await expectFail(ws, 1002, `close code ${sent}`);
      });
    }
  });

  describe('9 limits (64 KiB per message)', () => {
    test('9.x a 65536-byte message (the cap) is answered', async () => {
      const ws = await rawWs(srv);
      await ws.text(pingReq(1, 65536));
      await expectReply(ws, 1);
      await ws.destroy();
    });

    test('9.x a 65537-byte message (one over the cap) closes with 1009', async () => {
      const ws = await rawWs(srv);
      await ws.text(pingReq(1, 65537));
      await expectFail(ws, 1009, '65537 bytes');
      assert.equal(ws.frames.filter((f) => f.opcode === OP.TEXT).length, 0, ws.describe());
    });

    test('9.x a 65536-byte message in 64 fragments is answered; 65537 in 64 fragments closes with 1009', async () => {
      for (const [len, ok] of [[65536, true], [65537, false]]) {
        const ws = await rawWs(srv);
        const msg = pingReq(1, len);
        const frames = [];
        for (let i = 0; i < 64; i++) {
          const end = i === 63 ? msg.length : (i + 1) * 1024;
          frames.push(encodeFrame(i === 0 ? OP.TEXT : OP.CONT, msg.subarray(i * 1024, end), { fin: i === 63 }));
        }
        await ws.write(Buffer.concat(frames));
        if (ok) {
          await expectReply(ws, 1);
          await ws.destroy();
        } else {
          await expectFail(ws, 1009, `${len} bytes in fragments`);
        }
      }
    });

    test('9.x a huge declared 64-bit length (2^62) closes with 1009 at once, nothing allocated', async () => {
      const ws = await rawWs(srv);
      const hdr = encodeFrame(OP.TEXT, Buffer.alloc(0), { declaredLength: 1n << 62n });
      assert.equal(hdr.length, 14);
      // Only the header and a few bytes: the server must refuse on the header alone.
      await ws.write(Buffer.concat([hdr, Buffer.from('{"id":1')]));
      await expectFail(ws, 1009, 'declared 2^62');
    });

    test('9.x a declared 16 MiB frame closes with 1009 before its payload arrived', async () => {
      const ws = await rawWs(srv);
      const hdr = encodeFrame(OP.TEXT, Buffer.alloc(0), { declaredLength: 16 << 20 });
      // The header and the first payload bytes only (the server may wait for a payload byte
      // before it looks at the frame; it must not wait for the whole 16 MiB).
      await ws.write(Buffer.concat([hdr, Buffer.from('{"id":1')]));
      await expectFail(ws, 1009, 'declared 16 MiB');
    });

    test('9.x a continuation that takes a message over the cap closes with 1009 before its payload arrived', async () => {
      const ws = await rawWs(srv);
      const first = encodeFrame(OP.TEXT, Buffer.alloc(60000, 0x20), { fin: false });
      const second = encodeFrame(OP.CONT, Buffer.alloc(0), { declaredLength: 10000 });
      await ws.write(Buffer.concat([first, second, Buffer.from('    ')]));
      await expectFail(ws, 1009, 'continuation over the cap');
    });

    test('the server stays healthy after all of the above', async () => {
      const ws = await rawWs(srv);
      await ws.text(ping(1));
      await expectReply(ws, 1);
      await ws.close(1000);
      await ws.waitClose();
      await ws.waitTcpClosed();
    });
  });
});
