// Issue 19 in real browsers against the real server: Ana creates a bot on the Bots page (its
// token shown once), invites it to a chat with Ben; the bot (a protocol client with that token)
// is "thinking…" for both, then streams an answer that grows in place for Ana and Ben with a
// cursor, rendered as text (markup in it stays text); a third page opened mid-stream shows the
// whole text so far at once and then follows; at the end the three show the same text, without
// the cursor, and the bot's name carries the BOT badge. Screenshots go to tests/artifacts/.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { PHONE, failureArtifacts, launchBrowser, newPerson, screenshot } from './lib/browser.mjs';
import { assertContrast, smallFields, smallTargets } from './lib/a11y.mjs';
import { logIn, message, openChat, until } from './lib/ui.mjs';
import { connect, inviteAndAccept, signup } from '../integration/lib/client.mjs';

// The streamed message's body text on a page (null while it is not there).
async function streamedBody(page, seq) {
  const el = page.locator(`[data-testid="message"][data-seq="${seq}"] [data-testid="message-body"]`);
  if ((await el.count()) === 0) return null;
  return el.first().evaluate((e) => e.textContent);
}

describe('bots and streamed messages', () => {
  let srv;
  let browser;
  let ana;
  let ben;
  let cy;
  const api = {};
  const people = [];
  let mark = 0;

  before(async () => {
    srv = await startServer();
    browser = await launchBrowser();
    for (const [name, display] of [
      ['ana', 'Ana Lima'],
      ['ben', 'Ben Okafor'],
      ['cytran', 'Cy Tran'],
    ]) {
      const s = await signup(srv, name, undefined, display);
      api[name] = await connect(srv, { token: s.token });
    }
    ana = await newPerson(browser, srv.url, { name: 'ana' });
    ben = await newPerson(browser, srv.url, { name: 'ben' });
    cy = await newPerson(browser, srv.url, { name: 'cy' });
    people.push(ana, ben, cy);
    await logIn(ana.page, { username: 'ana' });
    await logIn(ben.page, { username: 'ben' });
    await logIn(cy.page, { username: 'cytran' });
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

  test('a bot created on the Bots page streams into a chat watched by two browsers; a third opens mid-stream', async () => {
    // --- the Bots page: create, token shown once ---
    await ana.page.goto('/profile');
    await ana.page.getByTestId('bots-link').click();
    await ana.page.waitForURL('**/bots');
    const form = ana.page.getByTestId('bot-create');
    await form.getByLabel('Username').fill('helper');
    await form.getByLabel('Display name (optional)').fill('Helper');
    await form.getByRole('button', { name: 'Create bot' }).click();
    const secrets = ana.page.getByTestId('bot-secrets');
    await secrets.waitFor();
    const token = await ana.page.getByTestId('secret-token').inputValue();
    assert.ok(token.length > 10, 'the token is shown');
    assert.ok((await ana.page.getByTestId('secret-webhook-secret').inputValue()).length > 10, 'and the webhook secret');
    await secrets.getByRole('button', { name: 'Copy token' }).waitFor();
    const row = ana.page.getByTestId('bot-row').filter({ hasText: '@helper' });
    await row.getByTestId('bot-badge').waitFor();
    await screenshot(ana.page, 'bots-page.png');
    await secrets.getByRole('button', { name: 'Done' }).click();
    await until(async () => (await ana.page.getByTestId('bot-secrets').count()) === 0, { message: 'the secrets to be hidden' });
    assert.equal(await ana.page.getByTestId('secret-token').count(), 0, 'shown only once');

    // --- the chat: Ana, Ben, the bot (invited like anyone) ---
    const bot = await connect(srv, { token });
    api.bot = bot;
    assert.equal(bot.user.bot, true);
    const { chat } = await api.ana.ok('chat.create', { title: 'Ask the bot' });
    const slug = chat.slug;
    await inviteAndAccept(api.ana, api.ben, slug);
    await inviteAndAccept(api.ana, api.cytran, slug);
    await inviteAndAccept(api.ana, bot, slug);
    await openChat(ana.page, slug);
    await openChat(ben.page, slug);

    // --- thinking… ---
    await bot.ok('sub', { chat: slug }); // typing is for subscribers
    await bot.ok('typing', { chat: slug, on: true });
    for (const p of [ana, ben]) {
      await until(async () => /Helper is thinking…/.test(await p.page.getByTestId('typing').textContent()), { message: 'thinking' });
    }

    // --- the stream grows in place ---
    const { msg } = await bot.ok('msg.stream.start', { chat: slug, clientMsgId: 'e2e-answer' });
    const seq = msg.seq;
    let text = '';
    let offset = 0;
    const append = async (delta) => {
      const r = await bot.ok('msg.stream.append', { chat: slug, seq, delta, offset });
      offset = r.length;
      text += delta;
    };
    const parts = ['Sure! ', 'Here is <b>bold</b> ', 'and <img src=x onerror="window.__pwned=1"> ', 'text, ', 'naïve 🙂 ', 'line\nbreak. '];
    for (const p of parts.slice(0, 3)) await append(p);
    for (const p of [ana, ben]) {
      await until(async () => (await streamedBody(p.page, seq)) === text, { message: `${p.name} to see the text so far` });
      await p.page.locator(`[data-seq="${seq}"] [data-testid="stream-cursor"]`).waitFor();
      // the bot's name with the badge, and "thinking" gone once the stream started
      await p.page.locator(`[data-seq="${seq}"] [data-testid="message-author"] [data-testid="bot-badge"]`).waitFor();
      await until(async () => !/thinking/.test(await p.page.getByTestId('typing').textContent()), { message: 'thinking cleared' });
    }
    await screenshot(ben.page, 'bot-streaming.png');

    // --- a third page opens mid-stream: the whole text so far at once, then the rest live ---
    for (const p of parts.slice(3, 5)) await append(p);
    await openChat(cy.page, slug);
    await until(async () => (await streamedBody(cy.page, seq)) === text, { message: 'cy to see the text so far' });
    await append(parts[5]);
    for (let i = 0; i < 20; i++) await append(`w${i} `);

    // --- the end: identical everywhere, no cursor, rendered as text ---
    const end = await bot.ok('msg.stream.end', { chat: slug, seq });
    assert.equal(end.msg.body, text);
    for (const p of [ana, ben, cy]) {
      await until(async () => (await p.page.locator(`[data-seq="${seq}"] [data-testid="stream-cursor"]`).count()) === 0, {
        message: `${p.name}: the cursor gone`,
      });
      assert.equal(await streamedBody(p.page, seq), text, `${p.name} holds the bot's text exactly`);
      const injected = await p.page.locator(`[data-seq="${seq}"] [data-testid="message-body"] b, [data-seq="${seq}"] [data-testid="message-body"] img`).count();
      assert.equal(injected, 0, 'markup in the text stays text');
      assert.equal(await p.page.evaluate(() => window.__pwned ?? null), null);
      assert.equal(await p.page.locator(`[data-seq="${seq}"]`).getAttribute('data-stream'), 'done');
    }
    assert.equal(await message(ana.page, 'Sure! Here is').count(), 1, 'one message, grown in place');
    for (const p of people) assert.deepEqual(p.errors, [], `${p.name}: no console errors`);
  });

  test('the Bots page and the badge keep the conventions: contrast, 44 px targets and 16 px fields on a phone, a focus-trapped confirmation', async () => {
    await ana.page.goto('/bots');
    await ana.page.getByTestId('bot-row').first().waitFor();
    await assertContrast(ana.page, 'bots page');
    await ana.page.setViewportSize(PHONE);
    assert.deepEqual(await smallTargets(ana.page), [], 'bots page targets');
    assert.deepEqual(await smallFields(ana.page), [], 'bots page fields');
    // Delete asks first, in a dialog that keeps focus and starts on Cancel; Escape closes it.
    const row = ana.page.getByTestId('bot-row').filter({ hasText: '@helper' });
    await row.getByRole('button', { name: 'Delete Helper' }).click();
    const dialog = ana.page.getByRole('alertdialog', { name: 'Delete Helper?' });
    await dialog.waitFor();
    assert.equal(await ana.page.evaluate(() => document.activeElement?.textContent), 'Cancel');
    for (let i = 0; i < 4; i++) await ana.page.keyboard.press('Tab');
    assert.equal(await dialog.evaluate((d) => d.contains(document.activeElement)), true, 'focus stays in the dialog');
    await ana.page.keyboard.press('Escape');
    await until(async () => (await dialog.count()) === 0, { message: 'the dialog to close' });
    assert.equal(await row.count(), 1, 'nothing deleted');
    await ana.page.setViewportSize({ width: 1280, height: 800 });
    // In the room, the BOT badge and the streamed text pass the contrast check.
    const { chats } = await api.ana.ok('chat.list', {});
    await openChat(ben.page, chats.find((c) => c.title === 'Ask the bot').slug);
    await assertContrast(ben.page, 'room with a bot');
  });

  test('a stream the bot ends with "error" says so', async () => {
    const { chats } = await api.ana.ok('chat.list', {});
    const slug = chats.find((c) => c.title === 'Ask the bot').slug;
    const { msg } = await api.bot.ok('msg.stream.start', { chat: slug });
    await api.bot.ok('msg.stream.append', { chat: slug, seq: msg.seq, delta: 'Half an ans', offset: 0 });
    await api.bot.ok('msg.stream.end', { chat: slug, seq: msg.seq, state: 'error' });
    const marker = ben.page.locator(`[data-seq="${msg.seq}"] [data-testid="stream-state"]`);
    await marker.waitFor();
    assert.match(await marker.textContent(), /answer failed/);
    assert.equal(await streamedBody(ben.page, msg.seq), 'Half an ans');
  });
});
