// Issue 17 in real browsers against the real server: Ana and Ben, each in their own browser,
// reply to, react to, edit, delete and mention each other's messages and see it all on both
// sides; a reply's quote scrolls to an original that is pages back in the history; notices
// ("Cy Tran joined", "... renamed the chat to ...") are lines of the timeline; "Message" in the
// people panel opens a direct-message chat that the other side sees titled by the sender. Ana
// and Cy also act over the protocol (tests/integration/lib/client.mjs) to set things up fast.
// Screenshots of the new UI at desktop and phone sizes go to tests/artifacts/.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { PHONE, failureArtifacts, launchBrowser, newPerson, screenshot } from './lib/browser.mjs';
import { assertNoHorizontalOverflow, composer, logIn, message, openChat, roomReady, send, until, waitMessage } from './lib/ui.mjs';
import { connect, inviteAndAccept, signup } from '../integration/lib/client.mjs';

// Text contrast, as in 05-drafts-and-defects.
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

// Visible controls smaller than 44x44 CSS px (as in 05-drafts-and-defects), once animations end.
async function smallTargets(page) {
  return page.evaluate(async () => {
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

// Opens the actions menu of the confirmed message with this text, the way a mouse user does.
async function openMenu(page, text) {
  const m = await waitMessage(page, text);
  await m.first().hover();
  await m.first().getByRole('button', { name: /^Actions for/ }).click();
  const menu = page.getByRole('menu', { name: 'Message actions' });
  await menu.waitFor();
  return menu;
}

async function reactions(page, text) {
  return message(page, text)
    .first()
    .getByTestId('reaction')
    .evaluateAll((els) => els.map((e) => ({ emoji: e.dataset.emoji, count: Number(e.querySelector('.reaction__count').textContent), me: e.getAttribute('aria-pressed') === 'true' })));
}

describe('replies, reactions, edits, deletions, mentions, notices and direct messages', () => {
  let srv;
  let browser;
  let ana; // browser
  let ben; // browser
  const api = {}; // protocol clients by username
  const people = [];
  let slug;
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
    const { chat } = await api.ana.ok('chat.create', { title: 'Plans' });
    slug = chat.slug;
    await inviteAndAccept(api.ana, api.ben, slug);
    ana = await newPerson(browser, srv.url, { name: 'ana' });
    ben = await newPerson(browser, srv.url, { name: 'ben' });
    people.push(ana, ben);
    await logIn(ana.page, { username: 'ana' });
    await logIn(ben.page, { username: 'ben' });
    await openChat(ana.page, slug);
    await openChat(ben.page, slug);
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

  test('notices: joins and renames are lines of the timeline, live', async () => {
    await ben.page.getByTestId('notice').filter({ hasText: 'You joined' }).waitFor();
    await ana.page.getByTestId('notice').filter({ hasText: 'Ben Okafor joined' }).waitFor();
    await inviteAndAccept(api.ana, api.cytran, slug);
    await ben.page.getByTestId('notice').filter({ hasText: 'Cy Tran joined' }).waitFor();
    await api.ana.ok('chat.update', { chat: slug, title: 'Plans for Friday' });
    await ben.page.getByTestId('notice').filter({ hasText: 'Ana Lima renamed the chat to “Plans for Friday”' }).waitFor();
    await ana.page.getByTestId('notice').filter({ hasText: 'You renamed the chat to “Plans for Friday”' }).waitFor();
  });

  test('reply: from the menu, "Replying to" in the composer, the quote on both sides', async () => {
    await send(ana.page, 'Lunch at noon?');
    const menu = await openMenu(ben.page, 'Lunch at noon?');
    // Keyboard: the first item has focus, arrows move.
    assert.equal(await menu.getByRole('menuitem').first().evaluate((e) => e === document.activeElement), true);
    await screenshot(ben.page, 'desktop-message-menu.png');
    await menu.getByRole('menuitem', { name: 'Reply' }).click();
    const ctx = ben.page.getByTestId('composer-context');
    await ctx.filter({ hasText: 'Replying to Ana Lima' }).waitFor();
    // Cancel and come back: the cancel button takes the reply away.
    await ctx.getByRole('button', { name: 'Cancel reply' }).click();
    assert.equal(await ctx.count(), 0);
    await (await openMenu(ben.page, 'Lunch at noon?')).getByRole('menuitem', { name: 'Reply' }).click();
    await ctx.waitFor();
    assert.equal(await composer(ben.page).evaluate((e) => e === document.activeElement), true, 'the composer has focus');
    await composer(ben.page).fill('Noon works for me');
    await composer(ben.page).press('Enter');
    for (const p of [ana, ben]) {
      const reply = await waitMessage(p.page, 'Noon works for me');
      const quote = reply.first().getByTestId('reply-quote');
      await quote.filter({ hasText: 'Lunch at noon?' }).waitFor();
      assert.match(await quote.textContent(), p === ana ? /You/ : /Ana Lima/);
    }
    assert.equal(await ctx.count(), 0, 'the reply bar goes away after sending');
  });

  test('react: the picker, chips with counts that toggle, recent emoji remembered', async () => {
    const menu = await openMenu(ben.page, 'Lunch at noon?');
    await menu.getByRole('menuitem', { name: 'React…' }).click();
    const picker = ben.page.getByRole('dialog', { name: 'Pick a reaction' });
    await picker.waitFor();
    await screenshot(ben.page, 'desktop-emoji-picker.png');
    await picker.getByRole('button', { name: 'React with thumbs up' }).first().click();
    for (const p of [ana, ben]) {
      await until(async () => JSON.stringify(await reactions(p.page, 'Lunch at noon?')) === JSON.stringify([{ emoji: '👍', count: 1, me: p === ben }]), {
        message: `${p.name} sees 👍 1`,
      });
    }
    // Ana adds hers by clicking the chip; Ben takes his back the same way.
    await message(ana.page, 'Lunch at noon?').first().getByRole('button', { name: 'thumbs up: 1' }).click();
    await until(async () => (await reactions(ben.page, 'Lunch at noon?'))[0]?.count === 2, { message: 'Ben sees 👍 2' });
    await message(ben.page, 'Lunch at noon?').first().getByRole('button', { name: 'thumbs up: 2, including you' }).click();
    for (const p of [ana, ben]) {
      await until(async () => JSON.stringify(await reactions(p.page, 'Lunch at noon?')) === JSON.stringify([{ emoji: '👍', count: 1, me: p === ana }]), {
        message: `${p.name} sees 👍 1 (Ana's)`,
      });
    }
    // The picker now starts with what Ben used.
    await (await openMenu(ben.page, 'Lunch at noon?')).getByRole('menuitem', { name: 'React…' }).click();
    const recent = ben.page.getByRole('group', { name: 'Recently used' });
    await recent.getByRole('button', { name: 'React with thumbs up' }).waitFor();
    await ben.page.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached' });
  });

  test('react from the keyboard: arrows rove over the grid, Enter picks, Escape closes and returns focus', async () => {
    const where = () =>
      ben.page.evaluate(() => {
        const el = document.activeElement;
        return `${el?.closest('[role="group"]')?.getAttribute('aria-label')}:${el?.getAttribute('data-emoji')}`;
      });
    await (await openMenu(ben.page, 'Lunch at noon?')).getByRole('menuitem', { name: 'React…' }).click();
    const picker = ben.page.getByRole('dialog', { name: 'Pick a reaction' });
    await picker.waitFor();
    // The layout decides the rows: how many emoji the first row of "All reactions" holds.
    const all = await picker.getByRole('group', { name: 'All reactions' }).locator('button').evaluateAll((els) =>
      els.map((e) => ({ emoji: e.dataset.emoji, top: e.offsetTop })),
    );
    const cols = all.filter((e) => e.top === all[0].top).length;
    assert.ok(cols >= 3 && cols < all.length, `a grid of several rows (${cols} per row)`);
    assert.equal(await where(), 'Recently used:👍', 'focus starts on the first emoji');
    const tabStops = () => picker.locator('button[tabindex="0"]').count();
    assert.equal(await tabStops(), 1);
    await ben.page.keyboard.press('ArrowDown'); // from Recent into All
    assert.equal(await where(), `All reactions:${all[0].emoji}`);
    await ben.page.keyboard.press('ArrowRight');
    await ben.page.keyboard.press('ArrowRight');
    assert.equal(await where(), `All reactions:${all[2].emoji}`);
    await ben.page.keyboard.press('ArrowDown');
    assert.equal(await where(), `All reactions:${all[cols + 2].emoji}`, 'down one row, same column');
    await ben.page.keyboard.press('ArrowUp');
    await ben.page.keyboard.press('ArrowLeft');
    assert.equal(await where(), `All reactions:${all[1].emoji}`);
    assert.equal(await tabStops(), 1, 'still one tab stop: the focused emoji');
    assert.equal(await picker.locator('button[tabindex="0"]').getAttribute('data-emoji'), all[1].emoji);
    await ben.page.keyboard.press('End');
    assert.equal(await where(), `All reactions:${all.at(-1).emoji}`);
    await ben.page.keyboard.press('Home');
    await ben.page.keyboard.press('ArrowDown');
    await ben.page.keyboard.press('ArrowRight');
    await ben.page.keyboard.press('Enter'); // picks all[1]
    await picker.waitFor({ state: 'detached' });
    for (const p of [ana, ben]) {
      await until(async () => (await reactions(p.page, 'Lunch at noon?')).some((r) => r.emoji === all[1].emoji), { message: `${p.name} sees ${all[1].emoji}` });
    }
    // Escape closes the picker and gives focus back to the message's actions button.
    await (await openMenu(ben.page, 'Lunch at noon?')).getByRole('menuitem', { name: 'React…' }).click();
    await picker.waitFor();
    await ben.page.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached' });
    assert.equal(
      await ben.page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
      "Actions for Ana Lima's message",
    );
    // Take it back, so the later tests see the reactions they expect.
    await api.ben.ok('react', { chat: slug, seq: Number(await message(ben.page, 'Lunch at noon?').first().getAttribute('data-seq')), emoji: all[1].emoji, on: false });
    await until(async () => !(await reactions(ben.page, 'Lunch at noon?')).some((r) => r.emoji === all[1].emoji), { message: 'taken back' });
  });

  test('edit: Up arrow in the empty composer edits your last message; "(edited)" with the time', async () => {
    await send(ana.page, 'See you at 12');
    await waitMessage(ben.page, 'See you at 12');
    await composer(ana.page).click();
    await composer(ana.page).press('ArrowUp');
    await ana.page.getByTestId('composer-context').filter({ hasText: 'Editing message' }).waitFor();
    assert.equal(await composer(ana.page).inputValue(), 'See you at 12');
    await composer(ana.page).fill('See you at 12:30');
    await composer(ana.page).press('Enter');
    for (const p of [ana, ben]) {
      const m = await waitMessage(p.page, 'See you at 12:30');
      const edited = m.first().getByTestId('edited');
      await edited.waitFor();
      assert.match(await edited.getAttribute('title'), /^Edited /);
    }
    assert.equal(await ana.page.getByTestId('composer-context').count(), 0);
    assert.equal(await composer(ana.page).inputValue(), '', 'the draft is back (empty)');
    // Only your own messages can be edited.
    const menu = await openMenu(ben.page, 'See you at 12:30');
    assert.equal(await menu.getByRole('menuitem', { name: 'Edit' }).count(), 0);
    await ben.page.keyboard.press('Escape');
  });

  test('delete: a confirmation first (focus on Cancel), then "message deleted" on both sides', async () => {
    const menu = await openMenu(ben.page, 'Noon works for me');
    await menu.getByRole('menuitem', { name: 'Delete…' }).click();
    const dialog = ben.page.getByRole('alertdialog', { name: 'Delete this message?' });
    await dialog.waitFor();
    assert.equal(await dialog.getByRole('button', { name: 'Cancel' }).evaluate((e) => e === document.activeElement), true);
    await screenshot(ben.page, 'desktop-delete-confirm.png');
    // Escape keeps the message.
    await ben.page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await (await openMenu(ben.page, 'Noon works for me')).getByRole('menuitem', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    for (const p of [ana, ben]) {
      await until(async () => (await message(p.page, 'Noon works for me').count()) === 0, { message: `${p.name}: the body is gone` });
      await p.page.locator('[data-testid="message"][data-deleted="true"]').filter({ hasText: 'message deleted' }).first().waitFor();
    }
  });

  test('mention: "@" suggests participants (keyboard), the mention stands out for Ana', async () => {
    const box = composer(ben.page);
    await box.click();
    await box.pressSequentially('Ask @c');
    const list = ben.page.getByRole('listbox', { name: 'People to mention' });
    await list.getByRole('option', { name: /Cy Tran/ }).waitFor();
    await box.press('Escape');
    await list.waitFor({ state: 'detached' });
    await box.fill('');
    await box.pressSequentially('@a');
    await list.getByRole('option', { name: /Ana Lima/ }).waitFor();
    assert.equal(await list.getByRole('option', { name: /Ana Lima/ }).getAttribute('aria-selected'), 'true');
    assert.ok(await box.getAttribute('aria-activedescendant'), 'the box points at the active option');
    await screenshot(ben.page, 'desktop-mention-suggestions.png');
    await box.press('Enter');
    assert.equal(await box.inputValue(), '@ana ');
    await box.pressSequentially('can you book the table?');
    await box.press('Enter');
    const m = await waitMessage(ana.page, 'can you book the table?');
    await m.first().getByTestId('mention-me').filter({ hasText: '@ana' }).waitFor();
    assert.match(await m.first().getAttribute('class'), /msg--mentions-me/);
    // Ben sees the name marked as a mention, not as his own.
    const mb = await waitMessage(ben.page, 'can you book the table?');
    await mb.first().getByTestId('mention').waitFor();
    await screenshot(ana.page, 'desktop-room-issue17.png');
    // Notices, the reply quote, "message deleted", "(edited)", chips and mentions are all readable.
    await assertContrast(ana.page, 'room with every kind of entry');
    await assertContrast(ben.page, 'the same room, as Ben');
  });

  test("a reply's quote scrolls to the original, loading older history", async () => {
    const { msg: original } = await api.ana.ok('msg.send', { chat: slug, body: 'The very first plan', clientMsgId: 'orig-1' });
    for (let i = 1; i <= 70; i++) await api.ana.ok('msg.send', { chat: slug, body: `filler ${i}`, clientMsgId: `fill-${i}` });
    await api.ana.ok('msg.send', { chat: slug, body: 'Back to the first plan', clientMsgId: 'back-1', replyTo: original.seq });
    await openChat(ben.page, slug);
    const reply = await waitMessage(ben.page, 'Back to the first plan');
    await reply.first().getByTestId('reply-quote').filter({ hasText: 'The very first plan' }).waitFor();
    // (The reply's quote has the original's text too: find the original by its seq.)
    const orig = ben.page.locator(`[data-testid="message"][data-seq="${original.seq}"]`);
    assert.equal(await orig.count(), 0, 'the original is not loaded yet');
    await reply.first().getByTestId('reply-quote').click();
    await orig.waitFor();
    await until(
      async () => {
        const box = await orig.first().boundingBox();
        const vp = ben.page.viewportSize();
        return box && box.y >= 0 && box.y + box.height <= vp.height;
      },
      { message: 'the original in view' },
    );
    assert.match(await orig.first().getAttribute('class'), /msg--flash/);
  });

  test('"Message" in the people panel opens the direct messages, titled by the other person', async () => {
    const panel = ben.page.getByRole('complementary', { name: 'People' });
    await panel.getByRole('button', { name: 'Message Ana Lima' }).click();
    await ben.page.waitForURL((u) => !u.pathname.endsWith(`/chat/${slug}`));
    await roomReady(ben.page);
    await ben.page.getByTestId('room-title').filter({ hasText: 'Ana Lima' }).waitFor();
    const dmSlug = decodeURIComponent(new URL(ben.page.url()).pathname.split('/')[2]);
    await send(ben.page, 'Just between us');
    await waitMessage(ben.page, 'Just between us');
    // Ana's list shows it as a DM titled "Ben Okafor"; she opens it and answers.
    const row = ana.page.locator(`.chat-row[data-slug="${dmSlug}"]`);
    await row.filter({ hasText: 'Ben Okafor' }).waitFor();
    assert.equal(await row.getAttribute('data-kind'), 'dm');
    await screenshot(ana.page, 'desktop-dm-in-list.png');
    await row.click();
    await roomReady(ana.page);
    await waitMessage(ana.page, 'Just between us');
    await send(ana.page, 'Sure');
    await waitMessage(ben.page, 'Sure');
    // The same chat from Ana's side: her people panel has no "Message" buttons in a DM.
    assert.equal(await ana.page.getByRole('complementary', { name: 'People' }).getByRole('button', { name: /^Message / }).count(), 0);
    // From the settings page's participants too: back to the same DM.
    await openChat(ana.page, slug);
    await ana.page.getByRole('link', { name: 'Chat settings' }).click();
    await ana.page.getByTestId('participants').getByRole('button', { name: 'Message Ben Okafor' }).click();
    await ana.page.waitForURL(`**/chat/${encodeURIComponent(dmSlug)}`);
    // A DM's settings offer no leaving, inviting or roles: nobody joins, leaves or is promoted.
    await roomReady(ana.page);
    await ana.page.getByRole('link', { name: 'Chat settings' }).click();
    const people = ana.page.getByTestId('participants');
    await people.getByText('Ben Okafor').waitFor();
    await ana.page.getByRole('group', { name: 'Notify me about' }).waitFor(); // the page is complete
    for (const name of [/^Leave chat$/, /Invite/]) {
      assert.equal(await ana.page.getByRole('button', { name }).count(), 0, `no ${name} button`);
    }
    assert.equal(await ana.page.getByRole('heading', { name: /Leave chat|Pending invitations/ }).count(), 0);
    assert.equal(await ana.page.getByLabel('Who can invite').count(), 0);
    assert.equal(await people.getByRole('combobox').count(), 0, 'no role menus');
    assert.equal(await people.getByTestId('role').count(), 0, 'no role badges');
    await ana.page.getByText('Only the two of you can open this link.').waitFor();
    assert.equal(await people.getByRole('button', { name: /^Remove/ }).count(), 0);
    await screenshot(ana.page, 'desktop-dm-settings.png');
  });

  test('at phone size: a tap opens the menu as a sheet, 44 px targets, no overflow', async () => {
    const phone = await newPerson(browser, srv.url, { name: 'ben-phone', viewport: PHONE });
    people.push(phone);
    await logIn(phone.page, { username: 'ben' });
    await openChat(phone.page, slug);
    await openChat(ana.page, slug);
    const m = await waitMessage(phone.page, 'Back to the first plan');
    await m.first().scrollIntoViewIfNeeded();
    assert.deepEqual(await smallTargets(phone.page), [], 'room');
    await assertNoHorizontalOverflow(phone.page);
    await screenshot(phone.page, 'phone-room-issue17.png');
    await m.first().locator('.msg__bubble').tap();
    const menu = phone.page.getByRole('menu', { name: 'Message actions' });
    await menu.waitFor();
    assert.deepEqual(await smallTargets(phone.page), [], 'menu');
    await screenshot(phone.page, 'phone-message-menu.png');
    await menu.getByRole('menuitem', { name: 'React…' }).tap();
    const picker = phone.page.getByRole('dialog', { name: 'Pick a reaction' });
    await picker.waitFor();
    assert.deepEqual(await smallTargets(phone.page), [], 'picker');
    await assertNoHorizontalOverflow(phone.page);
    await screenshot(phone.page, 'phone-emoji-picker.png');
    await picker.getByRole('button', { name: 'React with party' }).first().tap();
    await until(async () => (await reactions(ana.page, 'Back to the first plan')).some((r) => r.emoji === '🎉'), { message: 'Ana sees 🎉' });
    // Reply from the phone.
    await m.first().locator('.msg__bubble').tap();
    await menu.getByRole('menuitem', { name: 'Reply' }).tap();
    await phone.page.getByTestId('composer-context').waitFor();
    assert.deepEqual(await smallTargets(phone.page), [], 'reply bar');
    await screenshot(phone.page, 'phone-replying.png');
    await phone.context.close();
  });

  test('no errors in any page console', () => {
    assert.deepEqual(
      people.flatMap((p) => p.errors),
      [],
    );
  });
});
