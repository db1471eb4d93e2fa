import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attachVisibility, type ClientPresenceState } from '../../src/index.js';
import { FakeClock, FakeWebSocket, makeClient, serveConnection, subResult } from '../helpers/fake.js';

/** A client online and subscribed to 'room'; returns the rig and a log of typing requests as [ms since start, on]. */
function typingRig() {
  const rig = makeClient();
  rig.client.connect();
  const ws = serveConnection();
  rig.client.subscribe('room');
  ws.reply(ws.lastRequest('sub'), subResult('room', 0, []));
  const t0 = rig.clock.nowMs;
  const log = () =>
    FakeWebSocket.instances.flatMap((w) => w.requests('typing')).map((f) => [Number(f._at ?? 0) - t0, f.on]);
  // Stamp each request with the fake time it was sent at.
  for (const w of [ws]) {
    const send = w.send.bind(w);
    w.send = (data: string) => {
      send(data);
      w.sent[w.sent.length - 1]!._at = rig.clock.nowMs;
    };
  }
  return { ...rig, ws, log, t: rig.client.typingController('room') };
}

describe('typing', () => {
  it('on:true at the first keystroke, refreshed every 3 s while typing, on:false 4 s after the last', () => {
    const { clock, log, t } = typingRig();
    // Keystrokes every 250 ms for 10 s.
    for (let ms = 0; ms <= 10000; ms += 250) {
      t.keystroke();
      clock.advance(250);
    }
    // Last keystroke at 10000, now 10250. Keystrokes came after the 9000 refresh, so one more
    // is due at 12000; then on:false at 14000.
    clock.advance(3749);
    assert.deepEqual(log(), [
      [0, true],
      [3000, true],
      [6000, true],
      [9000, true],
      [12000, true],
    ]);
    clock.advance(1);
    assert.deepEqual(log().at(-1), [14000, false]);
    assert.equal(t.typing, false);
    clock.advance(20000);
    assert.equal(log().length, 6, 'nothing more once stopped');
  });

  it('never more than one request per 3 s while typing continues, whatever the rhythm', () => {
    const { clock, log, t } = typingRig();
    const gaps = [10, 2900, 50, 3500, 100, 100, 3900, 1, 1, 2999, 5, 3001, 200];
    for (const g of gaps) {
      t.keystroke();
      clock.advance(g);
    }
    const ons = log().filter(([, on]) => on === true).map(([at]) => at as number);
    for (let i = 1; i < ons.length; i++) assert.ok(ons[i]! - ons[i - 1]! >= 3000, `${ons}`);
    assert.ok(!log().some(([, on]) => on === false), 'no gap reached 4 s: still typing');
  });

  it('a pause under 4 s keeps typing and refreshes at the next keystroke', () => {
    const { clock, log, t } = typingRig();
    t.keystroke(); // 0
    clock.advance(3900);
    t.keystroke(); // 3900: no refresh was due at 3000 (no keystroke since 0), send now
    assert.deepEqual(log(), [
      [0, true],
      [3900, true],
    ]);
    clock.advance(3999);
    assert.equal(log().length, 2);
    clock.advance(1);
    assert.deepEqual(log().at(-1), [7900, false]);
  });

  it('cleared() and send() say on:false at once', () => {
    const { client, clock, log, t } = typingRig();
    t.keystroke();
    clock.advance(500);
    t.cleared();
    assert.deepEqual(log(), [
      [0, true],
      [500, false],
    ]);
    clock.advance(500);
    t.keystroke();
    clock.advance(500);
    client.send('room', 'done');
    assert.deepEqual(log().slice(2), [
      [1000, true],
      [1500, false],
    ]);
    clock.advance(10000);
    assert.equal(log().length, 4);
  });

  it('still typing after a reconnect: on:true again on the new socket', () => {
    const { clock, t, ws } = typingRig();
    t.keystroke();
    ws.serverClose(1006);
    clock.advance(100);
    const ws2 = serveConnection((req) => subResult(String(req.chat), 0, []));
    assert.deepEqual(
      ws2.requests('typing').map((f) => f.on),
      [true],
    );
  });
});

// ------------------------------------------------------------------------------------------------

class FakeTarget {
  listeners = new Map<string, Set<(ev: unknown) => void>>();
  addEventListener(type: string, fn: (ev: unknown) => void): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(fn);
  }
  removeEventListener(type: string, fn: (ev: unknown) => void): void {
    this.listeners.get(type)?.delete(fn);
  }
  dispatch(type: string): void {
    for (const fn of this.listeners.get(type) ?? []) fn({ type });
  }
  count(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }
}

class FakeDocument extends FakeTarget {
  visibilityState: 'visible' | 'hidden' = 'visible';
  setVisible(v: boolean): void {
    this.visibilityState = v ? 'visible' : 'hidden';
    this.dispatch('visibilitychange');
  }
}

describe('visibility and idle', () => {
  const MIN = 60000;

  it('active, hidden, active again, idle after 5 min without input, active on input', () => {
    const clock = new FakeClock();
    const doc = new FakeDocument();
    const win = new FakeTarget();
    const states: ClientPresenceState[] = [];
    const detach = attachVisibility((s) => states.push(s), doc, win, { timers: clock, now: clock.now });
    assert.deepEqual(states, ['active']);
    doc.setVisible(false);
    assert.deepEqual(states, ['active', 'hidden']);
    clock.advance(10 * MIN); // hidden stays hidden, never idle
    assert.deepEqual(states, ['active', 'hidden']);
    doc.setVisible(true);
    assert.deepEqual(states, ['active', 'hidden', 'active']);
    clock.advance(2 * MIN);
    win.dispatch('pointermove'); // input at 2 min: idle moves to 7 min
    clock.advance(5 * MIN - 1);
    assert.equal(states.at(-1), 'active');
    clock.advance(1);
    assert.equal(states.at(-1), 'idle');
    win.dispatch('keydown');
    assert.deepEqual(states, ['active', 'hidden', 'active', 'idle', 'active']);
    win.dispatch('keydown'); // no change, nothing sent
    assert.equal(states.length, 5);
    detach();
    assert.equal(doc.count() + win.count(), 0);
    clock.advance(60 * MIN);
    assert.equal(states.length, 5);
  });

  it('a page hidden when attached starts hidden', () => {
    const clock = new FakeClock();
    const doc = new FakeDocument();
    doc.visibilityState = 'hidden';
    const states: ClientPresenceState[] = [];
    attachVisibility((s) => states.push(s), doc, new FakeTarget(), { timers: clock, now: clock.now });
    win(states);
    function win(s: ClientPresenceState[]) {
      assert.deepEqual(s, ['hidden']);
    }
  });

  it('client.attachVisibility sends presence, and re-sends the state after a reconnect', () => {
    const rig = makeClient();
    rig.client.connect();
    let ws = serveConnection();
    const doc = new FakeDocument();
    const win = new FakeTarget();
    rig.client.attachVisibility(doc, win);
    doc.setVisible(false);
    assert.deepEqual(ws.requests('presence').map((f) => f.state), ['active', 'hidden']);
    ws.serverClose(1006);
    rig.clock.advance(100);
    ws = serveConnection();
    assert.deepEqual(ws.requests('presence').map((f) => f.state), ['hidden']);
    doc.setVisible(true);
    rig.clock.advance(5 * MIN);
    assert.deepEqual(ws.requests('presence').map((f) => f.state), ['hidden', 'active', 'idle']);
  });
});
