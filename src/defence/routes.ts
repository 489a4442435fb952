import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse } from '../http/errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { DeviceService } from '../device/service.ts';
import type { Device } from '../device/store.ts';
import { deviceProtocolContext, viewOutcome } from '../device/routes.ts';
import type { ChallengeService } from '../challenge/service.ts';
import { challengeIdParams } from '../device/schemas.ts';
import type { DefenceService } from './service.ts';
import { attackSummaryQuery, notificationSettingsBody } from './schemas.ts';

export interface DefenceRoutesDeps {
  devices: DeviceService;
  defence: DefenceService;
  challenges: ChallengeService;
  clock: Clock;
}

/** The device protocol's defence calls (every call signed, like the rest of /device/v1). */
export async function defenceRoutes(app: FastifyInstance, deps: DefenceRoutesDeps): Promise<void> {
  const { devices, defence } = deps;
  deviceProtocolContext(app, deps.clock);
  const authenticated = async (request: FastifyRequest): Promise<Device> =>
    (await devices.authenticate({ method: request.method, path: request.url, headers: request.headers, body: request.rawBody ?? '' })) as Device;

  app.get('/device/v1/notification-settings', async (request) => {
    const device = await authenticated(request);
    return defence.settings(device.nationalId);
  });

  app.put('/device/v1/notification-settings', async (request) => {
    const device = await authenticated(request);
    const body = parse(notificationSettingsBody, request.body ?? {});
    return defence.updateSettings(device.nationalId, body, `device:${device.id}`);
  });

  // "Not me" for a request that ended before it could be answered (withdrawn by its browser,
  // expired): blocks its source as a "not me" answer would have.
  app.post('/device/v1/challenges/:id/report', async (request) => {
    const device = await authenticated(request);
    const { id } = parse(challengeIdParams, request.params);
    const challenge = await deps.challenges.reportableFor(id, device.nationalId);
    await defence.reported(challenge, device.id);
    return { id: challenge.id, state: challenge.state, reported: true };
  });

  // How a request addressed to this professional ended, and whether the report above would be
  // taken (the app shows it when a notification is opened after its request ended).
  app.get('/device/v1/challenges/:id/outcome', async (request) => {
    const device = await authenticated(request);
    const { id } = parse(challengeIdParams, request.params);
    const outcome = await deps.challenges.outcomeFor(id, device.nationalId);
    return viewOutcome({ ...outcome, reportable: outcome.reportable && !(await defence.wasReported(id)) });
  });

  app.get('/device/v1/attack-summary', async (request) => {
    const device = await authenticated(request);
    const { days } = parse(attackSummaryQuery, request.query);
    return defence.summary(device.nationalId, days);
  });
}
