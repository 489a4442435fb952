// Web Push end to end: the provider encrypts (RFC 8291) and signs (VAPID, RFC 8292) a push for a
// new login request and POSTs it to the subscription's push service (RFC 8030). A local push
// service receives it, checks the VAPID JWT and decrypts it with the subscription's keys, like a
// browser would: the payload names only the challenge id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestVigie, startBrowserLogin, type TestVigie } from './support/harness.ts';
import { startPushReceiver, type PushReceiver } from './support/push-receiver.ts';
import { signRequest } from '../src/device/signature.ts';
import type { DeviceSimulator } from '../src/device/simulator.ts';
import { MAX_STREAMS_PER_DEVICE } from '../src/push/hub.ts';

/** A challenge created as the login page does once the defences chose to notify (they are tested on their own). */
function pushChallenge(t: TestVigie, nationalId: string, delivery: 'push' | 'silent' = 'push') {
  return t.vigie.challenges.start({ nationalId, interactionUid: 'test', clientId: 'test-rp', clientName: 'Service de test', mode: 'pick', delivery, context: { ip: '192.0.2.9', userAgent: 'UA', browser: 'Firefox sur Linux', place: 'Lyon' } });
}

async function denyAll(device: DeviceSimulator) {
  for (const c of (await device.listChallenges()).body.challenges) await device.deny(c.id, 'refused');
}

