// 08 - Bad input on the WebSocket: malformed requests get an error reply naming the problem and
// the socket stays usable; binary, oversized and invalid UTF-8 messages close the socket with
// 1003, 1009 and 1007; the server keeps serving everyone else.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { connect, signup, uname } from './lib/client.mjs';
import { useServer } from './lib/server.mjs';

describe('bad input', () => {
  const srv = useServer();

  let ana;
  let chat;
  const sockets = [];

  before(async () => {
    ana = await signup(srv, uname('ana'));
    const c = await fresh();
    ({ chat } = await c.ok('chat.create', { title: 'bad input', isPublic: true }));
  });

  after(async () => {
    await Promise.all(sockets.map((s) => s.close().catch(() => {})));
  });

  async function fresh() {
    const c = await connect(srv, { token: ana.token });
    sockets.push(c);
    return c;
  }

  // Sends raw text and resolves with the next {"id": null} error reply.
  async function nullReplyTo(c, text) {
    const from = c.nullReplies.length;
    await c.sendRaw(text);
    return c.waitNullReply({ from });
  }

  describe('malformed requests get an error reply and the socket stays usable', () => {
    test('non-JSON text: bad_request with id null', async () => {
      const c = await fresh();
      for (const text of ['this is not json', '{"id": 1, "op": "ping"', '', '{"id":1,}', '\u0000']) {
        const r = await nullReplyTo(c, text);
        assert.equal(r.id, null);
        assert.equal(r.ok, false);
        assert.equal(r.error.code, 'bad_request', `${JSON.stringify(text)} -> ${JSON.stringify(r)}`);
        assert.equal(typeof r.error.message, 'string');
      }
      await c.ok('ping');
    });

    test('JSON that is not an object: bad_request with id null', async () => {
      const c = await fresh();
      for (const text of ['[1,2,3]', '42', '"ping"', 'null', 'true']) {
        const r = await nullReplyTo(c, text);
        assert.equal(r.error?.code, 'bad_request', `${text} -> ${JSON.stringify(r)}`);
      }
      await c.ok('ping');
    });

    test('no usable id: bad_request with id null', async () => {
      const c = await fresh();
      for (const req of [{ op: 'ping' }, { id: 'seven', op: 'ping' }, { id: -1, op: 'ping' }, { id: 2 ** 53, op: 'ping' }, { id: 1.5, op: 'ping' }, { id: null, op: 'ping' }]) {
        const r = await nullReplyTo(c, JSON.stringify(req));
        assert.equal(r.ok, false);
        assert.equal(r.error?.code, 'bad_request', `${JSON.stringify(req)} -> ${JSON.stringify(r)}`);
        assert.match(r.error.message, /\bid\b/, `the message names the id: ${r.error.message}`);
      }
      await c.ok('ping');
    });

    test('an unknown op is bad_request naming the op', async () => {
      const c = await fresh();
      const err = await c.fail('chat.explode', {}, 'bad_request');
      assert.match(err.message, /chat\.explode/);
      await c.ok('ping');
    });

    test('a missing or mistyped op is bad_request naming the field, with the id echoed', async () => {
      const c = await fresh();
      for (const req of [{ id: 41 }, { id: 42, op: 7 }, { id: 43, op: null }]) {
        const reply = c.expectReply(req.id);
        c.sendJson(req);
        const r = await reply;
        assert.equal(r.ok, false);
        assert.equal(r.error?.code, 'bad_request', JSON.stringify(r));
        assert.match(r.error.message, /\bop\b/);
      }
      await c.ok('ping');
    });

    test('missing and mistyped fields are bad_request naming the field', async () => {
      const c = await fresh();
      const cases = [
        ['msg.send', { chat: chat.slug }, /body/],
        ['msg.send', { chat: chat.slug, body: ['a'] }, /body/],
        ['msg.send', { body: 'hi' }, /chat/],
        ['msg.send', { chat: { slug: chat.slug }, body: 'hi' }, /chat/],
        ['msg.history', { chat: chat.slug, limit: 'x' }, /limit/],
        ['msg.history', { chat: chat.slug, before: {} }, /before/],
        ['sub', {}, /chat/],
        ['sub', { chat: chat.slug, since: 'yesterday' }, /since/],
        ['unsub', { chat: 5 }, /chat/],
        ['chat.create', {}, /title/],
        ['chat.create', { title: false }, /title/],
        ['chat.get', {}, /chat/],
        ['chat.join', { chat: [] }, /chat/],
      ];
      for (const [op, args, field] of cases) {
        const err = await c.fail(op, args, 'bad_request');
        assert.match(err.message, field, `${op} ${JSON.stringify(args)}: ${err.message}`);
      }
      await c.ok('ping');
      await c.ok('msg.send', { chat: chat.slug, body: 'still usable' });
    });

    test('a request with a 60 KiB padding field (under the 64 KiB cap) is answered, not closed', async () => {
      const c = await fresh();
      const r = await c.request('ping', { pad: 'x'.repeat(60 * 1024) });
      assert.equal(typeof r.ok, 'boolean');
      assert.ok(c.isOpen);
      await c.ok('ping');
    });
  });

  describe('frames that close the socket', () => {
    test('a binary message closes with 1003', async () => {
      const c = await fresh();
      await c.sendRaw(Buffer.from(JSON.stringify({ id: 1, op: 'ping' })), { binary: true });
      const info = await c.waitClose();
      assert.equal(info.code, 1003);
    });

    test('a text message over 64 KiB closes with 1009', async () => {
      const c = await fresh();
      const body = 'x'.repeat(65 * 1024);
      c.sendJson({ id: 5, op: 'msg.send', chat: chat.slug, body });
      const info = await c.waitClose();
      assert.equal(info.code, 1009);
    });

    test('a message over 64 KiB sent in small fragments closes with 1009', async () => {
      const c = await fresh();
      const text = JSON.stringify({ id: 6, op: 'ping', pad: 'y'.repeat(70 * 1024) });
      const step = 8 * 1024;
      for (let i = 0; i < text.length && c.isOpen; i += step) {
        await c.sendRaw(text.slice(i, i + step), { fin: i + step >= text.length }).catch(() => {});
      }
      const info = await c.waitClose();
      assert.equal(info.code, 1009);
    });

    test('invalid UTF-8 in a text message closes with 1007', async () => {
      const c = await fresh();
      // {"id":1,"op":"ping","x":"<0xff 0xfe>"}
      const bytes = Buffer.concat([Buffer.from('{"id":1,"op":"ping","x":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      await c.sendRaw(bytes, { binary: false });
      const info = await c.waitClose();
      assert.equal(info.code, 1007);
    });

    test('invalid UTF-8 split across fragments closes with 1007', async () => {
      const c = await fresh();
      // A 3-byte sequence cut after its first byte, continued with an invalid byte.
      await c.sendRaw(Buffer.from([0x7b, 0x22, 0xe2]), { binary: false, fin: false });
      await c.sendRaw(Buffer.from([0x28, 0xa1, 0x22, 0x7d]), { binary: false, fin: true });
      const info = await c.waitClose();
      assert.equal(info.code, 1007);
    });

    test('an overlong UTF-8 encoding and a UTF-16 surrogate are invalid too (1007)', async () => {
      for (const seq of [[0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
        const c = await fresh();
        const bytes = Buffer.concat([Buffer.from('{"id":1,"op":"ping","x":"'), Buffer.from(seq), Buffer.from('"}')]);
        await c.sendRaw(bytes, { binary: false });
        const info = await c.waitClose();
        assert.equal(info.code, 1007, `bytes ${seq.map((b) => b.toString(16)).join(' ')}`);
      }
    });

    test('others are unaffected: the server still serves a new socket', async () => {
      const c = await fresh();
      await c.ok('ping');
      const r = await c.ok('msg.send', { chat: chat.slug, body: 'after the bad frames' });
      assert.ok(r.msg.seq >= 1);
    });
  });
});
