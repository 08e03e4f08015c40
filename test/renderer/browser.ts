/**
 * Debian's Chromium driven by playwright-core, for the UI tests: headless, sandbox off (CI runs
 * as root), a fresh profile each launch (playwright's own temporary one), light theme, fixed 1280×800 viewport, UTC. Collects
 * page errors and Content-Security-Policy reports so a test can assert there were none.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** Paints over temporary paths in screenshots, so the images do not change from run to run. */
export const MASK_COLOR = '#e4e7ec';

export interface UiBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors, console errors and CSP violations, as text. */
  problems: string[];
  close(): Promise<void>;
}

export async function openBrowser(): Promise<UiBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    timezoneId: 'UTC',
    locale: 'en-GB',
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) {
      problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
    }
  });
  return {
    browser,
    context,
    page,
    problems,
    close: () => browser.close().catch(() => undefined),
  };
}
