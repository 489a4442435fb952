// The whole product in two real browsers: a professional logs in to the demo health service on a
// computer (one Chromium context) and approves on the e-CPS app of a phone (another context),
// activated beforehand through its own screens. Then the ways it must fail: wrong number picked,
// wrong PIN (and the lock), refusal, "ce n'était pas moi"; and the typed-code mode.
import { randomUUID } from 'node:crypto';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestVigie, DEMO_PRO, type TestVigie } from './support/harness.ts';
import { chromiumMissing, launchChromium, PHONE, screenshot } from './support/chromium.ts';
import { activateInApp, computerLogin, enterCode, ensureAppBuilt, openRequest, pressPin, setVisibility, startDemo, wrongCode } from './support/app.ts';
import { readCodes } from './support/activation.ts';
import { DEMO_CONTACTS } from '../src/demo.ts';
import type { DemoService } from '../demo-service/server.ts';

const missing = chromiumMissing();
const PROS = readFileSync(DEMO_CONTACTS, 'utf8').split('\n').slice(1).map((l) => l.split(',')[0]!).filter((id) => /^8\d{11}$/.test(id) && id !== DEMO_PRO.nationalId);
const PIN = '4826';

describe('login on a computer, approved in the e-CPS app of a phone (Chromium)', { skip: missing }, () => {
  let t: TestVigie;
  let browser: Browser;
  let demo: DemoService;
  let nextPro = 20;
  before(async () => {
    ensureAppBuilt();
    // Every computer here is 127.0.0.1: the "not me" reports of separate tests must not add up to
    // a block of that address for everyone (src/defence tests cover global blocks).
    t = await startTestVigie({ env: { VIGIE_ACTIVATION_SENDS_PER_IP_PER_HOUR: '1000', VIGIE_GLOBAL_BLOCK_REPORTS: '100' } });
    browser = await launchChromium();
    demo = await startDemo(t);
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
    await t?.close();
  });

  /** A phone with the app activated for a professional of its own (the defences' memory stays per person). */
  async function phone(nationalId = PROS[nextPro++]!): Promise<{ context: BrowserContext; app: Page; nationalId: string }> {
    const context = await browser.newContext(PHONE);
    const app = await context.newPage();
    await activateInApp(app, t, nationalId, PIN, () => readCodes(t, nationalId));
    await app.getByRole('button', { name: 'Continuer' }).click();
    await app.getByRole('heading', { name: 'Aucune demande en attente' }).waitFor();
    await app.getByText('En direct').waitFor();
    return { context, app, nationalId };
  }

  it('full login: demo service → identifier → the request appears live on the phone → number + PIN → signed in', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await screenshot(computer.page, 'login-computer-code');

    // Delivered over the device stream: no reload, no tap on "Actualiser".
    await app.getByRole('heading', { name: 'Demande de connexion' }).waitFor({ timeout: 3000 });
    await app.getByText('Service de santé (démo)').waitFor();
    await app.getByText(/Chrome sur Linux|Chrome/).first().waitFor();
    const accept = app.getByRole('button', { name: 'Accepter' });
    assert.equal(await accept.isDisabled(), true, 'Accept starts disabled');
    assert.equal(await app.evaluate(() => document.activeElement?.textContent ?? ''), 'Demande de connexion', 'focus is on the heading, not on Accept');
    assert.equal(await app.getByRole('radio').evaluateAll((radios) => radios.filter((r) => (r as HTMLInputElement).checked).length), 0, 'no number is preselected');
    await screenshot(app, 'app-request');

    await enterCode(app, computer.code);
    assert.equal(await accept.isDisabled(), true, 'still disabled without the PIN');
    await pressPin(app, 'Votre code PIN', PIN);
    await app.keyboard.press('Enter');
    assert.equal(await app.getByRole('heading', { name: 'Demande de connexion' }).isVisible(), true, 'Enter approves nothing');
    await accept.click();
    await app.getByRole('heading', { name: 'Connexion validée' }).waitFor();
    await screenshot(app, 'app-approved');

    const contacts = await t.vigie.directory.getContacts(nationalId);
    assert.ok(contacts);
    await computer.page.getByRole('heading', { name: /^Bonjour / }).waitFor({ timeout: 10_000 });
    assert.ok(computer.page.url().startsWith(demo.url));
    await screenshot(computer.page, 'login-computer-signed-in');
    await app.getByRole('button', { name: 'Terminé' }).click();
    await app.getByRole('heading', { name: 'Aucune demande en attente' }).waitFor();
    await computer.context.close();
    await context.close();
  });

  it('the wrong number picked cancels the login on both screens', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    await enterCode(app, await wrongCode(app, computer.code));
    await pressPin(app, 'Votre code PIN', PIN);
    await app.getByRole('button', { name: 'Accepter' }).click();
    await app.getByText(/Ce nombre ne correspond pas|Ce code ne correspond pas/).waitFor();
    await screenshot(app, 'app-wrong-number');
    await computer.page.getByRole('heading', { name: 'Demande annulée' }).waitFor({ timeout: 10_000 });
    await computer.context.close();
    await context.close();
  });

  it('a wrong PIN says how many tries are left; the right one then approves; three wrong lock the e-CPS', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    await enterCode(app, computer.code);
    await pressPin(app, 'Votre code PIN', '1357');
    await app.getByRole('button', { name: 'Accepter' }).click();
    await app.getByRole('alert').getByText('Code PIN incorrect. Il vous reste 2 essais').waitFor();
    await screenshot(app, 'app-wrong-pin');
    assert.equal(await app.getByRole('button', { name: 'Accepter' }).isDisabled(), true, 'the PIN is cleared');
    await pressPin(app, 'Votre code PIN', PIN);
    await app.getByRole('button', { name: 'Accepter' }).click();
    await app.getByRole('heading', { name: 'Connexion validée' }).waitFor();
    await computer.page.getByRole('heading', { name: /^Bonjour / }).waitFor({ timeout: 10_000 });
    await computer.context.close();
    await app.getByRole('button', { name: 'Terminé' }).click();

    const second = await computerLogin(browser, demo, nationalId);
    await app.getByRole('button', { name: 'Actualiser' }).click().catch(() => undefined);
    await openRequest(app);
    await enterCode(app, second.code);
    for (let i = 0; i < 3; i += 1) {
      await pressPin(app, 'Votre code PIN', '1357');
      await app.getByRole('button', { name: 'Accepter' }).click();
      if (i < 2) await app.getByRole('alert').getByText(`Il vous reste ${2 - i === 1 ? '1 essai' : `${2 - i} essais`}`).waitFor();
    }
    await app.getByRole('heading', { name: 'e-CPS verrouillée' }).waitFor();
    await app.getByRole('button', { name: 'Réactiver mon e-CPS' }).waitFor();
    await screenshot(app, 'app-locked');
    assert.equal((await t.vigie.devices.list(nationalId))[0]?.state, 'locked');
    await second.page.getByRole('heading', { name: 'Demande annulée' }).waitFor({ timeout: 10_000 });
    await second.context.close();
    await context.close();
  });

  it('"Refuser" ends the login with no session', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    await app.getByRole('button', { name: 'Refuser' }).click();
    await app.getByRole('heading', { name: 'Demande refusée' }).waitFor();
    await computer.page.getByRole('heading', { name: 'Demande refusée' }).waitFor({ timeout: 10_000 });
    await computer.context.close();
    await context.close();
  });

  it('leaving the code page by its buttons withdraws the request from the phone and goes where it says', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    // Another identifier: back to the form (not to the withdrawn request's outcome page).
    await computer.page.getByRole('button', { name: 'Recommencer avec un autre identifiant' }).click();
    await computer.page.getByLabel('Identifiant national').waitFor();
    await app.getByText('Cette demande n’est plus en attente : elle a été traitée ou annulée.').waitFor({ timeout: 10_000 });
    // Cancel: back to the service, which says the login was cancelled.
    await computer.page.getByLabel('Identifiant national').fill(nationalId);
    await computer.page.getByRole('button', { name: 'Recevoir une notification' }).click();
    await computer.page.locator('p.code').waitFor();
    await computer.page.getByRole('button', { name: 'Annuler et revenir au service' }).click();
    await computer.page.getByText('La connexion a été refusée ou annulée.').waitFor({ timeout: 10_000 });
    assert.ok(computer.page.url().startsWith(demo.url), computer.page.url());
    assert.deepEqual((await t.vigie.challenges.listPending(nationalId)), []);
    await computer.context.close();
    await context.close();
  });

  it('"Vous n’êtes pas à l’origine de la demande ?" denies as not_me, then offers to block notifications', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    await app.getByRole('button', { name: 'Vous n’êtes pas à l’origine de la demande ?' }).click();
    await app.getByRole('heading', { name: 'Demande refusée et signalée' }).waitFor();
    await screenshot(app, 'app-not-me');
    const audit = await t.vigie.audit.list({ subject: nationalId });
    assert.ok(audit.some((e) => e.event === 'challenge.denied' && e.details.reason === 'not_me'));
    await computer.page.getByRole('heading', { name: 'Demande refusée' }).waitFor({ timeout: 10_000 });

    await app.getByRole('button', { name: 'Bloquer les notifications' }).click();
    // The setting belongs to the defences (PUT /device/v1/notification-settings); without it the app says so.
    await app.getByText(/Notifications bloquées|ne propose pas encore le blocage/).waitFor();
    await screenshot(app, 'app-not-me-blocked');
    if (await app.getByText('Notifications bloquées').isVisible()) {
      await app.getByRole('button', { name: 'Terminé' }).click();
      await app.getByText('Vous avez bloqué les notifications').waitFor();
      await app.getByRole('button', { name: 'Réactiver les notifications' }).click();
      await app.getByText('Vous avez bloqué les notifications').waitFor({ state: 'detached' });
    }
    await computer.context.close();
    await context.close();
  });

  it('a request its browser withdraws while the phone shows it can still be reported as "not me"', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    const [pending] = await t.vigie.challenges.listPending(nationalId);
    assert.ok(pending);
    await computer.page.getByRole('button', { name: 'Annuler et revenir au service' }).click();
    await app.getByText('Cette demande n’est plus en attente : elle a été traitée ou annulée.').waitFor({ timeout: 10_000 });
    await app.getByRole('button', { name: 'Vous n’êtes pas à l’origine de cette demande ? Signalez-la' }).click();
    await app.getByRole('heading', { name: 'Demande signalée' }).waitFor();
    await screenshot(app, 'app-report-withdrawn');
    const audit = await t.vigie.audit.list({ subject: nationalId });
    assert.ok(audit.some((e) => e.event === 'defence.not_me' && e.details.challengeId === pending.id && e.details.requestState === 'cancelled'));
    assert.ok((await t.vigie.defence.listBlocks()).some((b) => b.nationalId === nationalId && b.reason === 'not_me'), 'the source is blocked');
    await computer.context.close();
    await context.close();
  });

  it('a flood of silent requests opened by an attacker does not hide the notified one', async () => {
    const { context, app, nationalId } = await phone();
    const request = (clientName: string, delivery: 'push' | 'silent', ip: string) =>
      t.vigie.challenges.start({ nationalId, interactionUid: randomUUID(), clientId: 'test-rp', clientName, mode: 'pick', delivery, context: { ip, userAgent: 'UA', browser: 'Firefox sur Windows', place: null } });
    // The professional's own login, notified; then many requests the defences held silent
    // (visible only in the app), all newer.
    await request('Service notifié', 'push', '192.0.2.10');
    let newest = undefined as Awaited<ReturnType<typeof request>> | undefined;
    for (let i = 0; i < 25; i += 1) {
      t.clock.advance(10);
      newest = await request('Service de test', 'silent', `198.51.100.${i}`);
    }
    await app.reload();
    await openRequest(app);
    await app.getByText('Service notifié').waitFor({ timeout: 5000 });
    assert.equal(await app.getByText('Service de test').count(), 0, 'the newest silent request is not the one shown');
    // Nor when a link names it: the attacker knows its id (their login page's URL shows it).
    await app.goto(`${t.issuer}/app/?demande=${newest!.id}`);
    await openRequest(app);
    await app.getByText('Service notifié').waitFor({ timeout: 5000 });
    assert.equal(await app.getByText('Service de test').count(), 0, 'a link does not put a silent request first');
    await context.close();
  });

  it('a request withdrawn while the app was hidden is not left on screen as pending when it comes back', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    // The phone locked: the app closes its stream, so the "settled" event is never heard.
    await setVisibility(app, 'hidden');
    await computer.page.getByRole('button', { name: 'Annuler et revenir au service' }).click();
    await computer.page.waitForURL((url) => url.href.startsWith(demo.url));
    assert.equal(await app.getByRole('heading', { name: 'Demande de connexion' }).isVisible(), true, 'still shown while hidden');
    await setVisibility(app, 'visible');
    await app.getByText('Cette demande n’est plus en attente : elle a été traitée ou annulée.').waitFor({ timeout: 10_000 });
    await app.getByRole('button', { name: 'Vous n’êtes pas à l’origine de cette demande ? Signalez-la' }).waitFor();
    await computer.context.close();
    await context.close();
  });

  it('an approval whose reply is lost on the way back shows « Connexion validée », not a failure', async () => {
    const { context, app, nationalId } = await phone();
    const computer = await computerLogin(browser, demo, nationalId);
    await openRequest(app);
    // The request reaches the server; its answer is lost (the phone moved from Wi-Fi to 4G).
    await app.route('**/device/v1/challenges/*/approve', async (route) => {
      await route.fetch();
      await route.abort('connectionreset');
    });
    await enterCode(app, computer.code);
    await pressPin(app, 'Votre code PIN', PIN);
    await app.getByRole('button', { name: 'Accepter' }).click();
    await app.getByRole('heading', { name: 'Connexion validée' }).waitFor({ timeout: 10_000 });
    await computer.page.getByRole('heading', { name: /^Bonjour / }).waitFor({ timeout: 10_000 });
    await computer.context.close();
    await context.close();
  });

  it('a notification opened after its request was withdrawn says so and still offers the report', async () => {
    const { context, app, nationalId } = await phone();
    await app.close(); // the app is closed: the request only reaches the phone as a notification
    const computer = await computerLogin(browser, demo, nationalId);
    const [pending] = await t.vigie.challenges.listPending(nationalId);
    assert.ok(pending);
    await computer.page.getByRole('button', { name: 'Annuler et revenir au service' }).click();
    await computer.page.getByText('La connexion a été refusée ou annulée.').waitFor({ timeout: 10_000 });

    // What the service worker opens on a tap on the notification.
    const opened = await context.newPage();
    await opened.goto(`${t.issuer}/app/?demande=${pending.id}`);
    await opened.getByRole('heading', { name: 'Demande terminée' }).waitFor();
    await opened.getByText('Cette demande a été annulée depuis l’écran de connexion, avant que vous n’y répondiez.').waitFor();
    await opened.getByText('Service de santé (démo)').waitFor();
    await screenshot(opened, 'app-opened-after-withdrawal');
    await opened.getByRole('button', { name: 'Vous n’êtes pas à l’origine de cette demande ? Signalez-la' }).click();
    await opened.getByRole('heading', { name: 'Demande signalée' }).waitFor();
    const audit = await t.vigie.audit.list({ subject: nationalId });
    assert.ok(audit.some((e) => e.event === 'defence.not_me' && e.details.challengeId === pending.id && e.details.requestState === 'cancelled'));

    // An answered request opened late: how it ended, nothing to report.
    const again = await computerLogin(browser, demo, nationalId);
    const [answered] = await t.vigie.challenges.listPending(nationalId);
    assert.ok(answered);
    await opened.goto(`${t.issuer}/app/?demande=${pending.id}`);
    await opened.getByRole('heading', { name: 'Demande de connexion' }).waitFor();
    assert.equal(await opened.getByRole('heading', { name: 'Demande terminée' }).count(), 0, 'a pending request comes before an ended one');
    assert.equal((await (await t.activateDevice(nationalId)).deny(answered.id, 'refused')).status, 200, 'refused on another phone');
    await opened.goto(`${t.issuer}/app/?demande=${answered.id}`);
    await opened.getByText('Cette demande a déjà été refusée.').waitFor();
    assert.equal(await opened.getByRole('button', { name: /Signalez-la/ }).count(), 0);
    await again.context.close();
    await computer.context.close();
    await context.close();
  });

  it('typed-code mode: the phone asks for the 6 digits shown on the computer', async () => {
    const { context, app, nationalId } = await phone();
    const challenge = await t.vigie.challenges.start({ nationalId, interactionUid: 'typed', clientId: 'demo-sante', clientName: 'Service de santé (démo)', mode: 'typed', delivery: 'push', context: { ip: '192.0.2.7', userAgent: 'UA', browser: 'Firefox sur Windows', place: 'Lyon' } });
    await openRequest(app);
    await app.getByText('Lyon').waitFor();
    assert.equal(await app.getByRole('radio').count(), 0, 'no candidates to pick from');
    const field = app.getByLabel('Code affiché sur l’écran de connexion');
    await field.fill(challenge.displayCode.slice(0, 5));
    await pressPin(app, 'Votre code PIN', PIN);
    assert.equal(await app.getByRole('button', { name: 'Accepter' }).isDisabled(), true, 'five digits are not enough');
    await field.fill(challenge.displayCode);
    await screenshot(app, 'app-typed-code');
    await app.getByRole('button', { name: 'Accepter' }).click();
    await app.getByRole('heading', { name: 'Connexion validée' }).waitFor();
    assert.equal((await t.vigie.challenges.get(challenge.id))?.state, 'approved');
    await context.close();
  });
});
