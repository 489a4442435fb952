import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { HEADERS, base64url, exportPublicJwk, fromBase64url, generateDeviceKey, signRequest, verifySignature, type SignedParts } from './signature.ts';

const NOW = Date.UTC(2026, 0, 15, 9, 0, 0);
const REQUEST = { method: 'POST', path: '/device/v1/challenges/abc123def456/approve?x=1', deviceId: 'device-123', body: '{"code":"42","pin":"2468"}', now: NOW };

describe('device request signature', () => {
  let pair: CryptoKeyPair;
  let jwk: JsonWebKey;
  let parts: SignedParts;
  let signature: string;

  before(async () => {
    pair = await generateDeviceKey();
    jwk = await exportPublicJwk(pair.publicKey);
    const headers = await signRequest(pair.privateKey, REQUEST);
    parts = { method: REQUEST.method, path: REQUEST.path, deviceId: headers[HEADERS.device]!, timestamp: headers[HEADERS.timestamp]!, nonce: headers[HEADERS.nonce]!, body: REQUEST.body };
    signature = headers[HEADERS.signature]!;
  });

  it('signRequest sends the device id, timestamp, a fresh nonce and a P1363 signature', async () => {
    assert.equal(parts.deviceId, REQUEST.deviceId);
    assert.equal(parts.timestamp, String(NOW));
    assert.match(parts.nonce, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(fromBase64url(signature).length, 64, 'r||s, 32 bytes each');
    const again = await signRequest(pair.privateKey, REQUEST);
    assert.notEqual(again[HEADERS.nonce], parts.nonce);
    assert.deepEqual(Object.keys(jwk).sort(), ['crv', 'kty', 'x', 'y'], 'only the public members are exported');
  });

  it('verifies what it signed', async () => {
    assert.equal(await verifySignature(jwk, parts, signature), true);
    assert.equal(await verifySignature(jwk, { ...parts, method: 'post' }, signature), true, 'the method is upper-cased before signing');
  });

  it('any change to method, path, body, timestamp, nonce or device id breaks verification', async () => {
    const changes: Array<[string, Partial<SignedParts>]> = [
      ['method', { method: 'GET' }],
      ['path', { path: '/device/v1/challenges/abc123def456/deny?x=1' }],
      ['query', { path: '/device/v1/challenges/abc123def456/approve?x=2' }],
      ['body', { body: '{"code":"43","pin":"2468"}' }],
      ['body whitespace', { body: '{"code":"42", "pin":"2468"}' }],
      ['empty body', { body: '' }],
      ['timestamp', { timestamp: String(NOW + 1) }],
      ['nonce', { nonce: `${parts.nonce.slice(0, -1)}${parts.nonce.endsWith('A') ? 'B' : 'A'}` }],
      ['device id', { deviceId: 'device-124' }],
    ];
    for (const [what, change] of changes) assert.equal(await verifySignature(jwk, { ...parts, ...change }, signature), false, what);
  });

  it('a signature made by another key fails', async () => {
    const other = await generateDeviceKey();
    const headers = await signRequest(other.privateKey, REQUEST);
    const forged = { ...parts, timestamp: headers[HEADERS.timestamp]!, nonce: headers[HEADERS.nonce]! };
    assert.equal(await verifySignature(jwk, forged, headers[HEADERS.signature]!), false);
    assert.equal(await verifySignature(await exportPublicJwk(other.publicKey), forged, headers[HEADERS.signature]!), true);
  });

  it('malformed keys and signatures give false, never a throw', async () => {
    const badKeys: JsonWebKey[] = [
      {},
      { kty: 'EC', crv: 'P-256' },
      { ...jwk, x: 'not-base64url!' },
      { ...jwk, x: base64url(new Uint8Array(32)) },
      { ...jwk, crv: 'P-384' },
      { kty: 'RSA', n: 'AQAB', e: 'AQAB' },
      { kty: 'oct', k: base64url(new Uint8Array(32)) },
    ];
    for (const key of badKeys) assert.equal(await verifySignature(key, parts, signature), false, JSON.stringify(key));
    const badSignatures = ['', '!!!', 'AAAA', base64url(new Uint8Array(64)), base64url(new Uint8Array(72)), `${signature}AA`, signature.slice(0, -2)];
    for (const sig of badSignatures) assert.equal(await verifySignature(jwk, parts, sig), false, JSON.stringify(sig));
  });

  it('base64url round-trips bytes without padding', () => {
    const bytes = new Uint8Array([0, 251, 255, 62, 63, 1]);
    const text = base64url(bytes);
    assert.match(text, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(fromBase64url(text), bytes);
  });
});
