import { z } from 'zod';
import { VigieError } from '../lib/errors.ts';

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
  secret: { env: 'VIGIE_SECRET', schema: z.string().min(32, 'must hold at least 32 characters').optional(), default: undefined, doc: 'Root secret from which PIN/code hashing, cookie and key-sealing keys are derived. Required in production; generated into the data folder in development.' },
  trustProxy: { env: 'VIGIE_TRUST_PROXY', schema: boolean, default: 'false', doc: 'Trust `X-Forwarded-*` headers (behind a load balancer).' },
  logLevel: { env: 'LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), default: 'info', doc: 'pino log level.' },
  challengeTtlSeconds: { env: 'VIGIE_CHALLENGE_TTL_SECONDS', schema: seconds.max(600), default: '60', doc: 'Lifetime of a push challenge.' },
  signatureWindowSeconds: { env: 'VIGIE_SIGNATURE_WINDOW_SECONDS', schema: seconds.max(600), default: '60', doc: 'Accepted clock skew of a signed device request; nonces are remembered twice as long.' },
  pinMaxFailures: { env: 'VIGIE_PIN_MAX_FAILURES', schema: z.coerce.number().int().min(1).max(10), default: '3', doc: 'Wrong PINs in a row that lock a device until it is reactivated.' },
  activationCodeTtlMinutes: { env: 'VIGIE_ACTIVATION_CODE_TTL_MINUTES', schema: z.coerce.number().int().min(1).max(1440), default: '15', doc: 'Lifetime of an operator activation code.' },
  sessionTtlHours: { env: 'VIGIE_SESSION_TTL_HOURS', schema: z.coerce.number().int().min(1).max(24 * 30), default: '10', doc: 'Lifetime of a provider session (single sign-on).' },
  challengesPerIpPerMinute: { env: 'VIGIE_CHALLENGES_PER_IP_PER_MINUTE', schema: z.coerce.number().int().positive(), default: '20', doc: 'Push challenges one source address may start per minute.' },
  challengesPerProfessionalPerHour: { env: 'VIGIE_CHALLENGES_PER_PROFESSIONAL_PER_HOUR', schema: z.coerce.number().int().positive(), default: '10', doc: 'Push notifications one professional may receive per hour; beyond, challenges are created silent (visible in the app).' },
  demo: { env: 'VIGIE_DEMO', schema: boolean.optional(), default: undefined, doc: 'Start the demo service and load the demo directory when empty; defaults to true outside production.' },
  demoPort: { env: 'VIGIE_DEMO_PORT', schema: port, default: '3001', doc: 'Port of the demo service.' },
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
    if (unsafe.length) throw new ConfigError(`Unsafe production configuration:\n  ${unsafe.join('\n  ')}`);
  }
  return config;
}

export function describeSettings(): string {
  const rows = Object.values(settings).map((s) => `| \`${s.env}\` | ${s.default === undefined ? '—' : `\`${s.default}\``} | ${s.doc} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
