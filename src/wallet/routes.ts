import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parse } from '../http/errors.ts';
import { commonErrors, VigieError } from '../lib/errors.ts';
import { constantTimeEqual } from '../lib/crypto.ts';
import { LOGIN_COOKIE, LOGIN_COOKIE_MAX_AGE_SECONDS, SESSION_COOKIE, safeReturnTo } from './auth.ts';
import { decodeCursor, toCsv } from './history.ts';
import type { WalletSession } from './store.ts';
import type { Wallet } from './index.ts';
import { walletErrors } from './errors.ts';
import * as views from './views.ts';

const SCRIPT = readFileSync(new URL('./static/wallet.js', import.meta.url), 'utf8');

const csrfBody = z.object({ csrf: z.string().max(128).default('') });
const uidParams = z.object({ uid: z.string().min(1).max(128) });
const idParams = z.object({ id: z.string().min(1).max(64) });
const tokenParams = z.object({ token: z.string().min(1).max(128) });
const changeBody = csrfBody.extend({ kind: z.enum(['email', 'mobile']), value: z.string().max(254).default('') });
const confirmBody = csrfBody.extend({ code: z.string().max(16).default('') });
const reportBody = csrfBody.extend({ attempt: z.string().max(80).optional(), comment: z.string().max(1000).optional() });
const reportQuery = z.object({ attempt: z.string().max(80).optional() });
const historyQuery = z.object({ after: z.string().max(120).optional() });
const loginQuery = z.object({ return: z.string().max(300).optional() });
const notificationsBody = csrfBody.extend({ push: z.enum(['on', 'off']).optional(), quiet: z.enum(['keep', 'none', '1h', '8h', '24h', '7d']).default('keep') });

const QUIET_DURATIONS_MS: Record<string, number> = { '1h': 3600_000, '8h': 8 * 3600_000, '24h': 24 * 3600_000, '7d': 7 * 24 * 3600_000 };
const HISTORY_PAGE_SIZE = 25;

const FLASHES: Record<string, views.Flash> = {
  ended: { kind: 'ok', text: 'La session a été déconnectée : ses accès aux services sont révoqués et les services prévenus.' },
  revoked: { kind: 'ok', text: 'L’appareil a été révoqué : il ne peut plus valider de connexion.' },
  settings: { kind: 'ok', text: 'Vos réglages de notification sont enregistrés.' },
  forgotten: { kind: 'ok', text: 'Plus aucun navigateur n’est de confiance : chacun devra de nouveau terminer une connexion validée pour le redevenir.' },
  requested: { kind: 'ok', text: 'Un code de confirmation a été envoyé à la nouvelle coordonnée, et un message à l’ancienne.' },
  confirmed: { kind: 'ok', text: 'Changement confirmé. La nouvelle coordonnée sera utilisable après le délai de sécurité.' },
  withdrawn: { kind: 'ok', text: 'Le changement a été annulé.' },
};

export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index < 1) continue;
    out.set(part.slice(0, index).trim(), part.slice(index + 1).trim());
  }
  return out;
}

