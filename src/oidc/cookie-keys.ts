import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type KeyGrip from 'keygrip';

/**
 * Signs and checks oidc-provider's cookies (the `.sig` companions of `_session`, `_interaction`...)
 * in place of the default Keygrip: HMAC-SHA256 under key objects made once, compared with
 * `timingSafeEqual`. Keygrip built an HMAC key from the string on every cookie and compared through
 * two more HMACs and fresh random bytes; a login reads signed cookies about ten times.
 * The first key signs; every key verifies, so a new key can be put first and the old one kept
 * until the cookies it signed have expired.
 */
export class CookieKeys implements KeyGrip {
  readonly #keys: KeyObject[];

  constructor(secrets: ReadonlyArray<string | Buffer>) {
    if (!secrets.length) throw new Error('at least one cookie key is required');
    this.#keys = secrets.map((secret) => createSecretKey(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret));
  }

  sign(data: unknown): string {
    return this.#mac(String(data), this.#keys[0]!);
  }

  verify(data: unknown, digest: string): boolean {
    return this.index(data, digest) > -1;
  }

  index(data: unknown, digest: string): number {
    const given = Buffer.from(String(digest));
    for (let i = 0; i < this.#keys.length; i += 1) {
      // Compared as text: one spelling only (base64url decoding would accept stray characters).
      const expected = Buffer.from(this.#mac(String(data), this.#keys[i]!));
      if (given.length === expected.length && timingSafeEqual(given, expected)) return i;
    }
    return -1;
  }

  #mac(data: string, key: KeyObject): string {
    return createHmac('sha256', key).update(data).digest('base64url');
  }
}
