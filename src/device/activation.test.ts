import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { calculateJwkThumbprint } from 'jose';
import { CODE_ACTIVATION_STATES, CODE_ACTIVATION_TRANSITIONS, jwkThumbprint } from './activation.ts';
import { exportPublicJwk, generateDeviceKey } from './signature.ts';

describe('activation flow states', () => {
  it('the table covers every state; terminal states have no way out', () => {
    assert.deepEqual(Object.keys(CODE_ACTIVATION_TRANSITIONS).sort(), [...CODE_ACTIVATION_STATES].sort());
    for (const state of ['completed', 'failed', 'expired'] as const) assert.deepEqual(CODE_ACTIVATION_TRANSITIONS[state], []);
  });
  it('a device is registered only from a verified flow; codes are checked only while pending', () => {
    const into = (to: string) => CODE_ACTIVATION_STATES.filter((from) => CODE_ACTIVATION_TRANSITIONS[from].includes(to as never));
    assert.deepEqual(into('completed'), ['verified']);
    assert.deepEqual(into('verified'), ['pending']);
    assert.deepEqual(into('failed'), ['pending']);
  });
});

describe('jwkThumbprint', () => {
  it('is the RFC 7638 SHA-256 thumbprint', async () => {
    const pair = await generateDeviceKey(true);
    const jwk = await exportPublicJwk(pair.publicKey);
    assert.equal(jwkThumbprint(jwk), await calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0], 'sha256'));
    assert.equal(jwkThumbprint({ ...jwk, ext: true, key_ops: ['verify'] } as JsonWebKey), jwkThumbprint(jwk), 'members other than crv, kty, x, y do not count');
  });
});

describe('activationSource', () => {
  it('counts an IPv4 address as itself and an IPv6 subscriber by its /56', async () => {
    const { activationSource } = await import('./activation-routes.ts');
    assert.equal(activationSource('192.0.2.4'), '192.0.2.4');
    assert.equal(activationSource('::ffff:192.0.2.4'), '192.0.2.4');
    assert.equal(activationSource('2001:db8:1:2:3:4:5:6'), activationSource('2001:db8:1:9:ffff::1'), 'rotating addresses inside a /56 does not reset the limit');
  });
});
