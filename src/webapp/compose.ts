import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { Keys } from '../config/secrets.ts';
import type { Clock } from '../lib/clock.ts';
import type { Db } from '../store/db.ts';
import type { AuditLog } from '../audit/log.ts';
import type { EventBus } from '../events/bus.ts';
import type { DirectoryStore } from '../directory/store.ts';
import type { ChallengeService } from '../challenge/service.ts';
import type { DeviceService } from '../device/service.ts';
import type { DeviceStore } from '../device/store.ts';
import { ActivationService } from '../device/activation.ts';
import { SqlCodeActivationStore, SqlRevokeTokenStore, type CodeActivationStore } from '../device/activation-store.ts';
import { activationRoutes, revokeLinkRoutes } from '../device/activation-routes.ts';
import { OUTBOX_RETENTION_MS, SqlOutboxStore, type OutboxStore } from '../notify/outbox.ts';
import { OutboxMailer, SmtpMailer, type Mailer } from '../notify/mailer.ts';
import { smtpRequiresTls } from '../notify/smtp-policy.ts';
import { HttpJsonSms, OutboxSms, type SmsSender } from '../notify/sms.ts';
import { outboxDevRoutes } from '../notify/routes.ts';
import { deriveVapidKeys } from '../push/vapid.ts';
import { WebPushGateway } from '../push/webpush.ts';
import { SqlPushStore, type PushStore } from '../push/store.ts';
import { DeliveryHub } from '../push/hub.ts';
import { pushRoutes } from '../push/routes.ts';
import { isAcceptablePushEndpoint } from '../push/endpoint.ts';
import { webAppRoutes } from './routes.ts';

export interface AuthenticatorApp {
  activation: ActivationService;
  hub: DeliveryHub;
  outbox: OutboxStore;
  mailer: Mailer;
  sms: SmsSender;
  push: PushStore;
  vapidPublicKey: string;
  plugins: Array<(app: FastifyInstance) => Promise<void>>;
  purge(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Everything issue 3 adds to the composition root, wired once: email and SMS transports (or the
 * outbox), activation by codes, live delivery (device streams, Web Push) and the PWA itself.
 */
export function composeAuthenticatorApp(deps: {
  config: Config;
  keys: Keys;
  db: Db;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  bus: EventBus;
  directory: DirectoryStore;
  challenges: ChallengeService;
  devices: DeviceService;
  deviceStore: DeviceStore;
  /** Where email + SMS activation flows live: Redis with several nodes (store/short-lived.ts); SQL by default. */
  codeActivations?: CodeActivationStore;
  /** The IPv6 /48 rate of activation requests (defence/service.ts `siteWithinRate`). */
  activationSourceAllowed: (ip: string) => Promise<boolean>;
}): AuthenticatorApp {
  const { config, clock, logger } = deps;
  const outbox = new SqlOutboxStore(deps.db);
  const mailer: Mailer = config.smtpUrl ? new SmtpMailer({ url: config.smtpUrl, from: config.mailFrom, requireTls: smtpRequiresTls(config.smtpUrl, config.production) }) : new OutboxMailer(outbox, clock);
  const sms: SmsSender = config.smsUrl ? new HttpJsonSms({ url: config.smsUrl, token: config.smsToken, sender: config.smsSender }) : new OutboxSms(outbox, clock);
  const activation = new ActivationService(
    { store: deps.codeActivations ?? new SqlCodeActivationStore(deps.db), revokeTokens: new SqlRevokeTokenStore(deps.db), devices: deps.devices, directory: deps.directory, mailer, sms, audit: deps.audit, clock, logger },
    { codeKey: deps.keys.code, ttlMinutes: config.activationTtlMinutes, sendsPerIdentifierPerHour: config.activationSendsPerIdentifierPerHour, sendsPerIdentifierPerDay: config.activationSendsPerIdentifierPerDay, sendsPerIpPerHour: config.activationSendsPerIpPerHour, issuer: config.issuer },
  );
  const vapid = deriveVapidKeys(deps.keys.vapid);
  const subject = config.vapidSubject ?? (config.issuer.startsWith('https://') ? config.issuer : 'mailto:admin@localhost');
  const push = new SqlPushStore(deps.db);
  const hub = new DeliveryHub({ bus: deps.bus, challenges: deps.challenges, push, devices: deps.deviceStore, gateway: new WebPushGateway({ keys: vapid, subject, acceptsEndpoint: (endpoint) => isAcceptablePushEndpoint(endpoint, { production: config.production, pushHosts: config.pushHosts }) }), clock, logger });
  hub.start();

  const plugins: Array<(app: FastifyInstance) => Promise<void>> = [
    (app) => activationRoutes(app, { activation, devices: deps.devices, clock, sourceAllowed: deps.activationSourceAllowed }),
    (app) => revokeLinkRoutes(app, { activation }),
    (app) => pushRoutes(app, { devices: deps.devices, deviceStore: deps.deviceStore, challenges: deps.challenges, hub, push, vapidPublicKey: vapid.publicKey, production: config.production, pushHosts: config.pushHosts, clock }),
    (app) => webAppRoutes(app),
  ];
  if (config.env === 'development') plugins.push((app) => outboxDevRoutes(app, { outbox }));

  return {
    activation, hub, outbox, mailer, sms, push, vapidPublicKey: vapid.publicKey, plugins,
    async purge() {
      await Promise.all([activation.purge(), hub.purge(), outbox.purge(clock.now() - OUTBOX_RETENTION_MS)]);
    },
    async close() {
      hub.stop();
      hub.closeAll();
      await Promise.allSettled([activation.drain(), hub.drain()]);
      await mailer.close();
    },
  };
}
