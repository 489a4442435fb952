// Threat: whoever changes a professional's email or mobile can later activate an e-CPS of their
// own. A change therefore needs a fresh e-CPS approval (≤ 5 min), a code sent to the new contact,
// a notice with a cancel link to the old one, and a cooling-off delay (72 h) before activation
// may use the new contact; every step is audited, and the audit log is tamper-evident.
// Time is the injected clock: no sleeping.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestVigie, DEMO_PRO, type TestVigie } from './support/harness.ts';
import { Jar, follow, request, submit } from './support/browser.ts';
import { skipWithoutPostgres } from './support/backends.ts';
import { walletLogin } from './support/wallet.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];
if (!process.env.DATABASE_URL) skipWithoutPostgres('wallet contact-detail changes');

const OLD_EMAIL = 'camille.martin@demo.vigie.test';
const OLD_MOBILE = '+33612345678';
const HOUR = 3600_000;
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** `vigie audit verify` as an operator runs it: a separate process on the same storage. */
function auditVerify(t: TestVigie): Promise<{ code: number; stdout: string }> {
  const c = t.vigie.config;
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    VIGIE_DATA_DIR: c.dataDir,
    VIGIE_SECRET: c.secret ?? '',
    PORT: String(c.port),
    ...(c.databaseUrl ? { DATABASE_URL: c.databaseUrl } : {}),
  };
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'audit', 'verify'], { env, timeout: 60_000 }, (error, stdout) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

