// Names that cannot be used to pass for someone else: two participants who chose the same display
// name are both shown with their username ("Ana (@ana)"), in the timeline and in the people
// list; every name shows "Name (@user)" on hover; avatar initials keep emoji whole; the sign-up
// form counts display names in code points, as the server does, and so do the chat title fields;
// names, titles and bodies the server would refuse (nothing visible, bidi controls) are refused
// before sending; signup's network budget (429) and a busy server (503) are said plainly.
// The other participants act over the protocol (tests/integration/lib/client.mjs).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { failureArtifacts, launchBrowser, newPerson } from './lib/browser.mjs';
import { composer, createChat, logIn, openChat, until, waitMessage } from './lib/ui.mjs';
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

  test('chat titles: 100 emoji fit, bidi controls and invisible titles are refused in the form', async () => {
    await ben.page.goto('/chat');
    const title = '🦊'.repeat(100); // 200 UTF-16 units: a maxLength of 100 kept 50 of them
    const slug = await createChat(ben.page, title);
    await until(async () => (await ben.page.getByTestId('room-title').textContent()) === title, { message: 'the whole title' });

    // Settings: the same count, and a bidi override is refused before anything is sent.
    await ben.page.goto(`/chat/${encodeURIComponent(slug)}/settings`);
    const field = ben.page.getByLabel('Title', { exact: true });
    await ben.page.locator('#set-title-hint').filter({ hasText: '(100/100)' }).waitFor();
    await field.fill('evil\u202Egnp.exe');
    await ben.page.getByRole('button', { name: /^Save/ }).click();
    await ben.page.getByRole('alert').filter({ hasText: 'text-direction' }).waitFor();
    await field.fill('\u200b\u3164');
    await ben.page.getByRole('button', { name: /^Save/ }).click();
    await ben.page.getByRole('alert').filter({ hasText: 'at least one visible character' }).waitFor();

    // The create form checks the same rules.
    await ben.page.goto('/chat');
    await ben.page.getByRole('button', { name: 'New chat' }).click();
    const dialog = ben.page.getByRole('dialog', { name: 'New chat' });
    await dialog.getByLabel('Title').fill('a\u2066b');
    await dialog.getByRole('button', { name: 'Create chat' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'text-direction' }).waitFor();
    await dialog.getByLabel('Title').fill('🦊'.repeat(101));
    await dialog.getByRole('button', { name: 'Create chat' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'at most 100 characters' }).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.deepEqual(ben.errors, []);
  });

  test('a message of invisible characters cannot be sent', async () => {
    const { chat } = await api.ana.ok('chat.create', { title: 'Blank' });
    const { invitation } = await api.ana.ok('invite.create', { chat: chat.slug, user: 'ben' });
    await api.ben.ok('invite.accept', { invitation: invitation.id });
    await openChat(ben.page, chat.slug);
    const sendButton = ben.page.getByRole('button', { name: 'Send message' });
    await composer(ben.page).fill('\u200b \u2800');
    await ben.page.locator('#composer-hint').filter({ hasText: 'at least one visible character' }).waitFor();
    assert.equal(await sendButton.isDisabled(), true);
    await composer(ben.page).press('Enter');
    await composer(ben.page).fill('\u200bhi');
    assert.equal(await sendButton.isEnabled(), true);
    await composer(ben.page).press('Enter');
    await waitMessage(ben.page, 'hi');
    const { msgs } = await api.ana.ok('msg.history', { chat: chat.slug });
    assert.deepEqual(msgs.filter((m) => m.kind === 'text').map((m) => m.body), ['\u200bhi'], 'the blank one was never sent (notices left out)');
  });

  test('signup over the network budget (429) and a busy server (503) are said plainly', async () => {
    const p = await newPerson(browser, srv.url, { name: 'limited' });
    try {
      // The server's answers, as src/app sends them: 429 with Retry-After in seconds, and 503
      // `unavailable` with Retry-After: 1 when the password-hash queue is full.
      let answer;
      await p.page.route('**/api/signup', (route) => route.fulfill(answer));
      await p.page.route('**/api/login', (route) => route.fulfill(answer));
      const json = (status, code, retry) => ({
        status,
        headers: { 'content-type': 'application/json', 'retry-after': String(retry) },
        body: JSON.stringify({ error: { code, message: code } }),
      });
      await p.page.goto('/signup');
      await p.page.getByLabel('Username').fill('limited');
      await p.page.getByLabel('Password').fill('correct horse battery');
      const alert = p.page.getByRole('alert');
      answer = json(429, 'rate_limited', 2400);
      await p.page.getByRole('button', { name: 'Sign up' }).click();
      await alert.filter({ hasText: 'Too many sign-ups from this network; try again in 40 minutes.' }).waitFor();
      answer = json(429, 'rate_limited', 60);
      await p.page.getByRole('button', { name: 'Sign up' }).click();
      await alert.filter({ hasText: 'try again in 1 minute.' }).waitFor();
      answer = json(503, 'unavailable', 1);
      await p.page.getByRole('button', { name: 'Sign up' }).click();
      await alert.filter({ hasText: 'The server is busy; try again in a moment.' }).waitFor();
      // Logging in meets the same busy queue.
      await p.page.goto('/login');
      await p.page.getByLabel('Username').fill('limited');
      await p.page.getByLabel('Password').fill('correct horse battery');
      await p.page.getByRole('button', { name: 'Log in' }).click();
      await alert.filter({ hasText: 'The server is busy; try again in a moment.' }).waitFor();
      assert.match(p.page.url(), /\/login$/);
    } finally {
      await p.context.close();
    }
  });
});
