import { createServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import * as client from 'openid-client';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createVigie, type Vigie } from '../../src/server.ts';
import { ManualClock } from '../../src/lib/clock.ts';
import { createSchema, dropSchema, openDatabase } from '../../src/store/db.ts';
import { importContacts, importExtract } from '../../src/directory/import.ts';
import { DEMO_CONTACTS, DEMO_EXTRACT } from '../../src/demo.ts';
import { DeviceSimulator } from '../../src/device/simulator.ts';
import { Jar, authorizationRequest, field, follow, submit } from './browser.ts';
import { openTestRedis } from './backends.ts';

/** The fixed demo professional of fixtures/generate.ts. */
export const DEMO_PRO = { nationalId: '810000000017', rpps: '10000000017', givenName: 'Camille', familyName: 'MARTIN' };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface TestVigie {
  vigie: Vigie;
  issuer: string;
  clock: ManualClock;
  rp: client.Configuration;
  redirectUri: string;
  close(): Promise<void>;
  /** Stops the node and starts a new one on the same storage, port and clock (as a rolling restart does); `vigie` is then the new one. */
  restart(): Promise<void>;
  activateDevice(nationalId?: string, pin?: string): Promise<DeviceSimulator>;
}

/**
 * A real provider on a random port with the demo directory, an injected clock and a registered
 * relying party (openid-client). Uses PostgreSQL in a private schema when `postgres` is asked, and
 * Redis under a private key prefix when `redis` is.
 */
export async function startTestVigie(options: { postgres?: boolean; redis?: boolean; env?: Record<string, string> } = {}): Promise<TestVigie> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'vigie-test-'));
  const databaseUrl = options.postgres ? process.env.DATABASE_URL : undefined;
  let schema: string | undefined;
  if (databaseUrl) {
    schema = `e2e_${randomBytes(5).toString('hex')}`;
    const admin = openDatabase({ databaseUrl });
    await createSchema(admin, schema);
    await admin.close();
  }
  // Redis mode: a private key prefix in the machine's Redis, deleted on close.
  let redisUrl: string | undefined;
  let redisCleanup: (() => Promise<void>) | undefined;
  if (options.redis) {
    const redis = await openTestRedis();
    redisUrl = redis.url;
    redisCleanup = () => redis.dispose();
  }
  const config: Config = loadConfig({
    NODE_ENV: 'test',
    PORT: String(port),
    VIGIE_DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    VIGIE_SECRET: randomBytes(32).toString('hex'),
    ...(databaseUrl && schema ? { DATABASE_URL: `${databaseUrl}${databaseUrl.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}` } : {}),
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    ...options.env,
  });
  const clock = new ManualClock(Date.now());
  const vigie = await createVigie(config, { clock, logger: pino({ level: 'silent' }) });
  await importExtract(DEMO_EXTRACT, vigie.directory);
  await importContacts(DEMO_CONTACTS, vigie.directory);
  await vigie.listen();
  const issuer = config.issuer;
  const redirectUri = 'http://127.0.0.1:9/callback';
  const secret = randomBytes(32).toString('base64url');
  await vigie.clients.put({ client_id: 'test-rp', client_name: 'Service de test', redirect_uris: [redirectUri], client_secret: secret });
  const rp = await client.discovery(new URL(issuer), 'test-rp', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
  const handle: TestVigie = {
    vigie,
    issuer,
    clock,
    rp,
    redirectUri,
    async restart() {
      await handle.vigie.close();
      handle.vigie = await createVigie(config, { clock, logger: pino({ level: 'silent' }) });
      await handle.vigie.listen();
    },
    async close() {
      await handle.vigie.close();
      await redisCleanup?.();
      await rm(dataDir, { recursive: true, force: true });
      if (databaseUrl && schema) {
        const admin = openDatabase({ databaseUrl });
        await dropSchema(admin, schema);
        await admin.close();
      }
    },
    async activateDevice(nationalId = DEMO_PRO.nationalId, pin = '2468') {
      const { code } = await handle.vigie.devices.createActivationCode(nationalId);
      const simulator = await DeviceSimulator.create(issuer, { clock });
      const result = await simulator.activate({ nationalId, activationCode: code, pin });
      if (result.status !== 201) throw new Error(`activation failed: ${JSON.stringify(result.body)}`);
      return simulator;
    },
  };
  return handle;
}

export interface BrowserLogin {
  jar: Jar;
  verifier: string;
  state: string;
  nonce: string;
  /** The challenge page's URL, its code and CSRF token. */
  challengeUrl: URL;
  displayCode: string;
  csrf: string;
  pageHtml: string;
}

/** A browser goes from the service to the login page, types the identifier and lands on the challenge page. */
/** `jar`: reuse a browser (its cookies: a trusted browser gets number matching instead of the typed code). */
export async function startBrowserLogin(t: TestVigie, identifier: string = DEMO_PRO.nationalId, extra: Record<string, string> = {}, rp: client.Configuration = t.rp, jar: Jar = new Jar()): Promise<BrowserLogin> {
  const { url, verifier, state, nonce } = await authorizationRequest(rp, { redirect_uri: t.redirectUri, scope: 'openid scope_all', acr_values: 'eidas1', ...extra });
  const loginPage = await follow(jar, url);
  const loginHtml = await loginPage.response.text();
  if (loginPage.response.status !== 200) throw new Error(`login page: ${loginPage.response.status} ${loginHtml}`);
  const action = /<form method="post" action="([^"]+)"/.exec(loginHtml)?.[1];
  const csrf = field(loginHtml, 'csrf');
  if (!action || !csrf) throw new Error('login form not found');
  const challengePage = await submit(jar, new URL(action, loginPage.url), { csrf, nationalId: identifier });
  const pageHtml = await challengePage.response.text();
  const displayCode = /<p class="code"[^>]*>(\d+)<\/p>/.exec(pageHtml)?.[1];
  if (!displayCode) {
    const alert = /role="alert">([^<]*)</.exec(pageHtml)?.[1];
    throw new Error(`no challenge page (${challengePage.response.status}): ${alert ?? pageHtml.slice(0, 300)}`);
  }
  return { jar, verifier, state, nonce, challengeUrl: challengePage.url, displayCode, csrf, pageHtml };
}

/** A URL of the login's interaction, from its challenge page's: `interactionUrl(page, '/restart')`. */
export function interactionUrl(challengeUrl: URL, tail = ''): URL {
  return new URL(`${challengeUrl.pathname.replace(/\/challenge\/.*$/, '')}${tail}`, challengeUrl);
}

/** What the page's script does once approved: goes to its resume URL, and on to the service's redirect URI. */
export async function resumeLogin(t: Pick<TestVigie, 'redirectUri'>, login: Pick<BrowserLogin, 'jar' | 'challengeUrl' | 'pageHtml'>) {
  const resumeUrl = /data-resume-url="([^"]+)"/.exec(login.pageHtml)?.[1];
  if (!resumeUrl) throw new Error('no resume URL on the challenge page');
  return follow(login.jar, new URL(resumeUrl, login.challengeUrl), (u) => u.href.startsWith(t.redirectUri));
}

/** Submits the page's continue form (no JavaScript) and follows to the service's redirect URI. */
export async function continueLogin(t: TestVigie, login: BrowserLogin) {
  return submit(login.jar, `${login.challengeUrl}/continue`, { csrf: login.csrf }, (u) => u.href.startsWith(t.redirectUri));
}
