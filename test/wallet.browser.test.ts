// The wallet in a real browser (Chromium): an attacker's browser is logged in to the demo health
// service (openid-client) in the professional's name; the professional opens the wallet on their
// phone, sees that session and cuts it off. The demo service must receive a valid back-channel
// logout token and drop its session, the refresh token must stop working and introspection say
// inactive. Then the other screens: history, devices, contact change, report, logout everywhere.
// Screenshots of the key screens go to test-output/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import * as client from 'openid-client';
import { startTestVigie, DEMO_PRO, type TestVigie } from './support/harness.ts';
import { chromiumMissing, launchChromium, DESKTOP, PHONE, screenshot } from './support/chromium.ts';
import { startTestDemo, type TestDemo } from './support/wallet-services.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';
import { randomId } from '../src/lib/crypto.ts';

const missing = chromiumMissing();

/** On Vigie's login page: type the identifier, let the (simulated) e-CPS approve, wait for the page to move on. */
async function approveOnLoginPage(page: Page, device: DeviceSimulator, serviceName: string): Promise<void> {
  await page.getByLabel('Identifiant national').fill(DEMO_PRO.nationalId);
  await page.getByRole('button', { name: 'Recevoir une notification' }).click();
  const code = (await page.locator('p.code').textContent())!.trim();
  const challenge = (await device.listChallenges()).body.challenges.find((c) => c.service.name === serviceName);
  assert.ok(challenge, `the e-CPS sees the request from ${serviceName}`);
  assert.equal((await device.approve(challenge.id, code, '2468')).status, 200);
}

