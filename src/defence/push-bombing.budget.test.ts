// Threat: push bombing. The attacker knows a professional's public identifier and asks for a
// login again and again, each time from a fresh browser and a fresh network, hoping that one of
// the many notifications will be accepted by reflex or to wear the professional down. Defence:
// a daily notification budget for browsers that are not trusted, and a back-off that doubles
// (30 s, 60 s, 120 s … up to 1 h) after each notification refused, expired, failed or withdrawn
// by the untrusted browser that asked. Beyond,
// requests are created silent: never pushed, still visible when the professional opens the app.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, interactionUrl, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt, navigate, watchDeliveries } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];

for (const backend of backends) describe(`push bombing: notification budget and back-off [${backend.name}]`, () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  let deliveries: ReturnType<typeof watchDeliveries>;
  let source = 0;
  // Every attempt from a new browser in a new /24, so that no per-source rule is involved.
  const bomb = async () => {
    source += 1;
    const attempt = await attemptLogin(t.rp, t.redirectUri, browserAt(`198.18.${source}.7`), DEMO_PRO.nationalId);
    assert.ok(attempt.ok, 'the request is accepted');
    return { id: attempt.challengeId, delivery: deliveries.of(attempt.challengeId) };
  };
  const ignore = async () => {
    t.clock.advance(61_000);
    await t.vigie.challenges.expireDue();
  };

  before(async () => {
    t = await startTestVigie({ postgres: backend.postgres, env: { VIGIE_TRUST_PROXY: 'true' } });
    device = await t.activateDevice();
    deliveries = watchDeliveries(t.vigie.bus);
  });
  after(async () => {
    deliveries.stop();
    await t.close();
  });

  it('doubles a back-off after each ignored notification and stops at the daily budget', async () => {
    const first = await bomb();
    assert.equal(first.delivery, 'push');
    await ignore(); // strike 1: 30 s of back-off

    assert.equal((await bomb()).delivery, 'silent', 'inside the 30 s back-off');
    t.clock.advance(31_000);
    assert.equal((await bomb()).delivery, 'push', 'after the back-off');
    await ignore(); // strike 2: 60 s

    t.clock.advance(45_000);
    assert.equal((await bomb()).delivery, 'silent', 'the back-off doubled to 60 s');
    t.clock.advance(16_000);
    assert.equal((await bomb()).delivery, 'push', 'third notification of the day');
    await ignore(); // strike 3: 120 s

    t.clock.advance(121_000);
    const overBudget = await bomb();
    assert.equal(overBudget.delivery, 'silent', 'the daily budget (3) is spent');
    const challenge = await t.vigie.challenges.get(overBudget.id);
    assert.deepEqual(challenge?.context.holds, ['budget']);

    // Never lost for the real user: the silent request is there when the app is opened.
    const pending = await device.listChallenges();
    assert.ok(pending.body.challenges.some((c) => c.id === overBudget.id && c.delivery === 'silent'));

    let pushed = 0;
    for (let hour = 0; hour < 20; hour += 1) {
      t.clock.advance(3_600_000);
      if ((await bomb()).delivery === 'push') pushed += 1;
      await ignore();
    }
    assert.equal(pushed, 0, 'no more notification within 24 hours of the first ones');
  });

  it('a push withdrawn by the untrusted browser that asked counts as a strike (no way round the back-off)', async () => {
    t.clock.advance(25 * 3_600_000);
    source += 1;
    const attempt = await attemptLogin(t.rp, t.redirectUri, browserAt(`198.18.${source}.7`), DEMO_PRO.nationalId);
    assert.ok(attempt.ok);
    assert.equal(deliveries.of(attempt.challengeId), 'push');
    const restart = interactionUrl(attempt.challengeUrl, '/restart');
    const left = await navigate(attempt.browser, restart, { csrf: attempt.csrf, challenge: attempt.challengeId });
    assert.equal(left.response.status, 200);
    assert.equal((await t.vigie.challenges.get(attempt.challengeId))?.state, 'cancelled');
    assert.equal((await bomb()).delivery, 'silent', 'the withdrawn push started a back-off');
    const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
    assert.ok(audit.some((e) => e.event === 'defence.backoff' && e.details.challengeId === attempt.challengeId && e.details.outcome === 'cancelled'));
  });

  it('a refusal counts as a strike too', async () => {
    t.clock.advance(25 * 3_600_000); // a new day: budget renewed, the last back-off (1 h max) is over
    const refused = await bomb();
    assert.equal(refused.delivery, 'push');
    assert.equal((await device.deny(refused.id, 'refused')).status, 200);
    assert.equal((await bomb()).delivery, 'silent', 'a refusal starts a back-off too');
    const audit = await t.vigie.audit.list({ subject: DEMO_PRO.nationalId });
    assert.ok(audit.some((e) => e.event === 'defence.backoff' && e.details.outcome === 'refused'));
  });
});
