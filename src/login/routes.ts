import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { keyedHash, constantTimeEqual } from '../lib/crypto.ts';
import { commonErrors, VigieError } from '../lib/errors.ts';
import { parse } from '../http/errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { EventBus } from '../events/bus.ts';
import type { Challenge, RequestContext } from '../challenge/challenge.ts';
import { PROVIDER_ROUTES } from '../oidc/provider.ts';
import { normaliseIdentifier } from './identifier.ts';
import type { LoginService } from './service.ts';
import { approvedPage, challengePage, identifierPage, outcomePage } from './views.ts';
import { describeBrowser } from './browser.ts';
import { isDependencyDown } from '../http/errors.ts';
import type { DefenceService } from '../defence/service.ts';
import type { CookieKeys } from '../oidc/cookie-keys.ts';
import { parseCookies, type TrustedBrowsers } from '../defence/trusted-browser.ts';
import { onConnectionEnd } from '../http/connection.ts';

export interface LoginRoutesDeps {
  provider: Provider;
  cookieKeys: CookieKeys;
  login: LoginService;
  bus: EventBus;
  clock: Clock;
  csrfKey: Buffer;
  defence: DefenceService;
  trust: TrustedBrowsers;
}

const uidParams = z.object({ uid: z.string().min(1).max(64) });
const challengeParams = uidParams.extend({ cid: z.string().min(1).max(64) });
const csrfForm = z.object({ csrf: z.string().max(128).default('') });
const identifierForm = csrfForm.extend({ nationalId: z.string().max(64).default('') });
/** Leaving the page: the challenge it shows, if any, is withdrawn from the phone. */
const leaveForm = csrfForm.extend({ challenge: z.string().max(64).optional() });

const SSE_HEARTBEAT_MS = 15_000;
/** A login page needs one stream (two while it reconnects); more, per node, is someone hoarding them. */
const MAX_STREAMS_PER_CHALLENGE = 3;

const interactionExpired = () => new VigieError('INTERACTION_EXPIRED', 400, 'Cette demande de connexion a expiré. Retournez sur le service et recommencez.');

/** An interaction that cannot be loaded has expired, unless its store is down (503, http/errors.ts). */
function expiredUnlessDown(error: unknown): never {
  if (isDependencyDown(error)) throw error;
  throw interactionExpired();
}