describe('Web Push delivery (RFC 8030 / 8291 / 8292)', () => {
  let t: TestVigie;
  let receiver: PushReceiver;
  let device: DeviceSimulator;
  before(async () => {
    t = await startTestVigie();
    receiver = await startPushReceiver();
    device = await t.activateDevice();
  });
  after(async () => {
    await t.close();
    await receiver.close();
  });

  it('a new login request is pushed, VAPID-signed and encrypted, naming only the challenge id', async () => {
    const subscription = receiver.subscribe();
    assert.equal((await device.call('PUT', '/push/subscription', subscription.json)).status, 204);
    const pushed = receiver.next();
    await startBrowserLogin(t);
    const message = await pushed;
    const [challenge] = (await device.listChallenges()).body.challenges;
    assert.ok(challenge);
    assert.deepEqual(message.payload, { type: 'challenge', challengeId: challenge.id }, 'nothing but the id: no name, no service, no place');
    assert.equal(message.headers['content-encoding'], 'aes128gcm');
    assert.equal(message.headers.urgency, 'high');
    const ttl = Number(message.headers.ttl);
    assert.ok(ttl > 0 && ttl <= 60, `TTL ${ttl} is the challenge's remaining life`);
    const key = (await (await fetch(`${t.issuer}/device/v1/push/key`)).json()) as { publicKey: string };
    assert.equal(message.vapid.publicKey, key.publicKey, 'signed with the VAPID key the app subscribes with');
    assert.match(message.vapid.claims.sub, /^mailto:/);
    assert.deepEqual(receiver.errors, []);
    await denyAll(device);
  });

  it('each (challenge, device) is pushed once, and a silent challenge not at all', async () => {
    const before = receiver.received.length;
    await pushChallenge(t, device.state.nationalId!, 'silent');
    await t.vigie.authenticator.hub.drain();
    assert.equal(receiver.received.length, before, 'silent: visible on opening the app, no push');
    const pushed = receiver.next();
    const { id } = await pushChallenge(t, device.state.nationalId!);
    assert.equal(((await pushed).payload as { challengeId: string }).challengeId, id);
    await t.vigie.authenticator.hub.drain();
    // The same event heard again (a second node) does not push again.
    await t.vigie.bus.publish('challenge.created', { challengeId: id, nationalId: device.state.nationalId, delivery: 'push' });
    await t.vigie.authenticator.hub.drain();
    assert.equal(receiver.received.length, before + 1);
    await denyAll(device);
  });

  it('while the app is open its stream gets the request within milliseconds, and the push is sent too (a stream can look open after the phone lost it)', async () => {
    const events: Array<{ event: string; data: unknown; at: number }> = [];
    let heard = () => {};
    const stream = await device.watch((event, data) => {
      events.push({ event, data, at: performance.now() });
      heard();
    });
    const next = async (event: string, matches: (data: never) => boolean = () => true) => {
      for (;;) {
        const found = events.find((e) => e.event === event && matches(e.data as never));
        if (found) return found;
        await new Promise<void>((resolve) => (heard = resolve));
      }
    };
    assert.deepEqual((await next('pending')).data, { challenges: [] });
    const before = receiver.received.length;
    const started = performance.now();
    const challenge = await pushChallenge(t, device.state.nationalId!);
    const delivered = await next('challenge');
    const data = delivered.data as { id: string; candidates: string[]; service: { name: string } };
    assert.equal(data.id, challenge.id);
    assert.ok(data.candidates.includes(challenge.displayCode));
    assert.equal(data.service.name, 'Service de test');
    assert.ok(delivered.at - started < 500, `delivered ${Math.round(delivered.at - started)} ms after the challenge was created`);
    await t.vigie.authenticator.hub.drain();
    assert.equal(receiver.received.length, before + 1, 'pushed as well: the service worker stays silent while the app is on screen');
    await denyAll(device);
    assert.deepEqual((await next('settled')).data, { id: challenge.id, state: 'denied', reason: 'refused' });
    stream.close();
    await stream.closed;
  });

  it('the stream is a signed GET: unsigned, replayed or revoked-device connections are refused', async () => {
    const path = '/device/v1/stream';
    const unsigned = await fetch(`${t.issuer}${path}`);
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { error: string }).error, 'SIGNATURE_MISSING');
    const key = await crypto.subtle.importKey('jwk', device.state.privateJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    const headers = await signRequest(key, { method: 'GET', path, deviceId: device.state.deviceId!, body: '', now: t.clock.now() });
    const controller = new AbortController();
    const first = await fetch(`${t.issuer}${path}`, { headers, signal: controller.signal });
    assert.equal(first.status, 200);
    controller.abort();
    const replayed = await fetch(`${t.issuer}${path}`, { headers });
    assert.equal(replayed.status, 401);
    assert.equal(((await replayed.json()) as { error: string }).error, 'SIGNATURE_REPLAYED');
    const otherPath = await signRequest(key, { method: 'GET', path: '/device/v1/challenges', deviceId: device.state.deviceId!, body: '', now: t.clock.now() });
    const moved = await fetch(`${t.issuer}${path}`, { headers: otherPath });
    assert.equal(((await moved.json()) as { error: string }).error, 'SIGNATURE_INVALID', 'a signature is bound to its path');
    const revoked = await t.activateDevice(device.state.nationalId!, '8642');
    assert.equal((await revoked.call('DELETE', '/me')).status, 204);
    const stream = await revoked.call<{ error: string }>('GET', '/stream');
    assert.equal(stream.status, 403);
    assert.equal(stream.body.error, 'DEVICE_REVOKED');
  });

  it('a device holds at most MAX_STREAMS_PER_DEVICE streams on a node: one more closes its oldest', { timeout: 15_000 }, async () => {
    const hub = t.vigie.authenticator.hub;
    const baseline = hub.streamCount();
    const ready = () => {
      let resolve = () => {};
      const seen = new Promise<void>((r) => (resolve = r));
      return { seen, onEvent: (event: string) => void (event === 'pending' && resolve()) };
    };
    const streams = [];
    for (let i = 0; i <= MAX_STREAMS_PER_DEVICE; i += 1) {
      const r = ready();
      streams.push(await device.watch(r.onEvent));
      await r.seen;
    }
    await streams[0]!.closed; // ended by the server, not by us
    assert.equal(hub.streamCount(), baseline + MAX_STREAMS_PER_DEVICE);
    const other = await t.activateDevice(device.state.nationalId!, '8642');
    const r = ready();
    const otherStream = await other.watch(r.onEvent);
    await r.seen;
    assert.equal(hub.streamCount(), baseline + MAX_STREAMS_PER_DEVICE + 1, 'per device, not per professional');
    for (const s of [...streams.slice(1), otherStream]) {
      s.close();
      await s.closed;
    }
    for (let i = 0; i < 50 && hub.streamCount() !== baseline; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(hub.streamCount(), baseline, 'streams the devices closed are detached');
    assert.equal((await other.call('DELETE', '/me')).status, 204);
  });

  it('a stream left open by a device revoked meanwhile gets no more requests: it is closed', async () => {
    const doomed = await t.activateDevice(device.state.nationalId!, '8642');
    const path = '/device/v1/stream';
    const key = await crypto.subtle.importKey('jwk', doomed.state.privateJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    const headers = await signRequest(key, { method: 'GET', path, deviceId: doomed.state.deviceId!, body: '', now: t.clock.now() });
    const response = await fetch(`${t.issuer}${path}`, { headers });
    assert.equal(response.status, 200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/event: pending\n/.test(text)) text += (await reader.read()).value ?? '';
    assert.equal((await doomed.call('DELETE', '/me')).status, 204);
    const challenge = await pushChallenge(t, device.state.nationalId!);
    await t.vigie.authenticator.hub.drain();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.ok(!text.includes(challenge.id), 'the revoked device never saw the request');
    await denyAll(device);
  });

  it('a subscription the push service says is gone (410) is forgotten', async () => {
    const gone = receiver.subscribe({ gone: true });
    assert.equal((await device.call('PUT', '/push/subscription', gone.json)).status, 204);
    assert.ok(await t.vigie.authenticator.push.get(device.state.deviceId!));
    await pushChallenge(t, device.state.nationalId!);
    await t.vigie.authenticator.hub.drain();
    assert.equal(await t.vigie.authenticator.push.get(device.state.deviceId!), undefined);
    await denyAll(device);
  });

  it('refuses bad subscriptions: unsigned, replayed, non-https endpoints, malformed keys', async () => {
    const good = receiver.subscribe().json;
    const unsigned = await fetch(`${t.issuer}/device/v1/push/subscription`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(good) });
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { error: string }).error, 'SIGNATURE_MISSING');
    let replay: { headers: Record<string, string>; body: string } | undefined;
    assert.equal((await device.call('PUT', '/push/subscription', good, { tamper: (init) => (replay = { ...init, headers: { ...init.headers } }) })).status, 204);
    const replayed = await fetch(`${t.issuer}/device/v1/push/subscription`, { method: 'PUT', headers: replay!.headers, body: replay!.body });
    assert.equal(replayed.status, 401);
    assert.equal(((await replayed.json()) as { error: string }).error, 'SIGNATURE_REPLAYED');
    for (const endpoint of ['http://push.example.com/x', 'ftp://127.0.0.1/x', 'http://user:pw@127.0.0.1/x', 'javascript:alert(1)']) {
      const result = await device.call<{ error: string }>('PUT', '/push/subscription', { ...good, endpoint });
      assert.equal(result.status, 400, endpoint);
      assert.match(result.body.error, /PUSH_ENDPOINT_INVALID|VALIDATION_FAILED/, endpoint);
    }
    const badKey = await device.call<{ error: string; message: string }>('PUT', '/push/subscription', { ...good, keys: { ...good.keys, p256dh: 'AAAA' } });
    assert.equal(badKey.status, 400);
    assert.match(badKey.body.message, /keys\.p256dh/);
    const extra = await device.call<{ error: string }>('PUT', '/push/subscription', { ...good, name: 'x' });
    assert.equal(extra.status, 400);
  });
});
