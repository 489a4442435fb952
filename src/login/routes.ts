import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { keyedHash, constantTimeEqual } from '../lib/crypto.ts';
import { commonErrors, VigieError } from '../lib/errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { EventBus } from '../events/bus.ts';
import type { Challenge, RequestContext } from '../challenge/challenge.ts';
import { ACR_EIDAS1, AMR_ECPS } from '../oidc/provider.ts';
import { normaliseIdentifier } from './identifier.ts';
import type { LoginService } from './service.ts';
import { challengePage, identifierPage, outcomePage } from './views.ts';
import { describeBrowser } from './browser.ts';

export interface LoginRoutesDeps {
  provider: Provider;
  login: LoginService;
  bus: EventBus;
  clock: Clock;
  csrfKey: Buffer;
}

const uidParams = z.object({ uid: z.string().min(1).max(64) });
const challengeParams = uidParams.extend({ cid: z.string().min(1).max(64) });
const csrfForm = z.object({ csrf: z.string().max(128).default('') });
const identifierForm = csrfForm.extend({ nationalId: z.string().max(64).default('') });

const SSE_HEARTBEAT_MS = 15_000;

/** Login page ("mire de connexion"): identifier → push challenge → live status → finish the interaction. */
export async function loginRoutes(app: FastifyInstance, deps: LoginRoutesDeps): Promise<void> {
  const { provider, login, bus, clock } = deps;
  const csrfFor = (uid: string) => keyedHash(deps.csrfKey, 'login-csrf', uid);
  const checkCsrf = (uid: string, token: string) => {
    if (!constantTimeEqual(csrfFor(uid), token)) throw new VigieError('CSRF_INVALID', 403, 'Le formulaire a expiré. Rechargez la page et recommencez.');
  };
  const base = (uid: string) => `/interaction/${encodeURIComponent(uid)}`;

  /** The interaction behind this browser's cookie; the cookie is what binds a login to its browser. */
  async function interaction(request: FastifyRequest, reply: FastifyReply, uid: string) {
    let details;
    try {
      details = await provider.interactionDetails(request.raw, reply.raw);
    } catch {
      throw new VigieError('INTERACTION_EXPIRED', 400, 'Cette demande de connexion a expiré. Retournez sur le service et recommencez.');
    }
    if (details.uid !== uid) throw new VigieError('INTERACTION_EXPIRED', 400, 'Cette demande de connexion a expiré. Retournez sur le service et recommencez.');
    const clientId = String(details.params.client_id);
    const client = await provider.Client.find(clientId);
    return { details, clientId, clientName: client?.clientName ?? clientId };
  }

  async function challengeFor(request: FastifyRequest, reply: FastifyReply): Promise<{ uid: string; challenge: Challenge }> {
    const { uid, cid } = challengeParams.parse(request.params);
    await interaction(request, reply, uid);
    const challenge = await login.challengeOf(uid, cid);
    if (!challenge) throw commonErrors.NOT_FOUND({ message: 'Demande inconnue.' });
    return { uid, challenge };
  }

  const html = (reply: FastifyReply, body: string, status = 200) => reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);

  app.get('/interaction/:uid', async (request, reply) => {
    const { uid } = uidParams.parse(request.params);
    const { details, clientName } = await interaction(request, reply, uid);
    if (details.prompt.name !== 'login') {
      // Consent is implied for registered services (see oidc/provider.ts loadExistingGrant).
      const redirectTo = await provider.interactionResult(request.raw, reply.raw, {}, { mergeWithLastSubmission: true });
      return reply.redirect(redirectTo, 303);
    }
    return html(reply, identifierPage({ clientName, action: `${base(uid)}/login`, csrf: csrfFor(uid) }));
  });

  app.post('/interaction/:uid/login', async (request, reply) => {
    const { uid } = uidParams.parse(request.params);
    const form = identifierForm.parse(request.body ?? {});
    const { clientId, clientName } = await interaction(request, reply, uid);
    checkCsrf(uid, form.csrf);
    const identifier = normaliseIdentifier(form.nationalId);
    if (!identifier.ok) {
      return html(reply, identifierPage({ clientName, action: `${base(uid)}/login`, csrf: csrfFor(uid), value: form.nationalId, error: identifier.message }), 400);
    }
    const context: RequestContext = {
      ip: request.ip,
      userAgent: String(request.headers['user-agent'] ?? '').slice(0, 300),
      browser: describeBrowser(String(request.headers['user-agent'] ?? '')),
      place: null,
    };
    try {
      const challenge = await login.start({ nationalId: identifier.nationalId, interactionUid: uid, clientId, clientName, context });
      return reply.redirect(`${base(uid)}/challenge/${encodeURIComponent(challenge.id)}`, 303);
    } catch (error) {
      if (error instanceof VigieError && error.status === 429) {
        reply.headers(error.headers);
        return html(reply, identifierPage({ clientName, action: `${base(uid)}/login`, csrf: csrfFor(uid), value: form.nationalId, error: error.message }), 429);
      }
      throw error;
    }
  });

  app.get('/interaction/:uid/challenge/:cid', async (request, reply) => {
    const { uid, challenge } = await challengeFor(request, reply);
    if (challenge.state !== 'pending') return html(reply, outcomePage(challenge.state, base(uid)));
    const path = `${base(uid)}/challenge/${encodeURIComponent(challenge.id)}`;
    return html(
      reply,
      challengePage({
        challenge,
        secondsLeft: Math.max(0, Math.round((challenge.expiresAt - clock.now()) / 1000)),
        statusUrl: `${path}/status`,
        eventsUrl: `${path}/events`,
        continueAction: `${path}/continue`,
        retryUrl: base(uid),
        csrf: csrfFor(uid),
      }),
    );
  });

  app.get('/interaction/:uid/challenge/:cid/status', async (request, reply) => {
    const { challenge } = await challengeFor(request, reply);
    reply.header('cache-control', 'no-store');
    return { state: challenge.state, expiresAt: challenge.expiresAt };
  });

  app.get('/interaction/:uid/challenge/:cid/events', async (request, reply) => {
    const { challenge } = await challengeFor(request, reply);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (state: string) => res.write(`event: state\ndata: ${JSON.stringify({ state })}\n\n`);
    send(challenge.state);
    if (challenge.state !== 'pending') return res.end();
    const timers: NodeJS.Timeout[] = [];
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      timers.forEach((t) => clearInterval(t));
      res.end();
    };
    const unsubscribe = bus.subscribe('challenge.settled', (event) => {
      if (event.challengeId !== challenge.id) return;
      send(event.state);
      close();
    });
    timers.push(setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS));
    // Past the deadline, read the challenge again: this settles it as expired if nobody else did.
    const untilExpiry = Math.max(0, challenge.expiresAt - clock.now()) + 250;
    timers.push(setTimeout(async () => {
      const current = await login.challengeOf(challenge.interactionUid, challenge.id).catch(() => undefined);
      if (current && current.state !== 'pending') {
        send(current.state);
        close();
      }
    }, untilExpiry));
    request.raw.on('close', close);
  });

  app.post('/interaction/:uid/challenge/:cid/continue', async (request, reply) => {
    const { uid, challenge } = await challengeFor(request, reply);
    checkCsrf(uid, csrfForm.parse(request.body ?? {}).csrf);
    if (challenge.state === 'pending') return reply.redirect(`${base(uid)}/challenge/${encodeURIComponent(challenge.id)}`, 303);
    const outcome = await login.complete(challenge);
    if (!('accountId' in outcome)) return html(reply, outcomePage(outcome.state, base(uid)));
    const redirectTo = await provider.interactionResult(
      request.raw,
      reply.raw,
      { login: { accountId: outcome.accountId, acr: ACR_EIDAS1, amr: AMR_ECPS, remember: true } },
      { mergeWithLastSubmission: false },
    );
    return reply.redirect(redirectTo, 303);
  });

  app.post('/interaction/:uid/abort', async (request, reply) => {
    const { uid } = uidParams.parse(request.params);
    await interaction(request, reply, uid);
    checkCsrf(uid, csrfForm.parse(request.body ?? {}).csrf);
    const redirectTo = await provider.interactionResult(request.raw, reply.raw, { error: 'access_denied', error_description: 'The user cancelled the login.' }, { mergeWithLastSubmission: false });
    return reply.redirect(redirectTo, 303);
  });
}
