// The web app's text helpers (web/src/lib/format.ts): typing lines, "last seen", day labels.
// The TypeScript module is compiled with the web app's own Vite (transformWithOxc) and imported
// here, so these run in Node without a browser.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { before, describe, test } from 'node:test';
import { ROOT } from './lib/server.mjs';

let f;

before(async () => {
  const require = createRequire(path.join(ROOT, 'web/package.json'));
  const vite = await import(pathToFileURL(require.resolve('vite')).href);
  const file = path.join(ROOT, 'web/src/lib/format.ts');
  const { code } = await vite.transformWithOxc(await fs.readFile(file, 'utf8'), file, { lang: 'ts' });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-format-'));
  const out = path.join(dir, 'format.mjs');
  await fs.writeFile(out, code);
  f = await import(pathToFileURL(out).href);
  await fs.rm(dir, { recursive: true, force: true });
});

const u = (displayName) => ({ username: displayName.toLowerCase(), displayName });

describe('typingText', () => {
  test('nobody, one, two, three typers', () => {
    assert.equal(f.typingText([]), '');
    assert.equal(f.typingText([u('Ana')]), 'Ana is typing…');
    assert.equal(f.typingText([u('Ana'), u('Ben')]), 'Ana and Ben are typing…');
    assert.equal(f.typingText([u('Ana'), u('Ben'), u('Cy')]), 'Ana, Ben and Cy are typing…');
  });
  test('many typers name two and count the rest, including the ones the server did not list', () => {
    const five = ['Ana', 'Ben', 'Cy', 'Dee', 'Eli'].map(u);
    assert.equal(f.typingText(five.slice(0, 4)), 'Ana, Ben and 2 others are typing…');
    assert.equal(f.typingText(five), 'Ana, Ben and 3 others are typing…');
    assert.equal(f.typingText(five, 4), 'Ana, Ben and 7 others are typing…');
    assert.equal(f.typingText([u('Ana')], 1), 'Ana and 1 other are typing…');
    assert.equal(f.typingText([], 3), '3 people are typing…');
  });
  test('falls back to the username without a display name', () => {
    assert.equal(f.typingText([{ username: 'ana', displayName: '' }]), 'ana is typing…');
  });
});

describe('times', () => {
  const now = new Date(2026, 2, 18, 15, 30).getTime(); // a Wednesday, local time
  test('lastSeenText', () => {
    assert.equal(f.lastSeenText(now - 20_000, now), 'last seen just now');
    assert.equal(f.lastSeenText(now - 5 * 60_000, now), 'last seen 5 min ago');
    assert.equal(f.lastSeenText(now - 3 * 3600_000, now), 'last seen 3 h ago');
    assert.equal(f.lastSeenText(now - 30 * 3600_000, now), 'last seen yesterday');
    assert.equal(f.lastSeenText(now - 3 * 86400_000, now), 'last seen 3 days ago');
    assert.equal(f.lastSeenText(null, now), 'offline');
  });
  test('dayLabel and dayKey for day separators', () => {
    assert.equal(f.dayLabel(now - 60_000, now), 'Today');
    assert.equal(f.dayLabel(new Date(2026, 2, 17, 23, 59).getTime(), now), 'Yesterday');
    assert.equal(f.dayLabel(new Date(2026, 2, 15, 9).getTime(), now), new Date(2026, 2, 15).toLocaleDateString(undefined, { weekday: 'long' }));
    assert.notEqual(f.dayKey(new Date(2026, 2, 17, 23, 59).getTime()), f.dayKey(new Date(2026, 2, 18, 0, 1).getTime()));
    assert.equal(f.dayKey(new Date(2026, 2, 18, 0, 1).getTime()), f.dayKey(now));
  });
  test('expiresText', () => {
    assert.equal(f.expiresText(now + 7 * 86400_000, now), 'expires in 7 days');
    assert.equal(f.expiresText(now + 90 * 60_000, now), 'expires in 2 h');
    assert.equal(f.expiresText(now - 1, now), 'expired');
  });
});

