// A big chat's people panel loads its participants a page at a time (issue 15): chat.get with a
// limit gives the first 200 (by user id), "Show more people" asks chat.members for the next page.
// The members beyond the two real users are made in SQL while the server is stopped, as in
// tests/integration/48-big-chat.test.mjs.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startServer } from './lib/server.mjs';
import { failureArtifacts, launchBrowser, newPerson } from './lib/browser.mjs';
import { logIn, openChat, until } from './lib/ui.mjs';
import { connect, signup } from '../integration/lib/client.mjs';

const FILLERS = 250;

describe('a big chat in the browser', () => {
  let srv;
  let browser;
  let ben;
  let slug;
  let mark = 0;

  before(async () => {
    srv = await startServer();
    const ana = await signup(srv, 'ana', undefined, 'Ana Lima');
    const b = await signup(srv, 'ben', undefined, 'Ben Okafor');
    const ac = await connect(srv, { token: ana.token });
    const bc = await connect(srv, { token: b.token });
    ({ chat: { slug } } = await ac.ok('chat.create', { title: 'Everyone', isPublic: true }));
    await bc.ok('chat.join', { chat: slug });
    await Promise.all([ac.close(), bc.close()]);
    await srv.stop();
    await srv.sql(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${FILLERS}) ` +
        `INSERT INTO users (username, display_name, pwhash, created_at) SELECT 'fill' || i, 'Filler ' || i, 'x', 0 FROM n;` +
        `INSERT INTO participants (chat_id, user_id, role, joined_at) ` +
        `SELECT c.id, u.id, 'member', 0 FROM chats c, users u WHERE c.slug = '${slug}' AND u.username LIKE 'fill%';`,
    );
    await srv.start();
    browser = await launchBrowser();
    ben = await newPerson(browser, srv.url, { name: 'ben' });
    await logIn(ben.page, { username: 'ben' });
  });

  afterEach(async (t) => {
    const log = srv.since(mark);
    mark = srv.mark();
    if (!t.passed) {
      await failureArtifacts(t.name, [ben].filter(Boolean));
      console.error(`server log during "${t.name}":\n${srv.tail(80, log)}`);
    }
  });

  after(async () => {
    await browser?.close();
    await srv?.dispose();
  });

  test('the people panel shows the first page, and the rest on "Show more people"', async () => {
    const total = FILLERS + 2;
    await openChat(ben.page, slug);
    const people = ben.page.locator('#room-people');
    const items = people.locator('.presence-item');
    const more = people.getByRole('button', { name: /Show more people/ });
    await more.waitFor();
    assert.equal(await items.count(), 200, 'the first page');
    assert.match(await more.textContent(), new RegExp(`200 of ${total}`));
    // ben himself is in the first page (ids by signup: the two real users come first).
    await people.locator('.presence-item[data-user="ben"]').waitFor();
    await more.click();
    await until(async () => (await items.count()) === total, { message: `${total} people listed` });
    assert.equal(await more.count(), 0, 'no more to load');
    await people.locator(`.presence-item[data-user="fill${FILLERS}"]`).waitFor();
  });
});
