import type { FastifyInstance } from 'fastify';
import { html, page } from '../http/html.ts';
import type { OutboxStore } from './outbox.ts';
import { formatDate } from './messages.ts';
import { canonicalIp } from '../defence/source.ts';

/**
 * /dev/outbox: the emails and SMS the database outbox holds, newest first. Registered only when
 * NODE_ENV=development (see server.ts), and shown only to this machine: the messages hold
 * activation codes, and a development server listening on 0.0.0.0 (to try the app on a phone)
 * is reachable from the whole network.
 */
export async function outboxDevRoutes(app: FastifyInstance, deps: { outbox: OutboxStore }): Promise<void> {
  app.get('/dev/outbox', async (request, reply) => {
    // The connection's own address: a forwarded one is whatever the client wrote (or a tunnel's).
    const peer = canonicalIp(request.socket.remoteAddress ?? '');
    if (!(peer.startsWith('127.') || peer === '::1') || request.headers['x-forwarded-for'] !== undefined) return reply.callNotFound();
    const messages = await deps.outbox.list({ limit: 50 });
    const rows = messages.map((m) => html`<article class="service">
        <p class="hint">${m.channel === 'email' ? 'E-mail' : 'SMS'} · ${formatDate(m.createdAt)} · à ${m.recipient}</p>
        ${m.subject ? html`<p><strong>${m.subject}</strong></p>` : ''}
        <pre style="white-space:pre-wrap">${m.body}</pre>
      </article>`);
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(
      page('Boîte d’envoi (développement)', html`<h1>Boîte d’envoi</h1>
        <p class="hint">Mode développement : les e-mails et SMS sont gardés ici faute de SMTP_URL / VIGIE_SMS_URL. Aussi : <code>npx vigie outbox</code>.</p>
        ${messages.length ? rows : html`<p>Aucun message.</p>`}`),
    );
  });
}
