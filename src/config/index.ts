import { z } from 'zod';
import { VigieError } from '../lib/errors.ts';
import { smtpRequiresTls } from '../notify/smtp-policy.ts';

/**
 * Every setting, declared once: environment variable, schema, default and documentation.
 * `vigie config` prints this table; the README's configuration table mirrors it.
 */
const boolean = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const port = z.coerce.number().int().min(0).max(65535);
const seconds = z.coerce.number().int().positive();

export const settings = {
  env: { env: 'NODE_ENV', schema: z.enum(['development', 'production', 'test']), default: 'development', doc: '`production` refuses unsafe defaults (generated secret, demo data, http issuer).' },
  host: { env: 'HOST', schema: z.string().min(1), default: '127.0.0.1', doc: 'Address the provider listens on (`0.0.0.0` to reach it from a phone on the network).' },
  port: { env: 'PORT', schema: port, default: '3000', doc: 'Port of the provider.' },
  issuer: { env: 'VIGIE_ISSUER', schema: z.url().optional(), default: undefined, doc: 'Public URL of the provider; defaults to `http://localhost:PORT`.' },
  dataDir: { env: 'VIGIE_DATA_DIR', schema: z.string().min(1), default: './data', doc: 'Folder of the embedded SQLite database and the development secret.' },
  databaseUrl: { env: 'DATABASE_URL', schema: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(), default: undefined, doc: 'PostgreSQL connection string; when unset the embedded SQLite database is used.' },
  redisUrl: { env: 'REDIS_URL', schema: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL').optional(), default: undefined, doc: 'Redis connection string for short-lived shared state (several nodes).' },
  secret: { env: 'VIGIE_SECRET', schema: z.string().min(32, 'must hold at least 32 characters').optional(), default: undefined, doc: 'Root secret from which the keys hashing PINs, codes and client secrets, signing cookies and sealing the signing keys are derived: changing it invalidates all of them (devices must be reactivated, services given new secrets). Required in production; generated into the data folder in development.' },
  trustProxy: {
    env: 'VIGIE_TRUST_PROXY',
    schema: z.union([boolean.transform((on) => (on ? 1 : 0)), z.coerce.number().int().min(0).max(5)]),
    default: 'false',
    doc: 'Behind how many proxies Vigie runs: `true` is one (the load balancer), `2` a CDN in front of it, and so on. The client address is then the one that many hops back in `X-Forwarded-For` (the entries further left are whatever the client sent); the public host and scheme come from `X-Forwarded-Host`/`-Proto`.',
  },
  logLevel: { env: 'LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', doc: 'pino log level.' },
  challengeTtlSeconds: { env: 'VIGIE_CHALLENGE_TTL_SECONDS', schema: seconds.max(600), default: '60', doc: 'Lifetime of a push challenge.' },
  signatureWindowSeconds: { env: 'VIGIE_SIGNATURE_WINDOW_SECONDS', schema: seconds.max(600), default: '60', doc: 'Accepted clock skew of a signed device request; nonces are remembered twice as long.' },
  pinMaxFailures: { env: 'VIGIE_PIN_MAX_FAILURES', schema: z.coerce.number().int().min(1).max(10), default: '3', doc: 'Wrong PINs in a row that lock a device until it is reactivated.' },
  activationCodeTtlMinutes: { env: 'VIGIE_ACTIVATION_CODE_TTL_MINUTES', schema: z.coerce.number().int().min(1).max(1440), default: '15', doc: 'Lifetime of an operator activation code.' },
  sessionTtlHours: { env: 'VIGIE_SESSION_TTL_HOURS', schema: z.coerce.number().int().min(1).max(24 * 30), default: '10', doc: 'Lifetime of a provider session (single sign-on), counted from the e-CPS approval: using it does not extend it; a new approval starts it again.' },
  defences: { env: 'VIGIE_DEFENCES', schema: boolean, default: 'true', doc: 'Push-bombing defences (docs/defences.md). `false` keeps only the code check (the attack simulator\'s baselines); refused in production.' },
  codeMode: { env: 'VIGIE_CODE_MODE', schema: z.enum(['adaptive', 'typed', 'pick']), default: 'adaptive', doc: '`adaptive`: a 6-digit code typed in the app for browsers that are not trusted or come from a new place, number matching (one of three) for trusted browsers; `typed`: always typed; `pick`: always number matching.' },
  typedCodeClients: { env: 'VIGIE_TYPED_CODE_CLIENTS', schema: z.string(), default: '', doc: 'Comma-separated client ids of services whose challenges always use the typed code (single sign-on makes none: such a service asks `prompt=login` to get one every time).' },
  defenceStore: { env: 'VIGIE_DEFENCE_STORE', schema: z.enum(['sql', 'memory']), default: 'sql', doc: 'Where counters, blocks and signals live: `sql` (blocks, signals and professional state in the database; rate counters and flags in Redis when REDIS_URL is set, in process memory otherwise) or `memory` (everything in process memory, lost on restart).' },
  challengesPerIpPerMinute: { env: 'VIGIE_CHALLENGES_PER_IP_PER_MINUTE', schema: z.coerce.number().int().positive(), default: '20', doc: 'Login requests one source address may make per minute from browsers that are not trusted; beyond, refused with a message.' },
  challengesPerPrefixPerMinute: { env: 'VIGIE_CHALLENGES_PER_PREFIX_PER_MINUTE', schema: z.coerce.number().int().positive().optional(), default: undefined, doc: 'The same per network prefix (/24 IPv4, /56 IPv6); defaults to three times the per-address limit.' },
  identifiersPerSourcePerHour: { env: 'VIGIE_IDENTIFIERS_PER_SOURCE_PER_HOUR', schema: z.coerce.number().int().positive(), default: '5', doc: 'Distinct identifiers one address may target in about an hour (three times as many per prefix); beyond, its requests are created silent.' },
  challengesPerProfessionalPerHour: { env: 'VIGIE_CHALLENGES_PER_PROFESSIONAL_PER_HOUR', schema: z.coerce.number().int().positive(), default: '10', doc: 'Push notifications one trusted browser may cause to its professional per hour; beyond, challenges are created silent (visible in the app).' },
  untrustedPushesPerDay: { env: 'VIGIE_UNTRUSTED_PUSHES_PER_DAY', schema: z.coerce.number().int().min(0), default: '3', doc: 'Push notifications browsers that are not trusted may cause to one professional per 24 hours; beyond, silent.' },
  backoffBaseSeconds: { env: 'VIGIE_BACKOFF_BASE_SECONDS', schema: seconds, default: '30', doc: 'Back-off after a notification refused, expired or failed: untrusted requests are silent for this long, doubling with each one in a row.' },
  backoffMaxSeconds: { env: 'VIGIE_BACKOFF_MAX_SECONDS', schema: seconds, default: '3600', doc: 'Longest back-off.' },
  underAttackHours: { env: 'VIGIE_UNDER_ATTACK_HOURS', schema: z.coerce.number().positive(), default: '24', doc: 'After a "not me" or a wrong code, requests from untrusted browsers to that professional are silent for this long.' },
  notMeBlockDays: { env: 'VIGIE_NOT_ME_BLOCK_DAYS', schema: z.coerce.number().positive(), default: '30', doc: 'A "not me" blocks the source (prefix and browser) from notifying that professional this long; reports are remembered as long.' },
  wrongCodeBlockHours: { env: 'VIGIE_WRONG_CODE_BLOCK_HOURS', schema: z.coerce.number().positive(), default: '24', doc: 'A wrong code picked or typed blocks the source from notifying that professional this long.' },
  globalBlockReports: { env: 'VIGIE_GLOBAL_BLOCK_REPORTS', schema: z.coerce.number().int().min(1), default: '3', doc: 'Distinct professionals whose "not me" reports against one prefix block it for everyone.' },
  globalBlockHours: { env: 'VIGIE_GLOBAL_BLOCK_HOURS', schema: z.coerce.number().positive(), default: '72', doc: 'Length of such a global block (untrusted browsers of that prefix are refused).' },
  breakerPushesPerMinute: { env: 'VIGIE_BREAKER_PUSHES_PER_MINUTE', schema: z.coerce.number().int().positive(), default: '600', doc: 'Global circuit breaker: past this many notifications per minute caused by untrusted browsers, their requests are silent for five minutes.' },
  trustedBrowserDays: { env: 'VIGIE_TRUSTED_BROWSER_DAYS', schema: z.coerce.number().int().min(1).max(400), default: '180', doc: 'Lifetime of the trusted-browser cookie set when a login completes.' },
  geoip: { env: 'VIGIE_GEOIP', schema: boolean, default: 'true', doc: 'Offline GeoIP (geoip-lite, ~150 MB in memory) for places shown to users and the new-country risk signal.' },
  metricsToken: { env: 'VIGIE_METRICS_TOKEN', schema: z.string().min(16).optional(), default: undefined, doc: 'When set, GET /metrics requires `Authorization: Bearer <token>`. Required in production: the metrics show attacks in progress and the sources blocked.' },
  demo: { env: 'VIGIE_DEMO', schema: boolean.optional(), default: undefined, doc: 'Start the demo service and load the demo directory when empty; defaults to true outside production.' },
  demoPort: { env: 'VIGIE_DEMO_PORT', schema: port, default: '3001', doc: 'Port of the demo service.' },
  smtpUrl: { env: 'SMTP_URL', schema: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(), default: undefined, doc: 'SMTP server for activation codes and notices (nodemailer, pooled), e.g. `smtps://user:pass@smtp.example:465`; when unset, emails go to the database outbox (`vigie outbox`). In production an smtp:// relay must offer STARTTLS, unless it runs on this machine.' },
  mailFrom: { env: 'VIGIE_MAIL_FROM', schema: z.string().min(3), default: 'Vigie e-CPS <ne-pas-repondre@vigie.localhost>', doc: 'Sender of the emails.' },
  smsUrl: { env: 'VIGIE_SMS_URL', schema: z.url({ protocol: /^https?$/ }).optional(), default: undefined, doc: 'HTTP JSON SMS provider: POST `{ to, text, sender }` with `Authorization: Bearer VIGIE_SMS_TOKEN`; when unset, SMS go to the database outbox. https:// in production.' },
  smsToken: { env: 'VIGIE_SMS_TOKEN', schema: z.string().min(1).optional(), default: undefined, doc: 'Bearer token of the SMS provider.' },
  smsSender: { env: 'VIGIE_SMS_SENDER', schema: z.string().min(1).max(11), default: 'Vigie', doc: 'Sender name shown on the SMS (11 characters at most).' },
  activationTtlMinutes: { env: 'VIGIE_ACTIVATION_TTL_MINUTES', schema: z.coerce.number().int().min(1).max(60), default: '10', doc: 'Lifetime of an activation by email + SMS codes.' },
  activationSendsPerIdentifierPerHour: { env: 'VIGIE_ACTIVATION_SENDS_PER_IDENTIFIER_PER_HOUR', schema: z.coerce.number().int().positive(), default: '3', doc: 'Activation code sends per national identifier per hour (known or not).' },
  activationSendsPerIdentifierPerDay: { env: 'VIGIE_ACTIVATION_SENDS_PER_IDENTIFIER_PER_DAY', schema: z.coerce.number().int().positive(), default: '6', doc: 'Activation code sends per national identifier over 24 hours (known or not): what anyone who knows the public identifier can send to a professional\'s mailbox and phone, however many addresses they use.' },
  authorizationsPerIpPerMinute: { env: 'VIGIE_AUTHORIZATIONS_PER_IP_PER_MINUTE', schema: z.coerce.number().int().positive(), default: '300', doc: 'New authorization requests (GET/POST /auth, single sign-on included) an address may make per minute; its prefix (IPv4 /24, IPv6 /56) twice as many, an IPv6 /48 four times that. Past it, 429: each request stores an interaction for 10 minutes. Raise it for a large hospital behind one address.' },
  activationAttemptsPerIpPerHour: { env: 'VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR', schema: z.coerce.number().int().positive(), default: '10', doc: 'Operator-code activations (POST /device/v1/activate) a source (an IPv4 address, or an IPv6 /56; an IPv6 /48, 4 × as many over its /56 prefixes) may try per hour; past it, 429 before any code is checked or audited.' },
  activationSendsPerIpPerHour: { env: 'VIGIE_ACTIVATION_SENDS_PER_IP_PER_HOUR', schema: z.coerce.number().int().positive(), default: '10', doc: 'Activation code sends per source (an IPv4 address, or an IPv6 /56; an IPv6 /48, 4 × as many over its /56 prefixes) per hour.' },
  pushHosts: { env: 'VIGIE_PUSH_HOSTS', schema: z.string().regex(/^\s*(\*\.)?[a-z0-9.-]+\s*(,\s*(\*\.)?[a-z0-9.-]+\s*)*$/i, 'a comma-separated list of host names, or *.domain').transform((v) => v.split(',').map((h) => h.trim().toLowerCase())), default: 'fcm.googleapis.com,*.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com', doc: 'Web Push services a device may register an endpoint at, in production (host names, or `*.domain`): Chrome and Android, Firefox, Safari, Edge. Any other endpoint is refused, so that a device cannot make the server call a host of its choosing.' },
  vapidSubject: { env: 'VIGIE_VAPID_SUBJECT', schema: z.string().regex(/^(mailto:|https:\/\/)/, 'must be a mailto: or https:// URL').optional(), default: undefined, doc: 'Contact given to Web Push services (VAPID `sub`); defaults to the issuer when https, else `mailto:admin@localhost`. The VAPID key pair is derived from VIGIE_SECRET.' },
  walletSessionMinutes: { env: 'VIGIE_WALLET_SESSION_MINUTES', schema: z.coerce.number().int().min(5).max(24 * 60), default: '30', doc: 'Lifetime of a wallet session (/wallet); it also ends with the provider session it was opened in.' },
  walletStepUpMinutes: { env: 'VIGIE_WALLET_STEP_UP_MINUTES', schema: z.coerce.number().int().min(1).max(5), default: '5', doc: 'How recent the e-CPS approval must be to change contact details in the wallet (5 minutes at most).' },
  contactChangesPerHour: { env: 'VIGIE_CONTACT_CHANGES_PER_HOUR', schema: z.coerce.number().int().min(1).max(50), default: '3', doc: 'Contact-change requests a professional may make per hour in the wallet (each sends a code to the new contact and a notice to the old one).' },
  contactCoolingOffHours: { env: 'VIGIE_CONTACT_COOLING_OFF_HOURS', schema: z.coerce.number().int().min(1).max(24 * 30), default: '72', doc: 'Delay before a new email or mobile, confirmed in the wallet, may be used to activate an e-CPS.' },
  contactCodeTtlMinutes: { env: 'VIGIE_CONTACT_CODE_TTL_MINUTES', schema: z.coerce.number().int().min(1).max(60), default: '15', doc: 'Lifetime of the code sent to a new contact detail.' },
} as const;

type Settings = typeof settings;
type Raw = { [K in keyof Settings]: z.output<Settings[K]['schema']> };

export type Config = Omit<Raw, 'issuer' | 'demo'> & { issuer: string; demo: boolean; production: boolean };

export class ConfigError extends VigieError {
  constructor(message: string) {
    super('CONFIG_INVALID', 500, message);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const raw = {} as Record<string, unknown>;
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(settings)) {
    const value = env[setting.env] === '' ? undefined : (env[setting.env] ?? setting.default);
    const parsed = (setting.schema as z.ZodType).safeParse(value);
    if (parsed.success) raw[key] = parsed.data;
    else problems.push(`${setting.env}: ${parsed.error.issues.map((i) => i.message).join(', ')}`);
  }
  if (problems.length) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  const r = raw as Raw;
  const production = r.env === 'production';
  const config: Config = {
    ...r,
    issuer: (r.issuer ?? `http://localhost:${r.port}`).replace(/\/$/, ''),
    demo: r.demo ?? !production,
    production,
    ...overrides,
  };
  if (production) {
    const unsafe: string[] = [];
    if (!config.secret) unsafe.push('VIGIE_SECRET must be set (a generated development secret is refused in production)');
    if (config.demo) unsafe.push('VIGIE_DEMO must be false in production');
    if (!config.issuer.startsWith('https://')) unsafe.push('VIGIE_ISSUER must be an https:// URL in production');
    if (!config.defences) unsafe.push('VIGIE_DEFENCES must not be false in production');
    if (!config.metricsToken) unsafe.push('VIGIE_METRICS_TOKEN must be set in production (16 characters or more): GET /metrics is not served without it');
    // Without them, activation and contact-change codes reach nobody and wait in clear in the
    // outbox table, where whoever reads the database could use them.
    if (!config.smtpUrl) unsafe.push('SMTP_URL must be set in production: codes and notices would stay in the database outbox');
    else if (/[?&](requireTLS=false|tls\.rejectUnauthorized=false)(&|$)/i.test(config.smtpUrl) && smtpRequiresTls(config.smtpUrl, true)) unsafe.push('SMTP_URL must not turn TLS checks off (requireTLS=false, tls.rejectUnauthorized=false) in production, but for a relay on this machine');
    if (!config.smsUrl) unsafe.push('VIGIE_SMS_URL must be set in production: codes would stay in the database outbox');
    else if (!config.smsUrl.startsWith('https://')) unsafe.push('VIGIE_SMS_URL must be an https:// URL in production: it carries the provider token, phone numbers and codes');
    if (unsafe.length) throw new ConfigError(`Unsafe production configuration:\n  ${unsafe.join('\n  ')}`);
  }
  return config;
}

export function describeSettings(): string {
  const rows = Object.values(settings).map((s) => `| \`${s.env}\` | ${s.default === undefined ? '—' : `\`${s.default}\``} | ${s.doc} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