for (const backend of backends) {
  describe(`wallet contact-detail changes [${backend.name}]`, () => {
    let t: TestVigie;
    let device: DeviceSimulator;
    before(async () => {
      t = await startTestVigie({ postgres: backend.postgres });
      device = await t.activateDevice();
    });
    after(async () => t.close());

    const outbox = (recipient: string) => t.vigie.authenticator.outbox.list({ recipient });
    const contacts = async () => t.vigie.directory.getContacts(DEMO_PRO.nationalId);

    it('email change: code to the new address, notice to the old one, usable only after the 72 h cooling-off; every step audited', async () => {
      const wallet = await walletLogin(t, device, { path: '/wallet/contacts' });
      assert.equal(wallet.url.pathname, '/wallet/contacts', 'back where the professional was going');
      assert.match(wallet.html, /Changer d'adresse e-mail/);
      assert.match(wallet.html, new RegExp(OLD_EMAIL.replace(/\./g, '\\.')));

      const requested = await submit(wallet.jar, `${t.issuer}/wallet/contacts/change`, { csrf: wallet.csrf, kind: 'email', value: 'Camille.Nouvelle@Exemple.FR' });
      const page = await requested.response.text();
      assert.match(page, /Un code de confirmation a été envoyé/);
      const newEmail = 'Camille.Nouvelle@exemple.fr';
      const [codeMail] = await outbox(newEmail);
      assert.ok(codeMail, 'a code went to the new address');
      const code = /\b(\d{6})\b/.exec(codeMail.body)?.[1];
      assert.ok(code);
      // (The device's activation sent its own notice there before: « Une nouvelle e-CPS a été activée ».)
      const [notice] = (await outbox(OLD_EMAIL)).filter((m) => m.subject !== 'Une nouvelle e-CPS a été activée');
      assert.ok(notice, 'a notice went to the old address');
      assert.match(notice.subject ?? '', /Changement de votre adresse e-mail/);
      assert.match(notice.body, /C•••@exemple\.fr/);
      assert.match(notice.body, new RegExp(`${t.issuer}/wallet/contacts/cancel/[A-Za-z0-9_-]{40,}`));
      assert.doesNotMatch(notice.body, new RegExp(code), 'the code never goes to the old contact');

      // A wrong code is refused on the page; the right one starts the cooling-off.
      const wrong = await submit(wallet.jar, `${t.issuer}/wallet/contacts/${/data-change="([^"]+)"/.exec(page)![1]}/confirm`, { csrf: wallet.csrf, code: code === '000000' ? '111111' : '000000' });
      assert.equal(wrong.response.status, 422);
      assert.match(await wrong.response.text(), /Code incorrect/);
      const changeId = /data-change="([^"]+)"/.exec(page)![1]!;
      const confirmed = await submit(wallet.jar, `${t.issuer}/wallet/contacts/${changeId}/confirm`, { csrf: wallet.csrf, code });
      const confirmedPage = await confirmed.response.text();
      assert.match(confirmedPage, /Changement confirmé/);
      assert.match(confirmedPage, /pourra servir à activer une e-CPS à partir du/);
      const confirmedAt = t.clock.now();

      // Activation reads the directory: still the old address during the cooling-off.
      assert.equal((await contacts())?.email, OLD_EMAIL);
      t.clock.advance(72 * HOUR - 60_000);
      await t.vigie.wallet.contacts.applyDue();
      assert.equal((await t.vigie.wallet.contacts.usableContacts(DEMO_PRO.nationalId))?.email, OLD_EMAIL);
      t.clock.advance(60_000);
      await t.vigie.wallet.contacts.applyDue();
      assert.equal((await contacts())?.email, newEmail);
      assert.equal((await contacts())?.mobile, OLD_MOBILE, 'the mobile is untouched');

      const audit = (await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).filter((e) => e.details.changeId === changeId);
      assert.deepEqual(audit.map((e) => e.event), ['contact_change.requested', 'contact_change.code_sent', 'contact_change.notice_sent', 'contact_change.code_wrong', 'contact_change.confirmed', 'contact_change.applied']);
      assert.equal(audit[0]!.actor, `wallet:${DEMO_PRO.nationalId}`);
      assert.equal(audit[4]!.details.usableAt, confirmedAt + 72 * HOUR);
      assert.ok(!JSON.stringify(audit).includes(newEmail), 'the audit log keeps contact details masked');
    });

    it('needs an e-CPS approval younger than 5 minutes; a new approval unlocks it', async () => {
      const wallet = await walletLogin(t, device);
      t.clock.advance(5 * 60_000 + 1000);
      const page = await (await request(wallet.jar, `${t.issuer}/wallet/contacts`)).text();
      assert.match(page, /Confirmer avec mon e-CPS/);
      assert.doesNotMatch(page, /Changer d'adresse e-mail/);
      const refused = await submit(wallet.jar, `${t.issuer}/wallet/contacts/change`, { csrf: wallet.csrf, kind: 'mobile', value: '06 98 76 54 32' });
      assert.equal(refused.response.status, 403);
      assert.match(await refused.response.text(), /confirmez d’abord votre identité avec votre e-CPS/);
      assert.equal((await t.vigie.wallet.contacts.list(DEMO_PRO.nationalId)).filter((c) => c.newValue === '+33698765432').length, 0);

      // Step-up: the same browser approves again and comes back to the contacts page.
      const fresh = await walletLogin(t, device, { jar: wallet.jar, path: '/wallet/login?return=%2Fwallet%2Fcontacts' });
      assert.equal(fresh.url.pathname, '/wallet/contacts');
      assert.match(fresh.html, /Changer de mobile/);
      const accepted = await submit(fresh.jar, `${t.issuer}/wallet/contacts/change`, { csrf: fresh.csrf, kind: 'mobile', value: '06 98 76 54 32' });
      assert.equal(accepted.response.status, 200);
      assert.match(await accepted.response.text(), /Un code de confirmation a été envoyé/);
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      assert.ok(audit.some((e) => e.event === 'contact_change.requested' && e.details.kind === 'mobile' && Number(e.details.approvalAgeSeconds) <= 300));
    });

    it('every wallet login is a new approval, even from a browser that holds a session and strips prompt=login', async () => {
      const wallet = await walletLogin(t, device);
      const sessionsBefore = await t.vigie.db.kysely.selectFrom('wallet_session').select('id_hash').execute();
      const start = await request(wallet.jar, `${t.issuer}/wallet/login?return=%2Fwallet%2Fcontacts`);
      const location = new URL(start.headers.get('location') ?? '');
      assert.equal(location.searchParams.get('prompt'), 'login');
      location.searchParams.delete('prompt');
      location.searchParams.delete('max_age');
      const landed = await follow(wallet.jar, location);
      assert.match(landed.url.pathname, /^\/interaction\//, 'the browser is sent to the login page, not back to the wallet');
      assert.match(await landed.response.text(), /Portefeuille Vigie/);
      assert.equal((await t.vigie.db.kysely.selectFrom('wallet_session').select('id_hash').execute()).length, sessionsBefore.length, 'no wallet session without a new approval');
    });

    it('refuses more than 3 change requests an hour (429), sending nothing for the refused one', async () => {
      t.clock.advance(HOUR + 1000);
      const wallet = await walletLogin(t, device);
      const sent = async () => (await outbox('+33698000001')).length + (await outbox('+33698000002')).length + (await outbox('+33698000003')).length + (await outbox('+33698000004')).length + (await outbox(OLD_MOBILE)).length;
      for (const n of [1, 2, 3]) {
        const accepted = await submit(wallet.jar, `${t.issuer}/wallet/contacts/change`, { csrf: wallet.csrf, kind: 'mobile', value: `06 98 00 00 0${n}` });
        assert.match(await accepted.response.text(), /Un code de confirmation a été envoyé/);
      }
      const before = await sent();
      const refused = await submit(wallet.jar, `${t.issuer}/wallet/contacts/change`, { csrf: wallet.csrf, kind: 'mobile', value: '06 98 00 00 04' });
      assert.equal(refused.response.status, 429);
      assert.match(await refused.response.text(), /Trop de demandes de changement de coordonnées/);
      assert.equal(await sent(), before, 'no code and no notice for the refused request');
      const changes = await t.vigie.wallet.contacts.list(DEMO_PRO.nationalId);
      assert.equal(changes.find((c) => c.newValue === '+33698000003')?.state, 'pending_code', 'the change in progress is not superseded by a refused request');
      assert.equal(changes.find((c) => c.newValue === '+33698000004')?.state, 'failed');
      const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
      assert.ok(audit.some((e) => e.event === 'contact_change.throttled'));
      t.clock.advance(HOUR + 1000);
    });

    it('the cancel link sent to the old contact cancels the change and ends every session; the new contact never becomes usable', async () => {
      const wallet = await walletLogin(t, device);
      const seen = new Set((await outbox(OLD_MOBILE)).map((m) => m.id));
      await submit(wallet.jar, `${t.issuer}/wallet/contacts/change`, { csrf: wallet.csrf, kind: 'mobile', value: '07 11 22 33 44' });
      const [sms] = (await outbox(OLD_MOBILE)).filter((m) => !seen.has(m.id));
      assert.ok(sms, 'the old mobile is told by SMS');
      const link = new RegExp(`${t.issuer}/wallet/contacts/cancel/[A-Za-z0-9_-]+`).exec(sms.body)?.[0];
      assert.ok(link, sms.body);
      const [code] = (await outbox('+33711223344')).map((m) => /\b(\d{6})\b/.exec(m.body)?.[1]);
      const change = (await t.vigie.wallet.contacts.list(DEMO_PRO.nationalId)).find((c) => c.newValue === '+33711223344')!;
      await t.vigie.wallet.contacts.confirm({ nationalId: DEMO_PRO.nationalId, id: change.id, code: code!, actor: 'test' });
      t.clock.advance(HOUR);

      // Whoever holds the old phone opens the link, without being logged in.
      const stranger = new Jar();
      const shown = await follow(stranger, link);
      const shownHtml = await shown.response.text();
      assert.equal(shown.response.status, 200);
      assert.match(shownHtml, /Annuler ce changement/);
      assert.match(shownHtml, /\+33 7 •• •• •• 44/);
      const cancelled = await submit(stranger, link, {});
      assert.match(await cancelled.response.text(), /Le changement de coordonnées est annulé/);
      // Someone changed contacts in the professional's name: every session is ended, the wallet's too.
      assert.deepEqual(await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId), []);
      const back = await follow(wallet.jar, `${t.issuer}/wallet`);
      assert.match(back.url.pathname, /^\/interaction\//);

      t.clock.advance(73 * HOUR);
      await t.vigie.wallet.contacts.applyDue();
      assert.notEqual((await contacts())?.mobile, '+33711223344');
      // The link is spent.
      const again = await submit(new Jar(), link, {});
      assert.equal(again.response.status, 409);
      assert.match(await again.response.text(), /rien à annuler/);
      const audit = (await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).filter((e) => e.details.changeId === change.id || e.event === 'session.ended_all');
      assert.ok(audit.some((e) => e.event === 'contact_change.cancelled' && e.details.by === 'cancel_link' && e.actor.startsWith('contact-link:')));
      assert.ok(audit.some((e) => e.event === 'session.ended_all' && e.details.reason === 'contact_change_cancelled'));
      // An unknown link is refused.
      assert.equal((await request(new Jar(), `${t.issuer}/wallet/contacts/cancel/${'x'.repeat(43)}`)).status, 404);
    });

    it('the audit log is tamper-evident: `vigie audit verify` names the first modified entry', async () => {
      const intact = await auditVerify(t);
      assert.equal(intact.code, 0, intact.stdout);
      assert.match(intact.stdout, /Audit chain intact/);
      const target = (await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).find((e) => e.event === 'contact_change.requested')!;
      // An insider rewrites history: the change now looks like it targeted another address.
      await t.vigie.db.kysely.updateTable('audit_log').set({ details: JSON.stringify({ ...target.details, newValue: 'a•••@ailleurs.fr' }) }).where('seq', '=', target.seq).execute();
      const broken = await auditVerify(t);
      assert.equal(broken.code, 2, broken.stdout);
      assert.match(broken.stdout, new RegExp(`Audit chain BROKEN at entry ${target.seq}: content does not match its hash`));
    });
  });
}
