// Issue 18, web side: the chat list updates live for chats that are not open (badge, preview,
// order; the unread total in the tab title and on the favicon; read markers moved on another
// device), browser notifications (permission asked only from a click; raised by the chat's
// level and by a mention; not for the chat being looked at; a click opens the chat), the "New messages" divider
// with "Jump to first unread", a shared chat link that survives logging in or signing up, Browse
// chats and Join, and the profile page (display name live in another browser, picture, password
// ending the other sessions). Screenshots of each new screen at desktop and phone sizes go to
// build/screenshots/.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, afterEach, before, describe, test } from 'node:test';
import { ROOT, startServer } from './lib/server.mjs';
import { DESKTOP, PHONE, failureArtifacts, launchBrowser, newPerson } from './lib/browser.mjs';
import { PASSWORD, composer, logIn, openChat, roomReady, send, until, waitMessage } from './lib/ui.mjs';
import { assertContrast, smallFields, smallTargets } from './lib/a11y.mjs';
import { connect, inviteAndAccept, signup } from '../integration/lib/client.mjs';

const SHOTS = path.join(ROOT, 'build/screenshots');

async function shot(page, name) {
  await fs.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), animations: 'disabled', caret: 'hide' });
}

// A stand-in for the browser's Notification API, installed before the app's scripts run: it
// records permission requests (and whether a user gesture was active) and every notification
// shown, so a test can read them back from window.__notify. The granted permission outlives a
// reload, as a browser's does.
function notificationStub() {
  const rec = { requests: [], shown: [] };
  let permission = localStorage.getItem('__notify.permission') || 'default';
  class FakeNotification {
    constructor(title, opts = {}) {
      this.title = title;
      this.body = opts.body;
      this.tag = opts.tag;
      this.onclick = null;
      rec.shown.push(this);
    }
    close() {
      this.closed = true;
    }
    static get permission() {
      return permission;
    }
    static async requestPermission() {
      rec.requests.push({ gesture: navigator.userActivation ? navigator.userActivation.isActive : null });
      permission = 'granted';
      localStorage.setItem('__notify.permission', permission);
      return permission;
    }
  }
  Object.defineProperty(window, 'Notification', { value: FakeNotification, configurable: true, writable: true });
  window.__notify = rec;
}

async function shown(page) {
  return page.evaluate(() => window.__notify.shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag })));
}

// A valid w x h RGB PNG of one colour (the server checks what it is sent).
function png(w, h, [r, g, b]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const x of buf) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => [r, g, b]).flat())]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function row(page, slug) {
  return page.locator(`.chat-row[data-slug="${slug}"]`);
}

async function rowOrder(page) {
  return page.locator('.chat-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-slug')));
}

