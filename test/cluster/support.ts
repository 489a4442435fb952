// Several real Vigie nodes (child processes running src/main.ts) on PostgreSQL + Redis behind the
// repo's load balancer, for the fault tests. Each cluster has its own PostgreSQL schema and Redis
// key prefix, removed on close; every child process is killed on close, even after a failure.
// Only 127.0.0.1 is used. The shared PostgreSQL and Redis of the machine are never stopped: outages
// are made with a TCP proxy the test controls, or a private redis-server on a free port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import * as client from 'openid-client';
import { loadConfig } from '../../src/config/index.ts';
import { createVigie, type Vigie } from '../../src/server.ts';
import { createSchema, dropSchema, openDatabase } from '../../src/store/db.ts';
import { deleteByPrefix, openRedis } from '../../src/store/redis/client.ts';
import { importContacts, importExtract } from '../../src/directory/import.ts';
import { DEMO_CONTACTS, DEMO_EXTRACT } from '../../src/demo.ts';
import { DeviceSimulator } from '../../src/device/simulator.ts';
import { startBalancer, type Balancer } from '../../scripts/balancer.ts';
import { freePort, DEMO_PRO } from '../support/harness.ts';
import { Jar, authorizationRequest, field } from '../support/browser.ts';

export { DEMO_PRO };
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
export const PIN = '2468';
export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** Children started by this process: killed on exit whatever happens. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export interface ClusterNode {
  index: number;
  port: number;
  url: string;
  output(): string;
  kill(): Promise<void>;
  /** SIGTERM, as a rolling restart does; resolves when the process has exited. */
  terminate(): Promise<void>;
  restart(): Promise<void>;
}

export interface TestCluster {
  issuer: string;
  balancer: Balancer;
  nodes: ClusterNode[];
  rp: client.Configuration;
  /** An in-process Vigie on the same stores, not listening: the operator (seeding, counting). */
  operator: Vigie;
  activateDevice(node: ClusterNode): Promise<{ device: DeviceSimulator; file: string }>;
  /** Everything the nodes printed, for failure messages. */
  logs(): string;
  close(): Promise<void>;
}

export function requireServices(): { databaseUrl: string; redisUrl: string } | undefined {
  const databaseUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (databaseUrl && redisUrl) return { databaseUrl, redisUrl };
  if (process.env.CI === 'true') throw new Error('the cluster fault tests need DATABASE_URL and REDIS_URL in CI');
  return undefined;
}

function withSchema(url: string, schema: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
}

function withPrefix(url: string, prefix: string): string {
  const u = new URL(url);
  u.searchParams.set('prefix', prefix);
  return u.toString();
}

/**
 * Starts `nodes` nodes. `databaseUrl`/`redisUrl` are what the nodes use (a proxy or a private
 * Redis); the operator and the clean-up use the direct `DATABASE_URL`.
 */
