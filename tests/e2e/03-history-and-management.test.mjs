// History, failures and chat management in the browser: infinite scroll back through 130
// messages, a send the server refuses shown as failed and sent once by Retry, server errors
// shown in place (chat full, cap below the participant count), and the settings page (title
// change seen live by others, role change, invitation revoke), decline and leave.
// Ana often acts over the protocol (tests/integration/lib/client.mjs) to set things up fast.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { failureArtifacts, launchBrowser, newPerson, screenshot } from './lib/browser.mjs';
import { composer, logIn, messageList, openChat, roomReady, send, until, waitMessage } from './lib/ui.mjs';
import { connect, signup } from '../integration/lib/client.mjs';

describe('history, failures and chat management', () => {
  let srv;
  let browser;
  let ben; // browser
  let cy; // browser
  let ana; // protocol client
  let anaWeb; // browser, for the settings page
  const api = {}; // protocol clients by name
  let slug; // the "History" chat
  let mark = 0;

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
    ana = api.ana;
    ben = await newPerson(browser, srv.url, { name: 'ben' });
    cy = await newPerson(browser, srv.url, { name: 'cy' });
    await logIn(ben.page, { username: 'ben' });
    await logIn(cy.page, { username: 'cytran' });
  });

  afterEach(async (t) => {
    const log = srv.since(mark);
    mark = srv.mark();
    if (!t.passed) {
      await failureArtifacts(t.name, [ben, cy, anaWeb].filter(Boolean));
      console.error(`server log during "${t.name}":\n${srv.tail(80, log)}`);
    }
  });

  after(async () => {
    for (const c of Object.values(api)) await c.close();
    await browser?.close();
    await srv?.dispose();
  });

  async function invite(from, chat, to) {
    const { invitation } = await from.ok('invite.create', { chat, user: to });
    return invitation;
  }

  test('infinite scroll goes back through the whole history, in order, without jumping', async () => {
    const { chat } = await ana.ok('chat.create', { title: 'History' });
    slug = chat.slug;
    const inv = await invite(ana, slug, 'ben');
    await api.ben.ok('invite.accept', { invitation: inv.id });
    for (let i = 1; i <= 130; i++) {
      await ana.ok('msg.send', { chat: slug, body: `message ${i}`, clientMsgId: `h${i}` });
    }

    await openChat(ben.page, slug);
    await waitMessage(ben.page, 'message 130');
    let list = await messageList(ben.page);
    assert.ok(list.length < 130, `only the newest page at first, got ${list.length}`);
    assert.equal(list.at(-1).body, 'message 130');
    // The view starts at the bottom.
    const scroller = ben.page.getByTestId('messages');
    assert.ok(await scroller.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 5), 'starts scrolled to the bottom');

    // Scroll to the top until the beginning: each page is inserted above without moving the view.
    for (let round = 0; round < 10; round++) {
      const before = (await messageList(ben.page)).length;
      if (before === 130) break;
      const firstSeq = (await messageList(ben.page))[0].seq;
      await scroller.evaluate((el) => (el.scrollTop = 0));
      await until(async () => (await messageList(ben.page)).length > before, { message: 'an older page' });
      // What was at the top is still in view: the scroll position moved down by the new content.
      const top = await scroller.evaluate((el) => el.scrollTop);
      assert.ok(top > 0, 'the view stayed on what was being read');
      const stillVisible = await ben.page
        .locator(`[data-testid="message"][data-seq="${firstSeq}"]`)
        .evaluate((el) => {
          const r = el.getBoundingClientRect();
          const s = el.closest('[data-testid="messages"]').getBoundingClientRect();
          return r.bottom > s.top && r.top < s.bottom;
        });
      assert.ok(stillVisible, `message ${firstSeq} left the view when older ones were inserted`);
    }
    await ben.page.getByTestId('history-status').filter({ hasText: 'beginning of the conversation' }).waitFor();
    list = await messageList(ben.page);
    assert.deepEqual(
      list.map((m) => m.body),
      Array.from({ length: 130 }, (_, i) => `message ${i + 1}`),
    );
    // Consecutive (seq 1 is the notice of Ben's join: every change is an entry).
    assert.deepEqual(
      list.map((m) => Number(m.seq)),
      Array.from({ length: 130 }, (_, i) => i + 2),
    );
    assert.equal(await ben.page.getByTestId('day-separator').count(), 1);
  });

  test('a send the server refuses shows as failed in place; Retry sends it exactly once', async () => {
    await ana.ok('sub', { chat: slug });
    // A new page for Ben whose WebSocket passes through a proxy that refuses the first send.
    const page = await ben.context.newPage();
    let refuse = 1;
    let toPage = null;
    await page.routeWebSocket(/\/ws$/, (ws) => {
      toPage = ws;
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const f = JSON.parse(String(m));
        if (f.op === 'msg.send' && refuse > 0) {
          refuse--;
          ws.send(JSON.stringify({ id: f.id, ok: false, error: { code: 'internal', message: 'injected failure' } }));
          return;
        }
        server.send(m);
      });
    });
    const oldPage = ben.page;
    ben.page = page;
    await oldPage.close();
    await openChat(page, slug);
    await send(page, 'this one fails first');
    const failed = page.getByTestId('message').filter({ hasText: 'this one fails first' });
    await failed.and(page.locator('[data-status="failed"]')).waitFor();
    await failed.getByRole('alert').filter({ hasText: 'Not sent' }).waitFor();
    await screenshot(page, 'desktop-room-failed-send.png');

    await failed.getByRole('button', { name: 'Retry' }).click();
    await waitMessage(page, 'this one fails first');
    const ev = await ana.waitFor((e) => e.ev === 'msg' && e.msg.body === 'this one fails first', { what: 'the retried message' });
    // After Ben's join notice (seq 1) and the 130 messages.
    assert.equal(ev.msg.seq, 132);
    // Exactly once: the next message gets the next seq.
    await send(page, 'and the next one');
    const next = await ana.waitFor((e) => e.ev === 'msg' && e.msg.body === 'and the next one', { what: 'the next message' });
    assert.equal(next.msg.seq, 133);
    const bodies = (await messageList(page)).map((m) => m.body);
    assert.equal(bodies.filter((b) => b === 'this one fails first').length, 1);

    // Many typers: the server lists five at most and counts the rest in `others`; the indicator
    // names two. (Injected through the proxy: the real server's events for it are tested in
    // tests/integration.)
    const u = (id, name) => ({ id: 100 + id, username: `u${id}`, displayName: name });
    toPage.send(JSON.stringify({ ev: 'typing', chat: slug, users: [u(1, 'Ana'), u(2, 'Bo'), u(3, 'Cat'), u(4, 'Dan'), u(5, 'Eve')], others: 2 }));
    await page.getByTestId('typing').filter({ hasText: 'Ana, Bo and 5 others are typing…' }).waitFor();
    toPage.send(JSON.stringify({ ev: 'typing', chat: slug, users: [], others: 0 }));
    await until(async () => ((await page.getByTestId('typing').textContent()) || '') === '', { message: 'the indicator to clear' });
  });

  test('public chats: join from the link, or see that it is full', async () => {
    const open = (await ana.ok('chat.create', { title: 'Open house', isPublic: true })).chat.slug;
    const full = (await ana.ok('chat.create', { title: 'Full house', isPublic: true, maxParticipants: 2 })).chat.slug;
    await api.dee.ok('chat.join', { chat: full });

    await cy.page.goto(`/chat/${open}`);
    // A visitor of a public chat: Join offered, and nothing shown as an error.
    await cy.page.getByTestId('room-visitor').getByRole('button', { name: 'Join this chat' }).click();
    await roomReady(cy.page);
    await send(cy.page, 'hello from the link');
    await waitMessage(cy.page, 'hello from the link');
    await cy.page.locator(`.chat-row[data-slug="${open}"]`).waitFor();

    await cy.page.goto(`/chat/${full}`);
    const error = cy.page.getByTestId('room-visitor');
    await error.getByRole('button', { name: 'Join this chat' }).click();
    await error.getByRole('alert').filter({ hasText: 'This chat is full' }).waitFor();
  });

  test('chat full: accepting an invitation to a full chat says so on the card', async () => {
    const { chat } = await ana.ok('chat.create', { title: 'Tiny room', maxParticipants: 2 });
    const toBen = await invite(ana, chat.slug, 'ben');
    await invite(ana, chat.slug, 'cytran');
    await api.ben.ok('invite.accept', { invitation: toBen.id });
    const card = cy.page.getByTestId('invitation').filter({ hasText: 'Tiny room' });
    await card.getByRole('button', { name: /Accept/ }).click();
    await card.getByRole('alert').filter({ hasText: 'This chat is full' }).waitFor();
    await screenshot(cy.page, 'desktop-invitation-chat-full.png');
  });

  test('decline an invitation', async () => {
    const { chat } = await ana.ok('chat.create', { title: 'Not for me' });
    await invite(ana, chat.slug, 'cytran');
    const card = cy.page.getByTestId('invitation').filter({ hasText: 'Not for me' });
    await card.getByRole('button', { name: /Decline/ }).click();
    await card.waitFor({ state: 'detached' });
    await ana.waitFor((e) => e.ev === 'invite' && e.invitation.chat === chat.slug && e.invitation.status === 'declined', {
      what: 'the declined event',
    });
  });

  test('settings: title seen live by others, cap error in place, role change, revoke', async () => {
    const inv = await invite(ana, slug, 'cytran');
    await api.cytran.ok('invite.accept', { invitation: inv.id });
    anaWeb = await newPerson(browser, srv.url, { name: 'ana-web' });
    await logIn(anaWeb.page, { username: 'ana' });
    const page = anaWeb.page;
    await page.goto(`/chat/${slug}/settings`);
    await page.getByRole('heading', { name: 'Participants' }).waitFor();

    // Title: Ben's open room follows.
    await page.getByLabel('Title').fill('History of everything');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    await ben.page.getByTestId('room-title').filter({ hasText: 'History of everything' }).waitFor();

    // Public, and every participant may invite: Cy (a member) gets the invite button.
    await page.getByLabel(/Public chat/).check();
    await page.getByLabel('Who can invite').selectOption('members');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
    const got = await api.cytran.ok('chat.get', { chat: slug });
    assert.equal(got.chat.isPublic, true);
    assert.equal(got.chat.invitePolicy, 'members');
    await openChat(cy.page, slug);
    await cy.page.getByRole('button', { name: 'Invite people' }).waitFor();

    // A cap below the participant count is refused, in place.
    await page.getByLabel('Participant limit').fill('2');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('alert').filter({ hasText: 'cannot be below the current number of participants (3)' }).waitFor();
    await page.getByLabel('Participant limit').fill('');

    // Role: Ben becomes an admin; Ana's list and Ben's settings follow.
    const benRow = page.getByTestId('participants').locator('.member[data-user="ben"]');
    await benRow.getByLabel('Role of Ben Okafor').selectOption('admin');
    await benRow.getByTestId('role').filter({ hasText: 'admin' }).waitFor();
    await ben.page.getByRole('link', { name: 'Chat settings' }).click();
    await ben.page.getByTestId('participants').locator('.member[data-user="ben"]').getByTestId('role').filter({ hasText: 'admin' }).waitFor();
    // As an admin, Ben may edit, and remove members but not the owner.
    assert.equal(await ben.page.getByLabel('Title').isDisabled(), false);
    assert.equal(await ben.page.getByRole('button', { name: 'Remove Cy Tran' }).count(), 1);
    assert.equal(await ben.page.getByRole('button', { name: 'Remove Ana Lima' }).count(), 0);

    // Invite Dee from the settings page, then revoke.
    await page.getByRole('button', { name: 'Invite', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Search people').fill('dee');
    await dialog.getByRole('button', { name: 'Invite Dee Park' }).click();
    await dialog.getByTestId('invite-status').filter({ hasText: 'Invited' }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    const pending = page.getByTestId('pending-invitations').locator('.member[data-user="dee"]');
    await pending.waitFor();
    await screenshot(page, 'desktop-settings-admin.png');
    await pending.getByRole('button', { name: 'Revoke invitation for Dee Park' }).click();
    await pending.waitFor({ state: 'detached' });
    await api.dee.waitFor((e) => e.ev === 'invite' && e.action === 'revoked', { what: "Dee's revoked event" });
  });

  test('leave a chat from its settings', async () => {
    await openChat(cy.page, slug);
    await cy.page.getByRole('link', { name: 'Chat settings' }).click();
    await cy.page.getByRole('button', { name: 'Leave chat' }).click();
    await cy.page.getByRole('button', { name: 'Yes, leave' }).click();
    await cy.page.waitForURL('**/chat');
    await cy.page.locator(`.chat-row[data-slug="${slug}"]`).waitFor({ state: 'detached' });
    await anaWeb.page.getByTestId('participants').locator('.member[data-user="cytran"]').waitFor({ state: 'detached' });
    // The composer of a chat one left is not offered again (the chat was made public above: Cy
    // is a visitor of it now, offered Join).
    await cy.page.goto(`/chat/${slug}`);
    await cy.page.getByTestId('room-visitor').getByRole('button', { name: 'Join this chat' }).waitFor();
    assert.equal(await composer(cy.page).count(), 0);
  });

  test('no errors in any page console', () => {
    const errors = [...ben.errors, ...cy.errors, ...(anaWeb?.errors || [])].filter((e) => !/status of 40[13]/.test(e));
    assert.deepEqual(errors, []);
  });
});
