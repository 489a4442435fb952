import nodemailer, { type Transporter, type TransportOptions } from 'nodemailer';
import type { Clock } from '../lib/clock.ts';
import type { OutboxStore } from './outbox.ts';

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
}

/** Sends email. Implementations: SMTP (nodemailer, pooled) and the database outbox. */
export interface Mailer {
  send(message: EmailMessage): Promise<void>;
  close(): Promise<void>;
}

export class SmtpMailer implements Mailer {
  readonly #transport: Transporter;
  readonly #from: string;

  constructor(options: { url: string; from: string; requireTls: boolean }) {
    // The URL carries host, port, credentials, smtps: and nodemailer options in its query
    // (`?tls.rejectUnauthorized=false` for a local relay with a self-signed certificate).
    this.#transport = nodemailer.createTransport({
      url: options.url,
      requireTLS: options.requireTls,
      pool: true,
      maxConnections: 5,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    } as TransportOptions);
    this.#from = options.from;
  }

  async send(message: EmailMessage): Promise<void> {
    await this.#transport.sendMail({ from: this.#from, to: message.to, subject: message.subject, text: message.text });
  }

  async close(): Promise<void> {
    this.#transport.close();
  }
}

export class OutboxMailer implements Mailer {
  readonly #outbox: OutboxStore;
  readonly #clock: Clock;
  constructor(outbox: OutboxStore, clock: Clock) {
    this.#outbox = outbox;
    this.#clock = clock;
  }
  async send(message: EmailMessage): Promise<void> {
    await this.#outbox.add({ channel: 'email', recipient: message.to, subject: message.subject, body: message.text, createdAt: this.#clock.now() });
  }
  async close(): Promise<void> {}
}
