// Names that cannot be used to pass for someone else: two participants who chose the same display
// name are both shown with their username ("Ana (@ana)"), in the timeline and in the people
// list; every name shows "Name (@user)" on hover; avatar initials keep emoji whole; the sign-up
// form counts display names in code points, as the server does.
// The other participants act over the protocol (tests/integration/lib/client.mjs).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { failureArtifacts, launchBrowser, newPerson } from './lib/browser.mjs';
import { logIn, openChat, until, waitMessage } from './lib/ui.mjs';
import { connect, signup } from '../integration/lib/client.mjs';

describe('display names', () => {
  let srv;
  let browser;
  let ben; // browser
  const api = {}; // protocol clients by username
  let mark = 0;

  before(async () => {
    srv = await startServer();
    browser = await launchBrowser();
    for (const [name, display] of [
      ['ana', 'Ana'],
      ['not_ana', 'Ana'],
      ['ben', 'Ben Okafor'],
      ['fox', '🦊 Fox'],
    ]) {
      const s = await signup(srv, name, undefined, display);
      api[name] = await connect(srv, { token: s.token });
    }
    ben = await newPerson(browser, srv.url, { name: 'ben' });
    await logIn(ben.page, { username: 'ben' });
  });

  afterEach(async (t) => {
    const log = srv.since(mark);
    mark = srv.mark();
    if (!t.passed) {
      await failureArtifacts(t.name, [ben]);
      console.error(`server log during "${t.name}":\n${srv.tail(80, log)}`);
    }
  });

  after(async () => {
    for (const c of Object.values(api)) await c.close();
    await browser?.close();
    await srv?.dispose();
  });

  test('two participants with the same display name are shown apart, everywhere in the room', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Names' });
    for (const who of ['ben', 'not_ana', 'fox']) {
      const { invitation } = await api.ana.ok('invite.create', { chat: chat.slug, user: who });
      await api[who].ok('invite.accept', { invitation: invitation.id });
    }
    await api.ana.ok('msg.send', { chat: chat.slug, body: 'I am the real Ana', clientMsgId: 'n1' });
    await api.not_ana.ok('msg.send', { chat: chat.slug, body: 'No, I am Ana', clientMsgId: 'n2' });
    await api.fox.ok('msg.send', { chat: chat.slug, body: 'Hello from the fox', clientMsgId: 'n3' });

    await openChat(ben.page, chat.slug);
    await waitMessage(ben.page, 'Hello from the fox');
    const authors = () =>
      ben.page.getByTestId('message-author').evaluateAll((els) => els.map((e) => ({ text: e.textContent, title: e.getAttribute('title') })));
    await until(async () => (await authors()).length === 3, { message: 'three author lines' });
    assert.deepEqual(await authors(), [
      { text: 'Ana (@ana)', title: 'Ana (@ana)' },
      { text: 'Ana (@not_ana)', title: 'Ana (@not_ana)' },
      // No one else is called Fox: the display name alone, the username on hover.
      { text: '🦊 Fox', title: '🦊 Fox (@fox)' },
    ]);

    // The people list tells the two apart too, and hovering any name shows the username.
    const name = (user) => ben.page.locator(`.presence-item[data-user="${user}"] .presence-item__name`);
    await until(async () => (await name('not_ana').count()) === 1, { message: 'the people list' });
    assert.match(await name('ana').textContent(), /^Ana \(@ana\)/);
    assert.match(await name('not_ana').textContent(), /^Ana \(@not_ana\)/);
    assert.equal(await name('ana').getAttribute('title'), 'Ana (@ana)');
    assert.match(await name('fox').textContent(), /^🦊 Fox/);
    assert.doesNotMatch(await name('fox').textContent(), /@fox/);
    assert.equal(await name('fox').getAttribute('title'), '🦊 Fox (@fox)');

    // Avatar initials keep the emoji whole.
    const initials = await ben.page.locator('.presence-item[data-user="fox"] .avatar').evaluate((el) => el.firstChild?.textContent ?? '');
    assert.equal(initials, '🦊F');
    assert.ok(!initials.includes('\uFFFD'));
    assert.deepEqual(ben.errors, []);
  });

  test('the sign-up form counts display names in code points, as the server does', async () => {
    const p = await newPerson(browser, srv.url, { name: 'newcomer' });
    try {
      await p.page.goto('/signup');
      await p.page.getByLabel('Username').fill('newcomer');
      await p.page.getByLabel('Password').fill('correct horse battery');
      const field = p.page.getByLabel('Display name');
      // 64 emoji are 64 characters (128 UTF-16 units): within the limit.
      await field.fill('🦊'.repeat(64));
      await p.page.locator('#auth-display-hint').filter({ hasText: '(64/64)' }).waitFor();
      // One more is refused in the form, before anything is sent.
      await field.fill('🦊'.repeat(65));
      await p.page.getByRole('button', { name: 'Sign up' }).click();
      await p.page.getByRole('alert').filter({ hasText: 'at most 64 characters' }).waitFor();
      assert.match(p.page.url(), /\/signup$/);
    } finally {
      await p.context.close();
    }
  });
});
