// Threat: stacked prompts. A browser that reloads the login page or submits the identifier again
// and again piles up pending requests on the professional's phone, each one a chance to be
// approved by mistake. Defence: at most one pending request per professional and requesting
// browser (cookie `vigie_bid`): a new request from the same browser cancels the previous one.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt } from '../../test/support/defence.ts';
import type { DeviceSimulator } from '../device/simulator.ts';

describe('push bombing: one pending request per professional and browser', () => {
  let t: TestVigie;
  let device: DeviceSimulator;
  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true' } });
    device = await t.activateDevice();
  });
  after(async () => t.close());

  it('a new request from the same browser supersedes the pending one', async () => {
    const browser = browserAt('198.51.100.61');
    const ids: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      const attempt = await attemptLogin(t.rp, t.redirectUri, browser, DEMO_PRO.nationalId);
      assert.ok(attempt.ok);
      ids.push(attempt.challengeId);
    }
    const other = await attemptLogin(t.rp, t.redirectUri, browserAt('198.51.100.62'), DEMO_PRO.nationalId);
    assert.ok(other.ok);
    const pending = (await device.listChallenges()).body.challenges.map((c) => c.id).sort();
    assert.deepEqual(pending, [ids[3]!, other.challengeId].sort());
    for (const id of ids.slice(0, 3)) {
      const challenge = await t.vigie.challenges.get(id);
      assert.deepEqual([challenge?.state, challenge?.reason], ['cancelled', 'superseded']);
    }
  });

  it('submitting again is no way round the back-off: a superseded push counts as unanswered; approving the last one clears it', async () => {
    const nationalId = '810000578566';
    const device = await t.activateDevice(nationalId);
    const browser = browserAt('198.51.100.71');
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const attempt = await attemptLogin(t.rp, t.redirectUri, browser, nationalId);
      assert.ok(attempt.ok);
      ids.push(attempt.challengeId);
    }
    const [first, second, third] = await Promise.all(ids.map((id) => t.vigie.challenges.get(id)));
    assert.deepEqual([first?.delivery, second?.delivery], ['push', 'push'], 'each was decided before the previous one was superseded');
    assert.equal(third?.delivery, 'silent', 'the third comes after a strike: held by the back-off');
    assert.ok(third?.context.holds?.includes('backoff'));
    const backoffs = (await t.vigie.audit.list({ subject: nationalId })).filter((e) => e.event === 'defence.backoff');
    assert.deepEqual(backoffs.map((e) => e.details.outcome), ['superseded', 'superseded']);
    // The professional, who only mistyped, approves the last one (visible in the app): all clear.
    const approved = await device.approve(ids[2]!, third!.displayCode, '2468');
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const next = await attemptLogin(t.rp, t.redirectUri, browserAt('198.51.100.72'), nationalId);
    assert.ok(next.ok);
    assert.equal((await t.vigie.challenges.get(next.challengeId))?.delivery, 'push');
  });
});
