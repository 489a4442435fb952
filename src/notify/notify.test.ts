import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { HttpJsonSms, SmsDeliveryError } from './sms.ts';
import { SmtpMailer } from './mailer.ts';
import { smtpRequiresTls } from './smtp-policy.ts';
import { activationCodeEmail, activationCodeSms, deviceActivatedEmail, deviceActivatedSms } from './messages.ts';
import { startSmtpSink } from '../../test/support/smtp.ts';

// GSM 03.38 basic character set: an SMS in it fits 160 characters (UCS-2 would cut it to 70).
const GSM7 = /^[@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&'()*+,\-./0-9:;<=>?¡A-ZÄÖÑÜ§¿a-zäöñüà]*$/;

describe('messages', () => {
  it('the SMS is one GSM 7-bit segment holding the code and nothing personal', () => {
    const text = activationCodeSms({ code: '123456', ttlMinutes: 10 });
    assert.match(text, GSM7);
    assert.ok(text.length <= 160, `${text.length} characters`);
    assert.match(text, /123456/);
  });
  it('the SMS notice is GSM 7-bit whatever the month, and holds the date and the revocation link', () => {
    const revokeUrl = 'https://vigie.example/e-cps/revoquer?token=' + 'a'.repeat(43);
    for (let month = 0; month < 12; month += 1) {
      const text = deviceActivatedSms({ at: Date.UTC(2026, month, 15, 11, 45), revokeUrl });
      assert.match(text, GSM7, text);
      assert.ok(text.length <= 2 * 153, `${text.length} characters: two segments at most`);
    }
    const text = deviceActivatedSms({ at: Date.UTC(2026, 7, 15, 11, 45), revokeUrl });
    assert.match(text, /le 15\/08\/2026 13:45\. /, 'Paris time');
    assert.ok(text.endsWith(revokeUrl));
  });
  it('the emails are French and carry no identifier; the notice holds the revocation link', () => {
    const codeMail = activationCodeEmail({ code: '654321', ttlMinutes: 10 });
    assert.match(codeMail.text, /654321/);
    assert.match(codeMail.text, /10 minutes/);
    const notice = deviceActivatedEmail({ at: Date.UTC(2026, 10, 23, 11, 45), revokeUrl: 'https://vigie.example/e-cps/revoquer?token=abc', revokeDays: 30 });
    assert.match(notice.text, /23 novembre 2026 à 12:45/, 'Paris time');
    assert.match(notice.text, /https:\/\/vigie\.example\/e-cps\/revoquer\?token=abc/);
    assert.match(notice.text, /Ce n’était pas moi/);
  });
});

describe('HttpJsonSms', () => {
  let server: Server;
  let url = '';
  const received: Array<{ auth: string | undefined; body: unknown }> = [];
  let status = 202;
  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (c: Buffer) => (body += c));
      request.on('end', () => {
        received.push({ auth: request.headers.authorization, body: JSON.parse(body) as unknown });
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/sms`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('POSTs { to, text, sender } with the bearer token; a non-2xx answer is an error', async () => {
    const sms = new HttpJsonSms({ url, token: 'secret-token', sender: 'Vigie' });
    await sms.send({ to: '+33612345678', text: 'bonjour' });
    assert.deepEqual(received.at(-1), { auth: 'Bearer secret-token', body: { to: '+33612345678', text: 'bonjour', sender: 'Vigie' } });
    status = 500;
    await assert.rejects(sms.send({ to: '+33612345678', text: 'x' }), SmsDeliveryError);
  });
});

describe('SmtpMailer', () => {
  it('delivers through a pooled SMTP connection', async () => {
    const sink = await startSmtpSink();
    const mailer = new SmtpMailer({ url: sink.url, from: 'Vigie e-CPS <ne-pas-repondre@vigie.localhost>', requireTls: false });
    try {
      await Promise.all([1, 2, 3].map((i) => mailer.send({ to: `pro${i}@demo.vigie.test`, subject: 'Votre code d’activation e-CPS', text: `code ${i}00000 é` })));
      assert.equal(sink.messages.length, 3);
      const mail = sink.messages.find((m) => m.to.includes('pro2@demo.vigie.test'))!;
      assert.equal(mail.subject, 'Votre code d’activation e-CPS');
      assert.equal(mail.text.trim(), 'code 200000 é');
    } finally {
      await mailer.close();
      await sink.close();
    }
  });
  it('when TLS is required, a relay that does not offer STARTTLS gets nothing', async () => {
    const sink = await startSmtpSink();
    const mailer = new SmtpMailer({ url: sink.url, from: 'Vigie e-CPS <ne-pas-repondre@vigie.localhost>', requireTls: true });
    try {
      await assert.rejects(mailer.send({ to: 'pro@demo.vigie.test', subject: 'Votre code d’activation e-CPS', text: 'code 123456' }), /STARTTLS/);
      assert.equal(sink.messages.length, 0);
    } finally {
      await mailer.close();
      await sink.close();
    }
  });

  it('TLS is required in production, except from a relay on this machine', () => {
    assert.equal(smtpRequiresTls('smtp://relay.example:587', true), true);
    assert.equal(smtpRequiresTls('smtp://relay.example:587', false), false);
    for (const local of ['smtp://localhost:25', 'smtp://127.0.0.1:25', 'smtp://[::1]:25']) assert.equal(smtpRequiresTls(local, true), false, local);
  });
});
