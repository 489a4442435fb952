import { createECDH } from 'node:crypto';
import { deriveKey } from '../lib/crypto.ts';

export interface VapidKeys {
  /** Uncompressed P-256 point, base64url: the `applicationServerKey` the app subscribes with. */
  publicKey: string;
  /** 32-byte private scalar, base64url. */
  privateKey: string;
}

// Order of the P-256 group: a valid private scalar d satisfies 1 ≤ d < N.
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

/**
 * The VAPID key pair (RFC 8292), derived from the root secret: every node sharing VIGIE_SECRET
 * signs with the same key and nothing needs storing. Changing the secret changes the key; the app
 * then sees a different `applicationServerKey` and subscribes again.
 */
export function deriveVapidKeys(seed: Buffer): VapidKeys {
  for (let counter = 0; ; counter += 1) {
    const scalar = counter === 0 ? seed : deriveKey(seed, `vapid-retry-${counter}`);
    const d = BigInt(`0x${scalar.toString('hex')}`);
    if (d === 0n || d >= N) continue;
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(scalar);
    return { publicKey: ecdh.getPublicKey().toString('base64url'), privateKey: scalar.toString('base64url') };
  }
}
