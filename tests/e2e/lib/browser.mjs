// Browser side of the e2e tests: Debian's chromium driven by playwright-core (no browser is ever
// downloaded), one browser per test file and one context per simulated person, so each has its
// own cookie jar (session) like a separate device.
import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from './server.mjs';

export const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'tests/artifacts');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// A new person: a browser context with its own cookies, viewport and clock-stable locale.
// Console errors and page errors are collected so a test can assert there were none.
export async function newPerson(browser, baseURL, { viewport = DESKTOP, name = 'person' } = {}) {
  const context = await browser.newContext({
    baseURL,
    viewport,
    locale: 'en-GB',
    timezoneId: 'UTC',
    deviceScaleFactor: 1,
    isMobile: viewport.width < 500,
    hasTouch: viewport.width < 500,
  });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors = [];
  const watch = (p) => {
    p.on('pageerror', (e) => errors.push(`[${name}] pageerror: ${e.message}`));
    p.on('console', (m) => {
      if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) {
        errors.push(`[${name}] console: ${m.text()}`);
      }
    });
  };
  watch(page);
  context.on('page', watch);
  return { context, page, errors, name };
}

export async function screenshot(page, file) {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  const out = path.join(ARTIFACTS, file);
  await page.screenshot({ path: out, animations: 'disabled', caret: 'hide' });
  return out;
}

// After a failed test: a screenshot of every open page of these people, to see what they saw.
export async function failureArtifacts(testName, people) {
  const slug = testName.replace(/[^a-z0-9]+/gi, '-').slice(0, 50);
  for (const p of people) {
    if (!p?.page || p.page.isClosed()) continue;
    try {
      const file = await screenshot(p.page, `failure-${slug}-${p.name}.png`);
      console.error(`  screenshot of ${p.name}'s page (${p.page.url()}): ${file}`);
    } catch {
      // the page may be gone
    }
  }
}
