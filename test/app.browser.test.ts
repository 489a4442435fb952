// The e-CPS app itself in Chromium: installable (manifest, service worker, offline shell),
// activation through its screens with the email code read from a real SMTP server and the SMS
// code from the outbox, a key that never leaves the browser, renewal, deletion, the notice's
// "ce n'était pas moi" link, and a Web Push handled by the service worker.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startTestVigie, type TestVigie } from './support/harness.ts';
import { chromiumMissing, launchChromium, launchPersistent, PHONE, screenshot } from './support/chromium.ts';
import { activateInApp, ensureAppBuilt, openRequest, pressPin, setVisibility } from './support/app.ts';
import { readCodes } from './support/activation.ts';
import { startSmtpSink, type SmtpSink } from './support/smtp.ts';

const missing = chromiumMissing();
const PIN = '4826';

/** What the app keeps in IndexedDB, seen from inside the page. */
function storedKey(page: Page) {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('vigie-ecps');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const device = await new Promise<{ deviceId: string; privateKey: CryptoKey } | undefined>((resolve, reject) => {
      const r = db.transaction('keys').objectStore('keys').get('device');
      r.onsuccess = () => resolve(r.result as { deviceId: string; privateKey: CryptoKey } | undefined);
      r.onerror = () => reject(r.error);
    });
    db.close();
    if (!device) return undefined;
    let exported: string;
    try {
      await crypto.subtle.exportKey('jwk', device.privateKey);
      exported = 'exported';
    } catch (error) {
      exported = (error as Error).name;
    }
    return { deviceId: device.deviceId, type: device.privateKey.type, extractable: device.privateKey.extractable, algorithm: (device.privateKey.algorithm as EcKeyAlgorithm).namedCurve, usages: device.privateKey.usages, exported };
  });
}

