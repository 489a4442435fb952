import webpush from 'web-push';
import type { PushGateway, PushMessage, PushResult, PushTarget } from './gateway.ts';
import type { VapidKeys } from './vapid.ts';

/**
 * Web Push through the `web-push` library: it encrypts the payload (RFC 8291, aes128gcm) and
 * signs the VAPID JWT (RFC 8292); the request itself is sent with fetch (no redirects, a timeout,
 * http allowed for loopback test receivers, see ./endpoint.ts).
 */
export class WebPushGateway implements PushGateway {
  readonly name = 'webpush';
  readonly #vapid: { subject: string; publicKey: string; privateKey: string };
  readonly #timeoutMs: number;
  readonly #acceptsEndpoint: (endpoint: string) => boolean;

  /**
   * `acceptsEndpoint`: the registration rule (./endpoint.ts), checked again before each send: a
   * subscription stored under an older rule, or before VIGIE_PUSH_HOSTS was narrowed, is dropped
   * instead of called.
   */
  constructor(options: { keys: VapidKeys; subject: string; timeoutMs?: number; acceptsEndpoint: (endpoint: string) => boolean }) {
    this.#vapid = { subject: options.subject, publicKey: options.keys.publicKey, privateKey: options.keys.privateKey };
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#acceptsEndpoint = options.acceptsEndpoint;
  }

  async send(target: PushTarget, message: PushMessage): Promise<PushResult> {
    if (!this.#acceptsEndpoint(target.endpoint)) return { status: 'gone' };
    const payload = JSON.stringify({ type: 'challenge', challengeId: message.challengeId });
    let details;
    try {
      details = webpush.generateRequestDetails({ endpoint: target.endpoint, keys: { p256dh: target.p256dh, auth: target.auth } }, payload, {
        vapidDetails: this.#vapid,
        TTL: Math.max(0, Math.floor(message.ttlSeconds)),
        urgency: 'high',
        contentEncoding: 'aes128gcm',
      });
    } catch {
      // Keys nothing can be encrypted to (stored before they were checked): the subscription is dead.
      return { status: 'gone' };
    }
    try {
      const response = await fetch(details.endpoint, {
        method: details.method,
        headers: details.headers as Record<string, string>,
        body: details.body as Buffer<ArrayBuffer> | null,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      await response.body?.cancel();
      if (response.status === 404 || response.status === 410) return { status: 'gone' };
      if (response.status >= 200 && response.status < 300) return { status: 'sent' };
      return { status: 'failed', reason: `push service answered ${response.status}` };
    } catch (error) {
      return { status: 'failed', reason: error instanceof Error ? error.message : String(error) };
    }
  }
}
