// Issue 18, web side: unsent messages and drafts survive reloads, and the defects found in the
// same tryout: a removed user told so (not offered a Join that fails), a public chat opened by a
// visitor without a refused request or an error, dialogs that keep keyboard focus, Remove asking
// first, "last seen" ticking, chats with the same title told apart, plural rules, text contrast,
// and phone sizes (16 px fields, 44 px touch targets).
// Screenshots of each new screen, at desktop and phone sizes, go to build/screenshots/.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { ROOT, startServer } from './lib/server.mjs';
import { DESKTOP, PHONE, failureArtifacts, launchBrowser, newPerson } from './lib/browser.mjs';
import { composer, logIn, messageList, openChat, roomReady, send, until, waitMessage } from './lib/ui.mjs';
import { connect, fullHistory, inviteAndAccept, login, signup } from '../integration/lib/client.mjs';

const SHOTS = path.join(ROOT, 'build/screenshots');

async function shot(page, name) {
  await fs.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), animations: 'disabled', caret: 'hide' });
}

// WCAG relative luminance and contrast of two sRGB colours.
function luminance([r, g, b]) {
  const f = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}
function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// Every visible element with its own text: its colour and the colour behind it (the first
// ancestor background that is not transparent, with alpha blended), from getComputedStyle.
// Disabled controls are left out (WCAG 1.4.3 exempts them).
async function textColours(page) {
  return page.evaluate(() => {
    const parse = (s) => {
      const m = s.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const blend = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3]));
    const bgOf = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c[3] > 0) {
          layers.push(c);
          if (c[3] >= 1) break;
        }
      }
      let rgb = [255, 255, 255];
      for (const l of layers.reverse()) rgb = blend(l, rgb);
      return rgb;
    };
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own) continue;
      if (el.closest('[disabled], .visually-hidden, [aria-hidden="true"]')) continue;
      const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || cs.visibility === 'hidden' || Number(cs.opacity) === 0) continue;
      const fg = parse(cs.color);
      const bg = bgOf(el);
      out.push({ text: el.textContent.trim().slice(0, 40), cls: el.className, fg: blend(fg, bg), bg });
    }
    return out;
  });
}

async function assertContrast(page, where) {
  const items = await textColours(page);
  assert.ok(items.length > 5, `${where}: found text to check`);
  const low = items
    .map((i) => ({ ...i, ratio: Math.round(contrast(i.fg, i.bg) * 100) / 100 }))
    .filter((i) => i.ratio < 4.5);
  assert.deepEqual(low, [], `${where}: text under 4.5:1`);
}

// Visible controls smaller than 44x44 CSS px.
async function smallTargets(page) {
  return page.evaluate(async () => {
    // Measure what the page settles on: a dialog scales in for 0.14 s (pop-in), and a box
    // measured during it is a fraction of a pixel short. Endless animations (spinners) never end.
    await Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => {})),
    );
    const out = [];
    for (const el of document.querySelectorAll('button, a.btn, a.chat-row, [role="button"], select')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || el.closest('.visually-hidden')) continue;
      if (r.width < 44 || r.height < 44) out.push({ what: el.getAttribute('aria-label') || el.textContent.trim().slice(0, 30), w: r.width, h: r.height });
    }
    return out;
  });
}

