import type { Mailer } from '../notify/mailer.ts';
import type { SmsSender } from '../notify/sms.ts';

/**
 * What the wallet needs to reach a professional: one message on one channel. Contact-detail
 * changes send a code to the new contact and a notice (with a cancel link) to the old one.
 */
export interface ContactMessage {
  channel: 'email' | 'sms';
  to: string;
  /** Email subject; ignored for SMS. */
  subject: string;
  text: string;
}

export interface ContactNotifier {
  send(message: ContactMessage): Promise<void>;
}

/**
 * The wallet's notifier over the notification module (src/notify): its SMTP or outbox mailer and
 * its SMS gateway or outbox, whichever the configuration selected.
 */
export function notifierOver(transports: { mailer: Mailer; sms: SmsSender }): ContactNotifier {
  return {
    async send(message) {
      if (message.channel === 'email') await transports.mailer.send({ to: message.to, subject: message.subject, text: message.text });
      else await transports.sms.send({ to: message.to, text: message.text });
    },
  };
}