describe('errorText', () => {
  test('server codes read as sentences', () => {
    assert.match(f.errorText({ code: 'chat_full' }), /full/);
    assert.match(f.errorText({ code: 'expired' }), /expired/);
    assert.match(f.errorText({ code: 'forbidden' }), /permission/);
    assert.equal(f.errorText({ code: 'conflict', message: 'slug taken' }), 'Slug taken');
  });
});

describe('names and initials (code points, never UTF-16 halves)', () => {
  test('codePointLength counts an emoji as one character, as the server does', () => {
    assert.equal(f.codePointLength('Ana'), 3);
    assert.equal(f.codePointLength('🦊 Fox'), 5);
    assert.equal('🦊 Fox'.length, 6); // what a maxlength attribute would count
    assert.equal(f.codePointLength('🦊'.repeat(64)), 64);
    assert.equal(f.DISPLAY_NAME_MAX, 64);
  });
  test('initials take whole characters: "🦊 Fox" is "🦊F", not half a surrogate pair', () => {
    assert.equal(f.initials('🦊 Fox'), '🦊F');
    assert.equal(f.initials('Ana Lima'), 'AL');
    assert.equal(f.initials('ana'), 'AN');
    assert.equal(f.initials('🦊'), '🦊');
    assert.equal(f.initials('🦊🐻'), '🦊🐻');
    assert.equal(f.initials('  '), '?');
    // A family emoji is one grapheme of several code points: kept whole.
    assert.equal(f.initials('👨‍👩‍👧 Home'), '👨‍👩‍👧H');
    assert.ok(!f.initials('🦊 Fox').includes('\uFFFD'));
  });
  test('without Intl.Segmenter, graphemes fall back to code points', () => {
    const seg = Intl.Segmenter;
    try {
      delete Intl.Segmenter;
      assert.deepEqual(f.graphemes('🦊x'), ['🦊', 'x']);
      assert.equal(f.initials('🦊 Fox'), '🦊F');
    } finally {
      Intl.Segmenter = seg;
    }
  });
  test('fullName shows the username next to the display name', () => {
    assert.equal(f.fullName({ username: 'ana', displayName: 'Ana' }), 'Ana (@ana)');
    assert.equal(f.fullName({ username: 'ana', displayName: '' }), 'ana (@ana)');
  });
  test('makeNamer adds the username only where two people show the same name', () => {
    const ana = { id: 1, username: 'ana', displayName: 'Ana' };
    const fake = { id: 2, username: 'not_ana', displayName: 'ana ' };
    const ben = { id: 3, username: 'ben', displayName: 'Ben' };
    const nameOf = f.makeNamer([ana, fake, ben, ana]);
    assert.equal(nameOf(ana), 'Ana (@ana)');
    assert.equal(nameOf(fake), 'ana  (@not_ana)');
    assert.equal(nameOf(ben), 'Ben');
    // One person listed twice (participant and author) is no collision.
    assert.equal(f.makeNamer([ana, ana, ben])(ana), 'Ana');
    // Full-width letters fold to the same name (NFKC).
    assert.equal(f.makeNamer([ana, { id: 4, username: 'wide', displayName: 'Ａｎａ' }])(ana), 'Ana (@ana)');
  });
  test('plural rules: "1 participant", "2 participants", "Try again in 1 second"', () => {
    assert.equal(f.count(1, 'participant', 'participants'), '1 participant');
    assert.equal(f.count(0, 'participant', 'participants'), '0 participants');
    assert.equal(f.count(2, 'participant', 'participants'), '2 participants');
    assert.equal(f.retryText(1000), 'Try again in 1 second.');
    assert.equal(f.retryText(1), 'Try again in 1 second.');
    assert.equal(f.retryText(30_000), 'Try again in 30 seconds.');
    assert.equal(f.retryText(null), 'Try again in a few seconds.');
    assert.equal(f.expiresText(Date.now() + 36 * 3600_000 + 1000), 'expires in 2 days');
    assert.equal(f.typingText([{ username: 'a', displayName: 'Ana' }], 1), 'Ana and 1 other are typing…');
  });
});

