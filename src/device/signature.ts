/**
 * Device request signing, shared by the server, the `vigie device` simulator and the web app:
 * WebCrypto by default, so the same module runs in Node and in a browser.
 *
 * A device signs, with its ECDSA P-256 key (SHA-256, IEEE P1363 r||s signature):
 *   VIGIE-DEVICE-V1 \n METHOD \n PATH?QUERY \n TIMESTAMP_MS \n NONCE \n DEVICE_ID \n BASE64URL(SHA-256(BODY))
 * and sends the parts in headers. The server rejects a bad signature, a timestamp outside its
 * window and a nonce it has seen (replay).
 */
export const SIGNATURE_VERSION = 'VIGIE-DEVICE-V1';
export const HEADERS = {
  device: 'x-vigie-device',
  timestamp: 'x-vigie-timestamp',
  nonce: 'x-vigie-nonce',
  signature: 'x-vigie-signature',
} as const;
/** Device id placed in the signed string of an activation request, before the device has an id. */
export const ACTIVATION_DEVICE_ID = 'activation';

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface SignedParts {
  method: string;
  path: string;
  timestamp: string;
  nonce: string;
  deviceId: string;
  body: string;
}

export function base64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = '';
  for (const byte of view) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();

/** The signed string, given the base64url SHA-256 of the body (computed by whoever is fastest). */
export function canonicalFromBodyHash(parts: Omit<SignedParts, 'body'>, bodyHash: string): string {
  return [SIGNATURE_VERSION, parts.method.toUpperCase(), parts.path, parts.timestamp, parts.nonce, parts.deviceId, bodyHash].join('\n');
}

/**
 * What signs for a device. WebCrypto's (any CryptoKey) works everywhere; a Node caller that signs
 * many requests (the simulator under a benchmark) may pass synchronous node:crypto ones, several
 * times cheaper than WebCrypto's promise jobs.
 */
export interface DeviceSigner {
  sign(data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer | Uint8Array> | Uint8Array;
  sha256(data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer | Uint8Array> | Uint8Array;
}

const webCryptoSha256 = (data: Uint8Array<ArrayBuffer>) => crypto.subtle.digest('SHA-256', data);

function webCryptoSigner(key: CryptoKey): DeviceSigner {
  return { sign: (data) => crypto.subtle.sign(ECDSA_SHA256, key, data), sha256: webCryptoSha256 };
}

export async function canonicalString(parts: SignedParts, sha256: DeviceSigner['sha256'] = webCryptoSha256): Promise<string> {
  return canonicalFromBodyHash(parts, base64url(await sha256(encoder.encode(parts.body))));
}

export async function generateDeviceKey(extractable = false): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ECDSA, extractable, ['sign', 'verify']);
}

export async function exportPublicJwk(key: CryptoKey): Promise<JsonWebKey> {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', key);
  return { kty, crv, x, y };
}

export function randomNonce(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Builds the headers of one signed device request. */
export async function signRequest(key: CryptoKey | DeviceSigner, request: { method: string; path: string; deviceId: string; body: string; now?: number }): Promise<Record<string, string>> {
  const signer = 'sign' in key ? key : webCryptoSigner(key);
  const parts: SignedParts = { ...request, timestamp: String(request.now ?? Date.now()), nonce: randomNonce() };
  const signature = await signer.sign(encoder.encode(await canonicalString(parts, signer.sha256)));
  return {
    [HEADERS.device]: request.deviceId,
    [HEADERS.timestamp]: parts.timestamp,
    [HEADERS.nonce]: parts.nonce,
    [HEADERS.signature]: base64url(signature),
  };
}

export async function verifySignature(publicJwk: JsonWebKey, parts: SignedParts, signature: string): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey('jwk', publicJwk, ECDSA, false, ['verify']);
    return await crypto.subtle.verify(ECDSA_SHA256, key, fromBase64url(signature), encoder.encode(await canonicalString(parts)));
  } catch {
    return false;
  }
}
