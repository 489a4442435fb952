import { hostname } from 'node:os';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { createLogger } from './lib/log.ts';
import { commonErrors } from './lib/errors.ts';
import { canonicalIp, prefixOf } from './defence/source.ts';
import type { FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import type { Config } from './config/index.ts';
import { resolveKeys } from './config/secrets.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { migrate, openDatabase, type Db } from './store/db.ts';
import { CookieKeys } from './oidc/cookie-keys.ts';
import { SqlAuditLog } from './audit/log.ts';
import type { EventBus } from './events/bus.ts';
import { openShortLivedStores } from './store/short-lived.ts';
import type { RedisHandle } from './store/redis/client.ts';
import { healthRoutes } from './http/health.ts';
import { isDependencyDown, RETRY_AFTER_SECONDS } from './http/errors.ts';
import { SqlDirectoryStore } from './directory/store.ts';
import { ChallengeService } from './challenge/service.ts';
import { DeviceService } from './device/service.ts';
import { ClientRegistry } from './oidc/clients.ts';
import { loadSigningKeys, SigningKeyRing } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';
import { DefenceService } from './defence/service.ts';
import { LocalCountersDefenceStore, MemoryDefenceStore } from './defence/memory-store.ts';
import { RedisDefenceStore } from './store/redis/defence-store.ts';
import { GeoIpLiteLocator, noGeo, type GeoLocator } from './defence/geo.ts';
import { policyFromConfig } from './defence/policy.ts';
import { TrustedBrowsers } from './defence/trusted-browser.ts';
import { defenceRoutes } from './defence/routes.ts';
import { metricsRoutes } from './http/metrics.ts';
import { Metrics } from './lib/metrics.ts';
import { LoginService } from './login/service.ts';
import { providerInteractions, trustBrowsersOnLogin } from './login/interactions.ts';
import { loginRoutes } from './login/routes.ts';
import { deviceRoutes } from './device/routes.ts';
import { activationSource } from './device/activation-routes.ts';
import { buildHttp } from './http/app.ts';
import { composeAuthenticatorApp, type AuthenticatorApp } from './webapp/compose.ts';
import { createWallet, type Wallet } from './wallet/index.ts';
import { WALLET_CLIENT_ID } from './wallet/auth.ts';
import { notifierOver } from './wallet/notifier.ts';

export interface Vigie {
  config: Config;
  app: FastifyInstance;
  db: Db;
  provider: Provider;
  bus: EventBus;
  /** Set when REDIS_URL is (several nodes). */
  redis: RedisHandle | undefined;
  clock: Clock;
  logger: Logger;
  directory: SqlDirectoryStore;
  challenges: ChallengeService;
  devices: DeviceService;
  /** The e-CPS app: activation by codes, email/SMS, live delivery, the PWA (webapp/compose.ts). */
  authenticator: AuthenticatorApp;
  clients: ClientRegistry;
  /** The operator's rotation of the signing keys, which nodes read when they start (oidc/keys.ts). */
  signingKeys: SigningKeyRing;
  audit: SqlAuditLog;
  /** Push-bombing defences: decisions, blocks, settings, attack summaries (defence/service.ts). */
  defence: DefenceService;
  metrics: Metrics;
  /** The professional's portal at /wallet: sessions, forced logout, history, devices, contacts (wallet/index.ts). */
  wallet: Wallet;
  listen(): Promise<string>;
  close(): Promise<void>;
}

const SWEEP_MS = 1000;
const PURGE_MS = 60_000;
const CLOSE_GRACE_MS = 2000;
const WALLET_SWEEP_MS = 15_000;

/** The composition root: stores, domain services, protocol engine and HTTP, wired once. */
export async function createVigie(config: Config, options: { clock?: Clock; logger?: Logger; geo?: GeoLocator } = {}): Promise<Vigie> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  await migrate(db);
  const keys = resolveKeys(config, logger);

  const audit = new SqlAuditLog(db, clock);
  const shortLived = await openShortLivedStores(db, { redisUrl: config.redisUrl, clock, logger });
  const { bus, redis } = shortLived;
  const directory = new SqlDirectoryStore(db, clock);
  const challenges = new ChallengeService({ store: shortLived.challenges, bus, clock, audit, ttlSeconds: config.challengeTtlSeconds });
  const deviceStore = shortLived.devices;
  const devices = new DeviceService(
    { devices: deviceStore, activations: shortLived.activations, directory, audit, clock },
    { pinKey: keys.pin, codeKey: keys.code, signatureWindowSeconds: config.signatureWindowSeconds, pinMaxFailures: config.pinMaxFailures, activationCodeTtlMinutes: config.activationCodeTtlMinutes },
  );
  const models = shortLived.models;
  const clients = new ClientRegistry(models, keys.clientSecret);
  const cookieKeys = new CookieKeys(keys.cookies);
  const provider = createProvider({
    issuer: config.issuer,
    models,
    directory,
    signingKeys: await loadSigningKeys(db, keys.seal, clock),
    clientSecretKey: keys.clientSecret,
    cookieKeys,
    sessionTtlSeconds: config.sessionTtlHours * 3600,
    trustProxy: config.trustProxy,
    allowLoopbackCallbacks: !config.production,
    // The wallet can revoke devices and change contacts: an existing session is not enough.
    freshLoginClients: [WALLET_CLIENT_ID],
  });
  // A dependency that is down is a 503 with Retry-After on the provider's endpoints too (RFC 6749 §4.1.2.1).
  const unavailable = new WeakSet<object>();
  provider.on('server_error', (ctx, error) => {
    if (!isDependencyDown(error)) return logger.error({ err: error }, 'oidc-provider error');
    unavailable.add(ctx);
    logger.warn({ err: error }, 'oidc-provider: dependency unavailable');
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.status !== 500 || !unavailable.has(ctx)) return;
    ctx.status = 503;
    ctx.set('retry-after', RETRY_AFTER_SECONDS);
    const body = ctx.body as { error?: string } | undefined;
    if (body && typeof body === 'object' && body.error === 'server_error') ctx.body = { ...body, error: 'temporarily_unavailable' };
  });
  provider.on('backchannel.error', (_client, error, _accountId, _sid) => logger.warn({ err: error }, 'back-channel logout delivery failed'));
  const metrics = new Metrics();
  const geoip = new GeoIpLiteLocator();
  if (config.geoip && config.production && !options.geo) geoip.warm();
  const defence = new DefenceService({
    // `memory`: everything lost on restart. `sql`: what must last in SQL, the rate counters and
    // flags where short-lived state lives (Redis for several nodes, memory for one).
    store: config.defenceStore === 'memory' ? new MemoryDefenceStore() : redis ? new RedisDefenceStore(db, redis) : new LocalCountersDefenceStore(db),
    policy: policyFromConfig(config),
    clock,
    audit,
    metrics,
    geo: options.geo ?? (config.geoip ? geoip : noGeo),
  });
  challenges.onSettled(async (event) => {
    try {
      await defence.learn(event);
    } catch (err) {
      logger.error({ err, challengeId: event.challenge.id }, 'defence: learning from a settled challenge failed');
    }
  });
  // A request a trusted browser has pending must not stay approvable by a blind pick once the
  // professional revoked that trust.
  defence.onTrustedBrowsersForgotten((nationalId, actor) => challenges.cancelPendingTrusted(nationalId, actor));
  const trust = new TrustedBrowsers({ key: keys.trustedBrowser, ttlDays: config.trustedBrowserDays, secure: config.issuer.startsWith('https://') });
  /** Counts an activation request of this source (address or IPv6 /56) and of its /48; false past `limit` an hour. */
  const activationSourceWithinRate = async (purpose: string, ip: string, limit: number) =>
    // The /48 counts only what its /56 sources were allowed (as for authorization requests below).
    (await defence.withinRate(`${purpose}:${activationSource(ip)}`, limit, 3600_000)) && (await defence.siteWithinRate(purpose, ip, limit, 3600_000));
  const authenticator = composeAuthenticatorApp({
    config, keys, db, clock, logger, audit, bus, directory, challenges, devices, deviceStore, codeActivations: shortLived.codeActivations,
    activationSourceAllowed: (ip) => activationSourceWithinRate('activation-send', ip, config.activationSendsPerIpPerHour),
  });
  const login = new LoginService({ challenges, directory, devices: deviceStore, defence, interactions: providerInteractions(provider, clock) });
  challenges.onApproved(async (approved) => {
    try {
      await login.finish(approved);
    } catch (err) {
      // The page's continue form finishes it instead (login/routes.ts).
      logger.error({ err, challengeId: approved.id }, 'login: handing an approval to its interaction failed');
    }
  });
  trustBrowsersOnLogin(provider, trust);
  // Before buildHttp: the wallet installs middleware on the provider, which Koa composes once.
  const wallet = createWallet(
    { db, models, provider, clients, directory, devices, notifications: defence, trustedBrowsers: defence, notifier: notifierOver(authenticator), audit, clock, logger, metrics },
    { issuer: config.issuer, sessionTtlMinutes: config.walletSessionMinutes, stepUpMinutes: config.walletStepUpMinutes, contactCoolingOffHours: config.contactCoolingOffHours, contactChangesPerHour: config.contactChangesPerHour, contactCodeTtlMinutes: config.contactCodeTtlMinutes, keys },
  );
  await wallet.registerClient();
  const hashedSecrets = await clients.hashClearSecrets();
  if (hashedSecrets > 0) logger.info({ clients: hashedSecrets }, 'client secrets stored in clear replaced by their keyed hash');

  const app = await buildHttp({
    logger,
    trustProxy: config.trustProxy,
    provider,
    beforeAuthorization: async (request) => {
      const limit = config.authorizationsPerIpPerMinute;
      const ip = canonicalIp(request.ip);
      // The prefix counts only what its addresses were allowed: one address flooding from a shared
      // network (a hospital, a carrier's NAT) must not lock its neighbours out.
      const allowed =
        (await defence.withinRate(`authorize:${ip}`, limit, 60_000)) &&
        (await Promise.all([defence.withinRate(`authorize-prefix:${prefixOf(ip)}`, 2 * limit, 60_000), defence.siteWithinRate('authorize', ip, 2 * limit, 60_000)])).every(Boolean);
      // French: a browser shows it (the error page), before any service is known.
      if (!allowed) throw commonErrors.RATE_LIMITED({ message: 'Trop de demandes de connexion depuis votre réseau. Réessayez dans une minute.', headers: { 'retry-after': '60' } });
    },
    plugins: [
      (instance) => loginRoutes(instance, { provider, cookieKeys, login, bus, clock, csrfKey: keys.csrf, defence, trust }),
      (instance) => defenceRoutes(instance, { devices, defence, challenges, clock }),
      (instance) => metricsRoutes(instance, { metrics, token: config.metricsToken }),
      (instance) => deviceRoutes(instance, { devices, challenges, issuer: config.issuer, clock, activationAttemptAllowed: (ip) => activationSourceWithinRate('activate', ip, config.activationAttemptsPerIpPerHour), announceActivation: (device) => authenticator.activation.announce(device) }),
      ...authenticator.plugins,
      (instance) => wallet.routes(instance),
      healthRoutes(
        {
          database: async () => {
            await sql`select 1`.execute(db.kysely);
          },
          ...(redis ? { redis: () => redis.ping() } : {}),
        },
        { node: `${hostname()}:${process.pid}` },
      ),
    ],
  });

  wallet.useInProcessTransport(app);

  const timers = [
    setInterval(() => challenges.expireDue().catch((err: unknown) => logger.error({ err }, 'challenge expiry sweep failed')), SWEEP_MS),
    setInterval(() => Promise.all([devices.purgeNonces(), models.purgeExpired(), authenticator.purge(), defence.purge(), challenges.purge()]).catch((err: unknown) => logger.error({ err }, 'purge failed')), PURGE_MS),
  ];
  timers.push(setInterval(() => wallet.sweep().catch((err: unknown) => logger.error({ err }, 'wallet sweep failed')), WALLET_SWEEP_MS));
  timers.forEach((t) => t.unref());

  return {
    config, app, db, provider, bus, redis, clock, logger, directory, challenges, devices, authenticator, clients, audit, defence, metrics, wallet,
    signingKeys: new SigningKeyRing({ db, sealKey: keys.seal, clock, audit }, { retiredKeptMs: config.sessionTtlHours * 3600_000 }),
    async listen() {
      return app.listen({ host: config.host, port: config.port });
    },
    async close() {
      timers.forEach((t) => clearInterval(t));
      await authenticator.close();
      // Live streams (the login page's SSE, the app's) would hold the close until they end: after
      // a short grace they are cut, and browsers and apps reconnect to another node (rolling restart).
      const cut = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
      await app.close();
      clearTimeout(cut);
      await bus.close();
      await redis?.close();
      await db.close();
    },
  };
}