/** CSP violations and script errors are failures. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

async function assertAccessible(page: Page): Promise<void> {
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  assert.equal(await page.locator('h1').count(), 1, 'one h1');
  const unlabelled = await page.$$eval('input:not([type=hidden]), select, textarea', (els) =>
    els.filter((el) => !(el.id && document.querySelector(`label[for="${el.id}"]`)) && !el.closest('label') && !el.getAttribute('aria-label')).map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, [], 'every field has a label');
  const nameless = await page.$$eval('button, a', (els) => els.filter((el) => !(el.textContent ?? '').trim() && !el.getAttribute('aria-label')).map((el) => el.outerHTML));
  assert.deepEqual(nameless, [], 'every button and link has a name');
}

async function assertNoHorizontalScroll(page: Page): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page fits the phone's width (overflow ${overflow}px)`);
}

describe('the wallet in a real browser (Chromium)', { skip: missing }, () => {
  let t: TestVigie;
  let d: TestDemo;
  let device: DeviceSimulator;
  let browser: Browser;
  let attacker: BrowserContext;
  let phone: BrowserContext;
  let wallet: Page;
  let walletErrors: string[];
  before(async () => {
    t = await startTestVigie();
    device = await t.activateDevice();
    d = await startTestDemo(t);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await d?.close();
    await t?.close();
  });

  it('forced logout from the wallet cuts the attacker off the demo service', async () => {
    // The attacker's browser: logged in to the demo service, then a refresh token by single sign-on.
    attacker = await browser.newContext(DESKTOP);
    const demoPage = await attacker.newPage();
    await demoPage.goto(`${d.demo.url}/login`);
    await approveOnLoginPage(demoPage, device, 'Service de santé (démo)');
    await demoPage.waitForURL(`${d.demo.url}/`);
    await demoPage.getByRole('heading', { name: /Bonjour Camille MARTIN/ }).waitFor();
    const demoSession = [...d.demo.sessions.values()][0]!;
    assert.ok(demoSession.sid);

    const verifier = client.randomPKCECodeVerifier();
    const authUrl = client.buildAuthorizationUrl(d.rp, { redirect_uri: `${d.demo.url}/callback`, scope: 'openid offline_access', prompt: 'consent', state: 'offline', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    // The demo service's callback refuses a code it did not ask for (no pending login) and leaves it unused.
    await demoPage.goto(authUrl.href);
    const callback = new URL(demoPage.url());
    assert.equal(callback.pathname, '/callback');
    assert.ok(callback.searchParams.get('code'), 'a code without a new approval (single sign-on)');
    const offline = await client.authorizationCodeGrant(d.rp, callback, { pkceCodeVerifier: verifier, expectedState: 'offline' });
    assert.ok(offline.refresh_token);

    // The professional, on their phone, opens the wallet: a fresh e-CPS approval.
    phone = await browser.newContext(PHONE);
    wallet = await phone.newPage();
    walletErrors = watchErrors(wallet);
    await wallet.goto(`${t.issuer}/wallet`);
    await wallet.locator('.service', { hasText: 'Portefeuille Vigie' }).waitFor();
    await approveOnLoginPage(wallet, device, 'Portefeuille Vigie');
    await wallet.waitForURL(`${t.issuer}/wallet`);
    await wallet.getByRole('heading', { name: 'Mes connexions' }).waitFor();
    const cards = wallet.locator('li.card');
    assert.equal(await cards.count(), 2);
    const attackerCard = cards.filter({ hasText: 'Service de santé (démo)' });
    assert.equal(await attackerCard.count(), 1);
    assert.match((await attackerCard.textContent())!, /Chrome sur Linux/);
    assert.equal(await wallet.locator('li.card.current').filter({ hasText: 'Portefeuille Vigie' }).count(), 1);
    await assertAccessible(wallet);
    await assertNoHorizontalScroll(wallet);
    await screenshot(wallet, 'wallet-1-sessions');

    await attackerCard.getByRole('button', { name: /Déconnecter/ }).click();
    await wallet.getByText('La session a été déconnectée').waitFor();
    await wallet.getByText('Déconnexion reçue par le service').waitFor();
    assert.equal(await wallet.locator('li.card').count(), 1);
    await screenshot(wallet, 'wallet-2-session-ended');

    // The demo service got a valid logout token for that session and dropped it.
    const receipt = d.demo.backchannelLogouts.at(-1)!;
    assert.equal(receipt.valid, true, receipt.error);
    assert.equal(receipt.sid, demoSession.sid);
    assert.equal(d.demo.sessions.size, 0);
    await demoPage.goto(`${d.demo.url}/`);
    assert.equal(await demoPage.getByRole('heading', { name: /Bonjour/ }).count(), 0, 'the attacker is logged out of the demo service');
    // Refresh refused, introspection inactive.
    await assert.rejects(client.refreshTokenGrant(d.rp, offline.refresh_token!), (e: unknown) => e instanceof client.ResponseBodyError && e.error === 'invalid_grant');
    assert.equal((await client.tokenIntrospection(d.rp, offline.refresh_token!)).active, false);
    assert.equal((await client.tokenIntrospection(d.rp, demoSession.tokens.access_token)).active, false);
    // Back to the demo service's login: Vigie asks again (no session left in that browser).
    await demoPage.goto(`${d.demo.url}/login`);
    await demoPage.getByLabel('Identifiant national').waitFor();
  });

  it('history, devices and report screens', async () => {
    // A push-bombing night: a refusal, a « not me », an expiry and a wrong code from elsewhere.
    const deviceId = device.state.deviceId!;
    const bomb = () => t.vigie.challenges.start({ nationalId: DEMO_PRO.nationalId, interactionUid: randomId(), clientId: 'demo-sante', clientName: 'Service de santé (démo)', mode: 'typed', delivery: 'push', context: { ip: '203.0.113.7', userAgent: 'Firefox', browser: 'Firefox sur Windows', place: 'Lyon, France' } });
    await t.vigie.challenges.deny(await bomb(), deviceId, 'refused');
    await t.vigie.challenges.deny(await bomb(), deviceId, 'not_me');
    const wrong = await bomb();
    await assert.rejects(t.vigie.challenges.approve(wrong, deviceId, wrong.displayCode === '000000' ? '111111' : '000000'));
    await wallet.getByRole('link', { name: 'Historique' }).click();
    await wallet.getByRole('heading', { name: 'Historique des connexions' }).waitFor();
    assert.ok((await wallet.locator('table tbody tr').count()) >= 5);
    assert.equal(await wallet.locator('tr.suspect').count(), 3);
    await assertAccessible(wallet);
    await assertNoHorizontalScroll(wallet);
    await screenshot(wallet, 'wallet-3-history');
    const download = await Promise.all([wallet.waitForEvent('download'), wallet.getByRole('link', { name: /Exporter l'historique/ }).click()]).then(([dl]) => dl);
    assert.match(download.suggestedFilename(), /^vigie-historique-810000000017\.csv$/);

    await wallet.getByRole('link', { name: 'Appareils' }).click();
    await wallet.getByRole('heading', { name: 'Mes appareils e-CPS' }).waitFor();
    assert.equal(await wallet.locator('li.card').count(), 1);
    await assertAccessible(wallet);
    await screenshot(wallet, 'wallet-4-devices');

    await wallet.getByRole('link', { name: 'Signaler une activité suspecte' }).click();
    await wallet.getByRole('heading', { name: 'Signaler une activité suspecte' }).waitFor();
    await assertAccessible(wallet);
    await screenshot(wallet, 'wallet-5-report');
  });

  it('contact change: code to the new address, cooling-off shown; the old address can cancel', async () => {
    await wallet.getByRole('link', { name: 'Coordonnées' }).click();
    await wallet.getByLabel('Nouvelle adresse e-mail').fill('camille.cabinet@exemple.fr');
    await wallet.getByRole('button', { name: 'Recevoir un code de confirmation' }).first().click();
    await wallet.getByText('Un code de confirmation a été envoyé').waitFor();
    const [mail] = await t.vigie.authenticator.outbox.list({ recipient: 'camille.cabinet@exemple.fr' });
    await wallet.getByLabel('Code reçu').fill(/\b(\d{6})\b/.exec(mail!.body)![1]!);
    await wallet.getByRole('button', { name: 'Confirmer' }).click();
    await wallet.getByText('Changement confirmé').waitFor();
    await wallet.getByText(/pourra servir à activer une e-CPS à partir du/).waitFor();
    await assertAccessible(wallet);
    await assertNoHorizontalScroll(wallet);
    await screenshot(wallet, 'wallet-6-contact-cooling-off');

    const [notice] = (await t.vigie.authenticator.outbox.list({ recipient: 'camille.martin@demo.vigie.test' })).filter((m) => m.subject !== 'Une nouvelle e-CPS a été activée');
    const link = new RegExp(`${t.issuer}/wallet/contacts/cancel/[A-Za-z0-9_-]+`).exec(notice!.body)![0];
    const mailbox = await browser.newContext(DESKTOP);
    const cancelPage = await mailbox.newPage();
    await cancelPage.goto(link);
    await cancelPage.getByRole('heading', { name: 'Annuler un changement de coordonnées' }).waitFor();
    await screenshot(cancelPage, 'wallet-7-cancel-link');
    await mailbox.close();
  });

  it('logging out from a service: the provider’s confirmation and its auto-submitted form run under the strict policy', async () => {
    const context = await browser.newContext(DESKTOP);
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${d.demo.url}/login`);
    await approveOnLoginPage(page, device, 'Service de santé (démo)');
    await page.waitForURL(`${d.demo.url}/`);
    const [confirmation] = await Promise.all([page.waitForResponse((r) => r.url().startsWith(`${t.issuer}/session/end?`)), page.getByRole('button', { name: 'Se déconnecter' }).click()]);
    await page.getByRole('heading', { name: 'Se déconnecter de Vigie ?' }).waitFor();
    assert.match(confirmation.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    await page.getByRole('button', { name: 'Me déconnecter', exact: true }).click();
    // oidc-provider's form_post page submits itself (an inline script allowed by its hash), back to the service.
    await page.waitForURL(`${d.demo.url}/`);
    await page.getByRole('link', { name: /Se connecter/ }).or(page.getByRole('button', { name: /Se connecter/ })).first().waitFor();
    // Again with no session left: the provider answers with its auto-submitting page at once.
    await page.goto(`${t.issuer}/session/end`);
    await page.getByRole('heading', { name: 'Vous êtes déconnecté' }).waitFor();
    assert.deepEqual(errors, [], 'no script error or CSP violation');
    await context.close();
  });

  it('« Me déconnecter partout » asks first, then ends everything, the wallet included', async () => {
    await wallet.getByRole('link', { name: 'Connexions' }).click();
    let asked = '';
    wallet.once('dialog', async (dialog) => {
      asked = dialog.message();
      await dialog.accept();
    });
    await wallet.getByRole('button', { name: 'Me déconnecter partout' }).click();
    await wallet.getByRole('heading', { name: 'Vous êtes déconnecté partout' }).waitFor();
    assert.match(asked, /Fermer toutes vos sessions Vigie/);
    await screenshot(wallet, 'wallet-8-logged-out-everywhere');
    assert.deepEqual(await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId), []);
    await wallet.goto(`${t.issuer}/wallet`);
    await wallet.getByLabel('Identifiant national').waitFor();
    assert.deepEqual(walletErrors, [], 'no script error or CSP violation');
  });
});
