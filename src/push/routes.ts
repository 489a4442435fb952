import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse } from '../http/errors.ts';
import type { ChallengeService } from '../challenge/service.ts';
import type { DeviceService } from '../device/service.ts';
import type { Device, DeviceState, DeviceStore } from '../device/store.ts';
import { deviceErrors } from '../device/errors.ts';
import { deviceProtocolContext, viewChallenge } from '../device/routes.ts';
import { pushSubscriptionBody } from '../device/schemas.ts';
import type { DeliveryHub } from './hub.ts';
import type { PushStore } from './store.ts';
import { isAcceptablePushEndpoint } from './endpoint.ts';
import { onConnectionEnd } from '../http/connection.ts';

export interface PushRoutesDeps {
  devices: DeviceService;
  deviceStore: DeviceStore;
  challenges: ChallengeService;
  hub: DeliveryHub;
  push: PushStore;
  vapidPublicKey: string;
  production: boolean;
  /** The push services endpoints may name in production (VIGIE_PUSH_HOSTS). */
  pushHosts: readonly string[];
  clock: { now(): number };
  /** Heartbeat period; each beat also re-checks that the device is still active. */
  heartbeatMs?: number;
  /** A stream is closed after this long; the app reconnects with a fresh signature. */
  maxStreamMs?: number;
}

/**
 * What a stream's heartbeat finds of its device. Anything but `active` ends the stream: a device
 * gone or one that cannot be checked (the database unreachable) hears nothing more, and the app,
 * reconnecting, authenticates again.
 */
export async function streamDeviceState(store: Pick<DeviceStore, 'get'>, deviceId: string): Promise<DeviceState | 'unknown'> {
  try {
    return (await store.get(deviceId))?.state ?? 'revoked';
  } catch {
    return 'unknown';
  }
}

/**
 * Live delivery endpoints of the device protocol:
 *   GET    /device/v1/stream              signed; Server-Sent Events: ready, pending, challenge, settled, revoked
 *   GET    /device/v1/push/key            the VAPID application server key
 *   PUT    /device/v1/push/subscription   signed; the browser's PushSubscription JSON
 *   DELETE /device/v1/push/subscription   signed
 */
export async function pushRoutes(app: FastifyInstance, deps: PushRoutesDeps): Promise<void> {
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const maxStreamMs = deps.maxStreamMs ?? 10 * 60_000;
  deviceProtocolContext(app, deps.clock);

  const authenticated = async (request: FastifyRequest): Promise<Device> =>
    (await deps.devices.authenticate({ method: request.method, path: request.url, headers: request.headers, body: request.rawBody ?? '' })) as Device;

  app.get('/device/v1/push/key', async () => ({ publicKey: deps.vapidPublicKey }));

  app.put('/device/v1/push/subscription', async (request, reply) => {
    const device = await authenticated(request);
    const body = parse(pushSubscriptionBody, request.body);
    if (!isAcceptablePushEndpoint(body.endpoint, { production: deps.production, pushHosts: deps.pushHosts })) {
      throw deviceErrors.PUSH_ENDPOINT_INVALID({ message: deps.production ? 'The push endpoint must be an https URL of a known push service.' : 'The push endpoint must be an https URL, or http on loopback.' });
    }
    await deps.push.put({ deviceId: device.id, endpoint: body.endpoint, p256dh: body.keys.p256dh.replace(/=+$/, ''), auth: body.keys.auth.replace(/=+$/, '') }, deps.clock.now());
    return reply.code(204).send();
  });

  app.delete('/device/v1/push/subscription', async (request, reply) => {
    const device = await authenticated(request);
    await deps.push.remove(device.id);
    return reply.code(204).send();
  });

  app.get('/device/v1/stream', async (request, reply) => {
    const device = await authenticated(request);
    const pending = await deps.challenges.listPending(device.nationalId);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-vigie-time': String(deps.clock.now()),
    });
    let closed = false;
    const send = (event: string, data: unknown) => {
      if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    send('ready', { deviceId: device.id, serverTime: deps.clock.now(), heartbeatMs });
    send('pending', { challenges: pending.map(viewChallenge) });
    const detach = deps.hub.attach({ deviceId: device.id, nationalId: device.nationalId, send, close: () => close() });
    const close = () => {
      if (closed) return;
      closed = true;
      detach();
      clearInterval(beat);
      clearTimeout(limit);
      res.end();
    };
    const beat = setInterval(async () => {
      const state = await streamDeviceState(deps.deviceStore, device.id);
      if (state !== 'active') {
        if (state !== 'unknown') send('revoked', { state });
        close();
        return;
      }
      if (!closed) res.write(': keep-alive\n\n');
    }, heartbeatMs);
    const limit = setTimeout(close, maxStreamMs);
    onConnectionEnd(request.raw, res, close);
  });
}
