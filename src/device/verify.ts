import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { canonicalFromBodyHash, type SignedParts } from './signature.ts';

// The server verifies every device call. node:crypto's callback form runs the ECDSA check (about
// 0.1 ms of CPU) on libuv's thread pool, off the event loop that every request shares,
// without WebCrypto's key import and promise layers; imported keys are kept (checked once: reading
// a KeyObject's details goes through native code) since a device signs many requests.
const keys = new Map<string, KeyObject | null>();

/** The device's P-256 public key; null for any other kind of key. */
function keyFor(jwk: JsonWebKey): KeyObject | null {
  const id = `${jwk.crv}.${jwk.x}.${jwk.y}`;
  let key = keys.get(id);
  if (key === undefined) {
    const imported = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as never, format: 'jwk' });
    key = imported.asymmetricKeyType === 'ec' && imported.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? imported : null;
    if (keys.size >= 10_000) keys.clear();
    keys.set(id, key);
  }
  return key;
}

/** Same verdict as signature.ts `verifySignature`; never rejects. */
export async function verifyDeviceSignature(publicJwk: JsonWebKey, parts: SignedParts, signature: string): Promise<boolean> {
  try {
    const key = keyFor(publicJwk);
    if (!key) return false;
    const bodyHash = createHash('sha256').update(parts.body).digest('base64url');
    const data = Buffer.from(canonicalFromBodyHash(parts, bodyHash));
    return await new Promise<boolean>((resolve, reject) =>
      verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'), (error, valid) => (error ? reject(error) : resolve(valid))),
    );
  } catch {
    return false;
  }
}
