// Issue 18 in the SDK: chat.notify, chat.browse and me.update wrappers, the chat.activity,
// chat.notify and user.updated events, and the HTTP helpers for password and avatar.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AVATAR_MAX_BYTES, AVATAR_TYPES, changePassword, deleteAvatar, nextBrowseArgs, ParleyError, uploadAvatar } from '../../src/index.js';
import type { ChatActivityEvent, ChatNotifyEvent, UserUpdatedEvent } from '../../src/index.js';
import { ANA, BEN, makeClient, msgObj, serveConnection } from '../helpers/fake.js';

type Call = { url: string; init: RequestInit };

function fakeFetch(status: number, body: unknown) {
  const calls: Call[] = [];
  const f = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  }) as unknown as typeof fetch;
  return { f, calls };
}

describe('live list, notifications, directory, profile', () => {
  it('setNotify, browse and updateMe send their ops and return the results', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const n = client.setNotify('design', 'none');
    const nr = ws.lastRequest('chat.notify');
    assert.deepEqual(nr, { id: nr.id, op: 'chat.notify', chat: 'design', level: 'none' });
    ws.reply(nr, { chat: 'design', level: 'none' });
    assert.deepEqual(await n, { chat: 'design', level: 'none' });

    const b = client.browse({ q: 'des', limit: 10 });
    const br = ws.lastRequest('chat.browse');
    assert.deepEqual(br, { id: br.id, op: 'chat.browse', q: 'des', limit: 10 });
    const chats = [{ slug: 'design', title: 'Design', participantCount: 3, lastActivity: 5, joined: true }];
    ws.reply(br, { chats, hasMore: false });
    assert.deepEqual(await b, { chats, hasMore: false });

    const u = client.updateMe({ displayName: 'Ana Fox' });
    const ur = ws.lastRequest('me.update');
    assert.deepEqual(ur, { id: ur.id, op: 'me.update', displayName: 'Ana Fox' });
    ws.reply(ur, { user: { ...ANA, displayName: 'Ana Fox', avatar: null } });
    assert.equal((await u).user.displayName, 'Ana Fox');
    assert.equal(client.user?.displayName, 'Ana Fox', 'the client knows its own new name');
  });

  it('nextBrowseArgs pages on from the last chat by (lastActivity, slug), null after the last page', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const row = (slug: string, lastActivity: number) => ({ slug, title: slug, participantCount: 1, lastActivity, joined: false });
    const args = { q: 'room', limit: 2 };
    const first = client.browse(args);
    const r1 = ws.lastRequest('chat.browse');
    ws.reply(r1, { chats: [row('b', 7), row('a', 7)], hasMore: true });
    const next = nextBrowseArgs(args, await first);
    assert.deepEqual(next, { q: 'room', limit: 2, before: 7, chat: 'a' });
    const second = client.browse(next!);
    const r2 = ws.lastRequest('chat.browse');
    assert.deepEqual(r2, { id: r2.id, op: 'chat.browse', q: 'room', limit: 2, before: 7, chat: 'a' });
    ws.reply(r2, { chats: [row('z', 7)], hasMore: false });
    assert.equal(nextBrowseArgs(next!, await second), null);
    assert.equal(nextBrowseArgs(args, { chats: [], hasMore: true }), null);
  });

  it('emits chat.activity, chat.notify and user.updated; its own user.updated updates client.user', async () => {
    const { client } = makeClient();
    client.connect();
    const ws = serveConnection();
    const got: { activity: ChatActivityEvent[]; notify: ChatNotifyEvent[]; updated: UserUpdatedEvent[] } = {
      activity: [],
      notify: [],
      updated: [],
    };
    client.on('chat.activity', (e) => got.activity.push(e));
    client.on('chat.notify', (e) => got.notify.push(e));
    client.on('user.updated', (e) => got.updated.push(e));
    const activity = { chat: 'design', lastMsg: msgObj('design', 3), unread: 3, mentions: 0, lastActivity: 9, seq: 3, mentioned: false };
    ws.push({ ev: 'chat.activity', ...activity });
    ws.push({ ev: 'chat.notify', chat: 'design', level: 'all' });
    ws.push({ ev: 'user.updated', user: { ...BEN, avatar: '/avatars/ab.png' } });
    assert.deepEqual(got.activity, [activity]);
    assert.deepEqual(got.notify, [{ chat: 'design', level: 'all' }]);
    assert.equal(got.updated[0]!.user.avatar, '/avatars/ab.png');
    assert.equal(client.user?.displayName, ANA.displayName, "someone else's update leaves client.user alone");
    ws.push({ ev: 'user.updated', user: { ...ANA, displayName: 'Ana Lynx', avatar: null } });
    assert.equal(client.user?.displayName, 'Ana Lynx');
  });
});

describe('profile HTTP helpers', () => {
  it('changePassword posts both passwords; a wrong one rejects unauthorized', async () => {
    const ok = fakeFetch(204, undefined);
    await changePassword({ password: 'old one', newPassword: 'new secret' }, { fetch: ok.f, token: 't' });
    assert.equal(ok.calls[0]!.url, '/api/password');
    assert.equal(ok.calls[0]!.init.method, 'POST');
    assert.deepEqual(JSON.parse(String(ok.calls[0]!.init.body)), { password: 'old one', newPassword: 'new secret' });
    const bad = fakeFetch(401, { error: { code: 'unauthorized', message: 'wrong password' } });
    await assert.rejects(changePassword({ password: 'x', newPassword: 'new secret' }, { fetch: bad.f }), (err: ParleyError) => err.code === 'unauthorized');
  });

  it('uploadAvatar sends the raw bytes with the blob type; deleteAvatar deletes', async () => {
    const user = { ...ANA, avatar: '/avatars/aa.png' };
    const up = fakeFetch(200, { user });
    const blob = new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], { type: 'image/png' });
    assert.deepEqual(await uploadAvatar(blob, { fetch: up.f, baseUrl: 'http://h:1' }), user);
    const call = up.calls[0]!;
    assert.equal(call.url, 'http://h:1/api/avatar');
    assert.equal((call.init.headers as Record<string, string>)['content-type'], 'image/png');
    assert.deepEqual([...(call.init.body as Uint8Array)], [0x89, 0x50, 0x4e, 0x47]);
    assert.deepEqual([...AVATAR_TYPES], ['image/png', 'image/jpeg', 'image/webp']);
    assert.equal(AVATAR_MAX_BYTES, 1024 * 1024);
    const big = fakeFetch(413, { error: { code: 'too_large', message: 'request body too large' } });
    await assert.rejects(uploadAvatar(blob, { fetch: big.f }), (err: ParleyError) => err.code === 'too_large');
    const del = fakeFetch(200, { user: { ...ANA, avatar: null } });
    assert.equal((await deleteAvatar({ fetch: del.f })).avatar, null);
    assert.equal(del.calls[0]!.init.method, 'DELETE');
    assert.equal(del.calls[0]!.init.body, undefined);
  });
});
