import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { canonicalFromBodyHash, exportPublicJwk, generateDeviceKey, signRequest, verifySignature, HEADERS, type SignedParts } from './signature.ts';
import { verifyDeviceSignature } from './verify.ts';

describe('server-side signature verification', () => {
  it('agrees with the WebCrypto verifier on valid and altered requests', async () => {
    const pair = await generateDeviceKey(true);
    const jwk = await exportPublicJwk(pair.publicKey);
    const request = { method: 'POST', path: '/device/v1/challenges/abc/approve', deviceId: 'dev1', body: '{"code":"42","pin":"2468"}' };
    const headers = await signRequest(pair.privateKey, request);
    const parts: SignedParts = { ...request, timestamp: headers[HEADERS.timestamp]!, nonce: headers[HEADERS.nonce]! };
    const signature = headers[HEADERS.signature]!;
    const cases: SignedParts[] = [parts, { ...parts, body: '{"code":"43","pin":"2468"}' }, { ...parts, path: '/device/v1/challenges/xyz/approve' }, { ...parts, nonce: 'other-nonce-123456' }];
    for (const candidate of cases) assert.equal(await verifyDeviceSignature(jwk, candidate, signature), await verifySignature(jwk, candidate, signature));
    assert.equal(await verifyDeviceSignature(jwk, parts, signature), true);
    assert.equal(await verifyDeviceSignature(jwk, cases[1]!, signature), false);
  });

  it('refuses keys that are not P-256 and malformed input without throwing', async () => {
    const parts: SignedParts = { method: 'GET', path: '/x', timestamp: '1', nonce: 'n'.repeat(16), deviceId: 'd', body: '' };
    assert.equal(await verifyDeviceSignature({ kty: 'EC', crv: 'P-384', x: 'a', y: 'b' }, parts, 'AAAA'), false);
    assert.equal(await verifyDeviceSignature({ kty: 'RSA' }, parts, 'AAAA'), false);
    const jwk = await exportPublicJwk((await generateDeviceKey(true)).publicKey);
    assert.equal(await verifyDeviceSignature(jwk, parts, '!!!not base64'), false);
  });

  it('refuses a signature that is valid for a real key of another curve, on every call (the verdict is cached)', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const jwk = publicKey.export({ format: 'jwk' }) as JsonWebKey;
    const parts: SignedParts = { method: 'GET', path: '/device/v1/challenges', timestamp: String(Date.now()), nonce: 'n'.repeat(16), deviceId: 'dev1', body: '' };
    const data = Buffer.from(canonicalFromBodyHash(parts, createHash('sha256').update('').digest('base64url')));
    const signature = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    // The same check without the curve rule would accept it:
    assert.equal(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature), true);
    for (let i = 0; i < 2; i++) assert.equal(await verifyDeviceSignature(jwk, parts, signature.toString('base64url')), false);
  });
});
