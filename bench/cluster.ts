// Several-node benchmark: `npm run bench:login -- --nodes 2` (bench/login.ts hands `--nodes` over
// to this file), or `node bench/cluster.ts --nodes 2`. Needs DATABASE_URL and REDIS_URL.
//
// In one run, with the same flow, concurrency and duration:
//   1. one Vigie node on the embedded store (SQLite, in-process bus) — the single-node figure;
//   2. N Vigie nodes on PostgreSQL (a private schema) + Redis (a private key prefix), sharing the
//      secret and the issuer. The load generator spreads requests over the nodes itself, round-robin
//      per request (a client-side load balancer: no proxy process eating the same two cores), so
//      the steps of one login land on different nodes — the hardest case for shared state.
// The flow is bench/login.ts's: authorize → login page → identifier → challenge page → the device
// hears the request on its event stream (open on some node) and approves (code + PIN) → resume →
// callback → token → userinfo.
// Ends with: RESULT cluster nodes=N flows_per_s=… p99_ms=… single_node_flows_per_s=… ratio=…
//
// Flags: --nodes <n> (2) --duration <s> (15) --warmup <s> (3) --concurrency <n> (16) --professionals <n> (64)
//        --rounds <n> (3): single node and cluster measured in turn, n times; each one's best round reported
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as client from 'openid-client';
import pg from 'pg';
import { resumeLogin, freePort, startBrowserLogin, type TestVigie } from '../test/support/harness.ts';
import { BenchDevices } from './support/devices.ts';
import { redeemCode } from './support/relying-party.ts';
import { createSchema, dropSchema, openDatabase } from '../src/store/db.ts';
import { deleteByPrefix, openRedis } from '../src/store/redis/client.ts';
import { killAllServers, startServer, type ServerHandle } from './support/processes.ts';
import type { VigieReady } from './servers/vigie.ts';
import { measureWindow, percentile } from './support/load.ts';

