// Activation of the app by email + SMS codes over the device protocol, attacked: enumeration,
// code guessing, replay, expiry, races, oversize and malformed input. Each refusal must be precise
// and leave no half-registered device. Runs on SQLite, and on PostgreSQL when DATABASE_URL is set.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from './support/harness.ts';
import { skipWithoutPostgres } from './support/backends.ts';
import { readCodes, noticeLink } from './support/activation.ts';
import { DeviceSimulator } from '../src/device/simulator.ts';
import { DEMO_CONTACTS } from '../src/demo.ts';
import { readFileSync } from 'node:fs';

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];
if (!process.env.DATABASE_URL) skipWithoutPostgres('e-CPS activation by email + SMS codes');

// Demo professionals with both contacts (fixtures/demo-contacts.csv): one per case, so flows never mix.
const PROS = readFileSync(DEMO_CONTACTS, 'utf8').split('\n').slice(1).map((line) => line.split(',')[0]!).filter((id) => /^8\d{11}$/.test(id) && id !== DEMO_PRO.nationalId);
let nextPro = 0;
const pro = () => PROS[nextPro++ % PROS.length]!;

for (const backend of backends) {
  describe(`e-CPS activation by email + SMS codes [${backend.name}]`, () => {
    let t: TestVigie;
    before(async () => {
      t = await startTestVigie({ postgres: backend.postgres, env: { VIGIE_ACTIVATION_SENDS_PER_IP_PER_HOUR: '1000' } });
    });
    after(async () => t.close());

    const simulator = () => DeviceSimulator.create(t.issuer, { clock: t.clock });
    const devicesOf = async (nationalId: string) => (await t.vigie.devices.list(nationalId)).filter((d) => d.state === 'active');
    async function verified(nationalId: string) {
      const sim = await simulator();
      const started = await sim.startCodeActivation(nationalId);
      assert.equal(started.status, 202);
      const codes = await readCodes(t, nationalId);
      assert.equal((await sim.verifyCodes(started.body.flowId, codes.email, codes.sms)).status, 200);
      return { sim, flowId: started.body.flowId, codes };
    }

    it('activates with both codes, then a notice email whose "ce n’était pas moi" link revokes the device', async () => {
      const nationalId = pro();
      const sim = await simulator();
      const started = await sim.startCodeActivation(nationalId);
      assert.equal(started.status, 202);
      assert.match(started.body.flowId, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(started.body.expiresAt, t.clock.now() + 10 * 60_000, 'valid 10 minutes');
      const codes = await readCodes(t, nationalId);
      assert.notEqual(codes.email, codes.sms);
      const verify = await sim.verifyCodes(started.body.flowId, codes.email, codes.sms);
      assert.equal(verify.status, 200);
      assert.equal(verify.body.state, 'verified');
      // The name is the activating person's choice: an impostor would pick a reassuring one.
      const done = await sim.completeCodeActivation(started.body.flowId, nationalId, '4826', 'Mise à jour du support, rien à faire');
      assert.equal(done.status, 201, JSON.stringify(done.body));
      assert.equal((await sim.call('GET', '/me')).status, 200, 'the new key signs device calls');
      assert.equal((await devicesOf(nationalId)).length, 1);

      const contacts = await t.vigie.directory.getContacts(nationalId);
      const link = await noticeLink(t, contacts!.email!, { notQuoting: 'Mise à jour du support' });
      const page = await fetch(link);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Révoquer cette e-CPS/);
      assert.equal((await devicesOf(nationalId)).length, 1, 'opening the link (a mail scanner would) revokes nothing');
      const token = new URL(link).searchParams.get('token')!;
      const revoke = await fetch(`${t.issuer}/e-cps/revoquer`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
      assert.equal(revoke.status, 200);
      assert.match(await revoke.text(), /révoquée/);
      assert.equal((await devicesOf(nationalId)).length, 0);
      assert.equal((await sim.call<{ error: string }>('GET', '/me')).body.error, 'DEVICE_REVOKED');
      const again = await fetch(`${t.issuer}/e-cps/revoquer`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
      assert.equal(again.status, 410, 'the link is single use');
      assert.equal((await fetch(`${t.issuer}/e-cps/revoquer?token=${'x'.repeat(43)}`)).status, 410);
      const events = (await t.vigie.audit.list({ subject: nationalId })).map((e) => e.event);
      const expected = ['activation.started', 'activation.verified', 'device.activated', 'device.revoked'];
      assert.deepEqual(events.filter((e) => expected.includes(e)), expected);
      for (const sent of ['activation.email_sent', 'activation.sms_sent', 'activation.notice_sent']) assert.ok(events.includes(sent), sent);
    });

    it('an activation with an operator’s code sends the same notice, whose link revokes the device', async () => {
      const nationalId = pro();
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      const sim = await simulator();
      const done = await sim.activate({ nationalId, activationCode: code, pin: '4826' });
      assert.equal(done.status, 201, JSON.stringify(done.body));
      const link = await noticeLink(t, (await t.vigie.directory.getContacts(nationalId))!.email!);
      const token = new URL(link).searchParams.get('token')!;
      const revoke = await fetch(`${t.issuer}/e-cps/revoquer`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
      assert.equal(revoke.status, 200);
      assert.equal((await devicesOf(nationalId)).length, 0);
      assert.equal((await sim.call<{ error: string }>('GET', '/me')).body.error, 'DEVICE_REVOKED');
      const notice = (await t.vigie.audit.list({ subject: nationalId })).find((e) => e.event === 'activation.notice_sent');
      assert.deepEqual(notice?.details, { deviceId: done.body.id });
    });

    it('without an email on file, the notice of an operator-code activation goes by SMS, with the same link', async () => {
      const nationalId = pro();
      const { mobile } = (await t.vigie.directory.getContacts(nationalId))!;
      await t.vigie.directory.upsertContacts([{ nationalId, email: null, mobile }]);
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      const sim = await simulator();
      assert.equal((await sim.activate({ nationalId, activationCode: code, pin: '4826' })).status, 201);
      await t.vigie.authenticator.activation.drain();
      const [sms] = (await t.vigie.authenticator.outbox.list({ channel: 'sms', recipient: mobile!, limit: 1 }));
      assert.match(sms!.body, /^Vigie e-CPS : une e-CPS a été activée sur votre compte le [0-9/]+ [0-9:]+\. Pas vous \? Révoquez-la : http/);
      const token = new URL(/(http\S+)$/.exec(sms!.body)![1]!).searchParams.get('token')!;
      const revoke = await fetch(`${t.issuer}/e-cps/revoquer`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
      assert.equal(revoke.status, 200);
      assert.equal((await devicesOf(nationalId)).length, 0);
    });

    it('codes are kept only as keyed hashes, and appear in no audit entry', async () => {
      const nationalId = pro();
      const { codes, flowId } = await verified(nationalId);
      const row = await t.vigie.db.kysely.selectFrom('activation').selectAll().where('id', '=', flowId).executeTakeFirstOrThrow();
      const stored = JSON.stringify(row);
      assert.ok(!stored.includes(codes.email) && !stored.includes(codes.sms), 'no code in the flow record');
      const audit = JSON.stringify(await t.vigie.audit.list({ subject: nationalId }));
      assert.ok(!audit.includes(codes.email) && !audit.includes(codes.sms), 'no code in the audit log');
    });

    it('answers an unknown identifier, or one without a mobile, exactly like a known one, and sends nothing', async () => {
      const known = pro();
      const withoutMobile = pro();
      const contacts = await t.vigie.directory.getContacts(withoutMobile);
      await t.vigie.directory.upsertContacts([{ nationalId: withoutMobile, email: contacts!.email, mobile: null }]);
      const sim = await simulator();
      const shape = (body: Record<string, unknown>) => Object.keys(body).sort().join() + typeof body.flowId + typeof body.expiresAt;
      const answers = [];
      for (const nationalId of [known, '899999999999', withoutMobile]) {
        const before = (await t.vigie.authenticator.outbox.list({ limit: 1000 })).length;
        const started = await sim.startCodeActivation(nationalId);
        await t.vigie.authenticator.activation.drain();
        const sent = (await t.vigie.authenticator.outbox.list({ limit: 1000 })).length - before;
        answers.push({ status: started.status, shape: shape(started.body), sent, flowId: started.body.flowId });
      }
      assert.deepEqual(answers.map((a) => [a.status, a.shape]), [[202, answers[0]!.shape], [202, answers[0]!.shape], [202, answers[0]!.shape]]);
      assert.deepEqual(answers.map((a) => a.sent), [2, 0, 0]);
      await readCodes(t, known);
      // The decoy flows refuse every code the same way a real one refuses a wrong code.
      for (const a of answers.slice(1)) {
        const wrong = await sim.verifyCodes(a.flowId, '123456', '654321');
        assert.equal(wrong.status, 422);
        assert.equal(wrong.body.error, 'ACTIVATION_CODE_WRONG');
      }
    });

    it('refuses malformed identifiers, codes, PINs and flow ids with a precise message', async () => {
      const sim = await simulator();
      for (const nationalId of ['10000000017', '81000000001', '8100000000170', '81000000001A', '910000000017', '', ' 810000000017']) {
        const r = await sim.startCodeActivation(nationalId);
        assert.equal(r.status, 400, nationalId);
        assert.equal(r.body.error, 'VALIDATION_FAILED');
        assert.match(r.body.message!, /nationalId: a national identifier/);
      }
      const extra = await fetch(`${t.issuer}/device/v1/activation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nationalId: DEMO_PRO.nationalId, email: 'x@y.z' }) });
      assert.equal(extra.status, 400, 'unknown fields are refused');
      const notJson = await fetch(`${t.issuer}/device/v1/activation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nationalId":' });
      assert.equal(notJson.status, 400);
      assert.match(((await notJson.json()) as { message: string }).message, /not valid JSON/);
      const form = await fetch(`${t.issuer}/device/v1/activation`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'nationalId=810000000017' });
      assert.equal(form.status, 415);

      const nationalId = pro();
      const { flowId } = (await sim.startCodeActivation(nationalId)).body;
      await readCodes(t, nationalId);
      for (const [email, sms, field] of [['12345', '123456', 'emailCode'], ['123456', '1234567', 'smsCode'], ['12345a', '123456', 'emailCode'], ['١٢٣٤٥٦', '123456', 'emailCode']] as const) {
        const r = await sim.verifyCodes(flowId, email, sms);
        assert.equal(r.status, 400, `${email}/${sms}`);
        assert.match(r.body.message!, new RegExp(`${field}: 6 digits`));
      }
      const attempts = await t.vigie.db.kysely.selectFrom('activation').select('attempts').where('id', '=', flowId).executeTakeFirstOrThrow();
      assert.equal(attempts.attempts, 0, 'malformed input does not spend attempts');
      const badId = await sim.verifyCodes('../../me', '123456', '123456');
      assert.equal(badId.status, 400);
      const unknown = await sim.verifyCodes('A'.repeat(22), '123456', '123456');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error, 'ACTIVATION_NOT_FOUND');

      const { sim: owner, flowId: ready } = await verified(pro());
      for (const [pin, error] of [['123', 'VALIDATION_FAILED'], ['12345', 'VALIDATION_FAILED'], ['12a4', 'VALIDATION_FAILED'], ['0000', 'PIN_TOO_WEAK'], ['1234', 'PIN_TOO_WEAK'], ['1111', 'PIN_TOO_WEAK'], ['9876', 'PIN_TOO_WEAK']] as const) {
        const r = await owner.completeCodeActivation(ready, 'x', pin);
        assert.equal(r.body.error, error, pin);
        assert.equal(r.status, error === 'PIN_TOO_WEAK' ? 422 : 400, pin);
      }
      assert.equal((await owner.completeCodeActivation(ready, 'x', '4826')).status, 201, 'a refused PIN leaves the flow usable');
    });

    it('code guessing: 5 wrong attempts cancel the flow, even for the right codes afterwards; no device', async () => {
      const nationalId = pro();
      const sim = await simulator();
      const { flowId } = (await sim.startCodeActivation(nationalId)).body;
      const codes = await readCodes(t, nationalId);
      const wrong = (c: string) => String((Number(c) + 1) % 1_000_000).padStart(6, '0');
      const left: Array<number | string> = [];
      for (let i = 0; i < 5; i += 1) {
        // Right email code, wrong SMS code: the answer never says which one was wrong.
        const r = await sim.verifyCodes(flowId, codes.email, wrong(codes.sms));
        left.push(r.status === 422 ? (r.body.message!.match(/(\d) attempt/)?.[1] ?? '?') : r.body.error!);
      }
      assert.deepEqual(left, ['4', '3', '2', '1', 'ACTIVATION_ATTEMPTS_EXHAUSTED']);
      const late = await sim.verifyCodes(flowId, codes.email, codes.sms);
      assert.equal(late.status, 403);
      assert.equal(late.body.error, 'ACTIVATION_ATTEMPTS_EXHAUSTED');
      assert.equal((await sim.completeCodeActivation(flowId, nationalId, '4826')).body.error, 'ACTIVATION_ATTEMPTS_EXHAUSTED');
      assert.equal((await devicesOf(nationalId)).length, 0);
    });

    it('codes are single use: a second verify or complete of the same flow is refused', async () => {
      const nationalId = pro();
      const { sim, flowId, codes } = await verified(nationalId);
      const again = await sim.verifyCodes(flowId, codes.email, codes.sms);
      assert.equal(again.status, 409);
      assert.equal(again.body.error, 'ACTIVATION_ALREADY_USED');
      assert.equal((await sim.completeCodeActivation(flowId, nationalId, '4826')).status, 201);
      const twice = await sim.completeCodeActivation(flowId, nationalId, '4826');
      assert.equal(twice.status, 409);
      assert.equal(twice.body.error, 'ACTIVATION_ALREADY_USED');
      assert.equal((await devicesOf(nationalId)).length, 1);
    });

    it('expired activation: codes are refused after 10 minutes, and a verified flow cannot complete late', async () => {
      const nationalId = pro();
      const sim = await simulator();
      const { flowId } = (await sim.startCodeActivation(nationalId)).body;
      const codes = await readCodes(t, nationalId);
      t.clock.advance(10 * 60_000);
      const late = await sim.verifyCodes(flowId, codes.email, codes.sms);
      assert.equal(late.status, 410);
      assert.equal(late.body.error, 'ACTIVATION_EXPIRED');
      const state = await t.vigie.db.kysely.selectFrom('activation').select('state').where('id', '=', flowId).executeTakeFirstOrThrow();
      assert.equal(state.state, 'expired');

      const ready = await verified(nationalId);
      t.clock.advance(10 * 60_000 + 1);
      const done = await ready.sim.completeCodeActivation(ready.flowId, nationalId, '4826');
      assert.equal(done.status, 410);
      assert.equal(done.body.error, 'ACTIVATION_EXPIRED');
      assert.equal((await devicesOf(nationalId)).length, 0);
    });

    it('complete before verify, or with another key than the one that verified, is refused', async () => {
      const nationalId = pro();
      const sim = await simulator();
      const { flowId } = (await sim.startCodeActivation(nationalId)).body;
      const codes = await readCodes(t, nationalId);
      const early = await sim.completeCodeActivation(flowId, nationalId, '4826');
      assert.equal(early.status, 409);
      assert.equal(early.body.error, 'ACTIVATION_NOT_VERIFIED');
      assert.equal((await sim.verifyCodes(flowId, codes.email, codes.sms)).status, 200);
      const thief = await simulator();
      const stolen = await thief.completeCodeActivation(flowId, nationalId, '4826');
      assert.equal(stolen.status, 403);
      assert.equal(stolen.body.error, 'ACTIVATION_KEY_MISMATCH');
      assert.equal((await devicesOf(nationalId)).length, 0);
      assert.equal((await sim.completeCodeActivation(flowId, nationalId, '4826')).status, 201);
    });

    it('a second activation racing the first: exactly one device per flow, and each flow stays independent', async () => {
      const nationalId = pro();
      const { sim, flowId } = await verified(nationalId);
      const results = await Promise.all(Array.from({ length: 5 }, () => sim.completeCodeActivation(flowId, nationalId, '4826')));
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409, 409, 409]);
      assert.equal((await devicesOf(nationalId)).length, 1);

      // Two phones verify the same codes at once: one binds the flow, the other is told it is used.
      const other = pro();
      const a = await simulator();
      const b = await simulator();
      const started = await a.startCodeActivation(other);
      const codes = await readCodes(t, other);
      const verifies = await Promise.all([a.verifyCodes(started.body.flowId, codes.email, codes.sms), b.verifyCodes(started.body.flowId, codes.email, codes.sms)]);
      assert.deepEqual(verifies.map((r) => r.status).sort(), [200, 409]);
      const winner = verifies[0]!.status === 200 ? a : b;
      const loser = winner === a ? b : a;
      assert.equal((await loser.completeCodeActivation(started.body.flowId, other, '4826')).body.error, 'ACTIVATION_KEY_MISMATCH');
      assert.equal((await winner.completeCodeActivation(started.body.flowId, other, '4826')).status, 201);

      // A second flow started meanwhile neither cancels nor reuses the first one's codes.
      const third = pro();
      const first = await a.startCodeActivation(third);
      const firstCodes = await readCodes(t, third);
      const second = await b.startCodeActivation(third);
      const secondCodes = await readCodes(t, third);
      assert.equal((await a.verifyCodes(first.body.flowId, secondCodes.email, secondCodes.sms)).status, 422);
      assert.equal((await b.verifyCodes(second.body.flowId, secondCodes.email, secondCodes.sms)).status, 200);
      assert.equal((await a.verifyCodes(first.body.flowId, firstCodes.email, firstCodes.sms)).status, 200);
    });

    it('refuses unsigned, replayed, stale or wrongly signed activation calls', async () => {
      const nationalId = pro();
      const sim = await simulator();
      const { flowId } = (await sim.startCodeActivation(nationalId)).body;
      const codes = await readCodes(t, nationalId);
      const body = JSON.stringify({ emailCode: codes.email, smsCode: codes.sms, publicKey: sim.state.publicJwk });
      const unsigned = await fetch(`${t.issuer}/device/v1/activation/${flowId}/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(unsigned.status, 401);
      assert.equal(((await unsigned.json()) as { error: string }).error, 'SIGNATURE_MISSING');
      // Signed by one key but presenting another public key.
      const impostor = await simulator();
      const mismatch = await impostor.call<{ error: string }>('POST', `/activation/${flowId}/verify`, { emailCode: codes.email, smsCode: codes.sms, publicKey: sim.state.publicJwk }, { deviceId: 'activation' });
      assert.equal(mismatch.status, 401);
      assert.equal(mismatch.body.error, 'SIGNATURE_INVALID');
      const stale = await sim.call<{ error: string }>('POST', `/activation/${flowId}/verify`, JSON.parse(body), { deviceId: 'activation', now: t.clock.now() - 120_000 });
      assert.equal(stale.body.error, 'SIGNATURE_STALE');
      const tampered = await sim.call<{ error: string }>('POST', `/activation/${flowId}/verify`, JSON.parse(body), { deviceId: 'activation', tamper: (init) => (init.body = init.body.replace(codes.sms, '000000')) });
      assert.equal(tampered.body.error, 'SIGNATURE_INVALID');
      const attempts = async () => (await t.vigie.db.kysely.selectFrom('activation').select('attempts').where('id', '=', flowId).executeTakeFirstOrThrow()).attempts;
      assert.equal(await attempts(), 0, 'refused signatures spend no attempt');
      let captured: { headers: Record<string, string>; body: string } | undefined;
      const wrong = JSON.parse(body.replace(codes.sms, codes.sms === '000000' ? '111111' : '000000'));
      const first = await sim.call('POST', `/activation/${flowId}/verify`, wrong, { deviceId: 'activation', tamper: (init) => (captured = { headers: { ...init.headers }, body: init.body }) });
      assert.equal(first.status, 422);
      const replay = await fetch(`${t.issuer}/device/v1/activation/${flowId}/verify`, { method: 'POST', headers: captured!.headers, body: captured!.body });
      assert.equal(replay.status, 401);
      assert.equal(((await replay.json()) as { error: string }).error, 'SIGNATURE_REPLAYED');
      assert.equal(await attempts(), 1, 'the replay spent no attempt');
      assert.equal((await sim.verifyCodes(flowId, codes.email, codes.sms)).status, 200);
      // Once the flow moved on, its earlier step is refused before any signature is looked at.
      const late = await fetch(`${t.issuer}/device/v1/activation/${flowId}/verify`, { method: 'POST', headers: captured!.headers, body: captured!.body });
      assert.equal(((await late.json()) as { error: string }).error, 'ACTIVATION_ALREADY_USED');
      assert.equal((await devicesOf(nationalId)).length, 0);
    });

    it('refuses oversize bodies with 413 and registers nothing', async () => {
      const nationalId = pro();
      const big = JSON.stringify({ nationalId, padding: 'x'.repeat(16 * 1024) });
      const start = await fetch(`${t.issuer}/device/v1/activation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
      assert.equal(start.status, 413);
      assert.equal(((await start.json()) as { error: string }).error, 'BODY_TOO_LARGE');
      const { sim, flowId } = await verified(nationalId);
      const huge = await sim.call<{ error: string }>('POST', `/activation/${flowId}/complete`, { publicKey: sim.state.publicJwk, pin: '4826', name: 'x'.repeat(10_000) }, { deviceId: 'activation' });
      assert.equal(huge.status, 413);
      const long = await sim.call<{ error: string; message: string }>('POST', `/activation/${flowId}/complete`, { publicKey: sim.state.publicJwk, pin: '4826', name: 'x'.repeat(61) }, { deviceId: 'activation' });
      assert.equal(long.status, 400);
      assert.match(long.body.message, /name/);
      assert.equal((await devicesOf(nationalId)).length, 0);
    });

    it('the operator activation code still works beside a pending email + SMS flow', async () => {
      const nationalId = pro();
      const sim = await simulator();
      await sim.startCodeActivation(nationalId);
      await readCodes(t, nationalId);
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      t.clock.advance(1);
      await sim.startCodeActivation(nationalId);
      await readCodes(t, nationalId);
      const operator = await simulator();
      const done = await operator.activate({ nationalId, activationCode: code, pin: '4826' });
      assert.equal(done.status, 201, JSON.stringify(done.body));
    });

    it('"Supprimer ma e-CPS": a deleted device can no longer sign anything', async () => {
      const nationalId = pro();
      const { sim, flowId } = await verified(nationalId);
      await sim.completeCodeActivation(flowId, nationalId, '4826');
      assert.equal((await sim.call('DELETE', '/me')).status, 204);
      assert.equal((await sim.call<{ error: string }>('GET', '/challenges')).body.error, 'DEVICE_REVOKED');
      assert.equal((await devicesOf(nationalId)).length, 0);
    });
  });
}

describe('activation code sends are rate-limited per identifier and per source', () => {
  let t: TestVigie;
  before(async () => {
    t = await startTestVigie({ env: { VIGIE_ACTIVATION_SENDS_PER_IDENTIFIER_PER_HOUR: '2', VIGIE_ACTIVATION_SENDS_PER_IDENTIFIER_PER_DAY: '4', VIGIE_ACTIVATION_SENDS_PER_IP_PER_HOUR: '5' } });
  });
  after(async () => t.close());

  it('a third send for one identifier within the hour is refused, known or not; the hour after it works again', async () => {
    const sim = await DeviceSimulator.create(t.issuer, { clock: t.clock });
    for (const nationalId of ['810000450386', '899999999999']) {
      assert.equal((await sim.startCodeActivation(nationalId)).status, 202);
      assert.equal((await sim.startCodeActivation(nationalId)).status, 202);
      const third = await sim.startCodeActivation(nationalId);
      assert.equal(third.status, 429, nationalId);
      assert.equal(third.body.error, 'ACTIVATION_RATE_LIMITED');
    }
    const outbox = await t.vigie.authenticator.outbox.list({ channel: 'sms', recipient: '+33633559184' });
    await t.vigie.authenticator.activation.drain();
    assert.ok((await t.vigie.authenticator.outbox.list({ channel: 'sms', recipient: '+33633559184' })).length <= 2, `${outbox.length} SMS`);
    // Past the source's sliding-window counter too, which weighs the previous hour in (and counts
    // the refused requests: a flooding source stays refused).
    t.clock.advance(2 * 3600_000);
    assert.equal((await sim.startCodeActivation('810000450386')).status, 202);
  });

  it('an identifier gets so many sends a day, however they are spread; the day after it works again', async () => {
    const nationalId = '899999999998';
    const sim = await DeviceSimulator.create(t.issuer, { clock: t.clock });
    const statuses: Array<number | string> = [];
    for (let hour = 0; hour < 3; hour += 1) {
      t.clock.advance(2 * 3600_000);
      for (let i = 0; i < 2; i += 1) {
        const r = await sim.startCodeActivation(nationalId);
        statuses.push(r.status === 202 ? 202 : r.body.error!);
      }
    }
    assert.deepEqual(statuses, [202, 202, 202, 202, 'ACTIVATION_DAILY_LIMIT', 'ACTIVATION_DAILY_LIMIT']);
    const throttled = (await t.vigie.audit.list({ subject: nationalId })).filter((e) => e.event === 'activation.throttled');
    assert.deepEqual(throttled.map((e) => e.details.scope), ['identifier_day', 'identifier_day']);
    t.clock.advance(24 * 3600_000);
    assert.equal((await sim.startCodeActivation(nationalId)).status, 202);
  });

  it('one source may ask codes for only so many identifiers an hour', async () => {
    // Past the sliding windows of the counters too (they weigh the previous hour in).
    t.clock.advance(2 * 3600_000);
    const sim = await DeviceSimulator.create(t.issuer, { clock: t.clock });
    const statuses = [];
    for (const nationalId of ['810000578566', '810000701317', '810000751874', '810000860220']) statuses.push((await sim.startCodeActivation(nationalId)).status);
    assert.deepEqual(statuses, [202, 202, 202, 202]);
    // One send left: of two racing requests at most one gets it (insert, then count; both may lose).
    const racing = await Promise.all(['810001047967', '810001385508'].map((id) => sim.startCodeActivation(id)));
    const won = racing.filter((r) => r.status === 202).length;
    assert.ok(won <= 1, racing.map((r) => r.status).join());
    // The slot the race left, if both lost, then no more.
    if (won === 0) assert.equal((await sim.startCodeActivation('810001780013')).status, 202);
    const over = await sim.startCodeActivation('810002114139');
    assert.equal(over.status, 429);
    assert.equal(over.body.error, 'ACTIVATION_RATE_LIMITED');
    // A source flooding past its limit costs no flow row and no audit entry per request.
    const written = async () => [
      (await t.vigie.db.kysely.selectFrom('activation').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n,
      (await t.vigie.audit.head())?.seq,
    ];
    const before = await written();
    for (let i = 0; i < 5; i += 1) assert.equal((await sim.startCodeActivation('810002114139')).status, 429);
    assert.deepEqual(await written(), before);
  });
});

describe('operator-code activation attempts are rate-limited per source', () => {
  let t: TestVigie;
  before(async () => {
    t = await startTestVigie({ env: { VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR: '3' } });
  });
  after(async () => t.close());

  it('past the limit, 429 before the code is checked (even the right one) and nothing more is audited; the hour after, it works', async () => {
    const { code } = await t.vigie.devices.createActivationCode(DEMO_PRO.nationalId);
    for (let i = 0; i < 3; i += 1) {
      const sim = await DeviceSimulator.create(t.issuer, { clock: t.clock });
      const wrong = await sim.activate({ nationalId: DEMO_PRO.nationalId, activationCode: 'AAAA-AAAA-AAAA', pin: '2468' });
      assert.equal(wrong.status, 403, `attempt ${i + 1}`);
    }
    const audited = (await t.vigie.audit.list()).length;
    const nonces = () => t.vigie.db.kysely.selectFrom('device_nonce').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow().then((r) => Number(r.n));
    const remembered = await nonces();
    const sim = await DeviceSimulator.create(t.issuer, { clock: t.clock });
    const refused = await sim.activate({ nationalId: DEMO_PRO.nationalId, activationCode: code, pin: '2468' });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error, 'ACTIVATION_RATE_LIMITED');
    assert.equal((await t.vigie.audit.list()).length, audited, 'a refused attempt writes no audit entry');
    assert.equal(await nonces(), remembered, 'nor a replay nonce: the limit comes before the signature');
    t.clock.advance(2 * 3600_000);
    const fresh = await t.vigie.devices.createActivationCode(DEMO_PRO.nationalId);
    assert.equal((await sim.activate({ nationalId: DEMO_PRO.nationalId, activationCode: fresh.code, pin: '2468' })).status, 201);
  });
});

describe('activation from IPv6: a /48 counts as one site, whichever of its /56 prefixes asks', () => {
  let t: TestVigie;
  before(async () => {
    t = await startTestVigie({ env: { VIGIE_TRUST_PROXY: 'true', VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR: '3', VIGIE_ACTIVATION_SENDS_PER_IP_PER_HOUR: '2' } });
  });
  after(async () => t.close());
  const post = (path: string, ip: string, body: unknown) =>
    fetch(`${t.issuer}/device/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify(body) });

  it('operator-code attempts: 4 × the per-source limit over the /48, then 429; the next /48 is another source', async () => {
    const statuses: number[] = [];
    // Well-formed but unsigned: counted by the rate, then refused at the signature (401).
    const attempt = { nationalId: DEMO_PRO.nationalId, activationCode: 'AAAA-AAAA-AAAA', publicKey: { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) }, pin: '2468', name: 'e-CPS' };
    // One attempt from each of 13 /56 prefixes of 2001:db8:4::/48.
    for (let i = 0; i < 13; i += 1) statuses.push((await post('/activate', `2001:db8:4:${i.toString(16)}00::1`, attempt)).status);
    assert.deepEqual(statuses, [...Array(12).fill(401), 429]);
    assert.equal((await post('/activate', '2001:db8:5::1', attempt)).status, 401, 'the next /48 is another source');
  });

  it('email + SMS code sends: 4 × the per-source limit over the /48, then 429', async () => {
    const statuses: number[] = [];
    // Identifiers nobody holds (no message leaves), one per request: only the source limits apply.
    for (let i = 0; i < 9; i += 1) statuses.push((await post('/activation', `2001:db8:6:${i.toString(16)}00::1`, { nationalId: `89999999990${i}` })).status);
    assert.deepEqual(statuses, [202, 202, 202, 202, 202, 202, 202, 202, 429]);
    assert.equal((await post('/activation', '2001:db8:7::1', { nationalId: '899999999910' })).status, 202, 'the next /48 is another source');
  });
});
