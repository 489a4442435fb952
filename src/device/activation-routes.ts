import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { isIP } from 'node:net';
import { parse } from '../http/errors.ts';
import { canonicalIp, prefixOf } from '../defence/source.ts';
import { html, page } from '../http/html.ts';
import { VigieError } from '../lib/errors.ts';
import { deviceErrors } from './errors.ts';
import type { ActivationService } from './activation.ts';
import type { DeviceService } from './service.ts';
import { deviceProtocolContext, viewDevice } from './routes.ts';
import { activationCompleteBody, activationFlowParams, activationStartBody, activationVerifyBody } from './schemas.ts';

/** The source counted by the send limit: the IPv4 address, or the IPv6 /56 a single subscriber holds. */
export function activationSource(ip: string): string {
  const canonical = canonicalIp(ip);
  return isIP(canonical) === 6 ? prefixOf(canonical) : canonical;
}

export interface ActivationRoutesDeps {
  activation: ActivationService;
  devices: DeviceService;
  clock: { now(): number };
  /**
   * False past what this source may ask in an hour (its address, or IPv6 /56; and its /48). Checked
   * before anything is written: a source hammering past its limit costs a counter, not a flow row
   * and an audit entry each. (`start` counts again by its flows, exactly, racing requests included.)
   */
  sourceAllowed: (ip: string) => Promise<boolean>;
}

/**
 * Activation of the app by email + SMS codes (device protocol, JSON):
 *   POST /device/v1/activation                   { nationalId }              → 202 { flowId, expiresAt }
 *   POST /device/v1/activation/:flowId/verify    { emailCode, smsCode, publicKey }  signed by the new key
 *   POST /device/v1/activation/:flowId/complete  { publicKey, pin, name }           signed by the same key
 */
export async function activationRoutes(app: FastifyInstance, deps: ActivationRoutesDeps): Promise<void> {
  const { activation, devices } = deps;
  deviceProtocolContext(app, deps.clock);

  app.post('/device/v1/activation', async (request, reply) => {
    const body = parse(activationStartBody, request.body);
    if (!(await deps.sourceAllowed(request.ip))) throw deviceErrors.ACTIVATION_RATE_LIMITED({ headers: { 'retry-after': '3600' } });
    const flow = await activation.start({ nationalId: body.nationalId, ip: activationSource(request.ip) });
    return reply.code(202).send({ flowId: flow.flowId, state: 'pending', expiresAt: flow.expiresAt });
  });

  app.post('/device/v1/activation/:flowId/verify', async (request) => {
    const { flowId } = parse(activationFlowParams, request.params);
    const body = parse(activationVerifyBody, request.body);
    await activation.ready(flowId, 'verify');
    await devices.authenticate({ method: request.method, path: request.url, headers: request.headers, body: request.rawBody ?? '' }, body.publicKey);
    const flow = await activation.verify({ flowId, ...body, ip: request.ip });
    return { flowId: flow.flowId, state: 'verified', expiresAt: flow.expiresAt };
  });

  app.post('/device/v1/activation/:flowId/complete', async (request, reply) => {
    const { flowId } = parse(activationFlowParams, request.params);
    const body = parse(activationCompleteBody, request.body);
    await activation.ready(flowId, 'complete');
    await devices.authenticate({ method: request.method, path: request.url, headers: request.headers, body: request.rawBody ?? '' }, body.publicKey);
    const device = await activation.complete({ flowId, ...body, ip: request.ip });
    return reply.code(201).send(viewDevice(device));
  });
}

const tokenQuery = z.object({ token: z.string().regex(/^[A-Za-z0-9_-]{20,100}$/).optional() });

/**
 * The "ce n'était pas moi" link of the activation notice email. GET only shows a confirmation
 * (mail scanners open links); the POST revokes. The token is the capability, single use.
 */
export async function revokeLinkRoutes(app: FastifyInstance, deps: { activation: ActivationService }): Promise<void> {
  const send = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body);
  const invalid = (reply: FastifyReply) =>
    send(reply, 410, page('Lien invalide', html`<h1>Ce lien n’est plus valable</h1>
      <p>Il a expiré, a déjà servi, ou est incomplet. Si une e-CPS que vous n’avez pas activée existe encore, contactez le support
      et vérifiez vos coordonnées (e-mail et mobile).</p>`));

  app.get('/e-cps/revoquer', async (request, reply) => {
    const { token } = tokenQuery.safeParse(request.query).data ?? {};
    if (!token || !(await deps.activation.peekRevokeLink(token))) return invalid(reply);
    return send(reply, 200, page('Révoquer une e-CPS', html`<h1>Ce n’était pas vous ?</h1>
      <p>Une e-CPS a été activée sur votre compte. Si vous n’êtes pas à l’origine de cette activation, révoquez-la :
      elle ne pourra plus valider aucune connexion.</p>
      <form method="post" action="/e-cps/revoquer">
        <input type="hidden" name="token" value="${token}">
        <button type="submit">Révoquer cette e-CPS</button>
      </form>
      <p class="hint">Si c’est bien vous qui l’avez activée, fermez simplement cette page.</p>`));
  });

  app.post('/e-cps/revoquer', async (request, reply) => {
    const { token } = tokenQuery.safeParse(request.body).data ?? {};
    if (!token) return invalid(reply);
    try {
      await deps.activation.revokeByLink(token, request.ip);
    } catch (error) {
      if (error instanceof VigieError && error.code === 'REVOKE_LINK_INVALID') return invalid(reply);
      throw error;
    }
    return send(reply, 200, page('e-CPS révoquée', html`<h1>L’e-CPS a été révoquée</h1>
      <p class="ok">Elle ne peut plus valider de connexion.</p>
      <p>Quelqu’un a reçu vos deux codes d’activation : vérifiez l’accès à votre messagerie et à votre téléphone mobile,
      puis mettez à jour vos coordonnées si besoin. Vous pourrez ensuite réactiver votre propre e-CPS depuis l’application.</p>`));
  });
}