describe('drafts, pending sends and the tryout defects', () => {
  let srv;
  let browser;
  let mark = 0;
  const api = {}; // protocol clients by username
  const people = [];

  async function person(username, opts = {}) {
    const p = await newPerson(browser, srv.url, { name: username, ...opts });
    people.push(p);
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

  test('a message sent offline survives a reload and is delivered exactly once', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Offline sends' });
    await inviteAndAccept(api.ana, api.ben, chat.slug);
    const ben = await newPerson(browser, srv.url, { name: 'ben-offline' });
    people.push(ben);
    // The WebSocket goes through this route: `online` passes frames both ways; `replies: false`
    // lets Ben's frames reach the server but drops its answers (stored, reply lost); offline
    // refuses new sockets.
    const net = { online: true, replies: true, open: [] };
    await ben.page.routeWebSocket(/\/ws$/, (ws) => {
      if (!net.online) {
        ws.close({ code: 1001, reason: 'offline' });
        return;
      }
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => {
        if (net.replies) ws.send(m);
      });
      net.open.push({ ws, server });
    });
    const goOffline = async () => {
      net.online = false;
      for (const { ws, server } of net.open.splice(0)) {
        await server.close().catch(() => {});
        await ws.close({ code: 1001, reason: 'offline' }).catch(() => {});
      }
    };
    await logIn(ben.page, { username: 'ben' });
    await openChat(ben.page, chat.slug);

    // 1. Stored by the server, but the reply is lost on the way back.
    net.replies = false;
    await send(ben.page, 'reply lost');
    await until(async () => (await api.ana.ok('msg.history', { chat: chat.slug })).msgs.some((m) => m.body === 'reply lost'), {
      message: 'the server to store "reply lost"',
    });
    await goOffline();
    // 2. Never reaches the server.
    await send(ben.page, 'typed offline');
    await ben.page.getByTestId('message').filter({ hasText: 'typed offline' }).and(ben.page.locator('[data-status="pending"]')).waitFor();
    const kept = await ben.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('parley.pending.')).map((k) => JSON.parse(localStorage.getItem(k))));
    assert.deepEqual(kept.flat().map((e) => e.body), ['reply lost', 'typed offline'], 'both kept in localStorage');

    await ben.page.reload();
    await ben.page.getByTestId('room-title').waitFor();
    // Still offline after the reload: both shown as pending, from localStorage.
    await until(async () => (await messageList(ben.page)).filter((m) => m.status === 'pending').length === 2, {
      message: 'both messages pending after the reload',
    });
    await shot(ben.page, 'desktop-pending-after-reload.png');
    await ben.page.setViewportSize(PHONE);
    await shot(ben.page, 'phone-pending-after-reload.png');
    await ben.page.setViewportSize(DESKTOP);

    net.online = true;
    net.replies = true;
    await ben.page.evaluate(() => window.dispatchEvent(new Event('online')));
    await waitMessage(ben.page, 'typed offline');
    await waitMessage(ben.page, 'reply lost');
    const history = await fullHistory(api.ana, chat.slug);
    // (History also holds the notice of Ben's join: every change is an entry, issue 17.)
    assert.deepEqual(
      history.filter((m) => m.kind === 'text').map((m) => m.body),
      ['reply lost', 'typed offline'],
      'each message stored exactly once (the resend used the same clientMsgId)',
    );
    const list = await messageList(ben.page);
    assert.deepEqual(list.map((m) => m.body), ['reply lost', 'typed offline']);
    assert.ok(list.every((m) => m.status === 'sent'));
    assert.deepEqual(
      await ben.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('parley.pending.'))),
      [],
      'nothing left in localStorage once delivered',
    );
    await ben.context.close();
  });

  test('the draft of each chat survives switching chats and a reload', async () => {
    const a = await api.ana.ok('chat.create', { title: 'Drafts one' });
    const b = await api.ana.ok('chat.create', { title: 'Drafts two' });
    await inviteAndAccept(api.ana, api.cytran, a.chat.slug);
    await inviteAndAccept(api.ana, api.cytran, b.chat.slug);
    const cy = await person('cytran');
    await openChat(cy.page, a.chat.slug);
    await composer(cy.page).fill('half a thought');
    await cy.page.locator(`.chat-row[data-slug="${b.chat.slug}"]`).click();
    await cy.page.waitForURL(`**/chat/${b.chat.slug}`);
    await roomReady(cy.page);
    assert.equal(await composer(cy.page).inputValue(), '', 'the other chat has its own (empty) draft');
    await composer(cy.page).fill('second draft');
    await cy.page.locator(`.chat-row[data-slug="${a.chat.slug}"]`).click();
    await roomReady(cy.page);
    await until(async () => (await composer(cy.page).inputValue()) === 'half a thought', { message: 'draft one back' });
    await cy.page.reload();
    await roomReady(cy.page);
    assert.equal(await composer(cy.page).inputValue(), 'half a thought', 'draft kept across a reload');
    await shot(cy.page, 'desktop-draft-restored.png');
    await cy.page.setViewportSize(PHONE);
    assert.equal(await composer(cy.page).inputValue(), 'half a thought');
    await shot(cy.page, 'phone-draft-restored.png');
    await cy.page.setViewportSize(DESKTOP);
    await openChat(cy.page, b.chat.slug);
    assert.equal(await composer(cy.page).inputValue(), 'second draft');
    // Sending empties the draft for good.
    await composer(cy.page).press('Enter');
    await waitMessage(cy.page, 'second draft');
    await cy.page.reload();
    await roomReady(cy.page);
    assert.equal(await composer(cy.page).inputValue(), '');
    await cy.context.close();
  });

  test('a removed user is told so, leaves the participants, and is not offered Join after a reload', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Open plan', isPublic: true });
    await api.dee.ok('chat.join', { chat: chat.slug });
    await api.ben.ok('chat.join', { chat: chat.slug });
    const ben = await person('ben');
    await openChat(ben.page, chat.slug);
    await ben.page.locator('.presence-item[data-user="ben"]').waitFor();
    await until(async () => (await ben.page.getByTestId('room-participants').textContent()) === '3 participants', { message: '3 participants' });

    await api.ana.ok('chat.remove', { chat: chat.slug, user: 'ben' });
    const banner = ben.page.getByTestId('removed-banner');
    await banner.filter({ hasText: 'removed from this chat by Ana Lima (@ana); ask Ana Lima for an invitation' }).waitFor();
    await ben.page.locator('.presence-item[data-user="ben"]').waitFor({ state: 'detached' });
    assert.equal(await ben.page.getByTestId('room-participants').textContent(), '2 participants');
    await shot(ben.page, 'desktop-removed-live.png');

    await ben.page.reload();
    const notice = ben.page.getByTestId('removed-notice');
    await notice.filter({ hasText: 'ask Ana Lima for an invitation' }).waitFor();
    assert.equal(await ben.page.getByRole('button', { name: 'Join this chat' }).count(), 0, 'no Join offered');
    await shot(ben.page, 'desktop-removed-after-reload.png');

    // Another device, which never saw the removal live: Join is offered, and its refusal is
    // explained the same way (never "You don't have permission").
    const ben2 = await person('ben', { viewport: PHONE });
    await ben2.page.goto(`/chat/${chat.slug}`);
    await ben2.page.getByRole('button', { name: 'Join this chat' }).click();
    await ben2.page.getByTestId('removed-notice').waitFor();
    assert.equal(await ben2.page.getByText("You don't have permission").count(), 0);
    await shot(ben2.page, 'phone-removed-after-join.png');
    await ben.context.close();
    await ben2.context.close();
  });

  test('a public chat opened by a visitor: no refused request, no error, presence shown, then Join', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Town square', isPublic: true });
    const cy = await newPerson(browser, srv.url, { name: 'cy-visitor' });
    people.push(cy);
    const sent = [];
    const refused = [];
    cy.page.on('websocket', (ws) => {
      ws.on('framesent', (f) => sent.push(String(f.payload)));
      ws.on('framereceived', (f) => {
        const s = String(f.payload);
        if (s.includes('"ok":false')) refused.push(s);
      });
    });
    await logIn(cy.page, { username: 'cytran' });
    await cy.page.goto(`/chat/${chat.slug}`);
    const join = cy.page.getByRole('button', { name: 'Join this chat' });
    await join.waitFor();
    // Ana is connected (her protocol client): shown online, not offline.
    await cy.page.locator('.presence-item[data-user="ana"][data-presence="online"]').waitFor();
    assert.equal(await cy.page.getByText("You don't have permission").count(), 0);
    assert.equal(await cy.page.getByRole('alert').count(), 0, 'nothing shown as an error');
    const ops = sent.map((s) => JSON.parse(s)).filter((f) => f.chat === chat.slug).map((f) => f.op);
    assert.ok(!ops.includes('sub') && !ops.includes('msg.history'), `no request the server refuses a visitor: ${ops}`);
    assert.deepEqual(refused, []);
    await shot(cy.page, 'desktop-visitor.png');
    await cy.page.setViewportSize(PHONE);
    await shot(cy.page, 'phone-visitor.png');
    await cy.page.setViewportSize(DESKTOP);

    await join.click();
    await roomReady(cy.page);
    await send(cy.page, 'hello square');
    await waitMessage(cy.page, 'hello square');
    await cy.context.close();
  });

  test('dialogs keep keyboard focus: first field focused, Tab stays inside, Escape closes, focus returns', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Focus' });
    const ana = await person('ana');
    await ana.page.goto('/chat');
    const opener = ana.page.getByRole('button', { name: 'New chat' });
    await opener.click();
    const dialog = ana.page.getByRole('dialog', { name: 'New chat' });
    await dialog.waitFor();
    assert.equal(await ana.page.evaluate(() => document.activeElement?.id), 'new-chat-title', 'focus on the title field');
    await ana.page.keyboard.type('Typed at once');
    assert.equal(await dialog.getByLabel('Title').inputValue(), 'Typed at once');
    await shot(ana.page, 'desktop-new-chat-dialog.png');
    for (let i = 0; i < 12; i++) {
      await ana.page.keyboard.press(i % 3 === 2 ? 'Shift+Tab' : 'Tab');
      assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), `Tab ${i} stays in the dialog`);
    }
    await ana.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.ok(await opener.evaluate((b) => b === document.activeElement), 'focus back on "New chat"');

    // Invite: the Invite button is replaced by "Invited" after inviting, which used to leave focus
    // on <body>, out of the dialog.
    await openChat(ana.page, chat.slug);
    const inviteBtn = ana.page.getByRole('button', { name: 'Invite people' });
    await inviteBtn.click();
    const inv = ana.page.getByRole('dialog', { name: /Invite to/ });
    assert.equal(await ana.page.evaluate(() => document.activeElement?.id), 'invite-search');
    await ana.page.keyboard.type('dee');
    const row = inv.locator('.search-result[data-user="dee"]');
    await row.getByRole('button', { name: 'Invite Dee Park' }).click();
    await row.getByTestId('invite-status').waitFor();
    await ana.page.keyboard.press('Tab');
    assert.ok(await inv.evaluate((d) => d.contains(document.activeElement)), 'Tab after inviting stays in the dialog');
    await ana.page.keyboard.press('Escape');
    await inv.waitFor({ state: 'detached' });
    assert.ok(await inviteBtn.evaluate((b) => b === document.activeElement), 'focus back on the Invite button');

    // Escape with focus on <body> (the control that had it went away) closes too.
    await inviteBtn.click();
    await inv.waitFor();
    await ana.page.evaluate(() => document.activeElement?.blur());
    await ana.page.keyboard.press('Escape');
    await inv.waitFor({ state: 'detached' });
    await ana.context.close();
  });

  test('Remove asks first; the list of people shows "last seen" ticking on its own', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Confirm' });
    await inviteAndAccept(api.ana, api.dee, chat.slug);
    const ana = await newPerson(browser, srv.url, { name: 'ana-confirm' });
    people.push(ana);
    // A page clock the test can move: relative times must follow it without any event.
    await ana.page.clock.install();
    await logIn(ana.page, { username: 'ana' });
    await openChat(ana.page, chat.slug);
    // Dee goes offline: "last seen just now", then, two minutes later, "last seen 2 min ago".
    await api.dee.close();
    await ana.page.locator('.presence-item[data-user="dee"][data-presence="offline"]').waitFor();
    const state = ana.page.locator('.presence-item[data-user="dee"] .presence-item__state');
    assert.equal(await state.textContent(), 'last seen just now');
    await ana.page.clock.fastForward('02:05');
    await until(async () => (await state.textContent()) === 'last seen 2 min ago', { message: '"last seen 2 min ago"' });

    await ana.page.getByRole('link', { name: 'Chat settings' }).click();
    const deeRow = ana.page.getByTestId('participants').locator('.member[data-user="dee"]');
    // "joined 2 min ago" ticks on the settings page too.
    await deeRow.filter({ hasText: 'joined 2 min ago' }).waitFor();
    await ana.page.clock.fastForward('01:00');
    await deeRow.filter({ hasText: 'joined 3 min ago' }).waitFor();
    await deeRow.getByRole('button', { name: 'Remove Dee Park' }).click();
    const confirm = ana.page.getByRole('alertdialog', { name: 'Remove Dee Park?' });
    await confirm.waitFor();
    assert.ok(await confirm.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === document.activeElement), 'Cancel focused');
    await shot(ana.page, 'desktop-confirm-remove.png');
    await ana.page.setViewportSize(PHONE);
    await shot(ana.page, 'phone-confirm-remove.png');
    await ana.page.setViewportSize(DESKTOP);
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached' });
    assert.equal(await deeRow.count(), 1, 'Cancel removes nobody');
    assert.ok((await api.ana.ok('chat.get', { chat: chat.slug })).participants.some((p) => p.username === 'dee'));
    await deeRow.getByRole('button', { name: 'Remove Dee Park' }).click();
    await confirm.getByRole('button', { name: 'Remove' }).click();
    await deeRow.waitFor({ state: 'detached' });
    await ana.context.close();
    api.dee = await connect(srv, { token: (await login(srv, 'dee')).token });
  });

  test('chats with the same title are told apart; counts use plural rules, on screen and for screen readers', async () => {
    const one = await api.ben.ok('chat.create', { title: 'Standup' });
    const two = await api.ben.ok('chat.create', { title: 'Standup' });
    const solo = await api.ben.ok('chat.create', { title: 'Just me' });
    const ben = await person('ben');
    const rowOne = ben.page.locator(`.chat-row[data-slug="${one.chat.slug}"]`);
    const rowTwo = ben.page.locator(`.chat-row[data-slug="${two.chat.slug}"]`);
    await rowTwo.waitFor();
    const [t1, t2] = [await rowOne.locator('.chat-row__title').textContent(), await rowTwo.locator('.chat-row__title').textContent()];
    assert.notEqual(t1, t2, 'the two "Standup" rows read differently');
    assert.ok(t1.includes(one.chat.slug) && t2.includes(two.chat.slug), `${t1} / ${t2}`);
    assert.notEqual(await rowOne.getAttribute('aria-label'), await rowTwo.getAttribute('aria-label'));
    assert.equal(await ben.page.locator(`.chat-row[data-slug="${solo.chat.slug}"] [data-testid="chat-slug"]`).count(), 0, 'a unique title shows no slug');
    await shot(ben.page, 'desktop-same-titles.png');

    const soloRow = ben.page.locator(`.chat-row[data-slug="${solo.chat.slug}"]`);
    assert.match(await soloRow.getAttribute('aria-label'), /, 1 participant$/);
    assert.equal(await soloRow.getByTestId('participant-count').getAttribute('title'), '1 participant');
    await openChat(ben.page, solo.chat.slug);
    assert.equal(await ben.page.getByTestId('room-participants').textContent(), '1 participant');
    await ben.page.setViewportSize(PHONE);
    await ben.page.goto('/chat');
    await rowTwo.waitFor();
    await shot(ben.page, 'phone-same-titles.png');
    await ben.context.close();
  });

  test('every text colour is at least 4.5:1 against its background', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Contrast', isPublic: true });
    await inviteAndAccept(api.ana, api.cytran, chat.slug);
    await api.ana.ok('msg.send', { chat: chat.slug, body: 'grey text check', clientMsgId: 'contrast-1' });
    const cy = await person('cytran');
    await assertContrast(cy.page, 'chat list');
    await openChat(cy.page, chat.slug);
    await waitMessage(cy.page, 'grey text check');
    await send(cy.page, 'my own bubble');
    await waitMessage(cy.page, 'my own bubble');
    await assertContrast(cy.page, 'chat room');
    await cy.page.getByRole('link', { name: 'Chat settings' }).click();
    await cy.page.getByTestId('participants').waitFor();
    await assertContrast(cy.page, 'settings');
    await cy.page.goto('/chat');
    await cy.page.getByRole('button', { name: 'New chat' }).click();
    await assertContrast(cy.page, 'New chat dialog');
    await cy.context.close();
    const visitor = await newPerson(browser, srv.url, { name: 'login-page' });
    people.push(visitor);
    await visitor.page.goto('/login');
    await visitor.page.getByLabel('Username').waitFor();
    await assertContrast(visitor.page, 'login page');
    await visitor.context.close();
  });

  test('at phone width: text fields are 16 px at least and every control is a 44x44 touch target', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Thumbs' });
    await inviteAndAccept(api.ana, api.dee, chat.slug);
    const dee = await newPerson(browser, srv.url, { name: 'dee-phone', viewport: PHONE });
    people.push(dee);
    await dee.page.goto('/login');
    for (const label of ['Username', 'Password']) {
      const size = await dee.page.getByLabel(label).evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
      assert.ok(size >= 16, `${label} field is ${size}px`);
    }
    await logIn(dee.page, { username: 'dee' });
    await dee.page.locator(`.chat-row[data-slug="${chat.slug}"]`).waitFor();
    assert.deepEqual(await smallTargets(dee.page), [], 'chat list');
    await shot(dee.page, 'phone-chat-list.png');
    await dee.page.getByRole('button', { name: 'New chat' }).click();
    const dialog = dee.page.getByRole('dialog', { name: 'New chat' });
    for (const label of ['Title', 'Participant limit']) {
      const size = await dialog.getByLabel(label).evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
      assert.ok(size >= 16, `${label} field is ${size}px`);
    }
    assert.deepEqual(await smallTargets(dee.page), [], 'New chat dialog');
    await shot(dee.page, 'phone-new-chat-dialog.png');
    await dee.page.keyboard.press('Escape');
    await openChat(dee.page, chat.slug);
    const size = await composer(dee.page).evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
    assert.ok(size >= 16, `composer is ${size}px`);
    assert.deepEqual(await smallTargets(dee.page), [], 'chat room');
    await shot(dee.page, 'phone-room.png');
    await dee.page.getByRole('link', { name: 'Chat settings' }).click();
    await dee.page.getByTestId('participants').waitFor();
    assert.deepEqual(await smallTargets(dee.page), [], 'settings');
    await dee.context.close();
  });

  test('no errors in any page console', () => {
    const errors = people.flatMap((p) => p.errors).filter((e) => !/status of 40[13]/.test(e));
    assert.deepEqual(errors, []);
  });
});
