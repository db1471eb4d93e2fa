import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PendingStore, type StorageLike } from '../../src/index.js';
import { ANA, makeClient, msgObj, serveConnection } from '../helpers/fake.js';

// An in-memory Storage: what localStorage would hold, readable by the test.
class FakeStorage implements StorageLike {
  map = new Map<string, string>();
  writes = 0;
  getItem(k: string) {
    return this.map.has(k) ? this.map.get(k)! : null;
  }
  setItem(k: string, v: string) {
    this.writes++;
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.writes++;
    this.map.delete(k);
  }
}

const KEY = 'parley.pending.1';
const stored = (s: FakeStorage) => JSON.parse(s.getItem(KEY) ?? '[]');

describe('pending sends kept in storage', () => {
  it('a send made offline is written to storage, and removed once confirmed', () => {
    const storage = new FakeStorage();
    const rig = makeClient({ pendingStore: { storage, key: KEY } });
    const out = rig.client.send('room', 'hello');
    assert.deepEqual(stored(storage), [{ clientMsgId: out.clientMsgId, chat: 'room', body: 'hello', createdAt: out.createdAt }]);
    rig.client.connect();
    const ws = serveConnection();
    const req = ws.lastRequest('msg.send');
    ws.reply(req, { msg: msgObj('room', 1, ANA, out.clientMsgId, 'hello'), duplicate: false });
    assert.equal(storage.getItem(KEY), null, 'confirmed: nothing left in storage');
  });

  it('after a "reload" (a new client on the same storage) the message is resent with the same clientMsgId, once', () => {
    const storage = new FakeStorage();
    const first = makeClient({ pendingStore: { storage, key: KEY } });
    const out = first.client.send('room', 'typed offline');
    first.client.close();

    // The page reloads: a new client, new ids, the same storage.
    const rig = makeClient({ pendingStore: { storage, key: KEY }, newClientMsgId: () => 'other-id' });
    const restored = rig.client.outgoing('room');
    assert.equal(restored.length, 1);
    assert.equal(restored[0]!.clientMsgId, out.clientMsgId);
    assert.equal(restored[0]!.status, 'pending');
    rig.client.connect();
    const ws = serveConnection();
    const sends = ws.requests('msg.send');
    assert.equal(sends.length, 1);
    assert.deepEqual(
      { chat: sends[0]!.chat, body: sends[0]!.body, clientMsgId: sends[0]!.clientMsgId },
      { chat: 'room', body: 'typed offline', clientMsgId: out.clientMsgId },
    );
    // The server had stored it before the reload: it answers duplicate, with the same seq.
    ws.reply(sends[0]!, { msg: msgObj('room', 7, ANA, out.clientMsgId, 'typed offline'), duplicate: true });
    assert.equal(rig.of('outgoing').at(-1)!.status, 'sent');
    assert.equal(storage.getItem(KEY), null);
  });

  it('a failed message stays failed after a reload (not resent by itself); discard forgets it', () => {
    const storage = new FakeStorage();
    const first = makeClient({ pendingStore: { storage, key: KEY } });
    first.client.connect();
    let ws = serveConnection();
    const out = first.client.send('room', 'nope');
    ws.fail(ws.lastRequest('msg.send'), 'forbidden', 'not a participant');
    assert.equal(stored(storage)[0].failed, true);
    first.client.close();

    const rig = makeClient({ pendingStore: { storage, key: KEY } });
    assert.equal(rig.client.outgoing()[0]!.status, 'failed');
    rig.client.connect();
    ws = serveConnection();
    assert.equal(ws.requests('msg.send').length, 0);
    assert.equal(rig.client.discard(out.clientMsgId), true);
    assert.equal(storage.getItem(KEY), null);
  });

  it('garbage in storage is ignored, and a storage that throws does not break sending', () => {
    const storage = new FakeStorage();
    storage.setItem(KEY, '{not json');
    assert.deepEqual(new PendingStore({ storage, key: KEY }).load(), []);
    storage.setItem(KEY, JSON.stringify([{ clientMsgId: 'ok-1', chat: 'c', body: 'b', createdAt: 1 }, { chat: 5 }, null]));
    assert.deepEqual(new PendingStore({ storage, key: KEY }).load(), [{ clientMsgId: 'ok-1', chat: 'c', body: 'b', createdAt: 1 }]);

    const broken: StorageLike = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('quota');
      },
      removeItem: () => {},
    };
    const rig = makeClient({ pendingStore: { storage: broken } });
    rig.client.connect();
    const ws = serveConnection();
    rig.client.send('room', 'still works');
    assert.equal(ws.requests('msg.send').length, 1);
  });

  it('keeps at most maxEntries, dropping the oldest', () => {
    const storage = new FakeStorage();
    const rig = makeClient({ pendingStore: { storage, key: KEY, maxEntries: 2 } });
    rig.client.send('room', 'a');
    rig.client.send('room', 'b');
    rig.client.send('room', 'c');
    assert.deepEqual(stored(storage).map((e: { body: string }) => e.body), ['b', 'c']);
  });
});

describe('pending sends of two tabs sharing one storage', () => {
  it("one tab's sends and confirmations never drop the other tab's unsent message", () => {
    const storage = new FakeStorage();
    const tabA = makeClient({ pendingStore: { storage, key: KEY }, newClientMsgId: () => 'a-1' });
    const tabB = makeClient({ pendingStore: { storage, key: KEY }, newClientMsgId: () => 'b-1' });
    tabA.client.send('room', 'from A, offline');
    tabB.client.send('room', 'from B');
    assert.deepEqual(stored(storage).map((e: { clientMsgId: string }) => e.clientMsgId), ['a-1', 'b-1']);
    tabB.client.connect();
    const ws = serveConnection();
    ws.reply(ws.lastRequest('msg.send'), { msg: msgObj('room', 1, ANA, 'b-1', 'from B'), duplicate: false });
    assert.deepEqual(stored(storage).map((e: { clientMsgId: string }) => e.clientMsgId), ['a-1'], "A's message is still kept");
  });
});