// The web app's copy of src/core/text.c's rules (and its unit tests' cases).
describe('text rules, as the server checks names, titles and bodies', () => {
  test('names are counted in code points: an emoji is one character', () => {
    const fox = '🦊'.repeat(100);
    assert.equal(fox.length, 200, 'UTF-16 units, which maxLength counted');
    assert.equal(f.codePointLength(fox), 100);
    assert.equal(f.nameProblem(fox, f.TITLE_MAX), null);
    assert.equal(f.nameProblem(fox + '🦊', f.TITLE_MAX), 'too_long');
    assert.equal(f.nameProblem('a'.repeat(64), f.DISPLAY_NAME_MAX), null);
    assert.equal(f.nameProblem('a'.repeat(65), f.DISPLAY_NAME_MAX), 'too_long');
  });
  test('a name needs a visible character', () => {
    for (const blank of ['', ' ', '\u3000', '\u00a0', '\u200b', '\u2060\ufeff', '\u3164', '\u2800', '\u115f', ' \u061c '])
      assert.equal(f.nameProblem(blank, 64), 'blank', JSON.stringify(blank));
    assert.equal(f.nameProblem('\u200bAna', 64), null);
    assert.equal(f.nameProblem('\u{50000}', 64), null, 'unassigned counts as visible');
  });
  test('names refuse bidi controls and control characters', () => {
    for (const c of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]) {
      assert.equal(f.isBidiControl(c), true);
      assert.equal(f.nameProblem(`evil${String.fromCodePoint(c)}gnp.exe`, 64), 'bidi', c.toString(16));
    }
    assert.equal(f.isBidiControl(0x2029), false);
    assert.equal(f.isBidiControl(0x206a), false);
    for (const c of ['\t', '\n', '\x7f', '\x85', '\u2028', '\u2029'])
      assert.equal(f.nameProblem(`a${c}b`, 64), 'control', JSON.stringify(c));
    // Right-to-left text itself is fine, as is the RLM mark (a format character, not a control).
    assert.equal(f.nameProblem('שלום', 64), null);
    assert.equal(f.nameProblem('a\u200fb', 64), null);
  });
  test('bodies: a visible character is enough; bidi controls and line breaks are allowed', () => {
    assert.equal(f.hasVisible('hi'), true);
    assert.equal(f.hasVisible('\u202ehi\u202c\n'), true);
    for (const blank of ['', ' \n\t', '\u200b\u200b', '\u3000', '\u2800'])
      assert.equal(f.hasVisible(blank), false, JSON.stringify(blank));
  });
  test('the messages a form shows', () => {
    assert.equal(f.nameProblemText('too_long', 'Titles', 100), 'Titles are at most 100 characters.');
    assert.equal(f.nameProblemText('blank', 'Display names', 64), 'Display names need at least one visible character.');
    assert.match(f.nameProblemText('bidi', 'Titles', 100), /text-direction/);
  });
  test('signup limit: minutes, plural-correct, rounded up', () => {
    assert.equal(f.signupLimitText(60_000), 'Too many sign-ups from this network; try again in 1 minute.');
    assert.equal(f.signupLimitText(1000), 'Too many sign-ups from this network; try again in 1 minute.');
    assert.equal(f.signupLimitText(61_000), 'Too many sign-ups from this network; try again in 2 minutes.');
    assert.equal(f.signupLimitText(3600_000), 'Too many sign-ups from this network; try again in 60 minutes.');
    assert.equal(f.signupLimitText(undefined), 'Too many sign-ups from this network; try again later.');
  });
});
