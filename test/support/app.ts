/** Driving the e-CPS app and the computer's login in real Chromium pages. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { TestVigie } from './harness.ts';
import { freePort } from './harness.ts';
import { DESKTOP } from './chromium.ts';
import { randomId } from '../../src/lib/crypto.ts';
import { demoClientMetadata, startDemoService, type DemoService } from '../../demo-service/server.ts';
import type { ClientInput } from '../../src/oidc/clients.ts';

/** Builds app/dist when its sources changed (so a single test file run directly sees the current app). */
export function ensureAppBuilt(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../app/build.ts', import.meta.url)), '--if-stale'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** What the browser reports when the phone locks or the app comes back to the screen. */
export async function setVisibility(page: Page, state: 'hidden' | 'visible'): Promise<void> {
  await page.evaluate((value) => {
    Object.defineProperty(document, 'visibilityState', { value, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

/** Types a PIN on the pad named `label` (the same digits a finger would press). */
export async function pressPin(page: Page, label: string, pin: string): Promise<void> {
  const pad = page.getByRole('group', { name: label });
  for (const digit of pin) await pad.getByRole('button', { name: digit, exact: true }).click();
}

/**
 * Activates the app on `page` through its screens: identifier, the two codes given by `codes`
 * (read from a mailbox and a phone), PIN twice. Leaves the app on its "activée" screen.
 */
export async function activateInApp(page: Page, t: TestVigie, nationalId: string, pin: string, codes: () => Promise<{ email: string; sms: string }>, options: { renewal?: boolean } = {}): Promise<void> {
  if (!options.renewal) {
    await page.goto(`${t.issuer}/app/`);
    await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
  }
  await page.getByLabel('Identifiant national').fill(nationalId);
  await page.getByRole('button', { name: 'Recevoir mes codes' }).click();
  await page.getByRole('heading', { name: 'Saisissez vos deux codes' }).waitFor();
  const { email, sms } = await codes();
  await page.getByLabel('Code reçu par e-mail').fill(email);
  await page.getByLabel('Code reçu par SMS').fill(sms);
  await page.getByRole('button', { name: 'Valider les codes' }).click();
  await page.getByRole('heading', { name: 'Choisissez votre code PIN' }).waitFor();
  await pressPin(page, 'Code PIN', pin);
  await page.getByRole('button', { name: 'Continuer' }).click();
  await page.getByRole('heading', { name: 'Confirmez votre code PIN' }).waitFor();
  await pressPin(page, 'Code PIN', pin);
  await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
  await page.getByRole('heading', { name: options.renewal ? 'Votre e-CPS est renouvelée' : 'Votre e-CPS est activée' }).waitFor();
}

/**
 * Waits for the request screen. The defences may create a challenge "silent" (no push: many
 * identifiers tried from one source, say); the professional then opens the app, which pulls: here,
 * a tap on "Actualiser".
 */
export async function openRequest(page: Page): Promise<void> {
  const heading = page.getByRole('heading', { name: 'Demande de connexion' });
  try {
    await heading.waitFor({ timeout: 1500 });
  } catch {
    await page.getByRole('button', { name: 'Actualiser' }).click();
    await heading.waitFor({ timeout: 5000 });
  }
}

/**
 * Answers the number-matching question on the request screen with `code`: picks it among the
 * three candidates (2 digits), or types it (6 digits, the typed-code mode the defences may choose).
 */
export async function enterCode(page: Page, code: string): Promise<void> {
  if (code.length === 6) await page.getByLabel('Code affiché sur l’écran de connexion').fill(code);
  else await page.getByRole('radio', { name: code, exact: true }).check();
}

/** A code that is not `code`: another candidate, or another 6 digits. */
export async function wrongCode(page: Page, code: string): Promise<string> {
  if (code.length === 6) return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
  const candidates = await page.getByRole('radio').evaluateAll((radios) => radios.map((r) => (r as HTMLInputElement).value));
  assert.equal(candidates.length, 3);
  assert.ok(candidates.includes(code), 'the right number is among the three');
  return candidates.find((c) => c !== code)!;
}

/** The demo health service registered as a client of the test provider. */
export async function startDemo(t: TestVigie): Promise<DemoService> {
  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const secret = randomId(32);
  await t.vigie.clients.put(demoClientMetadata(baseUrl, secret) as ClientInput);
  return startDemoService({ issuer: t.issuer, port, host: '127.0.0.1', baseUrl, clientId: 'demo-sante', clientSecret: secret });
}

/** The computer: a fresh browser context goes from the demo service to the login page's code. */
export async function computerLogin(browser: Browser, demo: DemoService, nationalId: string): Promise<{ context: BrowserContext; page: Page; code: string }> {
  const context = await browser.newContext(DESKTOP);
  const page = await context.newPage();
  await page.goto(demo.url);
  await page.getByRole('link', { name: /Se connecter avec Vigie/ }).click();
  await page.getByLabel('Identifiant national').fill(nationalId);
  await page.getByRole('button', { name: 'Recevoir une notification' }).click();
  const code = (await page.locator('p.code').textContent())?.trim() ?? '';
  assert.match(code, /^\d{2}$|^\d{6}$/, 'the login page shows the code to match');
  return { context, page, code };
}
