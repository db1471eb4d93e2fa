// The main story, in real browsers against the real server serving the built app: Ana, Ben and
// Cy sign up in separate browser contexts; Ana creates a chat and invites Ben and Cy by search;
// they accept in their own browsers; messages go both ways; typing shows on the other side and
// clears; presence turns offline when Ben closes his page; a server restart mid-conversation
// reconnects everyone and loses nothing; Ana removes Ben in the settings and he is cut off.
// Screenshots of the main screens go to tests/artifacts/.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { failureArtifacts, launchBrowser, newPerson, screenshot } from './lib/browser.mjs';
import {
  composer,
  connectionBanner,
  createChat,
  message,
  messageList,
  openChat,
  roomReady,
  send,
  signUp,
  typingText,
  until,
  waitMessage,
  waitPresence,
} from './lib/ui.mjs';

describe('conversation between three browsers', () => {
  let srv;
  let browser;
  let ana;
  let ben;
  let cy;
  let slug;
  let mark = 0;

  before(async () => {
    srv = await startServer();
    browser = await launchBrowser();
    ana = await newPerson(browser, srv.url, { name: 'ana' });
    ben = await newPerson(browser, srv.url, { name: 'ben' });
    cy = await newPerson(browser, srv.url, { name: 'cy' });
  });

  afterEach(async (t) => {
    const log = srv.since(mark);
    mark = srv.mark();
    if (!t.passed) {
      await failureArtifacts(t.name, [ana, ben, cy]);
      console.error(`server log during "${t.name}":\n${srv.tail(80, log)}`);
    }
  });

  after(async () => {
    await browser?.close();
    await srv?.dispose();
  });

  test('sign up: the login page, then three new accounts', async () => {
    await ana.page.goto('/');
    await ana.page.waitForURL('**/login');
    await ana.page.getByRole('heading', { name: 'Welcome back' }).waitFor();
    await screenshot(ana.page, 'desktop-login.png');

    await signUp(ana.page, { username: 'ana', displayName: 'Ana Lima' });
    await signUp(ben.page, { username: 'ben', displayName: 'Ben Okafor' });
    await signUp(cy.page, { username: 'cytran', displayName: 'Cy Tran' });

    // A taken username is refused in place.
    const other = await newPerson(browser, srv.url, { name: 'dup' });
    await other.page.goto('/signup');
    await other.page.getByLabel('Username').fill('ana');
    await other.page.getByLabel('Password').fill('another password');
    await other.page.getByRole('button', { name: 'Sign up' }).click();
    await other.page.getByRole('alert').filter({ hasText: 'username is taken' }).waitFor();
    await other.context.close();

    // The session survives a reload (HttpOnly cookie, /api/me).
    await ana.page.reload();
    await ana.page.getByText('@ana').waitFor();
  });

  test('create a chat', async () => {
    slug = await createChat(ana.page, 'Design review');
    assert.match(slug, /^[a-z0-9-]+/);
    await ana.page.getByTestId('room-participants').filter({ hasText: '1 participant' }).waitFor();
    // The new chat appears in Ana's list.
    await ana.page.locator(`.chat-row[data-slug="${slug}"]`).waitFor();
  });

  test('invite by search, see the invitation live, accept in the other browser', async () => {
    await ana.page.getByRole('button', { name: 'Invite people' }).click();
    const dialog = ana.page.getByRole('dialog', { name: /Invite to Design review/ });
    const search = dialog.getByLabel('Search people');
    await search.fill('be');
    const benRow = dialog.locator('.search-result[data-user="ben"]');
    await benRow.waitFor();
    // Ana herself is never a result; Cy does not match "be".
    assert.equal(await dialog.locator('.search-result[data-user="ana"]').count(), 0);
    assert.equal(await dialog.locator('.search-result[data-user="cytran"]').count(), 0);
    await benRow.getByRole('button', { name: 'Invite Ben Okafor' }).click();
    await benRow.getByTestId('invite-status').filter({ hasText: 'Invited' }).waitFor();

    await search.fill('Cy');
    const cyRow = dialog.locator('.search-result[data-user="cytran"]');
    await cyRow.getByRole('button', { name: 'Invite Cy Tran' }).click();
    await cyRow.getByTestId('invite-status').filter({ hasText: 'Invited' }).waitFor();
    await screenshot(ana.page, 'desktop-invite-modal.png');

    // Ben's list shows the invitation without a reload.
    const invite = ben.page.getByTestId('invitation').filter({ hasText: 'Design review' });
    await invite.waitFor();
    await invite.getByText('Ana Lima').waitFor();
    await screenshot(ben.page, 'desktop-chat-list-invitation.png');
    await invite.getByRole('button', { name: /Accept/ }).click();
    await ben.page.waitForURL(`**/chat/${slug}`);
    await roomReady(ben.page);

    // Ana's modal follows the invitation's status live.
    await dialog.getByTestId('sent-invitation').filter({ hasText: 'Ben Okafor' }).filter({ hasText: 'accepted' }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    await ana.page.getByTestId('room-participants').filter({ hasText: '2 participants' }).waitFor();

    const cyInvite = cy.page.getByTestId('invitation').filter({ hasText: 'Design review' });
    await cyInvite.getByRole('button', { name: /Accept/ }).click();
    await cy.page.waitForURL(`**/chat/${slug}`);
    await roomReady(cy.page);
    await ana.page.getByTestId('room-participants').filter({ hasText: '3 participants' }).waitFor();
  });

  test('messages go both ways, own messages are marked', async () => {
    await send(ana.page, 'Hi Ben! Did you see the new mockups?');
    await waitMessage(ben.page, 'Did you see the new mockups?');
    await send(ben.page, 'Yes, they look great.\nOne question about the header though.');
    await waitMessage(ana.page, 'One question about the header');
    await waitMessage(cy.page, 'One question about the header');

    const anaView = await messageList(ana.page);
    const benView = await messageList(ben.page);
    assert.deepEqual(
      anaView.map((m) => [m.body, m.own]),
      [
        ['Hi Ben! Did you see the new mockups?', true],
        ['Yes, they look great.\nOne question about the header though.', false],
      ],
    );
    assert.deepEqual(
      benView.map((m) => [m.body, m.own]),
      [
        ['Hi Ben! Did you see the new mockups?', false],
        ['Yes, they look great.\nOne question about the header though.', true],
      ],
    );
    // Consecutive seqs (before them, the joins' notices took theirs: every change is an entry).
    assert.equal(Number(anaView[1].seq), Number(anaView[0].seq) + 1);
    // Shift+Enter made a new line instead of sending; the box is empty after sending.
    assert.equal(await composer(ben.page).inputValue(), '');
    await ana.page.getByTestId('day-separator').filter({ hasText: /today/i }).waitFor();
  });

  test('the typing indicator appears on the other side and clears', async () => {
    const box = composer(ben.page);
    await box.click();
    await box.pressSequentially('Let me think', { delay: 20 });
    await until(async () => (await typingText(ana.page)) === 'Ben Okafor is typing…', {
      message: "Ana to see 'Ben Okafor is typing…'",
    });
    // Two typers at once.
    await composer(cy.page).click();
    await composer(cy.page).pressSequentially('Hmm', { delay: 20 });
    await until(async () => /^(Ben Okafor and Cy Tran|Cy Tran and Ben Okafor) are typing…$/.test(await typingText(ana.page)), {
      message: 'Ana to see two typers',
    });
    await screenshot(ana.page, 'desktop-room-typing.png');
    // The typer never sees themselves.
    assert.doesNotMatch(await typingText(ben.page), /Ben Okafor/);

    // Emptying the box clears it at once; sending clears it too.
    await box.fill('');
    await composer(cy.page).press('Enter');
    await waitMessage(ana.page, 'Hmm');
    await until(async () => (await typingText(ana.page)) === '', { message: 'the typing indicator to clear' });
  });

  test('presence: Ben shows online, away when his page is hidden, then offline with "last seen" when he closes his page', async () => {
    await waitPresence(ana.page, 'ben', 'online');
    // Ben switches to another tab: his page reports hidden, and Ana sees him away.
    await ben.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitPresence(ana.page, 'ben', 'away');
    assert.equal(await ana.page.locator('.presence-item[data-user="ben"] .presence-item__state').textContent(), 'away');
    await ben.page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitPresence(ana.page, 'ben', 'online');

    await ben.page.close();
    // PARLEY_PRESENCE_GRACE_MS is short in these tests.
    await waitPresence(ana.page, 'ben', 'offline', { timeout: 10_000 });
    const status = await ana.page.locator('.presence-item[data-user="ben"] .presence-item__state').textContent();
    assert.match(status, /^last seen (just now|\d+ min ago)$/);
    await screenshot(ana.page, 'desktop-room-presence.png');

    // Back again: a new page in the same browser (same session cookie).
    ben.page = await ben.context.newPage();
    await openChat(ben.page, slug);
    await waitPresence(ana.page, 'ben', 'online');
  });

  test('a server restart mid-conversation reconnects both browsers and loses nothing', async () => {
    await send(ana.page, 'before restart');
    await waitMessage(ben.page, 'before restart');

    await srv.stop();
    await until(async () => (await connectionBanner(ana.page)) === 'reconnecting', { message: "Ana's reconnecting banner" });
    await until(async () => (await connectionBanner(ben.page)) === 'reconnecting', { message: "Ben's reconnecting banner" });
    await screenshot(ana.page, 'desktop-room-reconnecting.png');

    // Sent while the server is down: shown as pending, delivered after the restart.
    await send(ana.page, 'sent while the server was down');
    await message(ana.page, 'sent while the server was down').and(ana.page.locator('[data-status="pending"]')).waitFor();

    await srv.start();
    await until(async () => (await connectionBanner(ana.page)) === null, { timeout: 20_000, message: "Ana's banner to go" });
    await until(async () => (await connectionBanner(ben.page)) === null, { timeout: 20_000, message: "Ben's banner to go" });
    await waitMessage(ana.page, 'sent while the server was down', { timeout: 15_000 });
    await waitMessage(ben.page, 'sent while the server was down', { timeout: 15_000 });

    await send(ben.page, 'after restart');
    await waitMessage(ana.page, 'after restart');

    const a = await messageList(ana.page);
    const b = await messageList(ben.page);
    const bodies = a.map((m) => m.body);
    assert.deepEqual(bodies, b.map((m) => m.body), 'both sides see the same conversation');
    assert.deepEqual(a.map((m) => m.seq), b.map((m) => m.seq));
    assert.equal(new Set(a.map((m) => m.seq)).size, a.length, 'no duplicate');
    // Messages and notices (joins) together are seqs 1..n without a gap.
    const timeline = await ana.page.locator('[data-testid="message"][data-seq], [data-testid="notice"][data-seq]').evaluateAll((els) =>
      els.map((e) => Number(e.getAttribute('data-seq'))),
    );
    assert.deepEqual(
      timeline,
      timeline.map((_, i) => i + 1),
      'seqs 1..n without a gap',
    );
    assert.ok(a.every((m) => m.status === 'sent'), 'nothing left pending');
    assert.deepEqual(bodies.slice(-3), ['before restart', 'sent while the server was down', 'after restart']);
    await screenshot(ben.page, 'desktop-room.png');
  });

  test('settings: Ana removes Ben, who is cut off at once', async () => {
    await ana.page.getByRole('link', { name: 'Chat settings' }).click();
    await ana.page.waitForURL(`**/chat/${slug}/settings`);
    const benRow = ana.page.getByTestId('participants').locator('.member[data-user="ben"]');
    await benRow.waitFor();
    await screenshot(ana.page, 'desktop-settings.png');
    await benRow.getByRole('button', { name: 'Remove Ben Okafor' }).click();
    await ana.page.getByRole('alertdialog', { name: 'Remove Ben Okafor?' }).getByRole('button', { name: 'Remove' }).click();
    await benRow.waitFor({ state: 'detached' });

    // Ben's open room says so and the composer is gone.
    await ben.page.getByTestId('removed-banner').filter({ hasText: 'removed from this chat by Ana Lima' }).waitFor();
    assert.equal(await composer(ben.page).count(), 0);
    // The chat leaves Ben's list.
    await ben.page.locator(`.chat-row[data-slug="${slug}"]`).waitFor({ state: 'detached' });

    // New messages reach Cy, never Ben.
    await ana.page.getByRole('link', { name: 'Back to the chat' }).click();
    await roomReady(ana.page);
    await send(ana.page, 'after removing Ben');
    await waitMessage(cy.page, 'after removing Ben');
    assert.equal(await message(ben.page, 'after removing Ben').count(), 0);

    // Opening the chat again: the chat is private, so to Ben, an outsider now, the server says it
    // does not exist (not_found); the page remembers the removal it saw and says that instead.
    await ben.page.goto(`/chat/${slug}`);
    await ben.page.getByTestId('removed-notice').filter({ hasText: 'ask Ana Lima for an invitation' }).waitFor();
  });

  test('no errors in any page console', () => {
    const errors = [...ana.errors, ...ben.errors, ...cy.errors].filter((e) => !/status of 40[13]/.test(e));
    assert.deepEqual(errors, []);
  });
});
