import type { FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/log.ts';
import type { DirectoryStore } from '../directory/store.ts';
import type { Device } from '../device/store.ts';
import type { Clock } from '../lib/clock.ts';
import { deriveKey } from '../lib/crypto.ts';
import type { Counter, Metrics } from '../lib/metrics.ts';
import type { OidcModelStore } from '../oidc/adapter.ts';
import type { ClientInput, ClientRegistry } from '../oidc/clients.ts';
import type { Db } from '../store/db.ts';
import { WalletAuth, WALLET_CLIENT_ID } from './auth.ts';
import { LogoutDeliveries, providerLogoutSender, type LogoutTokenSender } from './backchannel.ts';
import { ContactChangeService } from './contacts.ts';
import { ConnectionHistory } from './history.ts';
import type { ContactNotifier } from './notifier.ts';
import { SuspiciousActivityReports } from './reports.ts';
import { ProviderSessions, type ServiceInfo, type ServiceLookup } from './sessions.ts';
import { SqlContactChangeStore, SqlDeliveryStore, SqlReportStore, SqlSessionInfoStore, SqlWalletSessionStore } from './store.ts';
import { installProviderHooks } from './tracking.ts';
import { walletRoutes } from './routes.ts';

/** The devices the wallet lists and revokes (device/service.ts `DeviceService`). */
export interface WalletDevicePort {
  list(nationalId: string): Promise<Device[]>;
  revoke(device: Device, actor: string): Promise<void>;
}

/** The notification settings shared with the app (defence/service.ts `DefenceService`). */
export interface NotificationSettingsPort {
  settings(nationalId: string): Promise<{ pushEnabled: boolean; quietUntil: number | null }>;
  updateSettings(nationalId: string, change: { pushEnabled?: boolean; quietUntil?: number | null }, actor: string): Promise<unknown>;
}

/** Revoking the professional's trusted browsers all at once (defence/service.ts `DefenceService`). */
export interface TrustedBrowsersPort {
  trustedBrowsersForgottenAt(nationalId: string): Promise<number | null>;
  forgetTrustedBrowsers(nationalId: string, actor: string): Promise<void>;
}

export interface WalletOptions {
  issuer: string;
  sessionTtlMinutes: number;
  stepUpMinutes: number;
  contactCoolingOffHours: number;
  contactCodeTtlMinutes: number;
  contactChangesPerHour: number;
  /** Root-derived keys: the wallet derives its own sub-keys from them. */
  keys: { csrf: Buffer; code: Buffer };
}

export interface WalletDeps {
  db: Db;
  models: OidcModelStore;
  provider: Provider;
  clients: ClientRegistry;
  directory: DirectoryStore;
  devices: WalletDevicePort;
  notifications?: NotificationSettingsPort | undefined;
  trustedBrowsers?: TrustedBrowsersPort | undefined;
  notifier: ContactNotifier;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Replaces oidc-provider's own logout-token sender (tests). */
  logoutSender?: LogoutTokenSender;
}

export interface Wallet {
  auth: WalletAuth;
  sessions: ProviderSessions;
  deliveries: LogoutDeliveries;
  history: ConnectionHistory;
  contacts: ContactChangeService;
  reports: SuspiciousActivityReports;
  devices: WalletDevicePort;
  notifications: NotificationSettingsPort | undefined;
  trustedBrowsers: TrustedBrowsersPort | undefined;
  directory: DirectoryStore;
  audit: AuditLog;
  clock: Clock;
  sessionTtlMs: number;
  stepUpMs: number;
  counters: { reports: Counter; forcedLogouts: Counter };
  /** Client id → display name, for a batch of ids. */
  serviceNames(clientIds: string[]): Promise<(clientId: string) => string>;
  /** Registers (or refreshes) the wallet's own client at the provider. */
  registerClient(): Promise<void>;
  /** The Fastify plugin serving /wallet. */
  routes(app: FastifyInstance): Promise<void>;
  /** Sends the wallet's calls to the provider through `app.inject` (no network hop). */
  useInProcessTransport(app: FastifyInstance): void;
  /** Back-channel retries, contact changes due, expired wallet sessions and stale session context. */
  sweep(): Promise<void>;
}

const SESSION_INFO_RETENTION_MS = 31 * 24 * 3600_000;

/**
 * The professional's portal (issue 5): sessions and forced logout, connection history, devices,
 * contact-detail changes, reports. Installs its provider hooks at once: call it before the HTTP
 * assembly builds the provider's callback.
 */
export function createWallet(deps: WalletDeps, options: WalletOptions): Wallet {
  const { db, models, clock, audit } = deps;
  const walletSessions = new SqlWalletSessionStore(db);
  const info = new SqlSessionInfoStore(db);
  const deliveries = new LogoutDeliveries({ store: new SqlDeliveryStore(db), sender: deps.logoutSender ?? providerLogoutSender(deps.provider), audit, clock });
  installProviderHooks(deps.provider, { info, deliveries, clock, logger: deps.logger });

  const services: ServiceLookup = async (clientId) => {
    const metadata = await deps.clients.get(clientId);
    if (!metadata) return undefined;
    const info: ServiceInfo = { name: typeof metadata.client_name === 'string' ? metadata.client_name : clientId, hasBackchannelLogout: typeof metadata.backchannel_logout_uri === 'string' };
    return info;
  };
  const sessions = new ProviderSessions({ models, info, walletSessions, deliveries, services, audit });
  const history = new ConnectionHistory({ db, services });
  const auth = new WalletAuth(
    { store: walletSessions, models, audit, clock },
    {
      issuer: options.issuer,
      clientSecret: deriveKey(options.keys.csrf, 'wallet-client-secret').toString('base64url'),
      cookieKey: deriveKey(options.keys.csrf, 'wallet-login-cookie'),
      sessionTtlMs: options.sessionTtlMinutes * 60_000,
    },
  );
  const contacts = new ContactChangeService(
    { store: new SqlContactChangeStore(db), directory: deps.directory, notifier: deps.notifier, audit, clock, endAllSessions: (nationalId, how) => sessions.endAll(nationalId, how) },
    {
      codeKey: options.keys.code,
      coolingOffMs: options.contactCoolingOffHours * 3600_000,
      codeTtlMs: options.contactCodeTtlMinutes * 60_000,
      stepUpMs: options.stepUpMinutes * 60_000,
      changesPerHour: options.contactChangesPerHour,
      cancelUrl: (token) => `${options.issuer}/wallet/contacts/cancel/${token}`,
    },
  );
  const counters = {
    reports: deps.metrics.counter('vigie_wallet_reports_total', 'Suspicious activity reports made from the wallet.'),
    forcedLogouts: deps.metrics.counter('vigie_wallet_forced_logouts_total', 'Sessions ended from the wallet, by scope (one, all).'),
  };
  const reports = new SuspiciousActivityReports({ store: new SqlReportStore(db), sessions, history, audit, clock, counter: counters.reports });

  const wallet: Wallet = {
    auth,
    sessions,
    deliveries,
    history,
    contacts,
    reports,
    devices: deps.devices,
    notifications: deps.notifications,
    trustedBrowsers: deps.trustedBrowsers,
    directory: deps.directory,
    audit,
    clock,
    sessionTtlMs: options.sessionTtlMinutes * 60_000,
    stepUpMs: options.stepUpMinutes * 60_000,
    counters,
    async serviceNames(clientIds) {
      const names = new Map<string, string>();
      for (const id of new Set(clientIds)) names.set(id, (await services(id))?.name ?? id);
      return (clientId) => names.get(clientId) ?? clientId;
    },
    async registerClient() {
      await deps.clients.put(auth.clientMetadata() as ClientInput);
    },
    routes: (app) => walletRoutes(app, { wallet, issuer: options.issuer }),
    useInProcessTransport(app) {
      auth.setTransport(async (url, init) => {
        const target = new URL(url);
        const headers: Record<string, string> = {};
        new Headers(init.headers as HeadersInit | undefined).forEach((value, key) => {
          headers[key] = value;
        });
        const response = await app.inject({
          method: (init.method ?? 'GET') as 'GET' | 'POST',
          url: `${target.pathname}${target.search}`,
          headers: { ...headers, host: target.host },
          ...(init.body !== undefined && init.body !== null ? { payload: typeof init.body === 'string' ? init.body : init.body.toString() } : {}),
        });
        const out = new Headers();
        for (const [key, value] of Object.entries(response.headers)) {
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) out.append(key, String(v));
        }
        return new Response(new Uint8Array(response.rawPayload), { status: response.statusCode, headers: out });
      });
    },
    async sweep() {
      await deliveries.retryDue();
      await contacts.applyDue();
      const now = clock.now();
      await walletSessions.purge(now);
      await info.purge(now - SESSION_INFO_RETENTION_MS);
      await deliveries.purge();
    },
  };
  return wallet;
}
