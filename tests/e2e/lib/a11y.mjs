// Accessibility measurements shared by the browser tests: text contrast (WCAG 1.4.3, 4.5:1) from
// computed colours, and touch targets (44x44 CSS px) of every visible control.
import assert from 'node:assert/strict';

function luminance([r, g, b]) {
  const f = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}
export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

// Every visible element with its own text: its colour and the colour behind it (the first
// ancestor background that is not transparent, alpha blended). Disabled controls are exempt.
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
      out.push({ text: el.textContent.trim().slice(0, 40), cls: String(el.className), fg: blend(fg, bg), bg });
    }
    return out;
  });
}

export async function assertContrast(page, where) {
  const items = await textColours(page);
  assert.ok(items.length > 5, `${where}: found text to check`);
  const low = items.map((i) => ({ ...i, ratio: Math.round(contrast(i.fg, i.bg) * 100) / 100 })).filter((i) => i.ratio < 4.5);
  assert.deepEqual(low, [], `${where}: text under 4.5:1`);
}

// Visible controls smaller than 44x44 CSS px, measured once animations settle.
export async function smallTargets(page) {
  return page.evaluate(async () => {
    await Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => {})),
    );
    const out = [];
    for (const el of document.querySelectorAll('button, a.btn, a.chat-row, a.sidebar__profile, label.btn, [role="button"], select, input[type="radio"]')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || el.closest('.visually-hidden')) continue;
      // A radio is reached through its whole label row.
      const box = el.matches('input[type="radio"]') ? el.closest('label').getBoundingClientRect() : r;
      if (box.width < 44 || box.height < 44) out.push({ what: el.getAttribute('aria-label') || el.textContent.trim().slice(0, 30) || el.outerHTML.slice(0, 60), w: box.width, h: box.height });
    }
    return out;
  });
}

// Text fields under 16 px (iOS Safari zooms into them).
export async function smallFields(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('input:not([type="hidden"]):not([type="checkbox"]):not([type="radio"]):not([type="file"]), textarea, select')]
      .filter((e) => e.getBoundingClientRect().width > 0)
      .map((e) => ({ id: e.id, size: parseFloat(getComputedStyle(e).fontSize) }))
      .filter((f) => f.size < 16),
  );
}