describe('the e-CPS web app (Chromium)', { skip: missing }, () => {
  let t: TestVigie;
  let smtp: SmtpSink;
  let browser: Browser;
  before(async () => {
    ensureAppBuilt();
    smtp = await startSmtpSink();
    t = await startTestVigie({ env: { SMTP_URL: smtp.url, VIGIE_ACTIVATION_SENDS_PER_IP_PER_HOUR: '1000' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await smtp?.close();
  });

  /** Codes as the professional reads them: the email from the SMTP server, the SMS from the outbox. */
  const codesFrom = (nationalId: string, since: number) => async () => {
    const contacts = (await t.vigie.directory.getContacts(nationalId))!;
    const mail = await smtp.next((m) => m.to.includes(contacts.email!) && /code d’activation/.test(m.subject) && smtp.messages.indexOf(m) >= since);
    const { sms } = await readCodes(t, nationalId, { email: false });
    return { email: /^\s+(\d{6})$/m.exec(mail.text)![1]!, sms };
  };

  it('is an installable, French PWA: manifest, icons, service worker, strict CSP', async () => {
    const page = await (await browser.newContext(PHONE)).newPage();
    const response = await page.goto(`${t.issuer}/app/`);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /manifest-src 'self'/);
    assert.equal(await page.getAttribute('html', 'lang'), 'fr');
    await page.getByRole('heading', { name: 'Bienvenue dans e-CPS' }).waitFor();
    const manifest = (await (await fetch(`${t.issuer}/app/manifest.webmanifest`)).json()) as { start_url: string; scope: string; display: string; lang: string; icons: Array<{ src: string; sizes: string; purpose: string }> };
    assert.deepEqual([manifest.start_url, manifest.scope, manifest.display, manifest.lang], ['/app/', '/app/', 'standalone', 'fr']);
    for (const icon of manifest.icons) {
      const png = await fetch(new URL(icon.src, t.issuer));
      assert.equal(png.status, 200, icon.src);
      const bytes = Buffer.from(await png.arrayBuffer());
      assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
      assert.equal(`${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`, icon.sizes);
    }
    assert.ok(manifest.icons.some((i) => i.purpose === 'maskable'));
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    assert.equal(scope, `${t.issuer}/app/`);
    assert.equal((await fetch(`${t.issuer}/app/sw.js`)).headers.get('cache-control'), 'no-cache');
    await screenshot(page, 'app-welcome');
    await page.context().close();
  });

  it('activates with the email code from SMTP and the SMS code; refuses wrong codes, a trivial PIN and a mistyped confirmation', async () => {
    const nationalId = '810000450386';
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    await page.goto(`${t.issuer}/app/`);
    await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
    await page.getByLabel('Identifiant national').fill('12345');
    await page.getByRole('button', { name: 'Recevoir mes codes' }).click();
    await page.getByRole('alert').getByText('12 chiffres').waitFor();
    await screenshot(page, 'app-activation-bad-identifier');

    const since = smtp.messages.length;
    await page.getByLabel('Identifiant national').fill(nationalId.slice(1)); // the bare RPPS
    await page.getByRole('button', { name: 'Recevoir mes codes' }).click();
    await page.getByText('deux codes viennent de lui être envoyés').waitFor();
    const codes = await codesFrom(nationalId, since)();
    await page.getByLabel('Code reçu par e-mail').fill(codes.email);
    await page.getByLabel('Code reçu par SMS').fill(String((Number(codes.sms) + 1) % 1_000_000).padStart(6, '0'));
    await page.getByRole('button', { name: 'Valider les codes' }).click();
    await page.getByRole('alert').getByText('Au moins un des deux codes est incorrect. Il vous reste 4 essais.').waitFor();
    await screenshot(page, 'app-activation-wrong-code');
    await page.getByLabel('Code reçu par e-mail').fill(codes.email);
    await page.getByLabel('Code reçu par SMS').fill(codes.sms);
    await page.getByRole('button', { name: 'Valider les codes' }).click();

    await page.getByRole('heading', { name: 'Choisissez votre code PIN' }).waitFor();
    await pressPin(page, 'Code PIN', '1234');
    await page.getByRole('button', { name: 'Continuer' }).click();
    await page.getByRole('alert').getByText('trop facile à deviner').waitFor();
    await pressPin(page, 'Code PIN', PIN);
    await page.getByRole('button', { name: 'Continuer' }).click();
    await pressPin(page, 'Code PIN', '4827');
    await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
    await page.getByRole('alert').getByText('ne sont pas identiques').waitFor();
    assert.equal((await t.vigie.devices.list(nationalId)).length, 0, 'nothing registered yet');
    await pressPin(page, 'Code PIN', PIN);
    await page.getByRole('button', { name: 'Continuer' }).click();
    await screenshot(page, 'app-activation-pin-confirm');
    await pressPin(page, 'Code PIN', PIN);
    await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
    await page.getByRole('heading', { name: 'Votre e-CPS est activée' }).waitFor();
    await screenshot(page, 'app-activated');

    const [device] = await t.vigie.devices.list(nationalId);
    assert.equal(device?.state, 'active');
    assert.equal(device?.name, 'e-CPS — Chrome sur Android');
    // The key: P-256, non-extractable, in IndexedDB; exportKey is refused.
    assert.deepEqual(await storedKey(page), { deviceId: device.id, type: 'private', extractable: false, algorithm: 'P-256', usages: ['sign'], exported: 'InvalidAccessError' });
    // The notice came through SMTP too, with its "ce n'était pas moi" link.
    const contacts = (await t.vigie.directory.getContacts(nationalId))!;
    const notice = await smtp.next((m) => m.to.includes(contacts.email!) && m.subject === 'Une nouvelle e-CPS a été activée');
    assert.match(notice.text, /Ce n’était pas moi/);
    assert.doesNotMatch(notice.text, /e-CPS — Chrome sur Android/, 'not the name the activating person gave');

    // Reloading keeps the device: the key signs the pull of pending requests.
    await page.reload();
    await page.getByRole('heading', { name: 'Aucune demande en attente' }).waitFor();
    await page.getByText('En direct').waitFor();
    assert.equal((await storedKey(page))?.deviceId, device.id);
    await screenshot(page, 'app-home');

    // "Ce n'était pas moi": the link from the email, opened in a browser, revokes this device.
    const link = /(http\S+\/e-cps\/revoquer\?token=\S+)/.exec(notice.text)![1]!;
    const mailbox = await (await browser.newContext(PHONE)).newPage();
    await mailbox.goto(link);
    await mailbox.getByRole('button', { name: 'Révoquer cette e-CPS' }).click();
    await mailbox.getByRole('heading', { name: 'L’e-CPS a été révoquée' }).waitFor();
    await screenshot(mailbox, 'revoke-link-done');
    await mailbox.context().close();
    assert.equal((await t.vigie.devices.list(nationalId))[0]?.state, 'revoked');
    // The open app learns it (its stream is closed at the next heartbeat; a reload asks at once).
    await page.reload();
    await page.getByRole('heading', { name: 'e-CPS inactive' }).waitFor();
    await page.getByText('révoquée').waitFor();

    // Renewal from there: the same procedure, and a new key replaces the old one.
    await page.getByRole('button', { name: 'Réactiver mon e-CPS' }).click();
    const renewSince = smtp.messages.length;
    await activateInApp(page, t, nationalId, '7391', codesFrom(nationalId, renewSince), { renewal: true });
    const devices = await t.vigie.devices.list(nationalId);
    assert.deepEqual(devices.map((d) => d.state).sort(), ['active', 'revoked']);
    const renewed = devices.find((d) => d.state === 'active')!;
    assert.equal((await storedKey(page))?.deviceId, renewed.id);
    await context.close();
  });

  it('renews an active e-CPS from its home screen, retiring the previous registration', async () => {
    const nationalId = '810000578566';
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    await activateInApp(page, t, nationalId, PIN, codesFrom(nationalId, smtp.messages.length));
    const [first] = await t.vigie.devices.list(nationalId);
    await page.getByRole('button', { name: 'Continuer' }).click();
    await page.getByRole('button', { name: 'Renouveler mon e-CPS' }).click();
    await page.getByRole('button', { name: 'Commencer' }).click();
    assert.equal(await page.getByLabel('Identifiant national').inputValue(), nationalId, 'prefilled');
    await activateInApp(page, t, nationalId, '7391', codesFrom(nationalId, smtp.messages.length), { renewal: true });
    const devices = await t.vigie.devices.list(nationalId);
    assert.equal(devices.find((d) => d.id === first!.id)?.state, 'revoked');
    assert.equal(devices.filter((d) => d.state === 'active').length, 1);
    await context.close();
  });

  it('"Supprimer ma e-CPS" revokes the device on the server and forgets the key', async () => {
    const nationalId = '810000701317';
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    await activateInApp(page, t, nationalId, PIN, codesFrom(nationalId, smtp.messages.length));
    await page.getByRole('button', { name: 'Continuer' }).click();
    await page.getByRole('button', { name: 'Supprimer ma e-CPS' }).click();
    await page.getByRole('heading', { name: 'Supprimer ma e-CPS ?' }).waitFor();
    await screenshot(page, 'app-delete-confirm');
    await page.getByRole('button', { name: 'Supprimer définitivement' }).click();
    await page.getByText('Votre e-CPS a été supprimée de ce téléphone.').waitFor();
    assert.equal((await t.vigie.devices.list(nationalId))[0]?.state, 'revoked');
    assert.equal(await storedKey(page), undefined);
    await context.close();
  });

  it('an unknown identifier gets the same screen as a known one, and nothing is sent', async () => {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    const before = smtp.messages.length;
    await page.goto(`${t.issuer}/app/`);
    await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
    await page.getByLabel('Identifiant national').fill('899999999999');
    await page.getByRole('button', { name: 'Recevoir mes codes' }).click();
    await page.getByText('deux codes viennent de lui être envoyés').waitFor();
    await page.getByText('Vous ne recevez rien ?').click();
    await page.getByText('faites-les corriger').waitFor();
    await screenshot(page, 'app-activation-neutral');
    await t.vigie.authenticator.activation.drain();
    assert.equal(smtp.messages.length, before);
    await context.close();
  });

  it('works offline as an installed shell: the cached app opens and says it is offline', async () => {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    await page.goto(`${t.issuer}/app/`);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      // Wait for the worker to control the page (clients.claim()).
      if (!navigator.serviceWorker.controller) await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    });
    await context.setOffline(true);
    await page.reload();
    await page.getByRole('heading', { name: 'Bienvenue dans e-CPS' }).waitFor();
    await page.getByRole('button', { name: 'Activer mon e-CPS' }).click();
    await page.getByLabel('Identifiant national').fill('810000000017');
    await page.getByRole('button', { name: 'Recevoir mes codes' }).click();
    await page.getByRole('alert').getByText('Connexion au serveur impossible').waitFor();
    await screenshot(page, 'app-offline');
    await context.close();
  });

  it('a Web Push reaching the service worker shows a notification naming the service, fetched with the device key', async () => {
    const nationalId = '810000751874';
    const context = await browser.newContext(PHONE);
    await context.grantPermissions(['notifications'], { origin: new URL(t.issuer).origin });
    const page = await context.newPage();
    await activateInApp(page, t, nationalId, PIN, codesFrom(nationalId, smtp.messages.length));
    await page.getByRole('button', { name: 'Continuer' }).click();
    await page.getByRole('heading', { name: 'Aucune demande en attente' }).waitFor();
    const cdp = await context.newCDPSession(page);
    const registration = new Promise<string>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }: { registrations: Array<{ registrationId: string; scopeURL: string; isDeleted: boolean }> }) => {
        const found = registrations.find((r) => r.scopeURL === `${t.issuer}/app/` && !r.isDeleted);
        if (found) resolve(found.registrationId);
      });
    });
    await cdp.send('ServiceWorker.enable');
    const registrationId = await registration;

    // A "silent" request: nothing was pushed live, the push below is all the phone gets.
    const challenge = await t.vigie.challenges.start({ nationalId, interactionUid: 'push', clientId: 'test-rp', clientName: 'Service de test', mode: 'pick', delivery: 'silent', context: { ip: '192.0.2.7', userAgent: 'UA', browser: 'Firefox sur Windows', place: null } });
    // The app in the background: the worker must show a notification itself.
    await setVisibility(page, 'hidden');
    await page.goto('about:blank');
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: new URL(t.issuer).origin, registrationId, data: JSON.stringify({ type: 'challenge', challengeId: challenge.id }) });
    const app = await context.newPage();
    await app.goto(`${t.issuer}/app/?demande=${challenge.id}`);
    const notifications = await app.evaluate(async () => {
      for (let i = 0; i < 50; i += 1) {
        const list = await (await navigator.serviceWorker.ready).getNotifications();
        if (list.length) return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag }));
        await new Promise((r) => setTimeout(r, 100));
      }
      return [];
    });
    assert.deepEqual(notifications, [{ title: 'Demande de connexion e-CPS', body: 'Service de test : quelqu’un demande à se connecter en votre nom. Ne validez que si c’est vous.', tag: challenge.id }]);
    // Opening the app (as a tap on the notification does) pulls the request.
    await openRequest(app);
    await app.getByText('Service de test').waitFor();
    await screenshot(app, 'app-opened-from-push');

    // A push whose request its browser withdrew before the phone could show it: the notification
    // says so and points to the report.
    const withdrawn = await t.vigie.challenges.start({ nationalId, interactionUid: 'push-2', clientId: 'test-rp', clientName: 'Service de test', mode: 'pick', delivery: 'silent', context: { ip: '192.0.2.8', userAgent: 'UA', browser: 'Firefox sur Windows', place: null } });
    await t.vigie.challenges.cancel(withdrawn, 'browser:192.0.2.8');
    await app.goto('about:blank'); // closed again: the worker speaks for it
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: new URL(t.issuer).origin, registrationId, data: JSON.stringify({ type: 'challenge', challengeId: withdrawn.id }) });
    const later = await context.newPage();
    await later.goto(`${t.issuer}/app/`);
    const ended = await later.evaluate(async (tag) => {
      for (let i = 0; i < 50; i += 1) {
        const [found] = await (await navigator.serviceWorker.ready).getNotifications({ tag });
        if (found) return found.body;
        await new Promise((r) => setTimeout(r, 100));
      }
      return undefined;
    }, withdrawn.id);
    assert.equal(ended, 'Une demande de connexion à Service de test a été retirée ou a expiré avant votre réponse. Si vous n’en êtes pas à l’origine, ouvrez e-CPS pour la signaler.');
    await context.close();
  });
});

