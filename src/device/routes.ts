import { deviceErrors } from './errors.ts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ChallengeService } from '../challenge/service.ts';
import type { Challenge } from '../challenge/challenge.ts';
import { parse } from '../http/errors.ts';
import { VigieError } from '../lib/errors.ts';
import type { DeviceService } from './service.ts';
import type { Device } from './store.ts';
import { activateBody, approveBody, challengeIdParams, denyBody } from './schemas.ts';
import { deviceOpenApi } from './openapi.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: string;
  }
}

export interface DeviceRoutesDeps {
  devices: DeviceService;
  challenges: ChallengeService;
  issuer: string;
  /** The server clock sent in `x-vigie-time` (the injected one in tests). */
  clock?: { now(): number };
  /** Counts one operator-code activation attempt from this address; false past its hourly limit. */
  activationAttemptAllowed: (ip: string) => Promise<boolean>;
  /** Emails the professional the notice of a new device, with its revocation link (ActivationService.announce). */
  announceActivation: (device: Device) => Promise<void>;
}

const BODY_LIMIT = 8 * 1024;

export function viewDevice(d: Device) {
  return { id: d.id, nationalId: d.nationalId, name: d.name, state: d.state, createdAt: d.createdAt, lastUsedAt: d.lastUsedAt };
}

export function viewChallenge(c: Challenge) {
  return {
    id: c.id,
    service: { clientId: c.clientId, name: c.clientName },
    context: { ip: c.context.ip, place: c.context.place, browser: c.context.browser, userAgent: c.context.userAgent },
    mode: c.mode,
    candidates: c.candidates,
    delivery: c.delivery,
    createdAt: c.createdAt,
    expiresAt: c.expiresAt,
  };
}

export function viewOutcome({ challenge: c, reportable }: { challenge: Challenge; reportable: boolean }) {
  const { id, service, context, createdAt, expiresAt } = viewChallenge(c);
  return { id, service, context, createdAt, expiresAt, state: c.state, reason: c.reason, settledAt: c.settledAt, reportable };
}

/**
 * What every device protocol plugin installs in its own context: JSON bodies kept as the exact
 * bytes received (signatures cover them) and capped at BODY_LIMIT, no caching, and the server's
 * clock in `x-vigie-time` so a device with a wrong clock can correct its signature timestamps.
 */
export function deviceProtocolContext(app: FastifyInstance, clock: { now(): number } = { now: () => Date.now() }): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (request, body, done) => {
    request.rawBody = body as string;
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new VigieError('VALIDATION_FAILED', 400, 'The request body is not valid JSON.'), undefined);
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-vigie-time', String(clock.now()));
  });
}

/** The device protocol (JSON over HTTP, every call signed): see ./openapi.ts. */
export async function deviceRoutes(app: FastifyInstance, deps: DeviceRoutesDeps): Promise<void> {
  const { devices, challenges } = deps;

  deviceProtocolContext(app, deps.clock);

  const authenticated = async (request: FastifyRequest): Promise<Device> => {
    const device = await devices.authenticate({ method: request.method, path: request.url, headers: request.headers, body: request.rawBody ?? '' });
    return device as Device;
  };

  app.get('/device/openapi.json', async () => deviceOpenApi(deps.issuer));

  app.post('/device/v1/activate', async (request, reply) => {
    const body = parse(activateBody, request.body);
    // Anyone can sign with a key of their own: without a limit, guesses would fill the audit log
    // (and, unbounded, one day find a code). Counted before the signature, whose check stores a
    // replay nonce: past the limit, a request writes nothing.
    if (!(await deps.activationAttemptAllowed(request.ip))) throw deviceErrors.ACTIVATION_RATE_LIMITED({ headers: { 'retry-after': '3600' } });
    await devices.authenticate({ method: request.method, path: request.url, headers: request.headers, body: request.rawBody ?? '' }, body.publicKey);
    const device = await devices.activate({ ...body, ip: request.ip });
    // The device is registered: a notice that cannot go out is logged, not the activation refused.
    await deps.announceActivation(device).catch((err: unknown) => request.log.error({ err, deviceId: device.id }, 'activation notice failed'));
    return reply.code(201).send(viewDevice(device));
  });

  app.get('/device/v1/me', async (request) => viewDevice(await authenticated(request)));

  app.delete('/device/v1/me', async (request, reply) => {
    const device = await authenticated(request);
    await devices.revoke(device, `device:${device.id}`);
    return reply.code(204).send();
  });

  app.get('/device/v1/challenges', async (request) => {
    const device = await authenticated(request);
    return { challenges: (await challenges.listPending(device.nationalId)).map(viewChallenge) };
  });

  app.get('/device/v1/challenges/:id', async (request) => {
    const device = await authenticated(request);
    const { id } = parse(challengeIdParams, request.params);
    return viewChallenge(await challenges.pendingFor(id, device.nationalId));
  });

  app.post('/device/v1/challenges/:id/approve', async (request) => {
    const device = await authenticated(request);
    const { id } = parse(challengeIdParams, request.params);
    const body = parse(approveBody, request.body);
    const challenge = await challenges.pendingFor(id, device.nationalId);
    try {
      await devices.checkPin(device, body.pin);
    } catch (error) {
      // The lock ends this login too: the page must not wait for an approval that cannot come.
      if (error instanceof VigieError && error.code === 'DEVICE_LOCKED') await challenges.fail(challenge, device.id, 'device_locked').catch(() => {});
      throw error;
    }
    await challenges.approve(challenge, device.id, body.code);
    return { state: 'approved' };
  });

  app.post('/device/v1/challenges/:id/deny', async (request) => {
    const device = await authenticated(request);
    const { id } = parse(challengeIdParams, request.params);
    const body = parse(denyBody, request.body);
    const challenge = await challenges.pendingFor(id, device.nationalId);
    await challenges.deny(challenge, device.id, body.reason);
    return { state: 'denied' };
  });
}
