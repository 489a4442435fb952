/**
 * The receiving side of Web Push for tests: a push service endpoint (RFC 8030 §5: POST to the
 * subscription URL, 201 Created with a Location) that checks the VAPID authorization (RFC 8292)
 * and decrypts the message with the subscription's keys (RFC 8291, aes128gcm of RFC 8188),
 * exactly as a browser would after its push service hands it the message.
 */
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface SubscriptionKeys {
  /** User agent public key, uncompressed P-256 point, base64url. */
  p256dh: string;
  /** Authentication secret, 16 bytes, base64url. */
  auth: string;
  ecdh: ECDH;
  authSecret: Buffer;
}

export function createSubscriptionKeys(): SubscriptionKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const authSecret = randomBytes(16);
  return { p256dh: ecdh.getPublicKey().toString('base64url'), auth: authSecret.toString('base64url'), ecdh, authSecret };
}

const hkdf = (salt: Buffer, ikm: Buffer, info: Buffer, length: number) => Buffer.from(hkdfSync('sha256', ikm, salt, info, length));

/** RFC 8291 §3.4 and RFC 8188 §2: one record, padding delimiter 0x02. */
export function decryptAes128gcm(body: Buffer, keys: SubscriptionKeys): Buffer {
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20]!;
  const asPublic = body.subarray(21, 21 + idLength);
  const ciphertext = body.subarray(21 + idLength);
  if (idLength !== 65 || ciphertext.length > recordSize) throw new Error('unexpected aes128gcm header');
  const ecdhSecret = keys.ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), keys.ecdh.getPublicKey(), asPublic]);
  const ikm = hkdf(keys.authSecret, ecdhSecret, keyInfo, 32);
  const cek = hkdf(salt, ikm, Buffer.from('Content-Encoding: aes128gcm\0'), 16);
  const nonce = hkdf(salt, ikm, Buffer.from('Content-Encoding: nonce\0'), 12);
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (padded[end] !== 0x02) throw new Error('missing last-record padding delimiter');
  return padded.subarray(0, end);
}

/** RFC 8292 §2-3: `Authorization: vapid t=<ES256 JWT>, k=<application server key>`. */
export function checkVapid(headers: IncomingHttpHeaders, audience: string, now = Date.now()): { publicKey: string; claims: { aud: string; exp: number; sub: string } } {
  const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(String(headers.authorization ?? ''));
  if (!match) throw new Error(`no VAPID authorization: ${headers.authorization}`);
  const [, token, key] = match as unknown as [string, string, string];
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const point = Buffer.from(key, 'base64url');
  const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') }, format: 'jwk' });
  if (JSON.parse(Buffer.from(header, 'base64url').toString()).alg !== 'ES256') throw new Error('VAPID JWT is not ES256');
  if (!verify('sha256', Buffer.from(`${header}.${payload}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))) throw new Error('bad VAPID signature');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { aud: string; exp: number; sub: string };
  if (claims.aud !== audience) throw new Error(`VAPID aud ${claims.aud} is not ${audience}`);
  if (!(claims.exp * 1000 > now && claims.exp * 1000 <= now + 24 * 3600_000 + 60_000)) throw new Error('VAPID exp outside (now, now + 24 h]');
  if (!/^(mailto:|https:)/.test(claims.sub)) throw new Error('VAPID sub is not mailto: or https:');
  return { publicKey: key, claims };
}

export interface PushedMessage {
  subscription: string;
  headers: IncomingHttpHeaders;
  vapid: ReturnType<typeof checkVapid>;
  payload: unknown;
}

export interface PushReceiver {
  origin: string;
  /** A new subscription on this push service: its endpoint and the keys the "browser" holds. */
  subscribe(options?: { gone?: boolean }): { endpoint: string; keys: SubscriptionKeys; json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } } };
  received: PushedMessage[];
  errors: string[];
  next(timeoutMs?: number): Promise<PushedMessage>;
  close(): Promise<void>;
}

export async function startPushReceiver(): Promise<PushReceiver> {
  const subscriptions = new Map<string, { keys: SubscriptionKeys; gone: boolean }>();
  const received: PushedMessage[] = [];
  const errors: string[] = [];
  const waiters: Array<(m: PushedMessage) => void> = [];
  let origin = '';
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(request.url ?? '')?.[1];
      const subscription = id ? subscriptions.get(id) : undefined;
      if (request.method !== 'POST' || !subscription) return response.writeHead(404).end();
      if (subscription.gone) return response.writeHead(410).end();
      try {
        if (request.headers['content-encoding'] !== 'aes128gcm') throw new Error(`content-encoding ${request.headers['content-encoding']}`);
        if (!/^\d+$/.test(String(request.headers.ttl ?? ''))) throw new Error('missing TTL header (RFC 8030 §5.2)');
        const vapid = checkVapid(request.headers, origin);
        const payload = JSON.parse(decryptAes128gcm(Buffer.concat(chunks), subscription.keys).toString('utf8')) as unknown;
        const message = { subscription: id!, headers: request.headers, vapid, payload };
        received.push(message);
        waiters.splice(0).forEach((wake) => wake(message));
        response.writeHead(201, { location: `${origin}/message/${randomBytes(8).toString('hex')}` }).end();
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
        response.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    origin,
    received,
    errors,
    subscribe(options = {}) {
      const id = randomBytes(12).toString('base64url');
      const keys = createSubscriptionKeys();
      subscriptions.set(id, { keys, gone: options.gone ?? false });
      const endpoint = `${origin}/push/${id}`;
      return { endpoint, keys, json: { endpoint, expirationTime: null, keys: { p256dh: keys.p256dh, auth: keys.auth } } };
    },
    next(timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no push within ${timeoutMs} ms${errors.length ? `; errors: ${errors.join('; ')}` : ''}`)), timeoutMs);
        waiters.push((m) => {
          clearTimeout(timer);
          resolve(m);
        });
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