/** The wallet at /wallet: thin handlers over the wallet's services (index.ts). */
export async function walletRoutes(app: FastifyInstance, deps: { wallet: Wallet; issuer: string }): Promise<void> {
  const { wallet } = deps;
  const secure = deps.issuer.startsWith('https://');
  const cookie = (name: string, value: string, maxAgeSeconds: number) =>
    `${name}=${value}; Path=/wallet; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
  const clearCookie = (name: string) => cookie(name, '', 0);

  const send = (reply: FastifyReply, body: string, status = 200) =>
    reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);

  async function who(session: WalletSession): Promise<views.Who> {
    const pro = await wallet.directory.get(session.nationalId);
    return { name: pro ? `${pro.givenName} ${pro.familyName}` : 'Professionnel de santé', nationalId: session.nationalId, csrf: session.csrf };
  }

  /** The logged-in professional, or undefined after sending the browser to log in. */
  async function authenticated(request: FastifyRequest, reply: FastifyReply): Promise<WalletSession | undefined> {
    const session = await wallet.auth.current(parseCookies(request.headers.cookie).get(SESSION_COOKIE));
    if (session) return session;
    const back = request.method === 'GET' ? request.url : '/wallet';
    await reply.redirect(`/wallet/login?return=${encodeURIComponent(safeReturnTo(back))}`, 303);
    return undefined;
  }

  function checkCsrf(session: WalletSession, body: unknown): void {
    const { csrf } = parse(csrfBody.passthrough(), body ?? {});
    if (!constantTimeEqual(session.csrf, csrf)) throw walletErrors.WALLET_CSRF_INVALID();
  }

  const actor = (session: WalletSession) => `wallet:${session.nationalId}`;
  const flashOf = (request: FastifyRequest) => FLASHES[String((request.query as Record<string, unknown> | undefined)?.done ?? '')];

  app.get('/wallet/static/wallet.js', async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(SCRIPT));

  // ---------------------------------------------------------------------------- login

  app.get('/wallet/login', async (request, reply) => {
    const query = parse(loginQuery, request.query ?? {});
    const { url, pending } = await wallet.auth.beginLogin(query.return ?? '/wallet');
    reply.header('set-cookie', cookie(LOGIN_COOKIE, pending, LOGIN_COOKIE_MAX_AGE_SECONDS));
    return reply.header('cache-control', 'no-store').redirect(url.href, 303);
  });

  app.get('/wallet/callback', async (request, reply) => {
    const cookies = parseCookies(request.headers.cookie);
    const cleared = [clearCookie(LOGIN_COOKIE)];
    try {
      const { cookie: value, returnTo } = await wallet.auth.finishLogin(new URL(request.url, `${deps.issuer}/`), cookies.get(LOGIN_COOKIE), request.ip);
      // A previous wallet session in this browser is replaced.
      const previous = await wallet.auth.current(cookies.get(SESSION_COOKIE));
      if (previous) await wallet.auth.logout(previous, request.ip);
      reply.header('set-cookie', [...cleared, cookie(SESSION_COOKIE, value, Math.floor(wallet.sessionTtlMs / 1000))]);
      return reply.header('cache-control', 'no-store').redirect(returnTo, 303);
    } catch (error) {
      if (!(error instanceof VigieError) || error.status >= 500) throw error;
      request.log.info({ code: error.code, detail: error.detail }, 'wallet login refused');
      reply.header('set-cookie', cleared);
      return send(reply, views.messagePage({ title: 'Connexion au portefeuille impossible', text: error.message, error: true, link: { href: '/wallet', text: 'Réessayer' } }), error.status);
    }
  });

  app.post('/wallet/logout', async (request, reply) => {
    const session = await wallet.auth.current(parseCookies(request.headers.cookie).get(SESSION_COOKIE));
    if (session) {
      checkCsrf(session, request.body);
      await wallet.auth.logout(session, request.ip);
    }
    reply.header('set-cookie', clearCookie(SESSION_COOKIE));
    return send(reply, views.messagePage({ title: 'Vous avez quitté le portefeuille', text: 'Votre portefeuille est fermé. Votre session Vigie reste ouverte pour les services : fermez-la depuis « Connexions » si besoin.', link: { href: '/wallet', text: 'Revenir au portefeuille' } }));
  });

  // ---------------------------------------------------------------------------- sessions

  app.get('/wallet', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    const [sessions, deliveries] = await Promise.all([wallet.sessions.list(session.nationalId), wallet.deliveries.listRecent(session.nationalId)]);
    const serviceName = await wallet.serviceNames(deliveries.map((d) => d.clientId));
    return send(reply, views.sessionsPage({ who: await who(session), sessions, currentUid: session.sessionUid, deliveries, serviceName, flash: flashOf(request) }));
  });

  app.post('/wallet/sessions/:uid/end', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    const { uid } = parse(uidParams, request.params);
    const result = await wallet.sessions.end(session.nationalId, uid, { actor: actor(session), reason: 'wallet' });
    wallet.counters.forcedLogouts.inc({ scope: 'one' });
    if (uid !== session.sessionUid) return reply.redirect('/wallet?done=ended', 303);
    reply.header('set-cookie', clearCookie(SESSION_COOKIE));
    const serviceName = await wallet.serviceNames(result.deliveries.map((d) => d.clientId));
    return send(reply, views.endedPage({ title: 'Session déconnectée', text: 'Cette session est fermée, y compris votre accès au portefeuille. Ses accès aux services sont révoqués.', deliveries: result.deliveries, serviceName }));
  });

  app.post('/wallet/sessions/end-all', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    const result = await wallet.sessions.endAll(session.nationalId, { actor: actor(session), reason: 'wallet_all' });
    wallet.counters.forcedLogouts.inc({ scope: 'all' });
    reply.header('set-cookie', clearCookie(SESSION_COOKIE));
    const serviceName = await wallet.serviceNames(result.deliveries.map((d) => d.clientId));
    return send(reply, views.endedPage({
      title: 'Vous êtes déconnecté partout',
      text: `${result.sessionsEnded} session${result.sessionsEnded > 1 ? 's' : ''} fermée${result.sessionsEnded > 1 ? 's' : ''}. Tous les accès aux services sont révoqués et les services prévenus.`,
      deliveries: result.deliveries,
      serviceName,
    }));
  });

  app.get('/wallet/deliveries.json', async (request, reply) => {
    const session = await wallet.auth.current(parseCookies(request.headers.cookie).get(SESSION_COOKIE));
    if (!session) return reply.code(401).header('cache-control', 'no-store').send({ error: 'WALLET_LOGIN_REQUIRED', message: 'Connexion requise.' });
    const deliveries = await wallet.deliveries.listRecent(session.nationalId);
    reply.header('cache-control', 'no-store');
    return { deliveries: deliveries.map((d) => ({ id: d.id, clientId: d.clientId, state: d.state, attempts: d.attempts, text: views.deliveryText(d).text })) };
  });

  // ---------------------------------------------------------------------------- history

  app.get('/wallet/history', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    const { after } = parse(historyQuery, request.query ?? {});
    const cursor = decodeCursor(after);
    const { attempts, next } = await wallet.history.page(session.nationalId, { cursor, limit: HISTORY_PAGE_SIZE });
    return send(reply, views.historyPage({ who: await who(session), attempts, next, first: !cursor }));
  });

  app.get('/wallet/history.csv', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    const attempts = await wallet.history.all(session.nationalId);
    await wallet.audit.append({ actor: actor(session), event: 'wallet.history_exported', subject: session.nationalId, details: { rows: attempts.length } });
    return reply
      .type('text/csv; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-disposition', `attachment; filename="vigie-historique-${session.nationalId}.csv"`)
      .send(toCsv(attempts));
  });

  // ---------------------------------------------------------------------------- devices

  app.get('/wallet/devices', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    const [devices, settings, browsersForgottenAt] = await Promise.all([
      wallet.devices.list(session.nationalId),
      wallet.notifications?.settings(session.nationalId),
      wallet.trustedBrowsers?.trustedBrowsersForgottenAt(session.nationalId),
    ]);
    return send(reply, views.devicesPage({ who: await who(session), devices, settings, browsersForgottenAt, now: wallet.clock.now(), flash: flashOf(request) }));
  });

  app.post('/wallet/trusted-browsers/forget', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    if (!wallet.trustedBrowsers) throw commonErrors.NOT_FOUND();
    await wallet.trustedBrowsers.forgetTrustedBrowsers(session.nationalId, actor(session));
    return reply.redirect('/wallet/devices?done=forgotten#trusted-browsers', 303);
  });

  app.post('/wallet/devices/:id/revoke', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    const { id } = parse(idParams, request.params);
    const device = (await wallet.devices.list(session.nationalId)).find((d) => d.id === id);
    if (!device) throw walletErrors.WALLET_DEVICE_NOT_FOUND();
    if (device.state === 'revoked') throw walletErrors.WALLET_DEVICE_ALREADY_REVOKED();
    await wallet.devices.revoke(device, actor(session));
    return reply.redirect('/wallet/devices?done=revoked', 303);
  });

  app.post('/wallet/notifications', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    if (!wallet.notifications) throw commonErrors.NOT_FOUND();
    const body = parse(notificationsBody, request.body ?? {});
    const duration = QUIET_DURATIONS_MS[body.quiet];
    await wallet.notifications.updateSettings(
      session.nationalId,
      {
        ...(body.push ? { pushEnabled: body.push === 'on' } : {}),
        ...(body.quiet === 'none' ? { quietUntil: null } : duration ? { quietUntil: wallet.clock.now() + duration } : {}),
      },
      actor(session),
    );
    return reply.redirect('/wallet/devices?done=settings#notifications', 303);
  });

  // ---------------------------------------------------------------------------- contacts

  async function renderContacts(request: FastifyRequest, reply: FastifyReply, session: WalletSession, extra: { flash?: views.Flash; typed?: { kind: 'email' | 'mobile'; value: string } } = {}, status = 200) {
    const [contacts, changes] = await Promise.all([wallet.directory.getContacts(session.nationalId), wallet.contacts.list(session.nationalId)]);
    return send(
      reply,
      views.contactsPage({
        who: await who(session),
        contacts: { email: contacts?.email ?? null, mobile: contacts?.mobile ?? null },
        changes,
        fresh: wallet.contacts.isFresh(session.authenticatedAt),
        freshUntil: session.authenticatedAt + wallet.stepUpMs,
        stepUpMinutes: Math.round(wallet.stepUpMs / 60_000),
        coolingOffHours: Math.round(wallet.contacts.coolingOffMs / 3600_000),
        now: wallet.clock.now(),
        flash: extra.flash ?? flashOf(request),
        typed: extra.typed,
      }),
      status,
    );
  }

  /** Contact forms answer errors on the page itself, next to the form. */
  async function contactAction(request: FastifyRequest, reply: FastifyReply, action: (session: WalletSession) => Promise<string>, typed?: { kind: 'email' | 'mobile'; value: string }) {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    try {
      const done = await action(session);
      return reply.redirect(`/wallet/contacts?done=${done}`, 303);
    } catch (error) {
      if (!(error instanceof VigieError) || error.status >= 500 || error.code === 'WALLET_CSRF_INVALID') throw error;
      return renderContacts(request, reply, session, { flash: { kind: 'error', text: error.message }, ...(typed ? { typed } : {}) }, error.status);
    }
  }

  app.get('/wallet/contacts', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    return renderContacts(request, reply, session);
  });

  app.post('/wallet/contacts/change', async (request, reply) => {
    const body = parse(changeBody, request.body ?? {});
    return contactAction(request, reply, async (session) => {
      await wallet.contacts.request({ nationalId: session.nationalId, kind: body.kind, value: body.value, authenticatedAt: session.authenticatedAt, actor: actor(session) });
      return 'requested';
    }, { kind: body.kind, value: body.value });
  });

  app.post('/wallet/contacts/:id/confirm', async (request, reply) => {
    const { id } = parse(idParams, request.params);
    const body = parse(confirmBody, request.body ?? {});
    return contactAction(request, reply, async (session) => {
      await wallet.contacts.confirm({ nationalId: session.nationalId, id, code: body.code, actor: actor(session) });
      return 'confirmed';
    });
  });

  app.post('/wallet/contacts/:id/cancel', async (request, reply) => {
    const { id } = parse(idParams, request.params);
    return contactAction(request, reply, async (session) => {
      await wallet.contacts.cancelByOwner({ nationalId: session.nationalId, id, actor: actor(session) });
      return 'withdrawn';
    });
  });

  // The old contact's cancel link: no login (the person may have lost access); the token is the credential.
  app.get('/wallet/contacts/cancel/:token', async (request, reply) => {
    const { token } = parse(tokenParams, request.params);
    const change = await wallet.contacts.byCancelToken(token);
    return send(reply, views.cancelLinkPage({ change, action: `/wallet/contacts/cancel/${encodeURIComponent(token)}`, now: wallet.clock.now() }));
  });

  app.post('/wallet/contacts/cancel/:token', async (request, reply) => {
    const { token } = parse(tokenParams, request.params);
    const result = await wallet.contacts.cancelByLink(token, `contact-link:${request.ip}`);
    if (result.outcome === 'cancelled') {
      reply.header('set-cookie', clearCookie(SESSION_COOKIE));
      return send(reply, views.messagePage({ title: 'Changement annulé', text: `Le changement de coordonnées est annulé. Par précaution, ${result.sessionsEnded} session${result.sessionsEnded > 1 ? 's ont été fermées' : ' a été fermée'} et les services prévenus.`, link: { href: '/wallet', text: 'Ouvrir mon portefeuille' } }));
    }
    return send(reply, views.cancelLinkPage({ change: result.change, action: `/wallet/contacts/cancel/${encodeURIComponent(token)}`, now: wallet.clock.now() }), 409);
  });

  // ---------------------------------------------------------------------------- report

  app.get('/wallet/report', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    const { attempt } = parse(reportQuery, request.query ?? {});
    const found = attempt ? (await wallet.history.all(session.nationalId, 2000)).find((a) => a.key === attempt) : undefined;
    return send(reply, views.reportPage({ who: await who(session), attempt: found }));
  });

  app.post('/wallet/report', async (request, reply) => {
    const session = await authenticated(request, reply);
    if (!session) return reply;
    checkCsrf(session, request.body);
    const body = parse(reportBody, request.body ?? {});
    const { sessionsEnded } = await wallet.reports.report({ nationalId: session.nationalId, attempt: body.attempt, comment: body.comment, actor: actor(session) });
    reply.header('set-cookie', clearCookie(SESSION_COOKIE));
    return send(reply, views.messagePage({
      title: 'Signalement enregistré',
      text: `Merci. L'équipe d'exploitation de Vigie est prévenue. ${sessionsEnded} session${sessionsEnded > 1 ? 's ont été fermées' : ' a été fermée'} et les services prévenus. Vérifiez vos appareils et vos coordonnées.`,
      link: { href: '/wallet', text: 'Revenir au portefeuille' },
    }));
  });
}
