// Threat: harassment that no rate can fully stop (a patient attacker, a period when the
// professional is away and would approve nothing). Defence: the professional may turn push off
// entirely from the app, or set a quiet period ("je ne me connecte pas avant le …"); no request
// is pushed then — not even from a trusted browser — while logins remain possible by opening the
// app, which pulls the pending requests. Settings change only through signed device calls.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, finishLogin, watchDeliveries, type SourceBrowser } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';

type Settings = { pushEnabled: boolean; quietUntil: number | null; updatedAt: number | null; error?: string };

describe('harassment: notifications off and quiet period, from the app', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  let deliveries: ReturnType<typeof watchDeliveries>;
  let home: SourceBrowser;
  const login = async (browser: SourceBrowser) => {
    const attempt = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
    assert.ok(attempt.ok);
    return attempt;
  };

  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true' } });
    device = await t.activateDevice();
    deliveries = watchDeliveries(t.vigie.bus);
    home = browserAt('198.51.100.30');
    const first = await login(home);
    await device.approve(first.challengeId, first.displayCode, '2468');
    assert.equal(await finishLogin(first, t.redirectUri), true);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('turns push off: nothing is pushed, the app still pulls the request and the login completes', async () => {
    assert.deepEqual((await device.call<Settings>('GET', '/notification-settings')).body, { pushEnabled: true, quietUntil: null, updatedAt: null });
    const off = await device.call<Settings>('PUT', '/notification-settings', { pushEnabled: false });
    assert.equal(off.status, 200);
    assert.equal(off.body.pushEnabled, false);

    const real = await login(home);
    assert.equal(deliveries.of(real.challengeId), 'silent', 'even the trusted browser is not pushed');
    assert.deepEqual((await t.vigie.challenges.get(real.challengeId))?.context.holds, ['notifications_off']);
    const pulled = await device.listChallenges();
    assert.ok(pulled.body.challenges.some((c) => c.id === real.challengeId));
    assert.equal((await device.approve(real.challengeId, real.displayCode, '2468')).status, 200);
    assert.equal(await finishLogin(real, t.redirectUri), true);

    const attacker = await login(browserAt('203.0.113.90'));
    assert.equal(deliveries.of(attacker.challengeId), 'silent');
    assert.ok((await t.vigie.audit.list({ subject: DEMO_PRO.nationalId })).some((e) => e.event === 'defence.settings_changed' && e.details.pushEnabled === false));
  });

  it('a quiet period silences every push until its end', async () => {
    const until = t.clock.now() + 2 * 86_400_000;
    const quiet = await device.call<Settings>('PUT', '/notification-settings', { pushEnabled: true, quietUntil: until });
    assert.deepEqual([quiet.body.pushEnabled, quiet.body.quietUntil], [true, until]);
    t.clock.advance(86_400_000);
    const during = await login(home);
    assert.equal(deliveries.of(during.challengeId), 'silent');
    assert.deepEqual((await t.vigie.challenges.get(during.challengeId))?.context.holds, ['quiet_period']);
    t.clock.advance(86_400_000 + 1000);
    const after = await login(home);
    assert.equal(deliveries.of(after.challengeId), 'push', 'over: pushed again');
  });

  it('accepts only valid, signed changes', async () => {
    const past = await device.call<Settings>('PUT', '/notification-settings', { quietUntil: t.clock.now() - 1 });
    assert.deepEqual([past.status, past.body.error], [400, 'QUIET_PERIOD_INVALID']);
    const far = await device.call<Settings>('PUT', '/notification-settings', { quietUntil: t.clock.now() + 400 * 86_400_000 });
    assert.equal(far.status, 400);
    const unknown = await device.call<Settings>('PUT', '/notification-settings', { pushEnabled: false, everyone: true });
    assert.deepEqual([unknown.status, unknown.body.error], [400, 'VALIDATION_FAILED']);
    const unsigned = await fetch(`${t.issuer}/device/v1/notification-settings`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pushEnabled: false }) });
    assert.equal(unsigned.status, 401);
    const replayed = await device.call<Settings>('PUT', '/notification-settings', { pushEnabled: false }, {
      tamper: (init) => {
        init.body = JSON.stringify({ pushEnabled: true });
      },
    });
    assert.equal(replayed.status, 401, 'the signature covers the body');
    assert.equal((await device.call<Settings>('GET', '/notification-settings')).body.pushEnabled, true);
  });
});
