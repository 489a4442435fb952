// Threat: a persistent attacker. Once a professional has recognised a bombing ("ce n'est pas moi"),
// the same source keeps coming back — to the same professional, and to colleagues. Defences: a
// "not me" answer blocks the requesting source (its /24 or /56 and its browser id) from notifying
// that professional for 30 days and records a fraud signal; when several professionals report
// the same prefix, it is blocked for everyone (refused with a clear message) for a configurable
// time. Operators list and lift blocks with `vigie blocks list` / `vigie blocks lift ID`.
// An attacker who withdraws each push at once (or lets it expire) leaves nothing to answer: the
// app may still report such a request as "not me" for 15 minutes, with the same effect.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, finishLogin, navigate, watchDeliveries, wrongCode, type SourceBrowser } from '../../test/support/defence.ts';
import { interactionUrl } from '../../test/support/harness.ts';
import { operatorCli as cli } from '../../test/support/cli.ts';
import type { DeviceSimulator } from '../device/simulator.ts';

const DAY = 86_400_000;

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];

for (const backend of backends) describe(`push bombing: "not me" blocks the source [${backend.name}]`, () => {
  let t: TestVigie;
  let deliveries: ReturnType<typeof watchDeliveries>;
  const devices = new Map<string, DeviceSimulator>();
  let colleagues: string[] = [];
  const from = async (browser: SourceBrowser, identifier = DEMO_PRO.nationalId) => {
    const attempt = await attemptLogin(t.rp, t.redirectUri, browser, identifier);
    assert.ok(attempt.ok, `accepted from ${browser.ip}`);
    return { id: attempt.challengeId, delivery: deliveries.of(attempt.challengeId), holds: (await t.vigie.challenges.get(attempt.challengeId))?.context.holds ?? [] };
  };
  // Reported once, the prefix no longer notifies the colleagues: they see its requests when they
  // open the app, and may report them there too.
  const notMe = async (identifier: string, ip: string) => {
    const request = await from(browserAt(ip), identifier);
    assert.equal((await devices.get(identifier)!.deny(request.id, 'not_me')).status, 200);
    return request;
  };

  before(async () => {
    t = await startTestVigie({ postgres: backend.postgres, env: { VIGIE_TRUST_PROXY: 'true', VIGIE_GLOBAL_BLOCK_HOURS: '48', VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR: '100' } });
    deliveries = watchDeliveries(t.vigie.bus);
    const rows = await t.vigie.db.kysely.selectFrom('professional').select('national_id').where('national_id', '!=', DEMO_PRO.nationalId).orderBy('national_id').limit(2).execute();
    colleagues = rows.map((r) => r.national_id);
    for (const id of [DEMO_PRO.nationalId, ...colleagues]) devices.set(id, await t.activateDevice(id));
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('blocks the prefix and the browser from notifying this professional for 30 days', async () => {
    const attacker = browserAt('203.0.113.5');
    const first = await from(attacker);
    assert.equal(first.delivery, 'push');
    assert.equal((await devices.get(DEMO_PRO.nationalId)!.deny(first.id, 'not_me')).status, 200);
    const audit = (await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).find((e) => e.event === 'defence.not_me');
    assert.ok(audit, 'audited');
    assert.equal(audit.details.prefix, '203.0.113.0/24');

    t.clock.advance(25 * 60 * 60_000); // past the 24 h attack mode and the back-off
    const samePrefix = await from(browserAt('203.0.113.77'));
    assert.equal(samePrefix.delivery, 'silent');
    assert.ok(samePrefix.holds.includes('blocked'));
    const sameBrowserElsewhere = await from({ jar: attacker.jar, ip: '198.51.100.3' });
    assert.equal(sameBrowserElsewhere.delivery, 'silent', 'the browser id is blocked too');
    assert.ok(sameBrowserElsewhere.holds.includes('blocked'));
    const elsewhere = await from(browserAt('198.18.9.9'));
    assert.equal(elsewhere.delivery, 'push', 'another source still notifies');
    await devices.get(DEMO_PRO.nationalId)!.deny(elsewhere.id, 'refused');

    t.clock.advance(28 * DAY);
    assert.equal((await from(browserAt('203.0.113.78'))).delivery, 'silent', 'still blocked on day 30');
    t.clock.advance(2 * DAY);
    assert.equal((await from(browserAt('203.0.113.79'))).delivery, 'push', 'the block and the report end after 30 days');
  });

  it('a push its browser withdrew at once can still be reported as "not me" from the app, once', async () => {
    t.clock.advance(31 * DAY);
    const device = devices.get(DEMO_PRO.nationalId)!;
    const attacker = browserAt('198.51.100.40');
    const attempt = await attemptLogin(t.rp, t.redirectUri, attacker, DEMO_PRO.nationalId);
    assert.ok(attempt.ok);
    assert.equal(deliveries.of(attempt.challengeId), 'push');
    assert.equal((await device.report(attempt.challengeId)).body.error, 'CHALLENGE_STILL_PENDING', 'a pending request is denied, not reported');
    assert.deepEqual(pick((await device.outcome(attempt.challengeId)).body), { state: 'pending', reason: null, reportable: false });
    const left = await navigate(attempt.browser, interactionUrl(attempt.challengeUrl, '/abort'), { csrf: attempt.csrf, challenge: attempt.challengeId }, (u) => u.href.startsWith(t.redirectUri));
    assert.equal(left.url.searchParams.get('error'), 'access_denied', 'the attacker withdrew the request');
    assert.equal((await t.vigie.challenges.get(attempt.challengeId))?.state, 'cancelled');
    assert.equal((await device.deny(attempt.challengeId, 'not_me')).body.error, 'CHALLENGE_NOT_PENDING', 'too late to answer…');
    // What the app reads when the notification is opened after the withdrawal.
    const ended = await device.outcome(attempt.challengeId);
    assert.equal(ended.status, 200);
    assert.deepEqual(pick(ended.body), { state: 'cancelled', reason: 'cancelled', reportable: true });
    assert.equal(ended.body.service?.name, 'Service de test');

    const reported = await device.report(attempt.challengeId);
    assert.equal(reported.status, 200, '…but not to report');
    assert.deepEqual(reported.body, { id: attempt.challengeId, state: 'cancelled', reported: true });
    const audit = (await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).find((e) => e.event === 'defence.not_me' && e.details.challengeId === attempt.challengeId);
    assert.ok(audit, 'audited like a "not me" answer');
    assert.equal(audit.actor, `device:${device.state.deviceId}`);
    assert.equal(audit.details.requestState, 'cancelled');
    assert.equal(audit.details.prefix, '198.51.100.0/24');
    const again = await device.report(attempt.challengeId);
    assert.deepEqual([again.status, again.body.error], [409, 'CHALLENGE_ALREADY_REPORTED']);
    assert.deepEqual(pick((await device.outcome(attempt.challengeId)).body), { state: 'cancelled', reason: 'cancelled', reportable: false }, 'reported: the app no longer offers it');
    assert.equal((await t.vigie.defence.listBlocks()).filter((b) => b.nationalId === DEMO_PRO.nationalId && b.prefix === '198.51.100.0/24').length, 1, 'one block for one report');

    t.clock.advance(25 * 60 * 60_000); // past the attack mode and the back-off
    const back = await from(browserAt('198.51.100.41'));
    assert.equal(back.delivery, 'silent', 'the reported source no longer notifies');
    assert.ok(back.holds.includes('blocked'));
    await device.deny(back.id, 'refused');
  });

  it('only a request that ended unanswered, addressed to this device, within 15 minutes, can be reported', async () => {
    t.clock.advance(31 * DAY);
    const device = devices.get(DEMO_PRO.nationalId)!;
    const answered = await from(browserAt('198.18.50.1'));
    assert.equal((await device.deny(answered.id, 'refused')).status, 200);
    const refused = await device.report(answered.id);
    assert.deepEqual([refused.status, refused.body.error], [409, 'CHALLENGE_NOT_REPORTABLE'], 'an answered request was answered');
    assert.deepEqual(pick((await device.outcome(answered.id)).body), { state: 'denied', reason: 'refused', reportable: false });
    // Superseded by a newer request of the same browser: that one is answered or reported instead
    // (were it approved, this one was the person's own double submit).
    const browser = browserAt('198.18.50.2');
    const first = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
    const second = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
    assert.ok(first.ok && second.ok);
    assert.deepEqual(pick((await device.outcome(first.challengeId)).body), { state: 'cancelled', reason: 'superseded', reportable: false });
    const superseded = await device.report(first.challengeId);
    assert.deepEqual([superseded.status, superseded.body.error], [409, 'CHALLENGE_SUPERSEDED']);
    assert.equal((await device.deny(second.challengeId, 'refused')).status, 200);

    t.clock.advance(26 * 60 * 60_000);
    const unanswered = await from(browserAt('198.18.51.1'));
    assert.equal(unanswered.delivery, 'push');
    const colleague = await devices.get(colleagues[0]!)!.report(unanswered.id);
    assert.deepEqual([colleague.status, colleague.body.error], [404, 'CHALLENGE_NOT_FOUND'], 'not addressed to this device');
    const colleagueReads = await devices.get(colleagues[0]!)!.outcome(unanswered.id);
    assert.deepEqual([colleagueReads.status, colleagueReads.body.error], [404, 'CHALLENGE_NOT_FOUND'], 'nor readable by another professional');
    t.clock.advance(61_000);
    await t.vigie.challenges.expireDue();
    assert.equal((await t.vigie.challenges.get(unanswered.id))?.state, 'expired');
    t.clock.advance(15 * 60_000);
    const late = await device.report(unanswered.id);
    assert.deepEqual([late.status, late.body.error], [410, 'CHALLENGE_REPORT_TOO_LATE']);
    assert.deepEqual(pick((await device.outcome(unanswered.id)).body), { state: 'expired', reason: null, reportable: false }, 'the app no longer offers it');
    assert.equal((await device.call('GET', '/challenges/..%2Fme/outcome')).status, 400, 'the id is validated');
    assert.equal((await device.call('POST', '/challenges/..%2Fme/report')).status, 400, 'the id is validated');
    const unsigned = await fetch(`${t.issuer}/device/v1/challenges/${unanswered.id}/report`, { method: 'POST' });
    assert.equal(unsigned.status, 401);
  });

  it('reports from three professionals block the prefix for everyone; the operator lists and lifts it', async () => {
    t.clock.advance(DAY);
    assert.equal((await notMe(DEMO_PRO.nationalId, '192.0.2.10')).delivery, 'push');
    const second = await notMe(colleagues[0]!, '192.0.2.11');
    assert.deepEqual([second.delivery, second.holds], ['silent', ['reported_source']], 'a reported source does not notify colleagues');
    assert.ok((await attemptLogin(t.rp, t.redirectUri, browserAt('192.0.2.12'), '899999999999')).ok, 'two reports are not enough');
    await notMe(colleagues[1]!, '192.0.2.12');

    for (const identifier of ['899999999999', DEMO_PRO.nationalId]) {
      const refused = await attemptLogin(t.rp, t.redirectUri, browserAt('192.0.2.200'), identifier);
      assert.ok(!refused.ok);
      assert.equal(refused.status, 429);
      assert.match(refused.alert, /temporairement bloquées à la suite de signalements/);
    }
    const global = (await t.vigie.defence.listBlocks()).find((b) => b.scope === 'global');
    assert.ok(global);
    assert.equal(global.prefix, '192.0.2.0/24');
    assert.equal(global.expiresAt - global.createdAt, 48 * 3_600_000, 'VIGIE_GLOBAL_BLOCK_HOURS');

    const output = await cli(t, ['blocks', 'list']);
    assert.match(output, new RegExp(`${global.id}\\tglobal\\treports\\t192\\.0\\.2\\.0/24`));
    assert.match(output, /professional\tnot_me/);
    assert.match(await cli(t, ['blocks', 'lift', global.id]), /Lifted global block/);
    assert.ok((await attemptLogin(t.rp, t.redirectUri, browserAt('192.0.2.201'), '899999999999')).ok, 'lifted');
    assert.ok((await t.vigie.audit.list()).some((e) => e.event === 'defence.block_lifted' && e.details.blockId === global.id));
  });

  it('a wrong code makes its network suspect for the other professionals for a day, as long as its block, not 30 days', async () => {
    t.clock.advance(2 * DAY);
    const victim = colleagues[1]!;
    const attack = await attemptLogin(t.rp, t.redirectUri, browserAt('100.64.7.10'), victim);
    assert.ok(attack.ok);
    assert.equal(deliveries.of(attack.challengeId), 'push');
    assert.equal((await devices.get(victim)!.approve(attack.challengeId, wrongCode(attack.displayCode), '2468')).status, 422);
    const sameNetwork = await from(browserAt('100.64.7.11'));
    assert.ok(sameNetwork.holds.includes('reported_source'), 'held for a colleague on that network the same day');
    t.clock.advance(DAY + 60_000);
    const nextDay = await from(browserAt('100.64.7.12'));
    assert.ok(!nextDay.holds.includes('reported_source'), `no longer suspect a day later (${nextDay.holds.join(', ')})`);
  });

  it('"not me" on a request from a trusted browser makes that browser suspect, not its network (perhaps the professional\'s own office)', async () => {
    t.clock.advance(2 * DAY);
    const owner = colleagues[0]!;
    const office = browserAt('100.64.9.10');
    // The owner logs in from the office once: typed code, then the browser is trusted.
    const first = await attemptLogin(t.rp, t.redirectUri, office, owner);
    assert.ok(first.ok);
    assert.equal((await devices.get(owner)!.approve(first.challengeId, first.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(first, t.redirectUri), true);
    // Someone else at that workstation asks in the owner's name; the owner answers "not me".
    t.clock.advance(60_000);
    const misuse = await attemptLogin(t.rp, t.redirectUri, office, owner);
    assert.ok(misuse.ok);
    assert.equal((await t.vigie.challenges.get(misuse.challengeId))?.context.trusted, true);
    assert.equal((await devices.get(owner)!.deny(misuse.challengeId, 'not_me')).status, 200);
    const colleagueOnTheNetwork = await from(browserAt('100.64.9.11'));
    assert.ok(!colleagueOnTheNetwork.holds.includes('reported_source'), `the office network is not suspect (${colleagueOnTheNetwork.holds.join(', ')})`);
    const thatBrowser = await from(office);
    assert.ok(thatBrowser.holds.includes('reported_source'), 'the browser itself is, whoever it asks for');
  });

  it('IPv6: reports spread over the /56 prefixes of one /48 block the whole /48 past 4 × the threshold', async () => {
    t.clock.advance(2 * DAY);
    const rows = await t.vigie.db.kysely.selectFrom('professional').select('national_id').orderBy('national_id', 'desc').limit(12).execute();
    const victims = rows.map((r) => r.national_id);
    for (const id of victims) if (!devices.has(id)) devices.set(id, await t.activateDevice(id));
    // One report per /56: no prefix ever reaches 3 reporters.
    for (const [i, id] of victims.entries()) {
      if (i === 11) assert.ok((await attemptLogin(t.rp, t.redirectUri, browserAt('2001:db8:9:f000::1'), '899999999999')).ok, 'not blocked at 11 reporters');
      await notMe(id, `2001:db8:9:${i.toString(16)}00::${i + 1}`);
    }
    const refused = await attemptLogin(t.rp, t.redirectUri, browserAt('2001:db8:9:f000::2'), '899999999999');
    assert.ok(!refused.ok && refused.status === 429, 'another /56 of the site is refused');
    assert.match(refused.alert, /temporairement bloquées à la suite de signalements/);
    assert.ok((await attemptLogin(t.rp, t.redirectUri, browserAt('2001:db8:a::1'), '899999999999')).ok, 'the next /48 is another site');
    const block = (await t.vigie.defence.listBlocks()).find((b) => b.scope === 'global' && b.prefix === '2001:db8:9::/48');
    assert.ok(block, 'one global block, on the /48');
    assert.ok((await t.vigie.audit.list()).some((e) => e.event === 'defence.global_block' && e.details.prefix === '2001:db8:9::/48' && e.details.reporters === 12));
  });

  it('the operator blocks a whole IPv6 /48 by hand (`vigie blocks add --ip … --site`)', async () => {
    // A year: still running on the test's clock, months ahead of the command's real one by now.
    assert.match(await cli(t, ['blocks', 'add', '--ip', '2001:db8:b:100::1', '--site', '--hours', '8760']), /Blocked 2001:db8:b::\/48 for everyone/);
    const refused = await attemptLogin(t.rp, t.redirectUri, browserAt('2001:db8:b:ff00::5'), '899999999999');
    assert.ok(!refused.ok && refused.status === 429, 'any /56 of it');
    assert.ok((await attemptLogin(t.rp, t.redirectUri, browserAt('2001:db8:c::1'), '899999999999')).ok);
    await assert.rejects(t.vigie.defence.blockPrefix('203.0.113.9', 1, 'operator', { site: true }), /IPv6 notion/);
  });
});

const pick = ({ state, reason, reportable }: { state?: string; reason?: string | null; reportable?: boolean }) => ({ state, reason, reportable });
