// A real headless browser for the report page tests: Debian's Chromium driven by puppeteer-core
// (which downloads no browser). Missing Chromium fails the test with the command that installs it.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.TREND_CHROMIUM || '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: the report page tests open index.html in a headless browser. ` +
        'Install it with `apt-get install -y chromium` (Debian; .ci/run does), or set TREND_CHROMIUM to a Chromium or Chrome binary.',
    );
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

export interface OpenedPage {
  page: Page;
  /** Console errors and warnings, uncaught exceptions and failed requests, as they came. */
  problems: string[];
  /** Every URL the page requested. */
  requests: string[];
}

/** Opens a file and waits until its script has drawn every chart (or said it could not). */
export async function openPage(browser: Browser, file: string): Promise<OpenedPage> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${(e as Error).message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-charts]', { timeout: 60_000 });
  return { page, problems, requests };
}

/**
 * Moves the mouse onto the first element matching `selector` (scrolled into view) and returns the
 * tooltip's rows as field → value, or null when no tooltip shows.
 */
export async function hover(page: Page, selector: string): Promise<Record<string, string> | null> {
  const box = await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    el.scrollIntoView({ block: 'center' });
    const r = el.getBoundingClientRect();
    return { x: r.x + Math.min(6, r.width / 2), y: r.y + Math.min(6, r.height / 2) };
  }, selector);
  if (!box) throw new Error(`nothing matches ${selector}`);
  // Off every mark first, so that the tooltip read below is this element's.
  await page.mouse.move(1, 1);
  await page.waitForFunction(() => document.getElementById('trend-tooltip')!.hidden, { timeout: 5_000 });
  await page.mouse.move(box.x, box.y);
  await page.waitForFunction(() => !document.getElementById('trend-tooltip')!.hidden, { timeout: 5_000 }).catch(() => undefined);
  return page.evaluate(() => {
    const tip = document.getElementById('trend-tooltip')!;
    if (tip.hidden) return null;
    return Object.fromEntries(Array.from(tip.querySelectorAll('tr')).map((r) => [r.cells[0]!.textContent!, r.cells[1]!.textContent!]));
  });
}