export async function startCluster(options: { nodes: number; databaseUrl: string; nodeDatabaseUrl?: string; redisUrl: string; env?: Record<string, string> }): Promise<TestCluster> {
  const schema = `cl_${randomBytes(5).toString('hex')}`;
  const prefix = `vigie-test:${randomBytes(6).toString('hex')}:`;
  const admin = openDatabase({ databaseUrl: options.databaseUrl });
  await createSchema(admin, schema);
  await admin.close();
  const dataDir = await mkdtemp(join(tmpdir(), 'vigie-cluster-'));
  const lbPort = await freePort();
  const issuer = `http://127.0.0.1:${lbPort}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    VIGIE_ISSUER: issuer,
    VIGIE_SECRET: randomBytes(32).toString('hex'),
    VIGIE_DATA_DIR: dataDir,
    VIGIE_DEMO: 'false',
    VIGIE_TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn',
    REDIS_URL: withPrefix(options.redisUrl, prefix),
    ...options.env,
  };
  const operator = await createVigie(loadConfig({ ...env, PORT: '0', DATABASE_URL: withSchema(options.databaseUrl, schema) }), { logger: pino({ level: 'silent' }) });
  let nodes: ClusterNode[] = [];
  let balancer: Balancer | undefined;
  const secret = randomBytes(32).toString('base64url');
  try {
    await importExtract(DEMO_EXTRACT, operator.directory);
    await importContacts(DEMO_CONTACTS, operator.directory);
    await operator.clients.put({ client_id: 'test-rp', client_name: 'Service de test', redirect_uris: [REDIRECT_URI], client_secret: secret });
    const nodeEnv = { ...env, DATABASE_URL: withSchema(options.nodeDatabaseUrl ?? options.databaseUrl, schema) };
    const ports = await Promise.all(Array.from({ length: options.nodes }, () => freePort()));
    nodes = ports.map((port, index) => startNode(index, port, nodeEnv));
    await Promise.all(nodes.map((n) => n.restart()));
    balancer = await startBalancer({ port: lbPort, targets: ports.map((port) => ({ host: '127.0.0.1', port })) });
    const rp = await client.discovery(new URL(issuer), 'test-rp', undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
    const lb = balancer;
    return {
      issuer,
      balancer: lb,
      nodes,
      rp,
      operator,
      async activateDevice(node) {
        const { code } = await operator.devices.createActivationCode(DEMO_PRO.nationalId);
        const file = join(dataDir, `device-${randomBytes(4).toString('hex')}.json`);
        const device = await DeviceSimulator.create(node.url, { file });
        const result = await device.activate({ nationalId: DEMO_PRO.nationalId, activationCode: code, pin: PIN });
        if (result.status !== 201) throw new Error(`activation failed: ${result.status} ${JSON.stringify(result.body)}`);
        return { device, file };
      },
      logs: () => nodes.map((n) => `--- node ${n.index} ---\n${n.output()}`).join('\n'),
      close: () => cleanup(),
    };
  } catch (error) {
    await cleanup();
    throw error;
  }

  async function cleanup() {
    await Promise.all(nodes.map((n) => n.kill()));
    await balancer?.close();
    await operator.close().catch(() => {});
    const redis = await openRedis(options.redisUrl, { timeoutMs: 3000 }).catch(() => undefined);
    if (redis) {
      await deleteByPrefix(redis.client, prefix).catch(() => {});
      await redis.close();
    }
    const db = openDatabase({ databaseUrl: options.databaseUrl });
    await dropSchema(db, schema).catch(() => {});
    await db.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function startNode(index: number, port: number, env: Record<string, string>): ClusterNode {
  let child: ChildProcess | undefined;
  let output = '';
  const url = `http://127.0.0.1:${port}`;
  const node: ClusterNode = {
    index,
    port,
    url,
    output: () => output.slice(-6000),
    async kill() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
    async terminate() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGTERM');
      await exited;
    },
    async restart() {
      await node.kill();
      const started = spawn(process.execPath, [MAIN], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      children.add(started);
      started.once('exit', () => children.delete(started));
      const keep = (chunk: Buffer) => {
        output = (output + chunk.toString('utf8')).slice(-20_000);
      };
      started.stdout?.on('data', keep);
      started.stderr?.on('data', keep);
      await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 30_000, () => `node ${index} not ready:\n${output}`, () => started.exitCode !== null);
    },
  };
  return node;
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, message: () => string, abort: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (abort()) break;
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(message());
}

// ---------------------------------------------------------------- a browser pinned to one node

/**
 * `url` sent to node `port` instead (undefined: as is). Cookies are kept per host name whatever the
 * port, as browsers do, so one browser can talk to the load balancer and to each node.
 */
export async function requestVia(jar: Jar, url: string | URL, port: number | undefined, init: RequestInit = {}): Promise<Response> {
  const target = new URL(url);
  if (port) target.port = String(port);
  const logical = new URL(target);
  logical.port = '';
  const headers = new Headers(init.headers);
  const cookie = jar.header(logical);
  if (cookie) headers.set('cookie', cookie);
  const response = await fetch(target, { ...init, headers, redirect: 'manual' });
  jar.store(logical, response);
  return response;
}

export async function followVia(jar: Jar, start: string | URL, port: number | undefined, init: RequestInit = {}, stop: (url: URL) => boolean = () => false) {
  let url = new URL(start);
  let response = await requestVia(jar, url, port, init);
  for (let hop = 0; hop < 20; hop += 1) {
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { response, url };
    await response.body?.cancel();
    url = new URL(location, url);
    if (stop(url)) return { response, url };
    response = await requestVia(jar, url, port);
  }
  throw new Error('too many redirects');
}

export interface PageLogin {
  jar: Jar;
  verifier: string;
  state: string;
  nonce: string;
  challengeUrl: URL;
  displayCode: string;
  csrf: string;
}

