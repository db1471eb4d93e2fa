// A phone-sized viewport (360x740): the chat list fills the screen, a chat opens full screen
// with a back button, the composer stays on screen and works, the people drawer and the
// settings page fit, and nothing scrolls sideways. Also keyboard-only use on the desktop layout.
// Screenshots of each phone screen go to tests/artifacts/.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { DESKTOP, PHONE, failureArtifacts, launchBrowser, newPerson, screenshot } from './lib/browser.mjs';
import {
  assertInViewport,
  assertNoHorizontalOverflow,
  composer,
  logIn,
  messageList,
  roomReady,
  send,
  signUp,
  until,
  waitMessage,
} from './lib/ui.mjs';
import { connect, inviteAndAccept, signup } from '../integration/lib/client.mjs';

describe('phone layout and keyboard use', () => {
  let srv;
  let browser;
  let phone;
  let ana; // a protocol client (tests/integration/lib/client.mjs) talking to Maya
  let slug;
  let mark = 0;

  before(async () => {
    srv = await startServer();
    browser = await launchBrowser();
    // Ana (over the protocol) sets up a lively chat with Maya, who then uses her phone.
    const a = await signup(srv, 'ana', undefined, 'Ana Lima');
    const m = await signup(srv, 'maya', undefined, 'Maya Ortiz');
    await signup(srv, 'ben', undefined, 'Ben Okafor');
    ana = await connect(srv, { token: a.token });
    const maya = await connect(srv, { token: m.token });
    const { chat } = await ana.ok('chat.create', { title: 'Weekend trip planning' });
    slug = chat.slug;
    await inviteAndAccept(ana, maya, slug);
    const lines = [
      [ana, 'Morning! Did everyone see the cabin listing?'],
      [maya, 'Yes, it looks lovely. Is there parking?'],
      [ana, 'Two spots, and a charger for the car.'],
      [ana, 'I can drive on Friday after work, leaving around 5.'],
      [maya, 'Perfect, count me in. I will bring snacks and the board games 🎲'],
      [ana, 'I will share the packing list tonight.'],
    ];
    for (const [c, body] of lines) await c.ok('msg.send', { chat: slug, body, clientMsgId: `seed-${body.length}-${c.user.username}` });
    await ana.ok('chat.create', { title: 'Book club' });
    await ana.ok('sub', { chat: slug });
    await maya.close();
    phone = await newPerson(browser, srv.url, { name: 'maya-phone', viewport: PHONE });
  });

  afterEach(async (t) => {
    const log = srv.since(mark);
    mark = srv.mark();
    if (!t.passed) {
      await failureArtifacts(t.name, [phone]);
      console.error(`server log during "${t.name}":\n${srv.tail(80, log)}`);
    }
  });

  after(async () => {
    await ana?.close();
    await browser?.close();
    await srv?.dispose();
  });

  test('login page fits the phone', async () => {
    await phone.page.goto('/login');
    await phone.page.getByRole('heading', { name: 'Welcome back' }).waitFor();
    await assertNoHorizontalOverflow(phone.page);
    await assertInViewport(phone.page, phone.page.getByRole('button', { name: 'Log in' }), 'the Log in button');
    await screenshot(phone.page, 'phone-login.png');
  });

  test('chat list fills the screen', async () => {
    await logIn(phone.page, { username: 'maya' });
    const row = phone.page.locator(`.chat-row[data-slug="${slug}"]`);
    await row.waitFor();
    await row.getByTestId('unread').filter({ hasText: '1' }).waitFor(); // Ana's message after Maya's
    await row.getByTestId('participant-count').filter({ hasText: '2' }).waitFor();
    await row.getByTestId('last-message').filter({ hasText: 'Ana Lima: I will share the packing list' }).waitFor();
    // The list is the whole screen; no room pane beside it.
    const nav = await phone.page.getByRole('navigation', { name: 'Chats' }).boundingBox();
    assert.ok(nav.width >= 359, `list is ${nav.width}px wide`);
    await assertNoHorizontalOverflow(phone.page);
    await screenshot(phone.page, 'phone-chat-list.png');
  });

  test('a chat opens full screen, the composer is on screen and works', async () => {
    await phone.page.locator(`.chat-row[data-slug="${slug}"]`).click();
    await roomReady(phone.page);
    assert.equal(await phone.page.getByRole('navigation', { name: 'Chats' }).isVisible(), false);
    await assertInViewport(phone.page, composer(phone.page), 'the composer');
    await assertInViewport(phone.page, phone.page.getByRole('button', { name: 'Send message' }), 'the send button');
    await assertInViewport(phone.page, phone.page.getByRole('link', { name: 'Back to chats' }), 'the back button');
    await waitMessage(phone.page, 'packing list');
    await send(phone.page, 'See you Friday!');
    await waitMessage(phone.page, 'See you Friday!');
    await ana.waitFor((e) => e.ev === 'msg' && e.msg.body === 'See you Friday!', { what: "Maya's message" });
    // Ana answers; it shows on the phone.
    await ana.ok('msg.send', { chat: slug, body: 'Great, see you then 🚗', clientMsgId: 'ana-reply' });
    await waitMessage(phone.page, 'see you then');
    const last = (await messageList(phone.page)).at(-1);
    assert.equal(last.body, 'Great, see you then 🚗');
    await assertInViewport(phone.page, phone.page.getByTestId('message').last(), 'the newest message');
    await assertNoHorizontalOverflow(phone.page);
    await screenshot(phone.page, 'phone-room.png');
  });

  test('the people drawer opens over the room', async () => {
    await phone.page.getByRole('button', { name: 'People in this chat' }).click();
    const people = phone.page.getByRole('complementary', { name: 'People' });
    await people.locator('.presence-item[data-user="ana"]').waitFor();
    await assertInViewport(phone.page, people, 'the people drawer');
    await screenshot(phone.page, 'phone-people.png');
    await phone.page.getByRole('button', { name: 'People in this chat' }).click();
    await people.waitFor({ state: 'hidden' });
  });

  test('settings fit the phone', async () => {
    await phone.page.getByRole('link', { name: 'Chat settings' }).click();
    await phone.page.getByRole('heading', { name: 'Participants' }).waitFor();
    await phone.page.getByTestId('participants').locator('.member[data-user="ana"]').waitFor();
    // Maya is a member: she sees the settings read-only and can leave.
    assert.equal(await phone.page.getByLabel('Title').isDisabled(), true);
    await phone.page.getByRole('button', { name: 'Leave chat' }).waitFor();
    await assertNoHorizontalOverflow(phone.page);
    await screenshot(phone.page, 'phone-settings.png');
  });

  test('back to the list with the back buttons', async () => {
    await phone.page.getByRole('link', { name: 'Back to the chat' }).click();
    await roomReady(phone.page);
    await phone.page.getByRole('link', { name: 'Back to chats' }).click();
    await phone.page.waitForURL('**/chat');
    await phone.page.locator(`.chat-row[data-slug="${slug}"]`).waitFor();
    // Everything was read in the room.
    await until(async () => (await phone.page.locator(`.chat-row[data-slug="${slug}"] [data-testid="unread"]`).count()) === 0, {
      message: 'the unread badge to go',
    });
  });

  test('keyboard only: log in, open a chat, send a message, use the invite dialog', async () => {
    const kb = await newPerson(browser, srv.url, { name: 'ana-keyboard', viewport: DESKTOP });
    try {
      const page = kb.page;
      await page.goto('/login');
      await page.getByLabel('Username').waitFor();
      // The username field has focus; Tab moves through the form in order.
      await page.keyboard.type('ana');
      await page.keyboard.press('Tab');
      await page.keyboard.type('correct horse battery');
      await page.keyboard.press('Enter');
      await page.waitForURL('**/chat');
      // Tab from the top reaches the chat link; Enter opens it.
      const link = page.locator(`.chat-row[data-slug="${slug}"]`);
      await link.waitFor();
      await link.focus();
      await page.keyboard.press('Enter');
      await roomReady(page);
      await composer(page).focus();
      await page.keyboard.type('Typed with the keyboard');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('on two lines');
      await page.keyboard.press('Enter');
      await waitMessage(page, 'on two lines');
      assert.equal((await messageList(page)).at(-1).body, 'Typed with the keyboard\non two lines');

      // The invite dialog: focus goes to the search box, Escape closes it and focus returns.
      const inviteButton = page.getByRole('button', { name: 'Invite people' });
      await inviteButton.focus();
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'invite-search');
      await page.keyboard.type('Ben');
      await dialog.locator('.search-result[data-user="ben"]').waitFor();
      // Tab stays inside the dialog.
      for (let i = 0; i < 5; i++) {
        await page.keyboard.press('Tab');
        assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), 'focus left the dialog');
      }
      await page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Invite people');

      // Log out: back to the login page, and the session is gone after a reload.
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL('**/login');
      await page.reload();
      await page.getByRole('heading', { name: 'Welcome back' }).waitFor();
    } finally {
      await kb.context.close();
    }
  });

  test('no errors in the page console', () => {
    assert.deepEqual(phone.errors.filter((e) => !/status of 40[13]/.test(e)), []);
  });
});