const { values: flags } = parseArgs({
  options: {
    nodes: { type: 'string', default: '2' },
    duration: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    professionals: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const ROUNDS = Number(flags.rounds);
const NODES = Number(flags.nodes);
const DURATION_MS = Number(flags.duration) * 1000;
const WARMUP_MS = Number(flags.warmup) * 1000;
const CONCURRENCY = Number(flags.concurrency);
const PROFESSIONALS = Math.max(Number(flags.professionals), CONCURRENCY);
if (!Number.isInteger(NODES) || NODES < 1 || NODES > 8) throw new Error('--nodes: 1 to 8');
const DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
if (!DATABASE_URL || !REDIS_URL) {
  console.error('bench --nodes needs DATABASE_URL (postgres://…) and REDIS_URL (redis://…)');
  process.exit(1);
}

const CLIENT_ID = 'bench-rp';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const PIN = '2468';
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** What every node gets, single or cluster: the same limits lifted as in bench/login.ts. */
const COMMON_ENV = {
  NODE_ENV: 'development',
  HOST: '127.0.0.1',
  VIGIE_DEMO: 'false',
  LOG_LEVEL: 'silent',
  // All the load comes from 127.0.0.1, and each professional logs in hundreds of times.
  VIGIE_CHALLENGES_PER_IP_PER_MINUTE: '100000000',
  VIGIE_CHALLENGES_PER_PREFIX_PER_MINUTE: '100000000',
  VIGIE_CHALLENGES_PER_PROFESSIONAL_PER_HOUR: '100000000',
  VIGIE_IDENTIFIERS_PER_SOURCE_PER_HOUR: '100000000',
  VIGIE_UNTRUSTED_PUSHES_PER_DAY: '100000000',
  VIGIE_BREAKER_PUSHES_PER_MINUTE: '100000000',
  // Every simulator device is activated from 127.0.0.1.
  VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR: '100000000',
  // Every authorization request too (a hospital behind one address, raised likewise).
  VIGIE_AUTHORIZATIONS_PER_IP_PER_MINUTE: '100000000',
  BENCH_PROFESSIONALS: String(PROFESSIONALS),
  BENCH_CLIENT_ID: CLIENT_ID,
  BENCH_REDIRECT_URI: REDIRECT_URI,
};

// ---------------------------------------------------------------- client-side round-robin

/** Requests to the issuer's port are sent to the nodes in turn; cookies stay keyed by the issuer. */
let spread: { issuerPort: string; ports: string[]; next: number } | undefined;
/** Time to headers by route (ids folded), while `recording`. */
const routes = { recording: false, times: new Map<string, number[]>() };
const routeOf = (method: string, url: URL) => `${method} ${url.pathname.replace(/\/[A-Za-z0-9_-]{16,}(?=\/|$)/g, '/:id')}`;
const originalFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
  const started = performance.now();
  try {
    return await send(input, init);
  } finally {
    if (routes.recording) {
      const key = routeOf(init?.method ?? (input instanceof Request ? input.method : 'GET'), new URL(input instanceof Request ? input.url : input));
      routes.times.set(key, [...(routes.times.get(key) ?? []), performance.now() - started]);
    }
  }
};
async function send(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const url = new URL(input instanceof Request ? input.url : input);
  if (url.hostname !== '127.0.0.1') throw new Error(`the benchmark only talks to 127.0.0.1, not ${url.host}`);
  if (spread && url.port === spread.issuerPort) {
    // As a load balancer does: another node, the public host in X-Forwarded-Host (the nodes trust it).
    const headers = new Headers(input instanceof Request ? input.headers : init?.headers);
    headers.set('x-forwarded-host', url.host);
    headers.set('x-forwarded-proto', 'http');
    headers.set('x-forwarded-for', '127.0.0.1');
    url.port = spread.ports[spread.next++ % spread.ports.length]!;
    return originalFetch(input instanceof Request ? new Request(url, { ...input, headers }) : url, { ...init, headers });
  }
  return originalFetch(input, init);
}

// ---------------------------------------------------------------- measurement

interface RunResult {
  flows: number;
  errors: number;
  firstError: string | undefined;
  flowsPerSecond: number;
  p50: number;
  p99: number;
  /** CPU of all the Vigie processes over the window, in cores. */
  serverCores: number;
  loadCores: number;
  /** CPU of the machine's PostgreSQL and Redis over the window (whoever uses them), in cores. */
  postgresCores: number;
  redisCores: number;
  /** Transactions PostgreSQL committed in the bench's database (each autocommit statement is one) and commands Redis ran, over the window. */
  postgresTransactions: number;
  redisCommands: number;
}


/**
 * CPU time (µs) of the machine's PostgreSQL and Redis processes, from /proc (Linux): the living
 * processes' own time plus their reaped children's (a PostgreSQL backend that exits is counted
 * in the postmaster's cutime/cstime), so a closing connection does not make the sum go down.
 */
function serviceCpu(): { postgres: number; redis: number } {
  const total = { postgres: 0, redis: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const micros = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * (1e6 / 100);
      if (comm === 'postgres') total.postgres += micros;
      else if (comm === 'redis-server') total.redis += micros;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/**
 * Round trips to the shared services, the cluster's main cost on a small machine: each one is a
 * network exchange and a wake-up of another process. Counted by the services themselves.
 */
const counters = { postgres: new pg.Pool({ connectionString: DATABASE_URL, max: 1 }), redis: await openRedis(REDIS_URL) };
async function serviceRoundTrips(): Promise<{ postgres: number; redis: number }> {
  const { rows } = await counters.postgres.query<{ n: string }>('select xact_commit as n from pg_stat_database where datname = current_database()');
  const info = await counters.redis.client.info('stats');
  return { postgres: Number(rows[0]?.n ?? 0), redis: Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0) };
}

async function cpuOf(servers: Array<ServerHandle<unknown>>): Promise<number> {
  return (await Promise.all(servers.map((s) => s.stats()))).reduce((sum, s) => sum + s.cpuMicros, 0);
}

async function measure(servers: Array<ServerHandle<unknown>>, flow: (worker: number) => Promise<void>): Promise<RunResult> {
  routes.times.clear();
  const { flows, errors, firstError, latencies, opened: before, closed: after } = await measureWindow(CONCURRENCY, WARMUP_MS, DURATION_MS, flow, async (phase) => {
    routes.recording = phase === 'open';
    return { server: await cpuOf(servers), load: process.cpuUsage(), services: serviceCpu(), roundTrips: await serviceRoundTrips() };
  });
  if (process.env.BENCH_ROUTES) {
    for (const [route, list] of [...routes.times].sort((x, y) => y[1].reduce((a, b) => a + b, 0) - x[1].reduce((a, b) => a + b, 0))) {
      const sorted = [...list].sort((a, b) => a - b);
      console.log(`  ${route.padEnd(52)} ${(list.length / (flows || 1)).toFixed(2)}/flow  p50 ${percentile(sorted, 50).toFixed(1)} ms  ${(list.reduce((a, b) => a + b, 0) / (flows || 1)).toFixed(1)} ms/flow`);
    }
  }
  return {
    flows,
    errors,
    firstError,
    flowsPerSecond: flows / (DURATION_MS / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    serverCores: (after.server - before.server) / 1e3 / DURATION_MS,
    loadCores: (after.load.user + after.load.system - before.load.user - before.load.system) / 1e3 / DURATION_MS,
    postgresCores: (after.services.postgres - before.services.postgres) / 1e3 / DURATION_MS,
    redisCores: (after.services.redis - before.services.redis) / 1e3 / DURATION_MS,
    postgresTransactions: after.roundTrips.postgres - before.roundTrips.postgres,
    redisCommands: after.roundTrips.redis - before.roundTrips.redis,
  };
}

interface Target {
  label: string;
  servers: Array<ServerHandle<VigieReady>>;
  /** Routes the load generator's requests (client-side round-robin for the cluster). */
  spread: typeof spread;
  flow: (worker: number) => Promise<void>;
  close(): Promise<void>;
}

/** Activates one simulator per professional and returns bench/login.ts's complete login flow. */
async function prepare(label: string, servers: Array<ServerHandle<VigieReady>>, issuer: string, secret: string, routing: typeof spread, close: () => Promise<void>): Promise<Target> {
  spread = routing;
  const { accounts } = servers.at(-1)!.payload;
  const rp = await client.discovery(new URL(issuer), CLIENT_ID, undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
  const t = { rp, redirectUri: REDIRECT_URI } as TestVigie;
  const devices = await BenchDevices.activate(issuer, accounts, PIN, CONCURRENCY);
  spread = undefined;
  console.log(`${label.padEnd(30)} ${servers.length} node(s) ready, ${devices.size} devices activated, their streams spread over the nodes`);
  const flow = async (worker: number) => {
    const device = devices.take(worker);
    const login = await startBrowserLogin(t, device.nationalId);
    await BenchDevices.approve(device, login, PIN);
    // As the page's script does once approved.
    const callback = await resumeLogin(t, login);
    if (!callback.url.href.startsWith(REDIRECT_URI)) throw new Error(`resume ended on ${callback.url.href} (${callback.response.status})`);
    await redeemCode(t.rp, callback.url, login, device.nationalId);
  };
  return {
    label,
    servers,
    spread: routing,
    flow,
    close: async () => {
      devices.close();
      await close();
    },
  };
}

async function measureTarget(target: Target): Promise<RunResult> {
  spread = target.spread;
  try {
    return await measure(target.servers, target.flow);
  } finally {
    spread = undefined;
  }
}

async function singleNode(): Promise<Target> {
  const dataDir = await mkdtemp(join(tmpdir(), 'vigie-bench-'));
  const port = await freePort();
  const secret = randomBytes(32).toString('base64url');
  const issuer = `http://127.0.0.1:${port}`;
  const server = await startServer<VigieReady>(here('./servers/vigie.ts'), {
    label: 'Vigie single node',
    execArgv: process.env.BENCH_PROFILE_NODE === 'single' ? ['--cpu-prof', `--cpu-prof-dir=${tmpdir()}`, '--cpu-prof-name=vigie-single.cpuprofile'] : [],
    // Embedded store: DATABASE_URL and REDIS_URL blanked for this child.
    env: { ...COMMON_ENV, DATABASE_URL: '', REDIS_URL: '', PORT: String(port), VIGIE_ISSUER: issuer, VIGIE_DATA_DIR: dataDir, VIGIE_SECRET: randomBytes(32).toString('hex'), BENCH_CLIENT_SECRET: secret },
  });
  return prepare('single node, SQLite', [server], issuer, secret, undefined, async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
}

async function cluster(): Promise<Target> {
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  const prefix = `vigie-bench:${randomBytes(5).toString('hex')}:`;
  const admin = openDatabase({ databaseUrl: DATABASE_URL });
  await createSchema(admin, schema);
  const dataDir = await mkdtemp(join(tmpdir(), 'vigie-bench-'));
  const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
  const issuer = `http://127.0.0.1:${ports[0]}`;
  const secret = randomBytes(32).toString('base64url');
  const redisUrl = new URL(REDIS_URL!);
  redisUrl.searchParams.set('prefix', prefix);
  const env = {
    ...COMMON_ENV,
    DATABASE_URL: `${DATABASE_URL}${DATABASE_URL!.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`,
    REDIS_URL: redisUrl.toString(),
    VIGIE_ISSUER: issuer,
    VIGIE_DATA_DIR: dataDir,
    VIGIE_SECRET: randomBytes(32).toString('hex'),
    VIGIE_TRUST_PROXY: 'true',
    BENCH_CLIENT_SECRET: secret,
  };
  const servers: Array<ServerHandle<VigieReady>> = [];
  const close = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await dropSchema(admin, schema).catch(() => {});
    await admin.close();
    const redis = await openRedis(REDIS_URL!);
    await deleteByPrefix(redis.client, prefix);
    await redis.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    // One after the other: the first migrates, loads the directory and creates the signing key.
    // Each node issues fresh activation codes; the last node's are the valid ones.
    for (const [i, port] of ports.entries()) {
      servers.push(await startServer<VigieReady>(here('./servers/vigie.ts'), { label: `Vigie node ${i + 1}`, env: { ...env, PORT: String(port) }, execArgv: process.env.BENCH_PROFILE_NODE === String(i + 1) ? ['--cpu-prof', `--cpu-prof-dir=${tmpdir()}`, '--cpu-prof-name=vigie-node.cpuprofile'] : [] }));
    }
    return await prepare(`${NODES} nodes, PostgreSQL + Redis`, servers, issuer, secret, { issuerPort: String(ports[0]), ports: ports.map(String), next: 0 }, close);
  } catch (error) {
    await close();
    throw error;
  }
}

const n1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const row = (name: string, r: RunResult) =>
  `${name.padEnd(34)} ${r.flowsPerSecond.toFixed(2).padStart(8)} ${n1(r.p50).padStart(8)} ${n1(r.p99).padStart(8)} ${String(r.errors).padStart(7)} ${r.serverCores.toFixed(2).padStart(10)} ${r.postgresCores.toFixed(2).padStart(8)} ${r.redisCores.toFixed(2).padStart(7)} ${r.loadCores.toFixed(2).padStart(9)}`;

process.on('exit', killAllServers);
let failed = false;
const targets: Target[] = [];
try {
  const single = await singleNode();
  targets.push(single);
  const several = await cluster();
  targets.push(several);
  // Interleaved rounds: whatever else the machine runs meanwhile weighs on both targets alike.
  const results: Array<{ single: RunResult; several: RunResult }> = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    const a = await measureTarget(single);
    const b = await measureTarget(several);
    results.push({ single: a, several: b });
    console.log(`round ${round}/${ROUNDS}: single ${a.flowsPerSecond.toFixed(2)} flows/s, ${NODES} nodes ${b.flowsPerSecond.toFixed(2)} flows/s (ratio ${(b.flowsPerSecond / a.flowsPerSecond).toFixed(2)})`);
  }
  console.log(`\nComplete login flows, concurrency ${CONCURRENCY}, ${DURATION_MS / 1000} s measured per round after ${WARMUP_MS / 1000} s warm-up, ${ROUNDS} interleaved round(s), ${availableParallelism()} CPUs shared by every process\n`);
  console.log('target (round)                      flows/s   p50 ms   p99 ms  errors  Vigie CPU  PG CPU  Redis  load gen (cores)');
  results.forEach(({ single: a, several: b }, i) => {
    console.log(row(`single node, SQLite (${i + 1})`, a));
    console.log(row(`${NODES} nodes, PG + Redis (${i + 1})`, b));
  });
  for (const { single: a, several: b } of results) {
    for (const r of [a, b]) if (r.firstError) console.log(`  first error: ${r.firstError}`);
  }
  // Each target's best round: the one least disturbed by whatever else the machine was running.
  const bestOf = (pick: (r: { single: RunResult; several: RunResult }) => RunResult) => results.map(pick).reduce((m, r) => (r.flowsPerSecond > m.flowsPerSecond ? r : m));
  const one = bestOf((r) => r.single);
  const s = bestOf((r) => r.several);
  if (!one.flows || !s.flows) throw new Error('no flow completed in the measured window');
  // CPU per flow, the basis of sizing (docs/deployment.md): less sensitive to a busy machine than flows/s.
  const perFlow = (cores: number, flows: number) => ((cores * 1000) / flows).toFixed(1);
  console.log(`\nBest rounds. CPU per login flow: ${NODES} nodes — Vigie ${perFlow(s.serverCores, s.flowsPerSecond)} ms, PostgreSQL ${perFlow(s.postgresCores, s.flowsPerSecond)} ms, Redis ${perFlow(s.redisCores, s.flowsPerSecond)} ms, load generator ${perFlow(s.loadCores, s.flowsPerSecond)} ms; single node — Vigie ${perFlow(one.serverCores, one.flowsPerSecond)} ms, load generator ${perFlow(one.loadCores, one.flowsPerSecond)} ms`);
  // The snapshots' own queries (one transaction, one INFO each) are left in: two per window.
  console.log(`Round trips per login flow, ${NODES} nodes: PostgreSQL ${(s.postgresTransactions / s.flows).toFixed(1)} transactions, Redis ${(s.redisCommands / s.flows).toFixed(1)} commands`);
  const rss = await Promise.all(targets.flatMap((t) => t.servers.map((server) => server.stats())));
  console.log(`Peak RSS per process: ${rss.map((r) => `${Math.round(r.peakRss / 2 ** 20)} MB`).join(', ')} (single node first)`);
  console.log(`RESULT cluster nodes=${NODES} flows_per_s=${s.flowsPerSecond.toFixed(2)} p99_ms=${s.p99.toFixed(2)} single_node_flows_per_s=${one.flowsPerSecond.toFixed(2)} ratio=${(s.flowsPerSecond / one.flowsPerSecond).toFixed(2)}`);
} catch (error) {
  failed = true;
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
} finally {
  for (const target of targets) await target.close().catch(() => {});
  await counters.postgres.end();
  await counters.redis.close();
  killAllServers();
}
process.exit(failed ? 1 : 0);
