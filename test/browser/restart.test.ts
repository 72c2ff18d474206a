/**
 * `npm start` restarted under open demo pages (issue #13): the stack comes back on the same port without its data
 * directory, so with a new signing key (the pages' cached tokens are refused) and freshly seeded data (what was
 * written before is gone). Both pages must get back to `connected` and show what the API shows, by themselves,
 * within 10 s of the new stack being ready; and so must a page loaded while the stack is still starting (its
 * requests get 503 until then).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import type { LocalRuntime } from '../../local/runtime.ts';
import { runTenantsCli } from '../../scripts/tenants-cli.ts';
import { httpApi, jsonOf, STARTUP_TIMEOUT_MS, startQuietRuntime, tokenFor } from '../support/local-stack.ts';
import { signedInPage, startWithChromium } from './support.ts';

let runtime: LocalRuntime | undefined;
let browser: Browser | undefined;
/** A page of tenant hooli, onboarded while the page waited (the first test); the restart forgets hooli. */
let hooli: Page | undefined;
const pageErrors: string[] = [];

const dir = mkdtempSync(join(tmpdir(), 'tenantcast-restart-'));
const endpointsFile = join(dir, 'endpoints.json');
const start = (port = 0) => startQuietRuntime({ port, sqsRetryDelaySeconds: 0, schedules: false, endpointsFile });

beforeAll(async () => {
  await startWithChromium(start, (started, launched) => {
    runtime = started;
    browser = launched;
  });
}, STARTUP_TIMEOUT_MS);

