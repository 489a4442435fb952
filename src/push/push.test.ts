import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import webpush from 'web-push';
import { deriveVapidKeys } from './vapid.ts';
import { isAcceptablePushEndpoint } from './endpoint.ts';
import { loadConfig } from '../config/index.ts';
import { checkVapid } from '../../test/support/push-receiver.ts';
import { WebPushGateway } from './webpush.ts';
import { pushSubscriptionBody } from '../device/schemas.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, migrate } from '../store/db.ts';
import { SqlDeviceStore } from '../device/store.ts';
import { streamDeviceState } from './routes.ts';

describe('VAPID keys derived from the root secret', () => {
  it('are a valid P-256 pair, the same for the same seed on every node, different for another seed', () => {
    const seed = randomBytes(32);
    const a = deriveVapidKeys(seed);
    assert.deepEqual(deriveVapidKeys(Buffer.from(seed)), a);
    assert.notDeepEqual(deriveVapidKeys(randomBytes(32)), a);
    assert.equal(Buffer.from(a.publicKey, 'base64url').length, 65);
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(a.privateKey, 'base64url'));
    assert.equal(ecdh.getPublicKey().toString('base64url'), a.publicKey);
  });

  it('sign VAPID JWTs a push service accepts (RFC 8292)', () => {
    const keys = deriveVapidKeys(randomBytes(32));
    const headers = webpush.getVapidHeaders('https://push.example', 'mailto:admin@example.org', keys.publicKey, keys.privateKey, 'aes128gcm');
    const checked = checkVapid({ authorization: headers.Authorization }, 'https://push.example');
    assert.equal(checked.publicKey, keys.publicKey);
    assert.equal(checked.claims.sub, 'mailto:admin@example.org');
  });

  it('a seed outside the curve order is re-derived, never used as is', () => {
    const keys = deriveVapidKeys(Buffer.alloc(32, 0xff));
    assert.notEqual(keys.privateKey, Buffer.alloc(32, 0xff).toString('base64url'));
    assert.equal(Buffer.from(keys.publicKey, 'base64url').length, 65);
  });
});

describe('push endpoint validation (we POST to URLs devices give us)', () => {
  const { pushHosts } = loadConfig({});
  const production = { production: true, pushHosts };
  const development = { production: false, pushHosts };
  it('production: https to the known push services only', () => {
    for (const url of ['https://fcm.googleapis.com/fcm/send/abc', 'https://updates.push.services.mozilla.com/wpush/v2/abc', 'https://web.push.apple.com/QGx', 'https://wns2-par02p.notify.windows.com/w/?token=abc']) {
      assert.equal(isAcceptablePushEndpoint(url, production), true, url);
    }
    for (const url of ['http://127.0.0.1:8080/push/x', 'http://localhost/push', 'http://push.example/x', 'ftp://x/y', 'not a url', 'https://user:pw@fcm.googleapis.com/x', 'https://fcm.googleapis.com/x#frag',
      // Public, but no push service: the name could resolve anywhere, now or later.
      'https://push.example/x', 'https://8.8.8.8/x', 'https://fcm.googleapis.com.attacker.example/x', 'https://attacker-notify.windows.com/x', 'https://notify.windows.com.evil/x']) {
      assert.equal(isAcceptablePushEndpoint(url, production), false, url);
    }
  });
  it('refuses https endpoints naming a private, loopback or link-local host (SSRF through a device)', () => {
    for (const url of ['https://10.0.0.5/x', 'https://192.168.1.1/x', 'https://172.20.0.1/x', 'https://127.0.0.1/x', 'https://169.254.169.254/latest', 'https://[::1]/x', 'https://[fd00::1]/x', 'https://localhost/x', 'https://metadata.internal/x',
      // Trailing dots, IPv4 inside IPv6 (mapped, compatible, 6to4, NAT64), site-local, benchmarking, multicast and reserved blocks.
      'https://localhost./x', 'https://metadata.google.internal./x', 'https://[::ffff:127.0.0.1]/x', 'https://[::127.0.0.1]/x', 'https://[2002:7f00:1::]/x', 'https://[64:ff9b::a9fe:a9fe]/x', 'https://[fec0::1]/x', 'https://198.18.0.1/x', 'https://224.0.0.1/x', 'https://240.0.0.1/x', 'https://[ff02::1]/x',
      // Single labels, resolved through the local search domains: the deployment's own services.
      'https://redis:6379/x', 'https://postgres/', 'https://metadata/computeMetadata', 'https://redis./x']) {
      assert.equal(isAcceptablePushEndpoint(url, production), false, url);
      assert.equal(isAcceptablePushEndpoint(url, development), false, url);
    }
    assert.equal(isAcceptablePushEndpoint('https://8.8.8.8/x', development), true);
  });
  it('outside production: any public https host, and plain http to loopback, nowhere else', () => {
    for (const url of ['http://127.0.0.1:8080/push/x', 'http://localhost:1/push', 'http://[::1]:9/p', 'https://push.example/x']) assert.equal(isAcceptablePushEndpoint(url, development), true, url);
    for (const url of ['http://10.0.0.1/push', 'http://push.example/x', 'http://127.0.0.1.nip.io/x', 'file:///etc/passwd', 'data:,x']) assert.equal(isAcceptablePushEndpoint(url, development), false, url);
  });
  it('VIGIE_PUSH_HOSTS: host names or *.domain, checked at start-up', () => {
    assert.deepEqual(loadConfig({ VIGIE_PUSH_HOSTS: 'push.example, *.push.example' }).pushHosts, ['push.example', '*.push.example']);
    assert.throws(() => loadConfig({ VIGIE_PUSH_HOSTS: 'https://push.example/' }), /VIGIE_PUSH_HOSTS: a comma-separated list of host names/);
  });
});

