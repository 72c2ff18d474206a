/**
 * What the browser tests share: Debian's Chromium (or CHROMIUM_PATH) launched through playwright-core, started beside
 * the local runtime, and a demo page signed in through its sign-in screen. Without Chromium the suites fail, they are
 * never skipped.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Starts the runtime (`start`) and Chromium at once. `keep` gets whichever started, even when the other failed, so the
 * file's afterAll stops it; then the first failure is thrown. (A missing Chromium is a rejection, not a throw: a throw
 * left the started runtime running past the file, and its timers failed the next test files of that Jest worker.)
 */
export async function startWithChromium<R>(
  start: () => Promise<R>,
  keep: (runtime: R | undefined, browser: Browser | undefined) => void,
): Promise<void> {
  const [started, launched] = await Promise.allSettled([start(), launchChromium()]);
  keep(
    started.status === 'fulfilled' ? started.value : undefined,
    launched.status === 'fulfilled' ? launched.value : undefined,
  );
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium not found at ${chromiumPath}: the browser tests need it (Debian: apt-get install chromium; or set CHROMIUM_PATH)`,
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * A demo page at `url` in its own browser context, signed in as `identity` (`tenant:user:roles`) through the sign-in
 * screen, connected, with its `entity` rows listed (each within `timeoutMs`). Page errors are pushed to `pageErrors`.
 */
export async function signedInPage(
  browser: Browser,
  url: string,
  identity: string,
  pageErrors: string[],
  entities: string | readonly string[] = 'task',
  timeoutMs = 10_000,
): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 820 } });
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  page.on('pageerror', (err) => pageErrors.push(`${identity}: ${err.message}`));
  await page.goto(`${url}/`);
  await page.click(`[data-identity="${identity}"]`);
  await page.waitForSelector('#connection[data-state="connected"]', { timeout: timeoutMs });
  // Each table the test reads is loaded separately: wait for the rows of every one it names.
  for (const entity of typeof entities === 'string' ? [entities] : entities) {
    await page.waitForSelector(`section[data-entity="${entity}"] tbody tr[data-key]`, { timeout: timeoutMs });
  }
  return page;
}