/** A browser opens the service's login on node `port` (undefined: through the load balancer) and types the identifier. */
export async function startLoginVia(cluster: TestCluster, port: number | undefined): Promise<PageLogin> {
  const jar = new Jar();
  const { url, verifier, state, nonce } = await authorizationRequest(cluster.rp, { redirect_uri: REDIRECT_URI, scope: 'openid scope_all' });
  const page = await followVia(jar, url, port);
  const html = await page.response.text();
  if (page.response.status !== 200) throw new Error(`login page: ${page.response.status} ${html.slice(0, 300)}`);
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  const csrf = field(html, 'csrf');
  if (!action || !csrf) throw new Error('login form not found');
  const submitted = await followVia(jar, new URL(action, page.url), port, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, nationalId: DEMO_PRO.nationalId }).toString(),
  });
  const challengeHtml = await submitted.response.text();
  const displayCode = /<p class="code"[^>]*>(\d+)<\/p>/.exec(challengeHtml)?.[1];
  if (!displayCode) throw new Error(`no challenge page (${submitted.response.status}): ${challengeHtml.slice(0, 300)}`);
  return { jar, verifier, state, nonce, challengeUrl: submitted.url, displayCode, csrf };
}

/** Submits the page's continue form on `port`; returns where the browser ends. */
export async function continueVia(login: PageLogin, port: number | undefined) {
  return followVia(
    login.jar,
    `${login.challengeUrl}/continue`,
    port,
    { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: login.csrf }).toString() },
    (u) => u.href.startsWith(REDIRECT_URI),
  );
}

export async function tokensFor(cluster: TestCluster, login: PageLogin, callback: URL) {
  return client.authorizationCodeGrant(cluster.rp, callback, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce });
}

export const challengeIdOf = (login: PageLogin) => decodeURIComponent(login.challengeUrl.pathname.split('/').at(-1)!);

// ---------------------------------------------------------------- the page's live stream

export interface Stream {
  /** The next `state` event (rejects when the stream ends first or after `timeoutMs`). */
  next(timeoutMs?: number): Promise<string>;
  /** Resolves when the connection ends (the node died or the server closed it). */
  ended: Promise<void>;
  close(): void;
}

/** Opens the page's SSE stream on `port` (undefined: through the load balancer), as EventSource does. */
export async function openStream(login: PageLogin, port: number | undefined): Promise<Stream> {
  const abort = new AbortController();
  const response = await requestVia(login.jar, `${login.challengeUrl}/events`, port, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
  if (response.status !== 200 || !response.body) throw new Error(`stream: ${response.status}`);
  const states: string[] = [];
  const waiters: Array<{ resolve: (s: string) => void; reject: (e: Error) => void }> = [];
  let done = false;
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (/^event: state$/m.test(block) && data) {
            const { state } = JSON.parse(data) as { state: string };
            const waiter = waiters.shift();
            if (waiter) waiter.resolve(state);
            else states.push(state);
          }
        }
      }
    } catch {
      // the connection was cut
    } finally {
      done = true;
      for (const w of waiters.splice(0)) w.reject(new Error('stream ended'));
    }
  })();
  return {
    next(timeoutMs = 15_000) {
      const queued = states.shift();
      if (queued) return Promise.resolve(queued);
      if (done) return Promise.reject(new Error('stream ended'));
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no state event within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ resolve: (s) => (clearTimeout(timer), resolve(s)), reject: (e) => (clearTimeout(timer), reject(e)) });
      });
    },
    ended,
    close: () => abort.abort(),
  };
}

// ---------------------------------------------------------------- outages

/** A TCP proxy to PostgreSQL that the test can cut and restore (the real server is never touched). */
export async function startTcpProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const port = await freePort();
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((socket) => {
        const upstream = connect(target.port, target.host);
        sockets.add(socket).add(upstream);
        const drop = () => {
          socket.destroy();
          upstream.destroy();
          sockets.delete(socket);
          sockets.delete(upstream);
        };
        socket.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        socket.pipe(upstream).pipe(socket);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const cut = async () => {
    const closing = server;
    server = undefined;
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  await listen();
  return {
    url: (databaseUrl: string) => {
      const u = new URL(databaseUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut,
    restore: listen,
    close: cut,
  };
}

/** A private, throwaway redis-server (no persistence) on a free port of 127.0.0.1. */
export async function startPrivateRedis() {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    child = started;
    children.add(started);
    started.once('exit', () => children.delete(started));
    await waitFor(
      () => new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.once('connect', () => (socket.destroy(), resolve(true)));
        socket.once('error', () => resolve(false));
      }),
      10_000,
      () => 'private redis-server did not start',
      () => started.exitCode !== null,
    );
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, start, stop };
}
