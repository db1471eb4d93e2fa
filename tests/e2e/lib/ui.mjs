// What a person does in the web app, as reusable steps, and polling waits. Every wait is on UI
// state (a locator appearing, an attribute changing), never a fixed sleep.
import assert from 'node:assert/strict';

export const PASSWORD = 'correct horse battery';

// Polls fn until it returns a truthy value; fails with `message` (and the last value) after
// `timeout` ms.
export async function until(fn, { timeout = 10_000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export async function signUp(page, { username, displayName, password = PASSWORD }) {
  await page.goto('/signup');
  await page.getByLabel('Username').fill(username);
  if (displayName) await page.getByLabel('Display name').fill(displayName);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/chat');
  await page.getByRole('navigation', { name: 'Chats' }).waitFor();
}

export async function logIn(page, { username, password = PASSWORD }) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL('**/chat');
}

// Creates a chat through "New chat"; returns its slug (from the URL the app navigates to).
export async function createChat(page, title, { cap, isPublic } = {}) {
  await page.getByRole('button', { name: 'New chat' }).click();
  const dialog = page.getByRole('dialog', { name: 'New chat' });
  await dialog.getByLabel('Title').fill(title);
  if (cap) await dialog.getByLabel('Participant limit').fill(String(cap));
  if (isPublic) await dialog.getByLabel(/Public chat/).check();
  await dialog.getByRole('button', { name: 'Create chat' }).click();
  await page.waitForURL(/\/chat\/[^/]+$/);
  await roomReady(page);
  return decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
}

export function composer(page) {
  return page.getByRole('textbox', { name: 'Message' });
}

// Waits until the room can be used: title shown and the composer enabled.
export async function roomReady(page) {
  await page.getByTestId('room-title').waitFor();
  await until(async () => composer(page).isEnabled(), { message: 'the composer to be enabled' });
}

export async function openChat(page, slug) {
  await page.goto(`/chat/${encodeURIComponent(slug)}`);
  await roomReady(page);
}

export async function send(page, text) {
  const box = composer(page);
  await box.click();
  await box.fill(text);
  await box.press('Enter');
}

export function message(page, text) {
  return page.getByTestId('message').filter({ hasText: text });
}

// Waits for a confirmed (seq-carrying) message with this text; returns its locator.
export async function waitMessage(page, text, { timeout = 10_000 } = {}) {
  const m = message(page, text).and(page.locator('[data-status="sent"]'));
  await m.first().waitFor({ timeout });
  return m;
}

// Bodies of every message in the room, in order, with their seq and status.
export async function messageList(page) {
  return page.getByTestId('message').evaluateAll((els) =>
    els.map((e) => ({
      seq: e.getAttribute('data-seq'),
      status: e.getAttribute('data-status'),
      own: e.getAttribute('data-own') === 'true',
      body: e.querySelector('[data-testid="message-body"]')?.textContent ?? '',
    })),
  );
}

// Presence state shown for `username` in the room's people list.
export async function presenceOf(page, username) {
  return page.locator(`.presence-item[data-user="${username}"]`).getAttribute('data-presence');
}

export async function waitPresence(page, username, state, opts = {}) {
  await page.locator(`.presence-item[data-user="${username}"][data-presence="${state}"]`).waitFor(opts);
}

export async function typingText(page) {
  return (await page.getByTestId('typing').textContent())?.trim() ?? '';
}

export async function connectionBanner(page) {
  const b = page.getByTestId('connection-banner');
  return (await b.count()) ? b.getAttribute('data-state') : null;
}

// The page has no horizontal scrolling: nothing is wider than the viewport.
export async function assertNoHorizontalOverflow(page) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `page is ${scroll}px wide in a ${width}px viewport`);
}

// The element is entirely inside the viewport.
export async function assertInViewport(page, locator, what) {
  const box = await locator.boundingBox();
  const vp = page.viewportSize();
  assert.ok(box, `${what} is not rendered`);
  assert.ok(
    box.x >= 0 && box.y >= 0 && box.x + box.width <= vp.width + 0.5 && box.y + box.height <= vp.height + 0.5,
    `${what} is outside the ${vp.width}x${vp.height} viewport: ${JSON.stringify(box)}`,
  );
}
