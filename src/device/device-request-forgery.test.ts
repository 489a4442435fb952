// Threat: an attacker who can reach the device API (but does not hold a registered device key)
// forges, alters or replays device requests to approve a login, reads requests addressed to
// someone else, or registers a device of their own by guessing an activation code. Every
// request must be signed by the device key over its exact bytes, fresh, used once, and scoped
// to the device's professional; activation must be bound to the key it registers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, DEMO_PRO, type TestVigie } from '../../test/support/harness.ts';
import { skipWithoutPostgres } from '../../test/support/backends.ts';
import { DeviceSimulator } from './simulator.ts';
import type { Challenge } from '../challenge/challenge.ts';

const OTHER_PRO = '810000450386';
const PIN = '2468';

type ErrorBody = { error?: string; message?: string };

const backends = [{ name: 'sqlite', postgres: false }, ...(process.env.DATABASE_URL ? [{ name: 'postgres', postgres: true }] : [])];
if (!process.env.DATABASE_URL) skipWithoutPostgres('device request forgery');

for (const backend of backends) {
  describe(`device request forgery [${backend.name}]`, () => {
    let t: TestVigie;
    let device: DeviceSimulator;

    const startChallenge = (nationalId: string = DEMO_PRO.nationalId): Promise<Challenge> =>
      t.vigie.challenges.start({
        nationalId,
        interactionUid: 'interaction',
        clientId: 'test-rp',
        clientName: 'Service de test',
        mode: 'pick',
        delivery: 'push',
        context: { ip: '192.0.2.9', userAgent: 'UA', browser: 'Firefox', place: null },
      });

    const newSimulator = () => DeviceSimulator.create(t.issuer, { clock: t.clock });

    before(async () => {
      // Every forged call comes from 127.0.0.1 and counts as an activation attempt: not what this suite tests.
      t = await startTestVigie({ postgres: backend.postgres, env: { VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR: '1000' } });
      device = await t.activateDevice(DEMO_PRO.nationalId, PIN);
    });
    after(async () => t.close());

    it('an unsigned request is refused with SIGNATURE_MISSING', async () => {
      const response = await fetch(`${t.issuer}/device/v1/me`);
      assert.equal(response.status, 401);
      assert.equal(((await response.json()) as ErrorBody).error, 'SIGNATURE_MISSING');
      const partial = await device.call<ErrorBody>('GET', '/me', undefined, { tamper: (init) => void delete init.headers['x-vigie-nonce'] });
      assert.equal(partial.status, 401);
      assert.equal(partial.body.error, 'SIGNATURE_MISSING');
    });

    it('a body altered after signing is refused with SIGNATURE_INVALID and changes nothing', async () => {
      const challenge = await startChallenge();
      const wrong = challenge.candidates.find((c) => c !== challenge.displayCode)!;
      const result = await device.call<ErrorBody>('POST', `/challenges/${challenge.id}/approve`, { code: wrong, pin: PIN }, {
        tamper: (init) => {
          init.body = JSON.stringify({ code: challenge.displayCode, pin: PIN });
        },
      });
      assert.equal(result.status, 401);
      assert.equal(result.body.error, 'SIGNATURE_INVALID');
      assert.equal((await t.vigie.challenges.get(challenge.id))?.state, 'pending');
    });

    it('a path, device id or signature altered after signing is refused with 401', async () => {
      const other = await device.call<ErrorBody>('GET', '/me', undefined, { tamper: (init) => void (init.headers['x-vigie-device'] = `${device.state.deviceId}x`) });
      assert.equal(other.status, 401);
      assert.equal(other.body.error, 'DEVICE_UNKNOWN');
      let signedForMe: Record<string, string> = {};
      // Keep the headers signed for GET /me and send nothing, then present them on another path.
      await device.call('GET', '/me', undefined, { tamper: (init) => void ((signedForMe = init.headers), (init.headers = {})) });
      const moved = await fetch(`${t.issuer}/device/v1/challenges`, { headers: signedForMe });
      assert.equal(moved.status, 401);
      assert.equal(((await moved.json()) as ErrorBody).error, 'SIGNATURE_INVALID');
      const garbage = await device.call<ErrorBody>('GET', '/me', undefined, { tamper: (init) => void (init.headers['x-vigie-signature'] = 'AAAA') });
      assert.equal(garbage.status, 401);
      assert.equal(garbage.body.error, 'SIGNATURE_INVALID');
    });

    it('a timestamp two minutes old or two minutes ahead is refused with SIGNATURE_STALE', async () => {
      for (const skew of [-120_000, 120_000]) {
        const result = await device.call<ErrorBody>('GET', '/me', undefined, { now: t.clock.now() + skew });
        assert.equal(result.status, 401, `skew ${skew}`);
        assert.equal(result.body.error, 'SIGNATURE_STALE');
      }
      assert.equal((await device.call('GET', '/me', undefined, { now: t.clock.now() - 30_000 })).status, 200, 'inside the window');
    });

    it('the exact same signed request sent twice is refused the second time with SIGNATURE_REPLAYED', async () => {
      const challenge = await startChallenge();
      let captured: { headers: Record<string, string>; body: string } | undefined;
      const first = await device.call('POST', `/challenges/${challenge.id}/deny`, { reason: 'refused' }, { tamper: (init) => void (captured = { headers: { ...init.headers }, body: init.body }) });
      assert.equal(first.status, 200);
      assert.ok(captured);
      const replay = await fetch(`${t.issuer}/device/v1/challenges/${challenge.id}/deny`, { method: 'POST', headers: captured.headers, body: captured.body });
      assert.equal(replay.status, 401);
      assert.equal(((await replay.json()) as ErrorBody).error, 'SIGNATURE_REPLAYED');
    });

    it('a device cannot read or answer another professional’s challenge (404)', async () => {
      const challenge = await startChallenge(OTHER_PRO);
      const shown = await device.show(challenge.id);
      assert.equal(shown.status, 404);
      assert.equal((shown.body as ErrorBody).error, 'CHALLENGE_NOT_FOUND');
      const approved = await device.approve(challenge.id, challenge.displayCode, PIN);
      assert.equal(approved.status, 404);
      const denied = await device.deny(challenge.id, 'not_me');
      assert.equal(denied.status, 404);
      assert.ok(!(await device.listChallenges()).body.challenges.some((c) => c.id === challenge.id));
      assert.equal((await t.vigie.challenges.get(challenge.id))?.state, 'pending');
    });

    it('a body over 8 KiB is refused with 413', async () => {
      const challenge = await startChallenge();
      const result = await device.call<ErrorBody>('POST', `/challenges/${challenge.id}/approve`, { code: challenge.displayCode, pin: PIN, padding: 'x'.repeat(9 * 1024) });
      assert.equal(result.status, 413);
      assert.equal((await t.vigie.challenges.get(challenge.id))?.state, 'pending');
    });

    it('malformed JSON is refused with 400', async () => {
      const result = await device.call<ErrorBody>('POST', '/challenges/abcdefghijkl/approve', { code: '42', pin: PIN }, { tamper: (init) => void (init.body = '{"code":"42",') });
      assert.equal(result.status, 400);
      assert.equal(result.body.error, 'VALIDATION_FAILED');
    });

    it('an approve body with an extra field or a badly shaped PIN is refused with 400 naming the field', async () => {
      const challenge = await startChallenge();
      const extra = await device.call<ErrorBody>('POST', `/challenges/${challenge.id}/approve`, { code: challenge.displayCode, pin: PIN, trusted: true });
      assert.equal(extra.status, 400);
      assert.equal(extra.body.error, 'VALIDATION_FAILED');
      assert.match(extra.body.message ?? '', /trusted/);
      for (const pin of ['246', '24680', 'abcd']) {
        const bad = await device.approve(challenge.id, challenge.displayCode, pin);
        assert.equal(bad.status, 400, pin);
        assert.match(bad.body.message ?? '', /\bpin\b/, pin);
      }
      assert.equal((await t.vigie.challenges.get(challenge.id))?.state, 'pending');
      assert.equal((await t.vigie.devices.list(DEMO_PRO.nationalId))[0]?.pinFailures, 0, 'a refused body costs no PIN attempt');
    });

    it('wrong activation codes register nothing and, however many, do not burn the code the operator read out', async () => {
      const nationalId = '810000578566';
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      const wrong = code.startsWith('0') ? '1111-1111-1111' : '0000-0000-0000';
      const attacker = await newSimulator();
      for (let i = 0; i < 8; i += 1) {
        const result = await attacker.activate({ nationalId, activationCode: wrong, pin: PIN });
        assert.equal(result.status, 403, `attempt ${i + 1}`);
        assert.equal(result.body.error, 'ACTIVATION_INVALID');
      }
      assert.deepEqual(await t.vigie.devices.list(nationalId), []);
      const failed = (await t.vigie.audit.list({ subject: nationalId })).filter((e) => e.event === 'activation.failed');
      assert.equal(failed.length, 8, 'each guess is on record');
      // 60 random bits are out of reach of guessing at the per-source rates: a stranger who knows the
      // public identifier must not be able to cancel the professional's code.
      const owner = await (await newSimulator()).activate({ nationalId, activationCode: code, pin: PIN });
      assert.equal(owner.status, 201);
      assert.equal((await t.vigie.devices.list(nationalId)).length, 1);
    });

    it('a trivial PIN is refused with PIN_TOO_WEAK and registers nothing', async () => {
      const nationalId = '810000701317';
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      for (const pin of ['0000', '1234']) {
        const result = await (await newSimulator()).activate({ nationalId, activationCode: code, pin });
        assert.equal(result.status, 422, pin);
        assert.equal(result.body.error, 'PIN_TOO_WEAK');
      }
      assert.deepEqual(await t.vigie.devices.list(nationalId), []);
      const good = await (await newSimulator()).activate({ nationalId, activationCode: code, pin: PIN });
      assert.equal(good.status, 201, 'the code was not spent by the refused PINs');
      assert.equal((await t.vigie.devices.list(nationalId)).length, 1);
    });

    it('an activation signed by a key other than the one it registers is refused with 401', async () => {
      const nationalId = '810000751874';
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      const signer = await newSimulator();
      const victim = await newSimulator();
      signer.state.publicJwk = victim.state.publicJwk;
      const result = await signer.activate({ nationalId, activationCode: code, pin: PIN });
      assert.equal(result.status, 401);
      assert.equal(result.body.error, 'SIGNATURE_INVALID');
      assert.deepEqual(await t.vigie.devices.list(nationalId), []);
    });

    it('a registered device id cannot be used to sign an activation', async () => {
      const nationalId = '810000751874';
      const { code } = await t.vigie.devices.createActivationCode(nationalId);
      const result = await device.call<ErrorBody>('POST', '/activate', { nationalId, activationCode: code, pin: PIN, name: 'x', publicKey: device.state.publicJwk });
      assert.equal(result.status, 401);
      assert.deepEqual(await t.vigie.devices.list(nationalId), []);
    });

    it('/device/openapi.json is an OpenAPI 3.1.0 document with the protocol paths', async () => {
      const response = await fetch(`${t.issuer}/device/openapi.json`);
      assert.equal(response.status, 200);
      const doc = JSON.parse(await response.text()) as { openapi: string; paths: Record<string, unknown> };
      assert.equal(doc.openapi, '3.1.0');
      assert.deepEqual(Object.keys(doc.paths).sort(), ['/activate', '/activation', '/activation/{flowId}/complete', '/activation/{flowId}/verify', '/attack-summary', '/challenges', '/challenges/{id}', '/challenges/{id}/approve', '/challenges/{id}/deny', '/challenges/{id}/outcome', '/challenges/{id}/report', '/me', '/notification-settings', '/push/key', '/push/subscription', '/stream']);
    });
  });
}
