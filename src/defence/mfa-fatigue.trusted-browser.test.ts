// Threat: the defences turned against the real user. By bombing a professional — even from the
// professional's own network (a shared hospital or office address) — an attacker spends the
// professional's notification budget, triggers back-off, attack mode and blocks, and floods the
// address past its rate, so that the real user's own logins are refused or never notified.
// Defence: a browser that completed a login for this professional holds a signed trusted-browser
// cookie; it keeps notifying normally (number matching) whatever the attacker caused elsewhere.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, finishLogin, watchDeliveries, wrongCode, type SourceBrowser } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';
import { parseCookies } from './trusted-browser.ts';

const OFFICE = '203.0.113.20';

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];

for (const backend of backends) describe(`MFA fatigue: an attacker cannot lock the real user out [${backend.name}]`, () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  let deliveries: ReturnType<typeof watchDeliveries>;
  let office: SourceBrowser;

  before(async () => {
    t = await startTestVigie({ postgres: backend.postgres, env: { VIGIE_TRUST_PROXY: 'true' } });
    device = await t.activateDevice();
    deliveries = watchDeliveries(t.vigie.bus);
    // The real user logs in once from the office browser: typed code, then it is trusted.
    office = browserAt(OFFICE);
    const first = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(first.ok);
    assert.equal(first.mode, 'typed');
    assert.equal((await device.approve(first.challengeId, first.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(first, t.redirectUri), true);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('keeps notifying the trusted browser while the attacker has spent every limit, from the same address', async () => {
    t.clock.advance(60_000);
    // The attacker, behind the same office address and from its /24, bombs: the victim types a
    // wrong code by reflex on the first notification (block + attack mode), the rest are held,
    // and the flood pushes the shared address past its rate.
    let firstPushed = true;
    for (let i = 0; i < 42; i += 1) {
      const attacker = await attemptLogin(t.rp, t.redirectUri, browserAt(i % 2 ? OFFICE : `203.0.113.${100 + i}`), DEMO_PRO.nationalId);
      if (!attacker.ok) continue;
      if (firstPushed && deliveries.of(attacker.challengeId) === 'push') {
        firstPushed = false;
        assert.equal((await device.approve(attacker.challengeId, wrongCode(attacker.displayCode), '2468')).status, 422);
      }
    }
    const fromOfficeUntrusted = await attemptLogin(t.rp, t.redirectUri, browserAt(OFFICE), DEMO_PRO.nationalId);
    assert.ok(!fromOfficeUntrusted.ok && fromOfficeUntrusted.status === 429, 'the shared address is over its rate for unknown browsers');
    const blocks = await t.vigie.defence.listBlocks();
    assert.ok(blocks.some((b) => b.nationalId === DEMO_PRO.nationalId && b.prefix === '203.0.113.0/24'), 'the office prefix is blocked for this professional');

    // The real user, from the trusted office browser: accepted, notified, number matching.
    const real = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(real.ok, 'not refused');
    assert.equal(deliveries.of(real.challengeId), 'push', 'notified');
    assert.equal(real.mode, 'pick');
    const challenge = await t.vigie.challenges.get(real.challengeId);
    assert.deepEqual(challenge?.context.holds, []);
    assert.equal(challenge?.context.trusted, true);
    assert.equal((await device.approve(real.challengeId, real.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(real, t.redirectUri), true, 'the real user is logged in');
  });

  it('the trust is bound to its browser: the cookie copied without the browser id does not help', async () => {
    t.clock.advance(60_000);
    const thief = browserAt('198.51.100.9');
    const site = new URL(t.issuer);
    for (const [name, value] of parseCookies(office.jar.header(site))) {
      if (name.startsWith('vigie_tb_')) thief.jar.store(site, new Response(null, { headers: { 'set-cookie': `${name}=${value}` } }));
    }
    assert.ok(thief.jar.header(site).includes('vigie_tb_'));
    const stolen = await attemptLogin(t.rp, t.redirectUri, thief, DEMO_PRO.nationalId);
    assert.ok(stolen.ok);
    assert.equal(stolen.mode, 'typed');
    assert.equal(deliveries.of(stolen.challengeId), 'silent', 'held like any unknown browser during the attack');
  });

  it('a wrong pick from the trusted browser turns its next requests to typed codes for a day (no blind guessing at a shared workstation)', async () => {
    t.clock.advance(60_000);
    const guessed = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(guessed.ok);
    assert.equal(guessed.mode, 'pick');
    assert.equal((await device.approve(guessed.challengeId, wrongCode(guessed.displayCode), '2468')).status, 422);
    const next = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(next.ok);
    assert.equal(next.mode, 'typed');
    assert.equal(deliveries.of(next.challengeId), 'push', 'still notified: the brake is the code, not silence');
    assert.deepEqual((await t.vigie.challenges.get(next.challengeId))?.context.risk, ['wrong_pick']);
    assert.equal((await device.approve(next.challengeId, next.displayCode, '2468')).status, 200);
    t.clock.advance(24 * 3600_000 + 1);
    const later = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(later.ok);
    assert.equal(later.mode, 'pick', 'a day later, number matching again');
    assert.equal((await device.approve(later.challengeId, later.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(later, t.redirectUri), true);
  });

  it('once the professional revokes their trusted browsers, the office browser is unknown again until it completes a login', async () => {
    t.clock.advance(60_000);
    const pending = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(pending.ok);
    assert.equal(pending.mode, 'pick');
    assert.equal(await t.vigie.defence.trustedBrowsersForgottenAt(DEMO_PRO.nationalId), null);
    await t.vigie.defence.forgetTrustedBrowsers(DEMO_PRO.nationalId, `wallet:${DEMO_PRO.nationalId}`);
    assert.equal(await t.vigie.defence.trustedBrowsersForgottenAt(DEMO_PRO.nationalId), t.clock.now());
    const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
    assert.ok(audit.some((e) => e.event === 'defence.trusted_browsers_forgotten' && e.actor === `wallet:${DEMO_PRO.nationalId}`));
    assert.equal((await t.vigie.challenges.get(pending.challengeId))?.state, 'cancelled', 'its pending request, asked as trusted, no longer answerable by a pick');

    t.clock.advance(1000);
    const revoked = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(revoked.ok);
    assert.equal(revoked.mode, 'typed', 'treated as an unknown browser: typed code');
    const challenge = await t.vigie.challenges.get(revoked.challengeId);
    assert.equal(challenge?.context.trusted, false);
    assert.ok(challenge?.context.risk?.includes('new_browser'));
    assert.equal((await device.approve(revoked.challengeId, revoked.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(revoked, t.redirectUri), true);

    t.clock.advance(60_000);
    const trustedAgain = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(trustedAgain.ok);
    assert.equal(trustedAgain.mode, 'pick', 'the completed login trusted it again');
    assert.equal((await t.vigie.challenges.get(trustedAgain.challengeId))?.context.trusted, true);
  });

  it('a login asked before a revocation and finished after it gives no trust back', async () => {
    t.clock.advance(60_000);
    const inFlight = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(inFlight.ok);
    assert.equal(inFlight.mode, 'pick');
    assert.equal((await device.approve(inFlight.challengeId, inFlight.displayCode, '2468')).status, 200);
    t.clock.advance(1000);
    await t.vigie.defence.forgetTrustedBrowsers(DEMO_PRO.nationalId, 'operator');
    t.clock.advance(1000);
    assert.equal(await finishLogin(inFlight, t.redirectUri), true, 'the approved login still finishes');
    t.clock.advance(60_000);
    const next = await attemptLogin(t.rp, t.redirectUri, office, DEMO_PRO.nationalId);
    assert.ok(next.ok);
    assert.equal(next.mode, 'typed', 'its trust cookie dates from the request, before the revocation');
  });
});
