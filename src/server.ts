import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import type { Config } from './config/index.ts';
import { resolveKeys } from './config/secrets.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { migrate, openDatabase, type Db } from './store/db.ts';
import { SqlAuditLog } from './audit/log.ts';
import { InProcessBus, type EventBus } from './events/bus.ts';
import { SqlDirectoryStore } from './directory/store.ts';
import { SqlChallengeStore } from './challenge/store.ts';
import { ChallengeService } from './challenge/service.ts';
import { SqlActivationStore, SqlDeviceStore } from './device/store.ts';
import { DeviceService } from './device/service.ts';
import { SqlOidcModelStore } from './oidc/adapter.ts';
import { ClientRegistry } from './oidc/clients.ts';
import { loadSigningKeys } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';
import { LoginThrottle } from './defence/throttle.ts';
import { LoginService } from './login/service.ts';
import { loginRoutes } from './login/routes.ts';
import { deviceRoutes } from './device/routes.ts';
import { buildHttp } from './http/app.ts';

export interface Vigie {
  config: Config;
  app: FastifyInstance;
  db: Db;
  provider: Provider;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  directory: SqlDirectoryStore;
  challenges: ChallengeService;
  devices: DeviceService;
  clients: ClientRegistry;
  audit: SqlAuditLog;
  listen(): Promise<string>;
  close(): Promise<void>;
}

const SWEEP_MS = 1000;
const PURGE_MS = 60_000;

/** The composition root: stores, domain services, protocol engine and HTTP, wired once. */
export async function createVigie(config: Config, options: { clock?: Clock; logger?: Logger } = {}): Promise<Vigie> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: config.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie', '*.pin', '*.code', '*.activationCode', '*.client_secret'] });
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  await migrate(db);
  const keys = resolveKeys(config, logger);

  const audit = new SqlAuditLog(db, clock);
  const bus = new InProcessBus();
  const directory = new SqlDirectoryStore(db, clock);
  const challenges = new ChallengeService({ store: new SqlChallengeStore(db), bus, clock, audit, ttlSeconds: config.challengeTtlSeconds });
  const deviceStore = new SqlDeviceStore(db);
  const devices = new DeviceService(
    { devices: deviceStore, activations: new SqlActivationStore(db), directory, audit, clock },
    { pinKey: keys.pin, codeKey: keys.code, signatureWindowSeconds: config.signatureWindowSeconds, pinMaxFailures: config.pinMaxFailures, activationCodeTtlMinutes: config.activationCodeTtlMinutes },
  );
  const models = new SqlOidcModelStore(db, clock);
  const clients = new ClientRegistry(models);
  const provider = createProvider({
    issuer: config.issuer,
    models,
    directory,
    signingKeys: await loadSigningKeys(db, keys.seal, clock),
    cookieKeys: keys.cookies,
    sessionTtlSeconds: config.sessionTtlHours * 3600,
    trustProxy: config.trustProxy,
    allowLoopbackCallbacks: !config.production,
  });
  provider.on('server_error', (_ctx, error) => logger.error({ err: error }, 'oidc-provider error'));
  provider.on('backchannel.error', (_client, error, _accountId, _sid) => logger.warn({ err: error }, 'back-channel logout delivery failed'));
  const throttle = new LoginThrottle({ perIpPerMinute: config.challengesPerIpPerMinute, perProfessionalPerHour: config.challengesPerProfessionalPerHour });
  const login = new LoginService({ challenges, directory, devices: deviceStore, throttle, audit });

  const app = await buildHttp({
    logger,
    trustProxy: config.trustProxy,
    provider,
    plugins: [
      (instance) => loginRoutes(instance, { provider, login, bus, clock, csrfKey: keys.csrf }),
      (instance) => deviceRoutes(instance, { devices, challenges, issuer: config.issuer }),
      async (instance) => {
        instance.get('/healthz', async () => ({ status: 'ok' }));
      },
    ],
  });

  const timers = [
    setInterval(() => challenges.expireDue().catch((err: unknown) => logger.error({ err }, 'challenge expiry sweep failed')), SWEEP_MS),
    setInterval(() => Promise.all([devices.purgeNonces(), models.purgeExpired()]).catch((err: unknown) => logger.error({ err }, 'purge failed')), PURGE_MS),
  ];
  timers.forEach((t) => t.unref());

  return {
    config, app, db, provider, bus, clock, logger, directory, challenges, devices, clients, audit,
    async listen() {
      return app.listen({ host: config.host, port: config.port });
    },
    async close() {
      timers.forEach((t) => clearInterval(t));
      await app.close();
      await bus.close();
      await db.close();
    },
  };
}