/** Login page ("mire de connexion"): identifier → push challenge → live status → finish the interaction. */
export async function loginRoutes(app: FastifyInstance, deps: LoginRoutesDeps): Promise<void> {
  const { provider, login, bus, clock, trust } = deps;
  /** The browser id (cookie `vigie_bid`), minted and set on this reply when the browser has none. */
  const browserIdOf = (request: FastifyRequest, reply: FastifyReply) => {
    const cookies = parseCookies(request.headers.cookie);
    const { id, setCookie } = trust.browserId(cookies);
    if (setCookie) reply.header('set-cookie', setCookie);
    return { id, cookies };
  };
  const csrfFor = (uid: string) => keyedHash(deps.csrfKey, 'login-csrf', uid);
  const checkCsrf = (uid: string, token: string) => {
    if (!constantTimeEqual(csrfFor(uid), token)) throw new VigieError('CSRF_INVALID', 403, 'Le formulaire a expiré. Rechargez la page et recommencez.');
  };
  const base = (uid: string) => `/interaction/${encodeURIComponent(uid)}`;
  /** Live streams open on this node, by challenge. */
  const openStreams = new Map<string, number>();

  /** The interaction behind this browser's cookie; the cookie is what binds a login to its browser. */
  async function interaction(request: FastifyRequest, reply: FastifyReply, uid: string) {
    const details = await provider.interactionDetails(request.raw, reply.raw).catch(expiredUnlessDown);
    if (details.uid !== uid) throw interactionExpired();
    const clientId = String(details.params.client_id);
    const client = await provider.Client.find(clientId);
    return { details, clientId, clientName: client?.clientName ?? clientId };
  }

  /**
   * Whether this browser holds interaction `uid`: oidc-provider's signed interaction cookie names
   * it. The challenge's page, status polls and live stream check only this, not the interaction
   * record (one read less on each, and polls are frequent); finishing the login loads it.
   */
  function requireInteractionCookie(request: FastifyRequest, uid: string): void {
    const name = provider.cookieName('interaction');
    const cookies = parseCookies(request.headers.cookie);
    const value = cookies.get(name);
    const signature = cookies.get(`${name}.sig`);
    if (value !== uid || signature === undefined || !deps.cookieKeys.verify(`${name}=${value}`, signature)) {
      throw interactionExpired();
    }
  }

  async function challengeFor(request: FastifyRequest): Promise<{ uid: string; challenge: Challenge }> {
    const { uid, cid } = parse(challengeParams, request.params);
    requireInteractionCookie(request, uid);
    const challenge = await login.challengeOf(uid, cid);
    // Gone from the store (purged, or lost with a restarted Redis): for this browser, the login expired.
    if (!challenge) throw interactionExpired();
    return { uid, challenge };
  }

  /** An approved challenge whose login waits in its interaction: the page may go straight to /auth/:uid. */
  const handedOver = (challenge: { state: string; consumedAt: number | null }) => challenge.state === 'approved' && challenge.consumedAt !== null;

  /** The identifier form, with what was typed and why it was refused when it was. */
  const identifierView = (uid: string, clientName: string, typed?: { value: string; error: string }) =>
    identifierPage({ clientName, action: `${base(uid)}/login`, abortAction: `${base(uid)}/abort`, csrf: csrfFor(uid), ...typed });

  const html = (reply: FastifyReply, body: string, status = 200) => reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);

  app.get('/interaction/:uid', async (request, reply) => {
    const { uid } = parse(uidParams, request.params);
    const { details, clientName } = await interaction(request, reply, uid);
    browserIdOf(request, reply);
    if (details.prompt.name !== 'login') {
      // Consent is implied for registered services (see oidc/provider.ts loadExistingGrant). The
      // `consent` result resolves an explicit `prompt=consent` (offline_access), which otherwise loops.
      const redirectTo = await provider.interactionResult(request.raw, reply.raw, { consent: {} }, { mergeWithLastSubmission: true });
      return reply.redirect(redirectTo, 303);
    }
    return html(reply, identifierView(uid, clientName));
  });

  app.post('/interaction/:uid/login', async (request, reply) => {
    const { uid } = parse(uidParams, request.params);
    const form = parse(identifierForm, request.body ?? {});
    const { clientId, clientName } = await interaction(request, reply, uid);
    checkCsrf(uid, form.csrf);
    const identifier = normaliseIdentifier(form.nationalId);
    if (!identifier.ok) {
      return html(reply, identifierView(uid, clientName, { value: form.nationalId, error: identifier.message }), 400);
    }
    const browser = browserIdOf(request, reply);
    const source = deps.defence.source(request.ip, browser.id);
    const trustedSince = trust.trustedSince(browser.cookies, identifier.nationalId, browser.id, clock.now());
    const context: RequestContext = {
      ip: source.ip,
      userAgent: String(request.headers['user-agent'] ?? '').slice(0, 300),
      browser: describeBrowser(String(request.headers['user-agent'] ?? '')),
      place: null,
    };
    try {
      const challenge = await login.start({ nationalId: identifier.nationalId, interactionUid: uid, clientId, clientName, context, source, trustedSince });
      return reply.redirect(`${base(uid)}/challenge/${encodeURIComponent(challenge.id)}`, 303);
    } catch (error) {
      if (error instanceof VigieError && error.status === 429) {
        reply.headers(error.headers);
        return html(reply, identifierView(uid, clientName, { value: form.nationalId, error: error.message }), 429);
      }
      throw error;
    }
  });

  app.get('/interaction/:uid/challenge/:cid', async (request, reply) => {
    const { uid, challenge } = await challengeFor(request);
    const path = `${base(uid)}/challenge/${encodeURIComponent(challenge.id)}`;
    if (challenge.state === 'approved') {
      // Approved and its login not finished yet (page reloaded, or no JavaScript): one button left.
      const waiting = challenge.consumedAt === null || (await login.resumeUrl(challenge).catch(expiredUnlessDown)) !== undefined;
      return html(reply, waiting ? approvedPage({ clientName: challenge.clientName, continueAction: `${path}/continue`, csrf: csrfFor(uid) }) : outcomePage('consumed', base(uid)));
    }
    if (challenge.state !== 'pending') return html(reply, outcomePage(challenge.state, base(uid)));
    return html(
      reply,
      challengePage({
        challenge,
        secondsLeft: Math.max(0, Math.round((challenge.expiresAt - clock.now()) / 1000)),
        statusUrl: `${path}/status`,
        eventsUrl: `${path}/events`,
        continueAction: `${path}/continue`,
        // Approval hands the login to the interaction (LoginService.finish): the page's script
        // goes straight to where oidc-provider finishes it.
        resumeUrl: `${PROVIDER_ROUTES.authorization}/${encodeURIComponent(uid)}`,
        restartAction: `${base(uid)}/restart`,
        abortAction: `${base(uid)}/abort`,
        csrf: csrfFor(uid),
      }),
    );
  });

  app.get('/interaction/:uid/challenge/:cid/status', async (request, reply) => {
    const { challenge } = await challengeFor(request);
    reply.header('cache-control', 'no-store');
    return { state: challenge.state, expiresAt: challenge.expiresAt, resume: handedOver(challenge) };
  });

  app.get('/interaction/:uid/challenge/:cid/events', async (request, reply) => {
    const { challenge } = await challengeFor(request);
    const open = openStreams.get(challenge.id) ?? 0;
    // Refused streams fall back to the page's polling (login.js): nothing breaks for a real page.
    if (open >= MAX_STREAMS_PER_CHALLENGE) throw commonErrors.RATE_LIMITED({ message: 'Trop de connexions ouvertes pour cette demande.', headers: { 'retry-after': '5' } });
    openStreams.set(challenge.id, open + 1);
    reply.hijack();
    const res = reply.raw;
    const gone = onConnectionEnd(request.raw, res, () => {
      const left = (openStreams.get(challenge.id) ?? 1) - 1;
      if (left > 0) openStreams.set(challenge.id, left);
      else openStreams.delete(challenge.id);
    });
    if (gone) return;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (current: { state: string; consumedAt: number | null }) => res.write(`event: state\ndata: ${JSON.stringify({ state: current.state, resume: handedOver(current) })}\n\n`);
    // Reconnect quickly when this node goes away: the next node serves the same stream.
    res.write('retry: 1000\n\n');
    send(challenge);
    if (challenge.state !== 'pending') return res.end();
    const timers: NodeJS.Timeout[] = [];
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      unsubscribeResync();
      timers.forEach((t) => clearInterval(t));
      res.end();
    };
    const unsubscribe = bus.subscribe('challenge.settled', (event) => {
      if (event.challengeId !== challenge.id) return;
      if (event.state !== 'approved') {
        send({ state: event.state, consumedAt: null });
        return close();
      }
      // Whether it was handed to the interaction, the record says; if it cannot be read, the
      // page's continue form finishes the login (resume: false).
      const unread = { state: 'approved', consumedAt: null };
      void login.challengeOf(challenge.interactionUid, challenge.id).then((current) => current ?? unread, () => unread).then((current) => {
        if (closed) return;
        send(current);
        close();
      });
    });
    // Reads the challenge again: past its deadline this settles it as expired if nobody else did;
    // a challenge gone from the store (Redis restarted) is over too. A failed read retries later.
    const recheck = async () => {
      let current;
      try {
        current = await login.challengeOf(challenge.interactionUid, challenge.id);
      } catch {
        return;
      }
      if (closed || current?.state === 'pending') return;
      send(current ?? { state: 'expired', consumedAt: null });
      close();
    };
    // Events published between the first read and the subscription, or while the bus was
    // reconnecting (Redis pub/sub delivers at most once), are caught by reading again.
    const unsubscribeResync = bus.subscribe('bus.resync', () => void recheck());
    void recheck();
    timers.push(setInterval(() => {
      res.write(': keep-alive\n\n');
      void recheck();
    }, SSE_HEARTBEAT_MS));
    timers.push(setTimeout(() => void recheck(), Math.max(0, challenge.expiresAt - clock.now()) + 250));
    onConnectionEnd(request.raw, res, close);
  });

  app.post('/interaction/:uid/challenge/:cid/continue', async (request, reply) => {
    const { uid, challenge } = await challengeFor(request);
    checkCsrf(uid, parse(csrfForm, request.body ?? {}).csrf);
    if (challenge.state === 'pending') return reply.redirect(`${base(uid)}/challenge/${encodeURIComponent(challenge.id)}`, 303);
    if (challenge.state !== 'approved') return html(reply, outcomePage(challenge.state, base(uid)));
    // Normally handed over when approved; not if that failed then (server.ts).
    if (challenge.consumedAt === null && !(await login.finish(challenge).catch(expiredUnlessDown))) throw interactionExpired();
    const resumeUrl = await login.resumeUrl(challenge).catch(expiredUnlessDown);
    // Its login no longer waits in the interaction: it was finished already.
    if (!resumeUrl) return html(reply, outcomePage('consumed', base(uid)));
    return reply.redirect(resumeUrl, 303);
  });

  /** Checks the form of a page being left and lets its challenge go (LoginService.leave). */
  async function leave(request: FastifyRequest, uid: string): Promise<void> {
    const form = parse(leaveForm, request.body ?? {});
    checkCsrf(uid, form.csrf);
    const challenge = form.challenge ? await login.challengeOf(uid, form.challenge) : undefined;
    if (challenge) await login.leave(challenge, `browser:${request.ip}`).catch(expiredUnlessDown);
  }

  // Another identifier (a typing mistake, the wrong card): the phone that got this request loses it.
  app.post('/interaction/:uid/restart', async (request, reply) => {
    const { uid } = parse(uidParams, request.params);
    requireInteractionCookie(request, uid);
    await leave(request, uid);
    return reply.redirect(base(uid), 303);
  });

  app.post('/interaction/:uid/abort', async (request, reply) => {
    const { uid } = parse(uidParams, request.params);
    await interaction(request, reply, uid);
    await leave(request, uid);
    const redirectTo = await provider.interactionResult(request.raw, reply.raw, { error: 'access_denied', error_description: 'The user cancelled the login.' }, { mergeWithLastSubmission: false });
    return reply.redirect(redirectTo, 303);
  });
}