describe('push subscriptions with keys nothing can be encrypted to', () => {
  const validKey = () => {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    return ecdh.getPublicKey().toString('base64url');
  };
  const subscription = (p256dh: string) => ({ endpoint: 'https://push.example/s/1', keys: { p256dh, auth: randomBytes(16).toString('base64url') } });
  // 0x04 then 64 bytes that are no point of the curve (the right length and alphabet, so only the curve check can refuse it).
  const offCurve = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url');

  it('are refused when the device registers them', () => {
    assert.equal(pushSubscriptionBody.safeParse(subscription(validKey())).success, true);
    const refused = pushSubscriptionBody.safeParse(subscription(offCurve));
    assert.equal(refused.success, false);
    assert.match(JSON.stringify(refused.error?.issues), /a point of the P-256 curve/);
  });

  it('one stored before the check is reported gone (dropped), not thrown at every challenge', async () => {
    const gateway = new WebPushGateway({ keys: deriveVapidKeys(randomBytes(32)), subject: 'mailto:ops@vigie.test', acceptsEndpoint: () => true });
    const result = await gateway.send({ deviceId: 'd1', endpoint: 'https://push.example/s/1', p256dh: offCurve, auth: randomBytes(16).toString('base64url') }, { challengeId: 'c1', ttlSeconds: 60 });
    assert.deepEqual(result, { status: 'gone' });
  });
});

describe('a subscription stored under an older endpoint rule', () => {
  it('is reported gone (dropped) instead of called', async () => {
    const { pushHosts } = loadConfig({});
    const gateway = new WebPushGateway({ keys: deriveVapidKeys(randomBytes(32)), subject: 'mailto:ops@vigie.test', acceptsEndpoint: (endpoint) => isAcceptablePushEndpoint(endpoint, { production: true, pushHosts }) });
    const keys = { p256dh: createECDH('prime256v1').generateKeys().toString('base64url'), auth: randomBytes(16).toString('base64url') };
    // Not a push service (and not resolvable here: a call would end as `failed`, not `gone`).
    assert.deepEqual(await gateway.send({ deviceId: 'd1', endpoint: 'https://push.example/s/1', ...keys }, { challengeId: 'c1', ttlSeconds: 60 }), { status: 'gone' });
    assert.deepEqual(await gateway.send({ deviceId: 'd2', endpoint: 'https://[2002:7f00:1::]/s/1', ...keys }, { challengeId: 'c1', ttlSeconds: 60 }), { status: 'gone' });
  });
});

describe('a device stream heartbeat (streamDeviceState)', () => {
  it('keeps an active device, ends a revoked or vanished one, and fails closed when the database cannot answer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vigie-stream-'));
    const db = openDatabase({ dataDir: dir });
    try {
      await migrate(db);
      const store = new SqlDeviceStore(db);
      await db.kysely.insertInto('device').values({ id: 'd1', national_id: '810000000017', name: 'e-CPS', public_key: '{}', pin_hash: 'x', pin_failures: 0, state: 'active', created_at: 0, last_used_at: null, revoked_at: null }).execute();
      assert.equal(await streamDeviceState(store, 'd1'), 'active');
      assert.equal(await store.setState('d1', 'revoked', 1), true);
      assert.equal(await streamDeviceState(store, 'd1'), 'revoked');
      assert.equal(await streamDeviceState(store, 'gone'), 'revoked', 'a device no longer there');
      await db.close();
      assert.equal(await streamDeviceState(store, 'd1'), 'unknown', 'the database cannot answer: not kept open');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
