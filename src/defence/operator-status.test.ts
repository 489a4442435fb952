// The operator during an attack, at 3 a.m.: `vigie defence status` says what the defences did over
// the last minutes — how many requests were notified, held or refused and why, which professionals
// are targeted, from which sources, who is held right now, which blocks are in force — from the
// journal every node writes, whatever node served the requests.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { attemptLogin, browserAt } from '../../test/support/defence.ts';
import { operatorCli } from '../../test/support/cli.ts';

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];

for (const backend of backends) describe(`operator: vigie defence status [${backend.name}]`, () => {
  let t: TestVigie;
  before(async () => {
    t = await startTestVigie({ postgres: backend.postgres, env: { VIGIE_TRUST_PROXY: 'true' } });
  });
  after(async () => {
    await t.close();
  });

  it('names the targeted professionals, the sources, who is held and the blocks', async () => {
    const device = await t.activateDevice();
    const [colleague] = await t.vigie.db.kysely.selectFrom('professional').select('national_id').where('national_id', '!=', DEMO_PRO.nationalId).orderBy('national_id').limit(1).execute();
    assert.ok(colleague);
    await t.activateDevice(colleague.national_id);
    const quiet = await operatorCli(t, ['defence', 'status']);
    assert.match(quiet, /^Requests weighed by the defences: 0 /m);
    assert.match(quiet, /^Held now .*\n {2}-$/m);

    const attempts = [];
    for (let i = 1; i <= 3; i += 1) attempts.push(await attemptLogin(t.rp, t.redirectUri, browserAt(`203.0.113.${i}`), DEMO_PRO.nationalId));
    attempts.push(await attemptLogin(t.rp, t.redirectUri, browserAt('203.0.113.9'), colleague.national_id));
    assert.ok(attempts.every((a) => a.ok));
    // The professional recognises the bombing on the pending request: attack mode, source blocked.
    const pending = await device.listChallenges();
    assert.equal((await device.deny(pending.body.challenges[0]!.id, 'not_me')).status, 200);

    const report = await operatorCli(t, ['defence', 'status', '--minutes', '30']);
    assert.match(report, /^Defences over the last 30 min/m);
    assert.match(report, /^Requests weighed by the defences: 4 \(notified 4, held silent 0, refused 0\); reports: not me 1, wrong code 0$/m);
    assert.match(report, new RegExp(`^Most requested professionals:\\n {2}${DEMO_PRO.nationalId}\\t3 requests`, 'm'));
    assert.match(report, new RegExp(`^ {2}${colleague.national_id}\\t1 requests`, 'm'));
    assert.match(report, /^ {2}203\.0\.113\.0\/24\t4 requests\t2 professionals$/m);
    assert.match(report, new RegExp(`^Held now .*\\n {2}${DEMO_PRO.nationalId}\\tattack mode until \\d{4}-\\d\\d-\\d\\dT`, 'm'));
    assert.match(report, /^Blocks in force: 1 \(0 global\)/m);
  });

  it('refuses a period it cannot mean', async () => {
    for (const minutes of ['0', '-5', '1.5', 'soon', String(8 * 24 * 60)]) {
      await assert.rejects(operatorCli(t, ['defence', 'status', `--minutes=${minutes}`]), /--minutes must be a whole number of minutes, up to a week/);
    }
  });
});
