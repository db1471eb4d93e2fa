// Issue 18, search: the search panel finds a message and opens its chat at that message, with the
// history around it (not the newest page) and newer messages by pages; a snippet holding markup
// shows it as text; Ctrl+K opens the quick switcher (an accessible combobox in a dialog that keeps
// focus), Enter opens the chosen chat, Escape closes it. Screenshots at desktop and phone sizes go
// to build/screenshots/.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { ROOT, startServer } from './lib/server.mjs';
import { DESKTOP, PHONE, failureArtifacts, launchBrowser, newPerson } from './lib/browser.mjs';
import { assertInViewport, assertNoHorizontalOverflow, logIn, roomReady, until } from './lib/ui.mjs';
import { connect, inviteAndAccept, signup } from '../integration/lib/client.mjs';

const SHOTS = path.join(ROOT, 'build/screenshots');

async function shot(page, name) {
  await fs.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), animations: 'disabled', caret: 'hide' });
}

describe('search and the quick switcher', () => {
  let srv;
  let browser;
  let mark = 0;
  const api = {};
  const people = [];
  let trip; // a chat of ana and ben with 120 messages, the one to find far back
  let needle; // its seq
  let newest; // the seq of the chat's newest message (the join notice takes a seq too)

  async function person(username, opts = {}) {
    const p = await newPerson(browser, srv.url, { name: username, ...opts });
    people.push(p);
    await logIn(p.page, { username });
    return p;
  }

  before(async () => {
    // Rate limits off: the set-up sends 120 messages at once.
    srv = await startServer({ PARLEY_RATE_LIMITS: '0' });
    browser = await launchBrowser();
    for (const [name, display] of [
      ['ana', 'Ana Lima'],
      ['ben', 'Ben Okafor'],
    ]) {
      const s = await signup(srv, name, undefined, display);
      api[name] = await connect(srv, { token: s.token });
    }
    ({ chat: trip } = await api.ana.ok('chat.create', { title: 'Trip planning' }));
    await inviteAndAccept(api.ana, api.ben, trip.slug);
    await api.ana.ok('chat.create', { title: 'Book club' });
    for (let i = 1; i <= 120; i++) {
      const body = i === 30 ? 'the hotel code is swordfish, keep it safe' : `filler message ${i}`;
      const { msg } = await api.ana.ok('msg.send', { chat: trip.slug, body });
      if (i === 30) needle = msg.seq;
    }
    ({
      msg: { seq: newest },
    } = await api.ben.ok('msg.send', { chat: trip.slug, body: 'swordfish <img src=x onerror="window.pwned=1"> <b>bold</b>' }));
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

  async function searchFor(page, q) {
    await page.getByTestId('open-search').click();
    const dialog = page.getByRole('dialog', { name: 'Search messages' });
    await dialog.waitFor();
    const input = page.getByTestId('search-input');
    assert.equal(await input.evaluate((e) => e === document.activeElement), true, 'focus starts in the search field');
    await input.fill(q);
    await until(async () => (await page.getByTestId('search-result').count()) > 0, { message: 'search results' });
    return dialog;
  }

  for (const [size, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ]) {
    test(`${size}: search finds a message and opens it in context`, async () => {
      const ben = await person('ben', { viewport });
      await ben.page.goto('/chat');
      await searchFor(ben.page, 'swordfish');
      const results = ben.page.getByTestId('search-result');
      assert.equal(await results.count(), 2);
      // Markup in a message is text in its snippet, never elements.
      const snippets = await ben.page.getByTestId('search-snippet').allTextContents();
      assert.ok(snippets.some((t) => t.includes('<img src=x onerror="window.pwned=1"> <b>bold</b>')), snippets.join(' | '));
      assert.equal(await ben.page.locator('.search-results img, .search-results b').count(), 0);
      assert.equal(await ben.page.evaluate(() => window.pwned), undefined);
      const hit = results.filter({ hasText: 'hotel code' });
      assert.equal(await hit.locator('mark').allTextContents().then((m) => m.join()), 'swordfish');
      assert.match(await hit.textContent(), /Trip planning/);
      assert.match(await hit.textContent(), /Ana Lima/);
      await assertNoHorizontalOverflow(ben.page);
      await shot(ben.page, `${size}-search-results.png`);

      await hit.click();
      await until(async () => new URL(ben.page.url()).search === `?msg=${needle}`, { message: 'the URL of the result' });
      await roomReady(ben.page);
      const anchored = ben.page.locator('[data-anchor="true"]');
      await anchored.waitFor();
      assert.equal(await anchored.getAttribute('data-seq'), String(needle));
      await until(async () => {
        const box = await anchored.boundingBox();
        const vp = ben.page.viewportSize();
        return box && box.y >= 0 && box.y + box.height <= vp.height;
      }, { message: 'the found message in view' });
      await assertInViewport(ben.page, anchored, 'the found message');
      // The history around it, not the newest page: its neighbours are there, the newest is not.
      const seqs = (await ben.page.getByTestId('message').evaluateAll((els) => els.map((e) => Number(e.dataset.seq))));
      assert.ok(seqs.includes(needle - 1) && seqs.includes(needle + 1), `around ${needle}: ${seqs.join(',')}`);
      assert.ok(!seqs.includes(newest), 'the newest message is not loaded yet');
      await shot(ben.page, `${size}-search-opened.png`);
      // Newer messages by pages, without a hole, until the newest.
      const newer = ben.page.getByRole('button', { name: 'Load newer messages' });
      // One page at a time: the button stays while a page is in flight, and a second click on it
      // could land after the last page removed it (click then waits for a button that never comes).
      const lastShown = () => ben.page.getByTestId('message').evaluateAll((els) => Number(els.at(-1)?.dataset.seq));
      while (await newer.count()) {
        const before = await lastShown();
        await newer.click();
        await until(async () => (await newer.count()) === 0 || (await lastShown()) > before, { message: 'a page of newer messages' });
      }
      await until(async () => {
        const all = await ben.page.getByTestId('message').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
        return all.at(-1) === newest && all.every((s, i) => i === 0 || s === all[i - 1] + 1);
      }, { message: 'every message up to the newest, in order, no gap' });
      assert.deepEqual(ben.errors, []);
      await ben.context.close();
    });
  }

  test('Ctrl+K: a quick switcher for chats and people, keyboard only', async () => {
    const ana = await person('ana');
    await ana.page.goto('/chat');
    await ana.page.getByTestId('chat-list').getByText('Book club').waitFor();
    await ana.page.keyboard.press('Control+k');
    const dialog = ana.page.getByRole('dialog', { name: 'Jump to a chat or person' });
    await dialog.waitFor();
    const input = ana.page.getByRole('combobox', { name: 'Chat or person' });
    assert.equal(await input.evaluate((e) => e === document.activeElement), true, 'focus starts in the combobox');
    await input.fill('trp pln'); // fuzzy: letters in order
    const options = ana.page.getByRole('option');
    await until(async () => (await options.count()) >= 1, { message: 'options' });
    const first = options.first();
    assert.match(await first.textContent(), /Trip planning/);
    assert.equal(await first.getAttribute('aria-selected'), 'true');
    assert.equal(await input.getAttribute('aria-activedescendant'), await first.getAttribute('id'));
    assert.equal(await input.getAttribute('aria-expanded'), 'true');
    // People come from users.search.
    await input.fill('ben');
    const person_ = ana.page.getByRole('option').filter({ hasText: '@ben' });
    await person_.waitFor();
    await shot(ana.page, 'desktop-quick-switcher.png');
    const size = ana.page.viewportSize();
    await ana.page.setViewportSize(PHONE);
    await person_.waitFor();
    await shot(ana.page, 'phone-quick-switcher.png');
    await ana.page.setViewportSize(size);
    await input.press('ArrowDown');
    // Focus stays in the dialog whatever Tab does.
    for (let i = 0; i < 4; i++) {
      await ana.page.keyboard.press('Tab');
      assert.equal(await dialog.evaluate((d) => d.contains(document.activeElement)), true, `Tab ${i + 1} stays in the dialog`);
    }
    await ana.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    // Open again, pick a chat with the keyboard.
    await ana.page.keyboard.press('Control+k');
    await dialog.waitFor();
    await input.fill('book');
    await until(async () => /Book club/.test((await options.first().textContent()) || ''), { message: 'Book club first' });
    await input.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await until(async () => (await ana.page.getByTestId('room-title').textContent()) === 'Book club', { message: 'Book club open' });
    await roomReady(ana.page);
    await ana.page.keyboard.press('Control+k');
    await input.fill('trip');
    await until(async () => /Trip planning/.test((await options.first().textContent()) || ''), { message: 'Trip first' });
    await input.press('Enter');
    await until(async () => (await ana.page.getByTestId('room-title').textContent()) === 'Trip planning', { message: 'Trip open' });
    await roomReady(ana.page);
    // Opened at the newest messages, as any chat.
    await until(async () => (await ana.page.getByTestId('message').last().getAttribute('data-seq')) === String(newest), { message: 'newest page' });
    assert.deepEqual(ana.errors, []);
  });
});
