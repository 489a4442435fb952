/**
 * Device request signing, shared by the server, the `vigie device` simulator and the web app:
 * WebCrypto only, so the same module runs in Node and in a browser.
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

export async function canonicalString(parts: SignedParts): Promise<string> {
  return canonicalFromBodyHash(parts, base64url(await crypto.subtle.digest('SHA-256', encoder.encode(parts.body))));
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
export async function signRequest(privateKey: CryptoKey, request: { method: string; path: string; deviceId: string; body: string; now?: number }): Promise<Record<string, string>> {
  const parts: SignedParts = { ...request, timestamp: String(request.now ?? Date.now()), nonce: randomNonce() };
  const signature = await crypto.subtle.sign(ECDSA_SHA256, privateKey, encoder.encode(await canonicalString(parts)));
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
