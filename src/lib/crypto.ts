import { createHmac, createSecretKey, type KeyObject, hkdfSync, randomBytes, randomInt, timingSafeEqual, createCipheriv, createDecipheriv, createHash } from 'node:crypto';

/** A random base64url id that never starts with '-', so it can be typed as a command argument. */
export function randomId(bytes = 16): string {
  for (;;) {
    const id = randomBytes(bytes).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** A uniformly drawn string of decimal digits from the CSPRNG. */
export function randomDigits(length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += String(randomInt(10));
  return out;
}

export function sha256Base64url(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url');
}

/** Keyed hash used for every stored PIN and one-time code: a database dump alone cannot brute-force them. */
// HMAC keys passed as Buffers are re-imported on every call; our keys live for the process.
const hmacKeys = new WeakMap<Buffer, KeyObject>();

export function keyedHash(key: Buffer, purpose: string, value: string): string {
  let keyObject = hmacKeys.get(key);
  if (!keyObject) {
    keyObject = createSecretKey(key);
    hmacKeys.set(key, keyObject);
  }
  return createHmac('sha256', keyObject).update(purpose).update('\0').update(value).digest('base64url');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  // Compare against itself on length mismatch so the time does not reveal which case happened.
  return timingSafeEqual(left, left.length === right.length ? right : left) && left.length === right.length;
}

/** Derives independent sub-keys from the one root secret, one per purpose. */
export function deriveKey(root: Buffer, purpose: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `vigie:${purpose}`, length));
}

export function seal(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url')).join('.');
}

export function unseal(key: Buffer, sealed: string): string {
  const [iv, tag, body] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
  if (!iv || !tag || !body) throw new Error('malformed sealed value');
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
}