describe('live chat list, notifications, browse, shared links and profile', () => {
  let srv;
  let browser;
  let mark = 0;
  const api = {}; // protocol clients by username (each its own session)
  const people = [];

  async function person(username, opts = {}) {
    const p = await newPerson(browser, srv.url, { name: username, ...opts });
    people.push(p);
    if (opts.stubNotifications) await p.context.addInitScript(notificationStub);
    await logIn(p.page, { username });
    return p;
  }

  before(async () => {
    srv = await startServer();
    browser = await launchBrowser();
    for (const [name, display] of [
      ['ana', 'Ana Lima'],
      ['ben', 'Ben Okafor'],
      ['cytran', 'Cy Tran'],
      ['dee', 'Dee Park'],
    ]) {
      const s = await signup(srv, name, undefined, display);
      api[name] = await connect(srv, { token: s.token });
    }
  });

  afterEach(async (t) => {
    const log = srv.since(mark);
    mark = srv.mark();
    if (!t.passed) {
      await failureArtifacts(t.name, people);
      console.error(`server log during "${t.name}":\n${srv.tail(80, log)}`);
    }
  });

  after(async () => {
    for (const c of Object.values(api)) await c.close();
    await browser?.close();
    await srv?.dispose();
  });

  test('a chat that is not open updates live in the list: badge, preview, order, title and favicon; a read elsewhere clears it', async () => {
    const beta = (await api.ana.ok('chat.create', { title: 'Beta' })).chat.slug;
    const alpha = (await api.ana.ok('chat.create', { title: 'Alpha' })).chat.slug;
    await inviteAndAccept(api.ana, api.ben, beta);
    await inviteAndAccept(api.ana, api.ben, alpha);
    await api.ana.ok('msg.send', { chat: alpha, body: 'alpha is newest', clientMsgId: 'live-a1' });

    const ana = await person('ana');
    await openChat(ana.page, beta);
    const ben = await person('ben');
    // Every chat.list Ben's page asks for: the update must come from the event, not a reload.
    const listRequests = [];
    ben.page.on('websocket', (ws) =>
      ws.on('framesent', (f) => {
        if (typeof f.payload === 'string' && f.payload.includes('"chat.list"')) listRequests.push(Date.now());
      }),
    );
    await openChat(ben.page, alpha);
    await row(ben.page, beta).waitFor();
    await until(async () => (await rowOrder(ben.page)).indexOf(alpha) < (await rowOrder(ben.page)).indexOf(beta), { message: 'Alpha above Beta' });
    assert.equal(await row(ben.page, beta).getByTestId('unread').count(), 0);
    const before = listRequests.length;

    await send(ana.page, 'Beta news from Ana');
    await waitMessage(ana.page, 'Beta news from Ana');

    const beta1 = row(ben.page, beta);
    await beta1.getByTestId('unread').filter({ hasText: '1' }).waitFor();
    assert.equal(await beta1.getByTestId('last-message').textContent(), 'Ana Lima: Beta news from Ana');
    assert.equal((await rowOrder(ben.page))[0], beta, 'Beta moved to the top');
    assert.match(await beta1.getAttribute('aria-label'), /1 unread/);
    assert.equal(listRequests.length, before, 'no chat.list reload: the chat.activity event did it');
    await until(async () => (await ben.page.title()).startsWith('(1) '), { message: 'the unread total in the title' });
    const icon = await ben.page.locator('link[rel="icon"]').evaluate((l) => ({ unread: l.getAttribute('data-unread'), href: l.href }));
    assert.equal(icon.unread, '1');
    assert.match(icon.href, /^data:image\/png;base64,/);
    await shot(ben.page, 'desktop-live-list.png');

    // Ben reads it on another device: the count goes everywhere, the title and favicon too.
    const last = (await api.ben.ok('chat.get', { chat: beta })).chat.lastSeq;
    await api.ben.ok('read', { chat: beta, seq: last });
    await until(async () => (await beta1.getByTestId('unread').count()) === 0, { message: 'the badge to clear' });
    await until(async () => !(await ben.page.title()).startsWith('('), { message: 'the title without a count' });
    assert.equal(await ben.page.locator('link[rel="icon"]').getAttribute('data-unread'), null);
    assert.equal(await beta1.getByTestId('last-message').textContent(), 'Ana Lima: Beta news from Ana');
    await ana.context.close();
    await ben.context.close();
  });

  test('notifications: asked only from a click; raised by the chat level; not for the chat on screen; a click opens the chat', async () => {
    const gamma = (await api.ana.ok('chat.create', { title: 'Gamma' })).chat.slug;
    const delta = (await api.ana.ok('chat.create', { title: 'Delta' })).chat.slug;
    await inviteAndAccept(api.ana, api.ben, gamma);
    await inviteAndAccept(api.ana, api.ben, delta);
    const ben = await person('ben', { stubNotifications: true });
    await row(ben.page, delta).waitFor();
    const prompt = ben.page.getByTestId('notify-prompt');
    await prompt.waitFor();
    assert.deepEqual(await ben.page.evaluate(() => window.__notify.requests), [], 'no permission request on load');
    await shot(ben.page, 'desktop-notification-prompt.png');
    await ben.page.setViewportSize(PHONE);
    await shot(ben.page, 'phone-notification-prompt.png');
    await ben.page.setViewportSize(DESKTOP);
    await prompt.getByRole('button', { name: 'Turn on notifications' }).click();
    await prompt.waitFor({ state: 'detached' });
    assert.deepEqual(await ben.page.evaluate(() => window.__notify.requests), [{ gesture: true }], 'one request, from the click');

    // Delta: "All messages", set in its settings (stored on the server). Gamma keeps the group default.
    await ben.page.getByRole('link', { name: /^Delta/ }).click();
    await roomReady(ben.page);
    await ben.page.getByRole('link', { name: 'Chat settings' }).click();
    const level = ben.page.getByRole('group', { name: 'Notify me about' });
    assert.equal(await level.getByLabel(/Mentions only/).isChecked(), true, 'a group chat defaults to mentions');
    await level.getByLabel(/All messages/).check();
    await until(async () => (await api.ben.ok('chat.get', { chat: delta })).chat.notify === 'all', { message: 'the level stored on the server' });
    await shot(ben.page, 'desktop-chat-settings-notify.png');

    await ben.page.getByRole('link', { name: 'Parley home' }).click();
    await ben.page.waitForURL('**/chat');
    await api.ana.ok('msg.send', { chat: gamma, body: 'plain gamma message', clientMsgId: 'n-g1' });
    await api.ana.ok('msg.send', { chat: delta, body: 'delta for everyone', clientMsgId: 'n-d1' });
    await until(async () => (await shown(ben.page)).length >= 1, { message: 'a notification' });
    await row(ben.page, gamma).getByTestId('unread').waitFor(); // Gamma's activity arrived too
    assert.deepEqual(await shown(ben.page), [{ title: 'Delta', body: 'Ana Lima: delta for everyone', tag: `parley-chat-${delta}` }], 'Delta notifies; Gamma (mentions only) does not');

    // Looking at Delta in a visible tab: no notification for it.
    await ben.page.getByRole('link', { name: /^Delta/ }).click();
    await roomReady(ben.page);
    await api.ana.ok('msg.send', { chat: delta, body: 'seen on screen', clientMsgId: 'n-d2' });
    await waitMessage(ben.page, 'seen on screen');
    await api.ana.ok('msg.send', { chat: gamma, body: 'gamma again', clientMsgId: 'n-g2' });
    await row(ben.page, gamma).getByTestId('unread').filter({ hasText: '2' }).waitFor();
    assert.equal((await shown(ben.page)).length, 1, 'nothing for the open chat (nor for Gamma)');

    // Clicking a notification opens its chat.
    await ben.page.getByRole('link', { name: 'Parley home' }).click();
    await ben.page.waitForURL('**/chat');
    await api.ana.ok('msg.send', { chat: delta, body: 'come back to delta', clientMsgId: 'n-d3' });
    await until(async () => (await shown(ben.page)).length === 2, { message: 'the second notification' });
    await ben.page.evaluate(() => window.__notify.shown.at(-1).onclick());
    await ben.page.waitForURL(`**/chat/${delta}`);
    await waitMessage(ben.page, 'come back to delta');
    assert.equal(await ben.page.evaluate(() => window.__notify.shown.at(-1).closed), true);
    await ben.context.close();
  });

  test('a mention raises a notification in a chat left at "mentions only"; a plain message does not', async () => {
    const zeta = (await api.ana.ok('chat.create', { title: 'Zeta' })).chat.slug;
    await inviteAndAccept(api.ana, api.ben, zeta);
    // Every chat.list Ben's page asks for, from its first socket on.
    const ben = await newPerson(browser, srv.url, { name: 'ben' });
    people.push(ben);
    await ben.context.addInitScript(notificationStub);
    const listRequests = [];
    ben.page.on('websocket', (ws) =>
      ws.on('framesent', (f) => {
        if (typeof f.payload === 'string' && f.payload.includes('"chat.list"')) listRequests.push(Date.now());
      }),
    );
    await logIn(ben.page, { username: 'ben' });
    await row(ben.page, zeta).waitFor();
    assert.ok(listRequests.length >= 1, 'the page loaded its list');
    const prompt = ben.page.getByTestId('notify-prompt');
    await prompt.getByRole('button', { name: 'Turn on notifications' }).click();
    await prompt.waitFor({ state: 'detached' });
    assert.equal((await api.ben.ok('chat.get', { chat: zeta })).chat.notify, 'mentions');
    const before = listRequests.length;

    await api.ana.ok('msg.send', { chat: zeta, body: 'nothing for anyone', clientMsgId: 'z-1' });
    await row(ben.page, zeta).getByTestId('unread').filter({ hasText: '1' }).waitFor();
    await api.ana.ok('msg.send', { chat: zeta, body: '@ben can you look at this?', clientMsgId: 'z-2' });
    await until(async () => (await shown(ben.page)).length >= 1, { message: 'the notification of the mention' });
    await row(ben.page, zeta).getByTestId('unread').filter({ hasText: '2' }).waitFor();
    assert.deepEqual(await shown(ben.page), [{ title: 'Zeta', body: 'Ana Lima: @ben can you look at this?', tag: `parley-chat-${zeta}` }], 'the mention only');
    // The list shows the mention too, from the same chat.activity (no reload on the mention event).
    await row(ben.page, zeta).getByTestId('mentions').waitFor();
    assert.match(await row(ben.page, zeta).getAttribute('aria-label'), /1 mention of you/);
    // An absence cannot be awaited: give a reload the list hook would have debounced (120 ms) time
    // to show, then check none came.
    await ben.page.waitForTimeout(600);
    assert.equal(listRequests.length, before, 'no chat.list reload for the mention: chat.activity did it');
    await ben.context.close();
  });

  test('a "New messages" divider at the first unread message, and "Jump to first unread"', async () => {
    const eps = (await api.ana.ok('chat.create', { title: 'Epsilon' })).chat.slug;
    await inviteAndAccept(api.ana, api.dee, eps);
    for (let i = 1; i <= 3; i++) await api.ana.ok('msg.send', { chat: eps, body: `already read ${i}`, clientMsgId: `e-r${i}` });
    const { chat } = await api.dee.ok('chat.get', { chat: eps });
    await api.dee.ok('read', { chat: eps, seq: chat.lastSeq });
    for (let i = 1; i <= 30; i++) await api.ana.ok('msg.send', { chat: eps, body: `unread ${i}`, clientMsgId: `e-u${i}` });

    const dee = await person('dee');
    await row(dee.page, eps).getByTestId('unread').filter({ hasText: '30' }).waitFor();
    await dee.page.getByRole('link', { name: /^Epsilon/ }).click();
    await roomReady(dee.page);
    await waitMessage(dee.page, 'unread 30');
    const divider = dee.page.getByTestId('unread-divider');
    await divider.waitFor({ state: 'attached' });
    // The divider sits right before "unread 1".
    const next = await divider.evaluate((d) => d.nextElementSibling?.querySelector('[data-testid="message-body"]')?.textContent);
    assert.equal(next, 'unread 1');
    const jump = dee.page.getByTestId('jump-unread');
    await jump.waitFor();
    // The room still opens at the newest message (the divider, placed after, does not push it off).
    const gap = await dee.page.getByTestId('messages').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
    assert.ok(gap < 2, `the view is ${gap}px above the bottom`);
    assert.match(await jump.textContent(), /Jump to first unread \(30\)/);
    await shot(dee.page, 'desktop-room-jump-unread.png');
    await jump.click();
    await jump.waitFor({ state: 'detached' });
    await until(() => divider.evaluate((d) => {
      const box = d.getBoundingClientRect();
      const list = d.closest('[data-testid="messages"]').getBoundingClientRect();
      return box.top >= list.top && box.bottom <= list.bottom;
    }), { message: 'the divider in view' });
    assert.equal(await divider.evaluate((d) => document.activeElement === d), true, 'focus moved to the divider');
    await shot(dee.page, 'desktop-room-new-messages-divider.png');
    // The list's badge clears (the room read it) and the divider stays put.
    await until(async () => (await row(dee.page, eps).getByTestId('unread').count()) === 0, { message: 'the badge to clear' });
    assert.equal(await divider.count(), 1);
    await dee.page.setViewportSize(PHONE);
    await shot(dee.page, 'phone-room-new-messages-divider.png');
    await dee.context.close();
  });

  test('a room marks a busy chat read while messages keep coming, and what it showed when left', async () => {
    const busy = (await api.ana.ok('chat.create', { title: 'Busy' })).chat.slug;
    const quiet = (await api.ana.ok('chat.create', { title: 'Quiet' })).chat.slug;
    await inviteAndAccept(api.ana, api.cytran, busy);
    await inviteAndAccept(api.ana, api.cytran, quiet);
    const cy = await newPerson(browser, srv.url, { name: 'cytran' });
    people.push(cy);
    const reads = []; // the seq of every read the page sends
    cy.page.on('websocket', (ws) =>
      ws.on('framesent', (f) => {
        if (typeof f.payload === 'string' && f.payload.includes('"op":"read"')) reads.push(JSON.parse(f.payload).seq);
      }),
    );
    await logIn(cy.page, { username: 'cytran' });
    await openChat(cy.page, busy);
    // A message every 100 ms for 2 s. A read that waited for 300 ms without a new message never
    // went while they came. (The pause is the scenario, a message rate, not a wait for an event.)
    const from = reads.length;
    for (let i = 1; i <= 20; i++) {
      await api.ana.ok('msg.send', { chat: busy, body: `busy ${i}`, clientMsgId: `busy-${i}` });
      await new Promise((r) => setTimeout(r, 100));
    }
    const during = reads.slice(from);
    assert.ok(during.length >= 3, `reads sent while the messages came: ${JSON.stringify(during)}`);
    // Two more, then away at once: the room marks what it showed as it is left.
    await api.ana.ok('msg.send', { chat: busy, body: 'one more', clientMsgId: 'busy-21' });
    const lastSeq = (await api.ana.ok('msg.send', { chat: busy, body: 'and the last', clientMsgId: 'busy-22' })).msg.seq;
    await waitMessage(cy.page, 'and the last');
    await cy.page.getByRole('link', { name: /^Quiet/ }).click();
    await until(() => reads.includes(lastSeq), { message: `a read of seq ${lastSeq} (sent: ${JSON.stringify(reads)})` });
    await until(async () => (await row(cy.page, busy).getByTestId('unread').count()) === 0, { message: "Busy's badge to clear" });
    await cy.context.close();
  });

  test('a shared chat link opened while logged out survives logging in and signing up', async () => {
    const open = (await api.ana.ok('chat.create', { title: 'Open house', isPublic: true })).chat.slug;
    const visitor = await newPerson(browser, srv.url, { name: 'link-visitor' });
    people.push(visitor);
    await visitor.page.goto(`/chat/${open}`);
    await visitor.page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === `/chat/${open}`);
    await visitor.page.getByLabel('Username').fill('cytran');
    await visitor.page.getByLabel('Password').fill(PASSWORD);
    await visitor.page.getByRole('button', { name: 'Log in' }).click();
    await visitor.page.waitForURL(`**/chat/${open}`);
    await visitor.page.getByRole('button', { name: 'Join this chat' }).waitFor();
    await shot(visitor.page, 'desktop-shared-link-after-login.png');
    await visitor.page.getByRole('button', { name: 'Join this chat' }).click();
    await roomReady(visitor.page);
    await send(visitor.page, 'came in by the link');
    await waitMessage(visitor.page, 'came in by the link');
    await visitor.context.close();

    // A newcomer: the link, then "Create an account", keeps where they were going.
    const newcomer = await newPerson(browser, srv.url, { name: 'link-newcomer', viewport: PHONE });
    people.push(newcomer);
    await newcomer.page.goto(`/chat/${open}`);
    await newcomer.page.waitForURL('**/login?next=*');
    await newcomer.page.getByRole('link', { name: 'Create an account' }).click();
    await newcomer.page.waitForURL((u) => u.pathname === '/signup' && u.searchParams.get('next') === `/chat/${open}`);
    await newcomer.page.getByLabel('Username').fill('eve');
    await newcomer.page.getByLabel('Password').fill(PASSWORD);
    await newcomer.page.getByRole('button', { name: 'Sign up' }).click();
    await newcomer.page.waitForURL(`**/chat/${open}`);
    await newcomer.page.getByRole('button', { name: 'Join this chat' }).waitFor();
    await shot(newcomer.page, 'phone-shared-link-after-signup.png');
    await newcomer.context.close();

    // `next` never leads off the site.
    const wary = await newPerson(browser, srv.url, { name: 'next-offsite' });
    people.push(wary);
    await wary.page.goto('/login?next=%2F%2Fevil.example%2Fx');
    await wary.page.getByLabel('Username').fill('dee');
    await wary.page.getByLabel('Password').fill(PASSWORD);
    await wary.page.getByRole('button', { name: 'Log in' }).click();
    await wary.page.waitForURL((u) => u.pathname === '/chat');
    assert.equal(new URL(wary.page.url()).host, new URL(srv.url).host);
    await wary.context.close();
  });

  test('Browse chats: search by word start, join, and the chat is yours', async () => {
    await api.ana.ok('chat.create', { title: 'Garden club', isPublic: true });
    await api.ana.ok('chat.create', { title: 'Chess night', isPublic: true });
    await api.ana.ok('chat.create', { title: 'Secret garden plans' });
    const cy = await person('cytran');
    await cy.page.getByTestId('browse-link').click();
    await cy.page.waitForURL('**/browse');
    const list = cy.page.getByTestId('browse-list');
    await list.getByText('Garden club').waitFor();
    const titles = async () => list.locator('.browse-row__title').allTextContents();
    assert.ok((await titles()).includes('Chess night'));
    assert.ok(!(await titles()).includes('Secret garden plans'), 'private chats are not listed');
    await assertContrast(cy.page, 'browse');
    await shot(cy.page, 'desktop-browse.png');

    await cy.page.getByLabel('Search public chats').fill('nig');
    await until(async () => JSON.stringify(await titles()) === '["Chess night"]', { message: 'only Chess night for "nig"' });
    await cy.page.getByLabel('Search public chats').fill('gard');
    await until(async () => JSON.stringify(await titles()) === '["Garden club"]', { message: 'only Garden club for "gard"' });
    await cy.page.getByRole('button', { name: 'Join Garden club' }).click();
    await cy.page.waitForURL(/\/chat\/[^/]+$/);
    await roomReady(cy.page);
    const slug = decodeURIComponent(new URL(cy.page.url()).pathname.split('/')[2]);
    await row(cy.page, slug).waitFor();
    await cy.page.getByTestId('browse-link').click();
    await cy.page.getByRole('link', { name: 'Open Garden club' }).waitFor();

    await cy.page.setViewportSize(PHONE);
    await cy.page.getByLabel('Search public chats').fill('');
    await list.getByText('Chess night').waitFor();
    assert.deepEqual(await smallTargets(cy.page), [], 'browse at phone width');
    assert.deepEqual(await smallFields(cy.page), [], 'browse fields at phone width');
    await shot(cy.page, 'phone-browse.png');

    // Chat settings: Copy link and the notification level, at phone width.
    await cy.page.goto(`/chat/${slug}/settings`);
    await cy.page.getByTestId('share-url').waitFor();
    assert.equal(await cy.page.getByTestId('share-url').inputValue(), `${srv.url.replace(/\/$/, '')}/chat/${slug}`);
    await cy.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
    await cy.page.getByRole('button', { name: 'Copy link' }).click();
    await cy.page.getByTestId('copy-status').filter({ hasText: /Link copied|selected link/ }).waitFor();
    assert.deepEqual(await smallTargets(cy.page), [], 'settings at phone width');
    assert.deepEqual(await smallFields(cy.page), [], 'settings fields at phone width');
    await shot(cy.page, 'phone-chat-settings.png');
    await cy.page.setViewportSize(DESKTOP);
    await assertContrast(cy.page, 'settings');
    await cy.context.close();
  });

  test('profile: a new display name shows live in another browser; picture; password change ends the other sessions', async () => {
    const zeta = (await api.ana.ok('chat.create', { title: 'Zeta' })).chat.slug;
    await inviteAndAccept(api.ana, api.ben, zeta);
    await api.ana.ok('msg.send', { chat: zeta, body: 'hello from ana', clientMsgId: 'z-1' });
    const ben = await person('ben');
    await openChat(ben.page, zeta);
    await waitMessage(ben.page, 'hello from ana');
    const zetaRow = row(ben.page, zeta);
    await until(async () => (await zetaRow.getByTestId('last-message').textContent()) === 'Ana Lima: hello from ana', { message: 'the preview' });
    // A second chat whose preview is Ana's, not open in Ben's page.
    const eta = (await api.ana.ok('chat.create', { title: 'Eta' })).chat.slug;
    await inviteAndAccept(api.ana, api.ben, eta);
    await api.ana.ok('msg.send', { chat: eta, body: 'eta from ana', clientMsgId: 'z-2' });
    await until(async () => (await row(ben.page, eta).getByTestId('last-message').textContent()) === 'Ana Lima: eta from ana', { message: 'the Eta preview' });

    const ana = await person('ana');
    await ana.page.getByTestId('profile-link').click();
    await ana.page.waitForURL('**/profile');
    await assertContrast(ana.page, 'profile');
    await shot(ana.page, 'desktop-profile.png');
    await ana.page.getByLabel('Display name').fill('Ana Lima-Souza');
    await ana.page.getByRole('button', { name: 'Save name' }).click();
    await ana.page.getByText('Saved. Everyone in your chats sees the new name.').waitFor();
    assert.equal(await ana.page.getByTestId('me-name').textContent(), 'Ana Lima-Souza');

    // Ben, without reloading: the author of her message, the people list, both previews.
    await ben.page.getByTestId('message-author').filter({ hasText: 'Ana Lima-Souza' }).waitFor();
    await ben.page.locator('.presence-item[data-user="ana"]').filter({ hasText: 'Ana Lima-Souza' }).waitFor();
    await until(async () => (await row(ben.page, eta).getByTestId('last-message').textContent()) === 'Ana Lima-Souza: eta from ana', { message: 'the Eta preview renamed' });

    // A picture: too big is refused before upload; a PNG shows for her and for Ben.
    const input = ana.page.locator('#profile-avatar-file');
    await input.setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: Buffer.alloc(1024 * 1024 + 1) });
    await ana.page.getByRole('alert').filter({ hasText: 'the limit is 1 MB' }).waitFor();
    await input.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
    await ana.page.getByRole('alert').filter({ hasText: 'Choose a PNG, JPEG or WebP picture.' }).waitFor();
    await input.setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(64, 64, [220, 90, 40]) });
    await ana.page.getByText('Picture updated.').waitFor();
    const src = await ana.page.locator('.sidebar__foot [data-testid="avatar-img"] img').getAttribute('src');
    assert.match(src, /^\/avatars\/[^/]+\.png$/);
    const res = await fetch(new URL(src, srv.url));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('cache-control') || '', /immutable/);
    await ben.page.locator(`.presence-item[data-user="ana"] img[src="${src}"]`).waitFor();
    await ben.page.locator(`[data-testid="message"] img[src="${src}"]`).first().waitFor();
    await shot(ben.page, 'desktop-room-with-avatar.png');

    // Password: a wrong current one is refused; the right one ends Ana's other session (the
    // protocol client logged in at signup) and keeps this one.
    await ana.page.getByLabel('Current password').fill('not my password');
    await ana.page.getByLabel('New password', { exact: true }).fill('a brand new secret');
    await ana.page.getByLabel('New password again').fill('a brand new secret');
    await ana.page.getByRole('button', { name: 'Change password' }).click();
    await ana.page.getByRole('alert').filter({ hasText: 'Your current password is not right.' }).waitFor();
    assert.equal(api.ana.closeInfo, null);
    await ana.page.getByLabel('Current password').fill(PASSWORD);
    await ana.page.getByRole('button', { name: 'Change password' }).click();
    await ana.page.getByText('Password changed. Your other sessions were signed out.').waitFor();
    await until(() => api.ana.closeInfo?.code === 4001, { message: "the other session's socket closed with 4001" });
    await ana.page.reload();
    await ana.page.getByRole('heading', { name: 'Profile' }).waitFor();
    assert.equal(await ana.page.getByTestId('me-name').textContent(), 'Ana Lima-Souza');

    await ana.page.setViewportSize(PHONE);
    await ana.page.getByRole('heading', { name: 'Profile' }).waitFor();
    assert.deepEqual(await smallTargets(ana.page), [], 'profile at phone width');
    assert.deepEqual(await smallFields(ana.page), [], 'profile fields at phone width');
    await shot(ana.page, 'phone-profile.png');
    await ana.page.goto('/chat');
    await row(ana.page, zeta).waitFor();
    assert.deepEqual(await smallTargets(ana.page), [], 'chat list at phone width');
    await shot(ana.page, 'phone-chat-list.png');
    await ana.context.close();
    await ben.context.close();
  });

  test('no errors in any page console', () => {
    const errors = people.flatMap((p) => p.errors).filter((e) => !/status of 40[13]/.test(e));
    assert.deepEqual(errors, []);
  });
});