describe('the device key survives a browser restart (Chromium profile on disk)', { skip: missing }, () => {
  let t: TestVigie;
  let profile: string;
  // Closed in `after` too: a Chromium left running after a failure would keep this file's process,
  // and the whole suite, waiting.
  let context: Awaited<ReturnType<typeof launchPersistent>> | undefined;
  before(async () => {
    ensureAppBuilt();
    t = await startTestVigie();
    profile = await mkdtemp(join(tmpdir(), 'vigie-chromium-'));
  });
  after(async () => {
    await context?.close().catch(() => {});
    await t?.close();
    await rm(profile, { recursive: true, force: true });
  });

  it('activate, quit Chromium, start it again: same device, still non-extractable, still signing', async () => {
    const nationalId = '810000860220';
    context = await launchPersistent(profile, PHONE);
    let page = context.pages()[0] ?? (await context.newPage());
    await activateInApp(page, t, nationalId, PIN, () => readCodes(t, nationalId));
    const before = await storedKey(page);
    assert.ok(before);
    await context.close();

    context = await launchPersistent(profile, PHONE);
    page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${t.issuer}/app/`);
    await page.getByRole('heading', { name: 'Aucune demande en attente' }).waitFor();
    assert.deepEqual(await storedKey(page), before);
    assert.equal(before.exported, 'InvalidAccessError');
    // Signed by the restored key: the pull shows a request made meanwhile.
    await t.vigie.challenges.start({ nationalId, interactionUid: 'restart', clientId: 'test-rp', clientName: 'Service de test', mode: 'pick', delivery: 'silent', context: { ip: '192.0.2.7', userAgent: 'UA', browser: 'Firefox sur Windows', place: null } });
    await page.getByRole('button', { name: 'Actualiser' }).click();
    await page.getByRole('heading', { name: 'Demande de connexion' }).waitFor();
    assert.ok((await t.vigie.devices.list(nationalId))[0]?.lastUsedAt);
    await context.close();
  });
});
