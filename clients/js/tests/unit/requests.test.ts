import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParleyError } from '../../src/index.js';
import { ANA, FakeWebSocket, flush, makeClient, serveConnection } from '../helpers/fake.js';

describe('request/reply', () => {
  it('matches replies by id, in any order, and strips the envelope', async () => {
    const { client } = makeClient();
    const online = client.connect();
    const ws = serveConnection();
    assert.deepEqual(await online, ANA);
    assert.equal(client.state, 'online');

    const p1 = client.getChat('a');
    const p2 = client.listChats();
    const [r1, r2] = [ws.lastRequest('chat.get'), ws.lastRequest('chat.list')];
    assert.notEqual(r1.id, r2.id);
    assert.deepEqual(r1, { id: r1.id, op: 'chat.get', chat: 'a' });
    ws.reply(r2, { chats: [], invitations: [] });
    ws.reply(r1, { chat: { slug: 'a' }, participants: [] });
    assert.deepEqual(await p1, { chat: { slug: 'a' }, participants: [] });
    assert.deepEqual(await p2, { chats: [], invitations: [] });
  });

  it('rejects with a ParleyError carrying code, message and retryAfter', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const p = client.joinChat('secret');
    ws.fail(ws.lastRequest('chat.join'), 'forbidden', 'private chat');
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof ParleyError);
      assert.equal(err.code, 'forbidden');
      assert.equal(err.message, 'private chat');
      assert.equal(err.op, 'chat.join');
      return true;
    });
    const q = client.searchUsers('an');
    ws.fail(ws.lastRequest('users.search'), 'rate_limited', 'slow down', { retryAfter: 1500 });
    await assert.rejects(q, (err: ParleyError) => err.code === 'rate_limited' && err.retryAfter === 1500);
  });

  it('times out per request; a late reply is ignored', async () => {
    const { client, clock } = makeClient({ requestTimeoutMs: 5000 });
    client.connect();
    const ws = serveConnection();
    let settled = false;
    const p = client.ping();
    p.catch(() => {}).finally(() => (settled = true));
    const fast = client.request('chat.list', {}, { timeoutMs: 20000 });
    clock.advance(4999);
    await flush();
    assert.equal(settled, false);
    clock.advance(1);
    await assert.rejects(p, (err: ParleyError) => err.code === 'timeout' && err.op === 'ping');
    ws.reply(ws.lastRequest('ping'), { now: 1 }); // too late: nothing happens
    clock.advance(10000);
    ws.reply(ws.lastRequest('chat.list'), { chats: [], invitations: [] });
    assert.deepEqual(await fast, { chats: [], invitations: [] });
  });

  it('queues requests made while connecting and sends them once online', async () => {
    const { client } = makeClient();
    client.connect();
    const p = client.createChat({ title: 'Design' });
    const ws = FakeWebSocket.last;
    ws.open();
    assert.equal(ws.requests('chat.create').length, 0, 'nothing but auth before authentication');
    assert.deepEqual(ws.sent.map((f) => f.op), ['auth']);
    ws.reply(ws.lastRequest('auth'), { user: ANA });
    const req = ws.lastRequest('chat.create');
    assert.equal(req.title, 'Design');
    ws.reply(req, { chat: { slug: 'design' } });
    assert.deepEqual(await p, { chat: { slug: 'design' } });
  });

  it('a queued request times out if the client never gets online', async () => {
    const { client, clock } = makeClient({ requestTimeoutMs: 3000 });
    client.connect();
    const p = client.listChats();
    clock.advance(3000);
    await assert.rejects(p, (err: ParleyError) => err.code === 'timeout');
  });

  it('rejects in-flight requests with disconnected when the socket drops', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const p = client.history('a', { limit: 10 });
    assert.deepEqual(ws.lastRequest('msg.history'), { id: ws.lastRequest('msg.history').id, op: 'msg.history', chat: 'a', limit: 10 });
    ws.serverClose(1006);
    await assert.rejects(p, (err: ParleyError) => err.code === 'disconnected');
  });

  it('close() rejects waiting requests with closed and requests after it at once', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const p = client.listInvites();
    client.close();
    await assert.rejects(p, (err: ParleyError) => err.code === 'closed');
    await assert.rejects(client.ping(), (err: ParleyError) => err.code === 'closed');
    assert.equal(client.state, 'offline');
    assert.equal(ws.closeCalls.length, 1);
  });

  it('typed wrappers send the documented op names and arguments', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const calls: [() => Promise<unknown>, Record<string, unknown>][] = [
      [() => client.ping(), { op: 'ping' }],
      [() => client.createChat({ title: 'T', isPublic: true, maxParticipants: 5 }), { op: 'chat.create', title: 'T', isPublic: true, maxParticipants: 5 }],
      [() => client.getChat('c'), { op: 'chat.get', chat: 'c' }],
      [() => client.listChats(), { op: 'chat.list' }],
      [() => client.joinChat('c'), { op: 'chat.join', chat: 'c' }],
      [() => client.updateChat({ chat: 'c', maxParticipants: null }), { op: 'chat.update', chat: 'c', maxParticipants: null }],
      [() => client.leaveChat('c'), { op: 'chat.leave', chat: 'c' }],
      [() => client.removeParticipant('c', 'ben'), { op: 'chat.remove', chat: 'c', user: 'ben' }],
      [() => client.setRole('c', 'ben', 'admin'), { op: 'chat.setRole', chat: 'c', user: 'ben', role: 'admin' }],
      [() => client.sendMessage({ chat: 'c', body: 'x', clientMsgId: 'k' }), { op: 'msg.send', chat: 'c', body: 'x', clientMsgId: 'k' }],
      [() => client.history('c', { before: 9 }), { op: 'msg.history', chat: 'c', before: 9 }],
      [() => client.markRead('c', 3), { op: 'read', chat: 'c', seq: 3 }],
      [() => client.searchUsers('be', 'c'), { op: 'users.search', q: 'be', chat: 'c' }],
      [() => client.search('zebra'), { op: 'msg.search', q: 'zebra' }],
      [() => client.search('zebra', { chat: 'c', before: 20, limit: 10 }), { op: 'msg.search', q: 'zebra', chat: 'c', before: 20, limit: 10 }],
      [() => client.createInvite('c', 'ben', 60), { op: 'invite.create', chat: 'c', user: 'ben', ttl: 60 }],
      [() => client.acceptInvite(4), { op: 'invite.accept', invitation: 4 }],
      [() => client.declineInvite(4), { op: 'invite.decline', invitation: 4 }],
      [() => client.revokeInvite(4), { op: 'invite.revoke', invitation: 4 }],
      [() => client.listInvites(), { op: 'invite.list' }],
      [() => client.reportPresence('idle'), { op: 'presence', state: 'idle' }],
    ];
    for (const [call, expected] of calls) {
      const p = call();
      const frame = ws.sent[ws.sent.length - 1]!;
      const { id, ...rest } = frame;
      assert.equal(typeof id, 'number');
      assert.deepEqual(rest, expected);
      ws.reply(frame, {});
      await p;
    }
  });

  it('reports replies with id null and unparsable frames as protocol errors', () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = serveConnection();
    ws.push({ id: null, ok: false, error: { code: 'bad_request', message: 'not JSON' } });
    ws.push('{nope');
    const errs = of('protocolError');
    assert.equal(errs.length, 2);
    assert.equal(errs[0]!.error.code, 'bad_request');
    assert.equal(client.state, 'online');
  });

  it('passes every server event on, and all of them through "event"', () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = serveConnection();
    const evs = [
      { ev: 'chat.updated', chat: { slug: 'c' } },
      { ev: 'participant.joined', chat: 'c', user: BEN_USER, role: 'member', participantCount: 2 },
      { ev: 'participant.left', chat: 'c', user: BEN_USER, participantCount: 1 },
      { ev: 'participant.removed', chat: 'c', user: BEN_USER, by: ANA, participantCount: 1 },
      { ev: 'participant.updated', chat: 'c', user: BEN_USER, role: 'admin' },
      { ev: 'invite', action: 'received', invitation: { id: 1 } },
      { ev: 'typing', chat: 'c', users: [BEN_USER], others: 0 },
      { ev: 'presence', user: { id: 2, username: 'ben' }, state: 'away', lastSeen: 5 },
      { ev: 'chat.active', chat: 'c', activeUsers: [BEN_USER] },
      { ev: 'removed', chat: 'c', by: ANA },
      { ev: 'something.new', x: 1 },
    ];
    for (const e of evs) ws.push(e);
    for (const e of evs.slice(0, 10)) {
      const { ev, ...payload } = e;
      const got = of(ev as 'typing');
      assert.equal(got.length, 1, ev);
      assert.deepEqual(got[0], payload);
    }
    const seen: string[] = [];
    client.on('event', (e) => seen.push(e.ev));
    ws.push({ ev: 'something.new', x: 2 });
    assert.deepEqual(seen, ['something.new']);
  });

  it('splits a batched participant.joined (users) into one event per joiner', () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = serveConnection();
    const CAL = { id: 3, username: 'cal', displayName: 'Cal' };
    ws.push({
      ev: 'participant.joined', chat: 'c', user: CAL, role: 'member', participantCount: 3,
      users: [{ user: BEN_USER, role: 'member' }, { user: CAL, role: 'member' }],
    });
    assert.deepEqual(of('participant.joined'), [
      { chat: 'c', user: BEN_USER, role: 'member', participantCount: 3 },
      { chat: 'c', user: CAL, role: 'member', participantCount: 3 },
    ]);
  });

  it('splits a batched presence (users) into one event per change', () => {
    const { client, of } = makeClient();
    client.connect();
    const ws = serveConnection();
    const a = { user: { id: 2, username: 'ben' }, state: 'online', lastSeen: 5 };
    const b = { user: { id: 3, username: 'cal' }, state: 'away', lastSeen: 6 };
    ws.push({ ev: 'presence', ...b, users: [a, b] });
    ws.push({ ev: 'presence', ...a });
    assert.deepEqual(of('presence'), [a, b, a]);
  });

  it('emits read and chat.created as typed events (the server sends both to the user\'s own sockets)', () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const reads: { chat: string; seq: number }[] = [];
    const created: string[] = [];
    client.on('read', (e) => reads.push({ chat: e.chat, seq: e.seq }));
    client.on('chat.created', (e) => created.push(e.chat.slug));
    ws.push({ ev: 'read', chat: 'c', seq: 7 });
    ws.push({ ev: 'chat.created', chat: { slug: 'new-chat', title: 'New', role: 'owner' } });
    assert.deepEqual(reads, [{ chat: 'c', seq: 7 }]);
    assert.deepEqual(created, ['new-chat']);
  });
});

const BEN_USER = { id: 2, username: 'ben', displayName: 'Ben' };
