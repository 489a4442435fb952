// Threat: push bombing leaves traces the professional must be able to see — refused, "not me",
// expired, wrong code, silent, throttled and blocked attempts — so they can spot it, export it
// and report it. The history merges push challenges and the defences' audit events; an outcome
// recorded later by a new defence shows up without any change to the wallet.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from './support/harness.ts';
import { request, submit } from './support/browser.ts';
import { skipWithoutPostgres } from './support/backends.ts';
import { walletLogin } from './support/wallet.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';
import type { StartChallenge } from '../src/challenge/service.ts';
import { randomId } from '../src/lib/crypto.ts';

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];
if (!process.env.DATABASE_URL) skipWithoutPostgres('wallet connection history and report');

const LUCAS = '810000450386';
const ATTACKER = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (Windows NT 10.0) Firefox/130.0', browser: 'Firefox sur Windows', place: 'Lyon, France' };

for (const backend of backends) {
  describe(`wallet connection history and report [${backend.name}]`, () => {
    let t: TestVigie;
    let device: DeviceSimulator;
    const keys: Record<string, string> = {};
    before(async () => {
      t = await startTestVigie({ postgres: backend.postgres });
      device = await t.activateDevice();
      const deviceId = device.state.deviceId!;
      const challenges = t.vigie.challenges;
      const start = (o: Partial<StartChallenge> = {}, nationalId = DEMO_PRO.nationalId) =>
        challenges.start({ nationalId, interactionUid: randomId(), clientId: 'test-rp', clientName: 'Service de test', mode: 'typed', delivery: 'push', context: { ...ATTACKER }, ...o });
      // One of each outcome, a second apart, oldest first.
      const step = () => t.clock.advance(1000);
      let c = await start();
      await challenges.approve(c, deviceId, c.displayCode);
      keys.approved = `c:${c.id}`;
      step();
      c = await start();
      await challenges.deny(c, deviceId, 'refused');
      keys.refused = `c:${c.id}`;
      step();
      c = await start({ clientName: '=HYPERLINK("http://evil.example")' });
      await challenges.deny(c, deviceId, 'not_me');
      keys.not_me = `c:${c.id}`;
      step();
      c = await start();
      await assert.rejects(challenges.approve(c, deviceId, c.displayCode === '000000' ? '111111' : '000000'));
      keys.wrong_code = `c:${c.id}`;
      step();
      const expired = await start();
      const silent = await start({ delivery: 'silent', context: { ...ATTACKER, holds: ['budget'] } });
      const blocked = await start({ delivery: 'silent', context: { ...ATTACKER, holds: ['reported_source'] } });
      const none = await start({ delivery: 'none' });
      Object.assign(keys, { expired: `c:${expired.id}`, silent: `c:${silent.id}`, blocked: `c:${blocked.id}`, none: `c:${none.id}` });
      t.clock.advance(61_000);
      await challenges.expireDue();
      // Refused before any challenge existed (src/defence/service.ts), and an outcome no one has labelled yet.
      await t.vigie.audit.append({ actor: `browser:${ATTACKER.ip}`, event: 'login.refused', subject: DEMO_PRO.nationalId, details: { reason: 'ip_rate', clientId: 'test-rp', place: ATTACKER.place } });
      step();
      await t.vigie.audit.append({ actor: `browser:${ATTACKER.ip}`, event: 'login.refused', subject: DEMO_PRO.nationalId, details: { reason: 'source_blocked', clientId: 'test-rp' } });
      step();
      await t.vigie.audit.append({ actor: `browser:${ATTACKER.ip}`, event: 'login.captcha_failed', subject: DEMO_PRO.nationalId, details: { clientId: 'test-rp' } });
      step();
      // Someone else's attempt.
      await start({ clientName: 'Service de Lucas' }, LUCAS);
      step();
    });
    after(async () => t.close());

    it('shows every outcome with service, time, place and browser; the suspicious ones are highlighted', async () => {
      const { attempts } = await t.vigie.wallet.history.page(DEMO_PRO.nationalId, { limit: 50 });
      const byKey = new Map(attempts.map((a) => [a.key, a]));
      const outcome = (name: string) => byKey.get(keys[name]!)?.outcome;
      assert.equal(outcome('approved'), 'approved');
      assert.equal(outcome('refused'), 'refused');
      assert.equal(outcome('not_me'), 'not_me');
      assert.equal(outcome('wrong_code'), 'wrong_code');
      assert.equal(outcome('expired'), 'expired');
      assert.equal(outcome('silent'), 'silent');
      assert.equal(outcome('blocked'), 'blocked');
      assert.equal(outcome('none'), 'none');
      const audited = attempts.filter((a) => a.key.startsWith('a:')).map((a) => a.outcome);
      assert.deepEqual(audited, ['captcha_failed', 'blocked', 'throttled']);
      assert.equal(byKey.get(keys.approved!)?.suspicious, false);
      for (const name of ['refused', 'not_me', 'wrong_code', 'expired', 'silent', 'blocked', 'none']) assert.equal(byKey.get(keys[name]!)?.suspicious, true, name);
      assert.ok(attempts.every((a) => a.service !== 'Service de Lucas'));
      const first = byKey.get(keys.refused!)!;
      assert.deepEqual([first.service, first.ip, first.browser, first.place, first.delivery], ['Service de test', ATTACKER.ip, ATTACKER.browser, ATTACKER.place, 'push']);
      assert.equal(byKey.get(keys.silent!)?.detail, 'quota quotidien atteint');

      const wallet = await walletLogin(t, device);
      const html = await (await request(wallet.jar, `${t.issuer}/wallet/history`)).text();
      for (const label of ['Approuvée', 'Refusée', '« Ce n’était pas moi »', 'Mauvais code choisi', 'Expirée sans réponse', 'Sans notification (trop de demandes)', 'Bloquée', 'Aucune e-CPS à notifier', 'Refusée : trop de demandes depuis ce réseau', 'Autre issue (captcha_failed)']) {
        assert.ok(html.includes(label), `history shows « ${label} »`);
      }
      assert.match(html, /Lyon, France \(adresse 203\.0\.113\.7\)/);
      assert.match(html, /Firefox sur Windows/);
      assert.ok((html.match(/class="suspect"/g) ?? []).length >= 9);
      assert.match(html, /&#39;|=HYPERLINK\(&quot;/, 'names are escaped');
      assert.doesNotMatch(html, /Service de Lucas/);
    });

    it('is paginated newest first without gaps or repeats', async () => {
      // 30 more expired attempts.
      for (let i = 0; i < 30; i += 1) {
        await t.vigie.challenges.start({ nationalId: DEMO_PRO.nationalId, interactionUid: randomId(), clientId: 'test-rp', clientName: 'Service de test', mode: 'typed', delivery: 'push', context: { ...ATTACKER } });
        if (i % 3 === 0) t.clock.advance(1000);
      }
      t.clock.advance(61_000);
      await t.vigie.challenges.expireDue();
      const all = await t.vigie.wallet.history.all(DEMO_PRO.nationalId);
      const seen: string[] = [];
      let cursor;
      for (let pages = 0; pages < 20; pages += 1) {
        const page = await t.vigie.wallet.history.page(DEMO_PRO.nationalId, { cursor, limit: 7 });
        seen.push(...page.attempts.map((a) => a.key));
        if (!page.next) break;
        cursor = page.next;
      }
      assert.equal(new Set(seen).size, seen.length, 'no attempt twice');
      assert.deepEqual(seen, all.map((a) => a.key));
      assert.ok(all.length >= 41, `${all.length} attempts`);
      for (let i = 1; i < all.length; i += 1) assert.ok(all[i - 1]!.at >= all[i]!.at, 'newest first');

      const wallet = await walletLogin(t, device);
      const first = await (await request(wallet.jar, `${t.issuer}/wallet/history`)).text();
      const next = /href="(\/wallet\/history\?after=[^"]+)" rel="next"/.exec(first)?.[1];
      assert.ok(next, 'a link to older attempts');
      const second = await (await request(wallet.jar, `${t.issuer}${next.replace(/&amp;/g, '&')}`)).text();
      assert.match(second, /Tentatives plus anciennes/);
      assert.match(second, /href="\/wallet\/history">Tentatives les plus récentes/);
    });

    it('exports the history as CSV (semicolons, BOM, formulas neutralised)', async () => {
      const wallet = await walletLogin(t, device);
      const response = await request(wallet.jar, `${t.issuer}/wallet/history.csv`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type')!, /^text\/csv/);
      assert.match(response.headers.get('content-disposition')!, /attachment; filename="vigie-historique-810000000017\.csv"/);
      const bytes = new Uint8Array(await response.arrayBuffer());
      assert.deepEqual([...bytes.slice(0, 3)], [0xef, 0xbb, 0xbf], 'a BOM, so spreadsheets read UTF-8');
      const text = new TextDecoder().decode(bytes);
      const lines = text.trimEnd().split('\r\n');
      assert.match(lines[0]!, /^Date \(heure de Paris\);Service;Résultat;Code résultat;À vérifier/);
      assert.equal(lines.length - 1, (await t.vigie.wallet.history.all(DEMO_PRO.nationalId)).length);
      const notMe = lines.find((l) => l.includes(keys.not_me!))!;
      assert.match(notMe, /;"'=HYPERLINK\(""http:\/\/evil\.example""\)";/, 'a cell starting with = cannot run as a formula');
      assert.match(notMe, /;not_me;oui;/);
      assert.ok(!text.includes('Service de Lucas'));
      assert.ok((await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).some((e) => e.event === 'wallet.history_exported'));
    });

    it('report: records it with the attempt\'s source, ends every session, tells the operator (audit, metric)', async () => {
      const wallet = await walletLogin(t, device);
      const form = await (await request(wallet.jar, `${t.issuer}/wallet/report?attempt=${encodeURIComponent(keys.not_me!)}`)).text();
      assert.match(form, /Tentative signalée/);
      assert.match(form, /Lyon, France \(adresse 203\.0\.113\.7\)/);
      const before = t.vigie.metrics.render();
      assert.doesNotMatch(before, /vigie_wallet_reports_total 1/);
      const done = await submit(wallet.jar, `${t.issuer}/wallet/report`, { csrf: wallet.csrf, attempt: keys.not_me!, comment: 'Notification reçue en pleine nuit' });
      assert.match(await done.response.text(), /Signalement enregistré/);
      assert.deepEqual(await t.vigie.wallet.sessions.list(DEMO_PRO.nationalId), []);
      assert.match(t.vigie.metrics.render(), /vigie_wallet_reports_total 1/);
      const entry = (await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).find((e) => e.event === 'wallet.report');
      assert.ok(entry);
      assert.deepEqual((entry.details.attempt as { ip: string; outcome: string; place: string }).ip, ATTACKER.ip);
      assert.equal((entry.details.attempt as { outcome: string }).outcome, 'not_me');
      assert.equal(entry.details.hasComment, true);
      const stored = await t.vigie.db.kysely.selectFrom('wallet_report').selectAll().where('national_id', '=', DEMO_PRO.nationalId).execute();
      assert.equal(stored.length, 1);
      assert.equal(stored[0]!.comment, 'Notification reçue en pleine nuit');

      // Another professional's attempt cannot be attached to a report.
      const lucasAttempt = (await t.vigie.wallet.history.all(LUCAS))[0]!;
      const again = await walletLogin(t, device);
      await submit(again.jar, `${t.issuer}/wallet/report`, { csrf: again.csrf, attempt: lucasAttempt.key });
      const second = (await t.vigie.db.kysely.selectFrom('wallet_report').selectAll().where('national_id', '=', DEMO_PRO.nationalId).orderBy('created_at', 'desc').execute());
      assert.equal(second.length, 2);
      assert.ok(second.every((r) => r.attempt !== lucasAttempt.key));
    });
  });
}