afterAll(async () => {
  await browser?.close();
  await runtime?.stop();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

function current(): LocalRuntime {
  if (runtime === undefined) throw new Error('the local runtime is not running');
  return runtime;
}

/** The task titles the API lists for an acme admin, sorted. */
async function apiTitles(rt: LocalRuntime): Promise<string[]> {
  const answer = await httpApi(rt, tokenFor(rt, 'acme', 'ada', ['admin']), 'GET', '/v1/entities/task?limit=500');
  expect({ status: answer.status, text: answer.status === 200 ? '' : answer.text }).toEqual({ status: 200, text: '' });
  return jsonOf<{ items: { title: string }[] }>(answer)
    .items.map((t) => t.title)
    .sort();
}

/** A task the API lists for an acme admin other than `not`: a seeded one, whose key is the same after a restart. */
async function seededTask(rt: LocalRuntime, not: string): Promise<{ id: string; title: string }> {
  const answer = await httpApi(rt, tokenFor(rt, 'acme', 'ada', ['admin']), 'GET', '/v1/entities/task?limit=500');
  const items = jsonOf<{ items: { id: string; title: string }[] }>(answer).items;
  return items.find((t) => t.id !== not) as { id: string; title: string };
}

/** What a page shows: its connection state, its task titles (sorted) and the codes of the errors it lists. */
function shownOn(page: Page): Promise<{ state: string | null; titles: string[]; errors: string[] }> {
  return page.evaluate(() => ({
    state: document.querySelector('#connection')?.getAttribute('data-state') ?? null,
    titles: [...document.querySelectorAll('section[data-entity="task"] td[data-field="title"]')]
      .map((td) => td.textContent ?? '')
      .sort(),
    errors: [...document.querySelectorAll('#errors li')].map((li) => li.textContent ?? ''),
  }));
}

/** Resolves when the page is connected and lists exactly `titles`; fails after `timeoutMs` saying what it shows. */
async function showsExactly(page: Page, titles: readonly string[], timeoutMs: number): Promise<void> {
  const expected = { state: 'connected', titles: [...titles].sort() };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const shown = await shownOn(page);
    if (JSON.stringify({ state: shown.state, titles: shown.titles }) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) expect(shown).toEqual({ ...expected, errors: shown.errors });
    await page.waitForTimeout(100);
  }
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('demo pages open while the stack restarts', () => {
  it('wait, signed in to a tenant not configured yet, and show its entities within seconds of it being onboarded', async () => {
    if (browser === undefined) throw new Error('Chromium did not start');
    const page = await browser.newPage();
    hooli = page;
    page.on('pageerror', (err) => pageErrors.push(`hooli: ${err.message}`));
    await page.goto(`${current().url}/`);
    await page.fill('#custom-sign-in input[name="tenantId"]', 'hooli');
    await page.fill('#custom-sign-in input[name="userId"]', 'gavin');
    await page.fill('#custom-sign-in input[name="roles"]', 'admin');
    await page.click('#custom-sign-in button[type="submit"]');
    await page.waitForSelector('#errors li[data-code="FORBIDDEN"]', { timeout: 15_000 });
    expect(await page.textContent('#errors li[data-code="FORBIDDEN"]')).toContain("tenant 'hooli' is not configured");
    const out: string[] = [];
    const code = await runTenantsCli(
      ['create', 'hooli', '--schema', 'examples/initech.sql', '--endpoints', endpointsFile],
      { out: (l) => out.push(l), err: (l) => out.push(l), cwd: join(import.meta.dirname, '..', '..') },
    );
    expect({ code, out: out.join('\n') }).toMatchObject({ code: 0 });
    const onboardedAt = Date.now();
    // Until 2026-12-04 the page stopped at its first FORBIDDEN and never asked again (found by a newcomer's pass).
    await page.waitForSelector('section[data-entity="ticket"]', { timeout: 20_000 });
    await page.waitForSelector('#connection[data-state="connected"]', { timeout: 10_000 });
    expect(Date.now() - onboardedAt).toBeLessThan(15_000);
    expect(await page.locator('#errors li[data-code="FORBIDDEN"]').allTextContents()).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('leave no error of a tenant not configured on the next signed-in page, after a sign-out while waiting for it', async () => {
    if (browser === undefined) throw new Error('Chromium did not start');
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(`nosuchtenant: ${err.message}`));
    await page.goto(`${current().url}/`);
    await page.fill('#custom-sign-in input[name="tenantId"]', 'nosuchtenant');
    await page.fill('#custom-sign-in input[name="userId"]', 'carol');
    await page.click('#custom-sign-in button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#errors')?.textContent?.includes('is not configured'));
    await page.click('#sign-out');
    // Past the waiting page's next attempt (at most 4 s later): until 2026-12-04 it went on after the sign-out and
    // left its error on the next user's page (found by a reviewing helper).
    await page.waitForTimeout(4500);
    await page.click('[data-identity="acme:alice:member"]');
    await page.waitForSelector('section[data-entity="task"] tbody tr[data-key]');
    const errors = await page.evaluate(() => [...document.querySelectorAll('#errors li')].map((li) => li.textContent));
    expect(errors.filter((e) => e?.includes('nosuchtenant'))).toEqual([]);
  }, 60_000);

  it('reconnect with fresh tokens and show what the API shows within 10 s of the stack being ready, as does a page loaded while it starts', async () => {
    if (browser === undefined) throw new Error('Chromium did not start');
    const url = current().url;
    // Setting up is not what is measured: the first page load bundles the app, slow on a loaded machine.
    const pages = [
      await signedInPage(browser, url, 'acme:alice:member', pageErrors, 'task', 30_000),
      await signedInPage(browser, url, 'acme:ada:admin', pageErrors, 'task', 30_000),
    ];
    // Something only the first stack has, on both pages.
    const gone = randomUUID();
    const created = await httpApi(
      current(),
      tokenFor(current(), 'acme', 'alice', ['member']),
      'POST',
      '/v1/entities/task',
      { id: gone, title: 'Gone after the restart', status: 'open' },
    );
    expect(created.status).toBe(201);
    // A seeded task edited live before the restart: its change is version 1 of its key.
    const seeded = await seededTask(current(), gone);
    const alice = (rt: LocalRuntime) => tokenFor(rt, 'acme', 'alice', ['member']);
    const edited = await httpApi(current(), alice(current()), 'PATCH', `/v1/entities/task/${seeded.id}`, {
      title: 'Edited before the restart',
    });
    expect(edited.status).toBe(200);
    const before = await apiTitles(current());
    await Promise.all(pages.map((page) => showsExactly(page, before, 8000)));
    const ticket = await httpApi(
      current(),
      tokenFor(current(), 'hooli', 'gavin', ['admin']),
      'POST',
      '/v1/entities/ticket',
      {
        id: randomUUID(),
        subject: 'Gone with hooli',
      },
    );
    expect(ticket.status).toBe(201);
    await hooli?.waitForSelector('section[data-entity="ticket"] tbody tr[data-key]');

    const port = current().port;
    await current().stop();
    runtime = undefined;
    for (const page of pages) await page.waitForSelector('#connection[data-state="reconnecting"]');
    // While nothing answers, a page says so, and not that its user must sign in again.
    for (const page of pages) {
      await page.waitForSelector('#errors li', { timeout: 15_000 });
      expect((await shownOn(page)).errors.join('\n')).toMatch(/UNAVAILABLE/);
      expect(await page.locator('#errors li[data-code="UNAUTHORIZED"]').allTextContents()).toEqual([]);
    }
    let ready = false;
    const starting = start(port).then((rt) => {
      ready = true;
      runtime = rt;
      return rt;
    });
    // A page loaded (and signed in) once the port answers, before the stack is ready.
    await eventually(async () => (await fetch(`${url}/`).catch(() => undefined))?.status === 200);
    const early = await browser.newPage();
    early.on('pageerror', (err) => pageErrors.push(`early: ${err.message}`));
    await early.goto(`${url}/`);
    await early.click('[data-identity="acme:vic:viewer"]');
    expect(ready).toBe(false);
    pages.push(early);
    await starting;
    const readyAt = Date.now();

    const after = await apiTitles(current());
    expect(after).not.toContain('Gone after the restart');
    await Promise.all(pages.map((page) => showsExactly(page, after, 10_000)));
    expect(Date.now() - readyAt).toBeLessThan(10_000);
    expect(await Promise.all(pages.map((page) => page.textContent('#connection')))).toEqual([
      'connected',
      'connected',
      'connected',
    ]);
    // The same seeded task edited again: the new stack's version 1 of its key reaches the pages live (until 2026-12-04
    // its change had the id of the old stack's version 1, which the pages' client had seen and dropped: found by a
    // newcomer's pass).
    const again = await httpApi(current(), alice(current()), 'PATCH', `/v1/entities/task/${seeded.id}`, {
      title: 'Edited after the restart',
    });
    expect({ status: again.status, version: jsonOf<{ _version?: number }>(again)._version }).toEqual({
      status: 200,
      version: 1,
    });
    const edits = await apiTitles(current());
    expect(edits).toContain('Edited after the restart');
    await Promise.all(pages.map((page) => showsExactly(page, edits, 5000)));
    // The restart forgot hooli (no data directory): its page lists none of the rows it had, and says why. Until
    // 2026-12-04 it kept showing them, connected (found by a newcomer's pass).
    await hooli?.waitForSelector('#errors li[data-code="FORBIDDEN"]', { timeout: 10_000 });
    await hooli?.waitForSelector('section[data-entity="ticket"] tbody tr[data-key]', { state: 'detached' });
    // The pages recovered by themselves: no auth error was shown, nothing threw.
    // Texts, not element handles: a failure must stay printable (Jest's JSON report cannot hold a handle).
    for (const page of pages) {
      expect(await page.locator('#errors li[data-code="UNAUTHORIZED"]').allTextContents()).toEqual([]);
    }
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
