import type { Clock } from '../lib/clock.ts';
import type { OutboxStore } from './outbox.ts';

export interface SmsMessage {
  /** E.164, as stored in the directory (`+33612345678`). */
  to: string;
  text: string;
}

/** Sends SMS. Implementations: a configurable HTTP JSON provider and the database outbox. */
export interface SmsSender {
  send(message: SmsMessage): Promise<void>;
}

export class SmsDeliveryError extends Error {
  override readonly name = 'SmsDeliveryError';
}

/**
 * A generic HTTP JSON SMS gateway: `POST url` with `{ "to": "+33…", "text": "…", "sender": "Vigie" }`
 * and `Authorization: Bearer <token>`; any 2xx is success. Most providers accept this shape
 * directly or through a small relay.
 */
export class HttpJsonSms implements SmsSender {
  readonly #url: string;
  readonly #token: string | undefined;
  readonly #sender: string;
  readonly #timeoutMs: number;

  constructor(options: { url: string; token?: string | undefined; sender: string; timeoutMs?: number }) {
    this.#url = options.url;
    this.#token = options.token;
    this.#sender = options.sender;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async send(message: SmsMessage): Promise<void> {
    const response = await fetch(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}) },
      body: JSON.stringify({ to: message.to, text: message.text, sender: this.#sender }),
      redirect: 'error',
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    await response.body?.cancel();
    if (!response.ok) throw new SmsDeliveryError(`SMS provider answered ${response.status}`);
  }
}

export class OutboxSms implements SmsSender {
  readonly #outbox: OutboxStore;
  readonly #clock: Clock;
  constructor(outbox: OutboxStore, clock: Clock) {
    this.#outbox = outbox;
    this.#clock = clock;
  }
  async send(message: SmsMessage): Promise<void> {
    await this.#outbox.add({ channel: 'sms', recipient: message.to, subject: null, body: message.text, createdAt: this.#clock.now() });
  }
}
