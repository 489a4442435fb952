// Login throughput benchmark (`npm run bench:login`, not a test).
//
// Starts the real Vigie in a child process (embedded SQLite in a temp dir, demo directory, one
// activated simulator device per professional) and drives complete e-CPS logins over HTTP from
// this process: authorize (openid-client, PKCE) → login page → identifier → challenge page →
// the device, its event stream open as the app keeps it while open, hears the request and
// approves with the page's code and PIN → resume → callback → token → userinfo. Then, the same client code against a bare oidc-provider whose
// interaction logs in at once (bench/servers/baseline.ts), same concurrency and duration.
// Ends with one line: RESULT login flows_per_s=… p50_ms=… p99_ms=… baseline_flows_per_s=… ratio=…
//
// Both servers run side by side and are measured in interleaved rounds (Vigie, baseline, Vigie…):
// the machine's speed drifts by tens of percent over a minute here, and alternating makes the
// drift weigh on both alike. Each target's best round is reported.
//
// Flags: --duration <s> (15) --warmup <s> (3) --rounds <n> (3) --concurrency <n> (16) --professionals <n> (64)
//        --profile (writes V8 CPU profiles of both servers under bench/profiles/)
//        --sql-stats (counts and times the SQLite statements the Vigie server's event loop runs per flow)
//        --route-cpu (each server's time per request, by route: use with --concurrency 1, where it is
//          CPU time; with --profile, also the request intervals that split the profile by route)
//        --log-level <pino level> (Vigie server's LOG_LEVEL, silent by default; shown on failure)
//        --trusted-browsers (each professional logs in from the same browser, trusted after its first
//          login, as at their own desk: number matching, the defences' lighter path; by default every
//          login comes from a fresh, untrusted browser, the heaviest path)
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { tmpdir, availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as client from 'openid-client';
import { resumeLogin, freePort, startBrowserLogin, type TestVigie } from '../test/support/harness.ts';
import { Jar, authorizationRequest, follow } from '../test/support/browser.ts';
import { ACR_EIDAS1 } from '../src/oidc/provider.ts';
import { BROWSER_COOKIE, TRUST_PREFIX } from '../src/defence/trusted-browser.ts';
import { killAllServers, peakRssOf, startServer, type ServerHandle, type ServerStats } from './support/processes.ts';
import type { VigieReady } from './servers/vigie.ts';
import type { BaselineReady } from './servers/baseline.ts';
import { measureWindow, percentile } from './support/load.ts';
import { BenchDevices } from './support/devices.ts';
import { redeemCode } from './support/relying-party.ts';

// `--nodes N`: several nodes on PostgreSQL + Redis beside one embedded node (bench/cluster.ts).
if (process.argv.includes('--nodes')) {
  await import('./cluster.ts');
  process.exit(0);
}

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
    professionals: { type: 'string', default: '64' },
    profile: { type: 'boolean', default: false },
    'sql-stats': { type: 'boolean', default: false },
    'route-cpu': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'silent' },
    'trusted-browsers': { type: 'boolean', default: false },
  },
});
const DURATION_MS = Number(flags.duration) * 1000;
const WARMUP_MS = Number(flags.warmup) * 1000;
const ROUNDS = Number(flags.rounds);
const CONCURRENCY = Number(flags.concurrency);
const PROFESSIONALS = Math.max(Number(flags.professionals), CONCURRENCY);
for (const [name, value] of [['duration', DURATION_MS], ['warmup', WARMUP_MS], ['rounds', ROUNDS], ['concurrency', CONCURRENCY], ['professionals', PROFESSIONALS]] as const) {
  if (!Number.isFinite(value) || value < (name === 'warmup' ? 0 : 1)) throw new Error(`--${name}: invalid value`);
}

const CLIENT_ID = 'bench-rp';
/** Never dereferenced: the flows stop at the redirect to it. */
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const PIN = '2468';
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const routeCpuEnv: Record<string, string> = flags['route-cpu'] ? { BENCH_ROUTE_CPU: '1' } : {};
// With --profile too: the Vigie server's request intervals, to split its profile by route.
const timelineOf = (name: string): Record<string, string> => (flags['route-cpu'] && flags.profile ? { BENCH_ROUTE_TIMELINE: here(`./profiles/${name}.timeline.json`) } : {});
const profileArgs = (profileDir: string | undefined, name: string) => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);

// ---------------------------------------------------------------- per-request timing

/** Response times by route (ids folded), for the requests that end in the measured window. */
class RouteTimes {
  #times = new Map<string, number[]>();
  recording = false;
  add(route: string, ms: number) {
    if (!this.recording) return;
    const list = this.#times.get(route) ?? [];
    list.push(ms);
    this.#times.set(route, list);
  }
  entries() {
    return [...this.#times];
  }
  reset() {
    this.#times.clear();
    this.recording = false;
  }
}
const routeTimes = new RouteTimes();
const routeOf = (method: string, url: URL) => `${method} ${url.pathname.replace(/\/[A-Za-z0-9_-]{16,}(?=\/|$)/g, '/:id')}`;

// Everything (openid-client, the scripted browser, the device simulator) calls the global fetch.
const originalFetch = globalThis.fetch;
globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : input);
  if (url.hostname !== '127.0.0.1') throw new Error(`the benchmark only talks to 127.0.0.1, not ${url.host}`);
  const started = performance.now();
  const response = await originalFetch(input, init);
  routeTimes.add(routeOf(init?.method ?? (input instanceof Request ? input.method : 'GET'), url), performance.now() - started);
  return response;
};

// ---------------------------------------------------------------- measurement

interface RunResult {
  flows: number;
  errors: number;
  firstError: string | undefined;
  flowsPerSecond: number;
  p50: number;
  p99: number;
  mean: number;
  requestsPerFlow: number;
  routes: Array<[string, number[]]>;
  serverCpu: number;
  loadCpu: number;
  server: ServerStats;
  /** RSS when the load starts (server ready, devices activated). */
  startRss: number;
  serverPeakRss: number;
  /** Server-reported counters over the measured window (SQL statements with --sql-stats). */
  extra: Array<[string, { count: number; ms: number }]>;
}


/** Runs `flow(worker)` in `CONCURRENCY` loops: warm-up, then the measured window. */
async function measure(server: ServerHandle<unknown>, flow: (worker: number) => Promise<void>): Promise<RunResult> {
  routeTimes.reset();
  const startRss = (await server.stats()).rss;
  const { flows, errors, firstError, latencies, opened, closed } = await measureWindow(CONCURRENCY, WARMUP_MS, DURATION_MS, flow, async (phase) => {
    routeTimes.recording = phase === 'open';
    return { server: await server.stats(), load: process.cpuUsage() };
  });
  const stats = await server.stats();
  const routes = routeTimes.entries().sort((a, b) => percentile([...b[1]].sort((x, y) => x - y), 50) - percentile([...a[1]].sort((x, y) => x - y), 50));
  const requests = routes.reduce((sum, [, list]) => sum + list.length, 0);
  const seconds = DURATION_MS / 1000;
  return {
    flows,
    errors,
    firstError,
    flowsPerSecond: flows / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    mean: latencies.reduce((a, b) => a + b, 0) / (latencies.length || 1),
    requestsPerFlow: flows ? requests / flows : NaN,
    routes,
    serverCpu: (closed.server.cpuMicros - opened.server.cpuMicros) / 1e3 / DURATION_MS,
    loadCpu: (closed.load.user + closed.load.system - opened.load.user - opened.load.system) / 1e3 / DURATION_MS,
    server: stats,
    startRss,
    serverPeakRss: peakRssOf(server.pid) ?? stats.peakRss,
    extra: Object.entries(closed.server.extra ?? {})
      .map(([key, after]): [string, { count: number; ms: number }] => {
        const before = opened.server.extra?.[key] ?? { count: 0, ms: 0 };
        return [key, { count: after.count - before.count, ms: after.ms - before.ms }];
      })
      .filter(([, v]) => v.count > 0 || v.ms > 0)
      .sort((a, b) => b[1].ms - a[1].ms),
  };
}

// ---------------------------------------------------------------- the two targets

async function relyingParty(issuer: string, secret: string): Promise<Pick<TestVigie, 'rp' | 'redirectUri'>> {
  const rp = await client.discovery(new URL(issuer), CLIENT_ID, undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
  return { rp, redirectUri: REDIRECT_URI };
}

/** A server under load: what one flow against it is. */
interface Target {
  server: ServerHandle<unknown>;
  flow: (worker: number) => Promise<void>;
  /** Lets go of what the load generator holds open (the devices' streams). */
  close(): void;
}

async function startVigie(dataDir: string, profileDir: string | undefined): Promise<Target> {
  const port = await freePort();
  const secret = randomBytes(32).toString('base64url');
  const server = await startServer<VigieReady>(here('./servers/vigie.ts'), {
    label: 'Vigie server',
    execArgv: profileArgs(profileDir, 'vigie-server'),
    env: {
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      VIGIE_ISSUER: `http://127.0.0.1:${port}`,
      VIGIE_DATA_DIR: dataDir,
      VIGIE_SECRET: randomBytes(32).toString('hex'),
      VIGIE_DEMO: 'false',
      LOG_LEVEL: flags['log-level'],
      ...(flags['sql-stats'] ? { BENCH_SQL_STATS: '1' } : {}),
      ...routeCpuEnv,
      ...timelineOf('vigie-server'),
      // All the load comes from 127.0.0.1, from fresh browsers, and each professional logs in
      // hundreds of times: raise the push-bombing limits so every flow takes the normal push path
      // (the defences still run). Settings this version does not know are ignored.
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
      BENCH_CLIENT_SECRET: secret,
      BENCH_REDIRECT_URI: REDIRECT_URI,
    },
  });
  try {
    const { issuer, accounts, professionals, storage } = server.payload;
    console.log(`Vigie       pid ${server.pid}, ${issuer}, ${storage}, ${professionals} professionals in the directory`);
    const t = (await relyingParty(issuer, secret)) as TestVigie;
    const devices = await BenchDevices.activate(issuer, accounts, PIN, CONCURRENCY);
    console.log(`            ${devices.size} simulator devices activated, each with its event stream open`);
    // --trusted-browsers: the cookies each professional's browser keeps between logins.
    const desks = new Map<string, Jar>();
    const flow = async (worker: number) => {
      const device = devices.take(worker);
      const desk = flags['trusted-browsers'] ? (desks.get(device.nationalId) ?? new Jar()) : undefined;
      const login = await startBrowserLogin(t, device.nationalId, {}, t.rp, desk);
      await BenchDevices.approve(device, login, PIN);
      // As the page's script does once approved.
      const callback = await resumeLogin(t, login);
      if (!callback.url.href.startsWith(REDIRECT_URI)) throw new Error(`resume ended on ${callback.url.href} (${callback.response.status})`);
      await redeemCode(t.rp, callback.url, login, device.nationalId);
      if (desk) {
        // The browser is closed: its session ends (the next flow is a full login, not single
        // sign-on), its identity and the trust it earned stay.
        desk.retain((name) => name === BROWSER_COOKIE || name.startsWith(TRUST_PREFIX));
        desks.set(device.nationalId, desk);
      }
    };
    return { server, flow: withServerOutput(server, 'Vigie', flow), close: () => devices.close() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** A failing flow shows the tail of its server's output (silent otherwise). */
function withServerOutput(server: ServerHandle<unknown>, label: string, flow: Target['flow']): Target['flow'] {
  let shown = false;
  return async (worker) => {
    try {
      await flow(worker);
    } catch (error) {
      const output = server.output().trim();
      if (output && !shown) console.error(`${label} server output (tail):\n${output}`);
      shown = true;
      throw error;
    }
  };
}

async function startBaseline(profileDir: string | undefined): Promise<Target> {
  const port = await freePort();
  const secret = randomBytes(32).toString('base64url');
  const server = await startServer<BaselineReady>(here('./servers/baseline.ts'), {
    label: 'baseline server',
    execArgv: profileArgs(profileDir, 'baseline-server'),
    env: { ...routeCpuEnv, ...timelineOf('baseline-server'), NODE_ENV: 'development', PORT: String(port), BENCH_CLIENT_ID: CLIENT_ID, BENCH_CLIENT_SECRET: secret, BENCH_REDIRECT_URI: REDIRECT_URI },
  });
  try {
    const { issuer, accountId } = server.payload;
    console.log(`Baseline    pid ${server.pid}, ${issuer}, bare oidc-provider (in-memory adapter), interaction accepts at once`);
    const t = await relyingParty(issuer, secret);
    const flow = async () => {
      const jar = new Jar();
      const { url, verifier, state, nonce } = await authorizationRequest(t.rp, { redirect_uri: REDIRECT_URI, scope: 'openid scope_all', acr_values: ACR_EIDAS1 });
      const callback = await follow(jar, url, (u) => u.href.startsWith(REDIRECT_URI));
      if (!callback.url.href.startsWith(REDIRECT_URI)) throw new Error(`authorize ended on ${callback.url.href} (${callback.response.status})`);
      await redeemCode(t.rp, callback.url, { verifier, state, nonce }, accountId);
    };
    return { server, flow: withServerOutput(server, 'baseline', flow), close: () => {} };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

// ---------------------------------------------------------------- report

const fmtS = (ms: number) => `${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)} s`;
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const n1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r, ri) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ') + (ri === 0 ? `\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : '')).join('\n');
}

function report(vigie: RunResult, baseline: RunResult) {
  const row = (name: string, r: RunResult) => [name, r.flowsPerSecond.toFixed(2), n1(r.p50), n1(r.p99), n1(r.mean), n1(r.requestsPerFlow), String(r.flows), String(r.errors), `${(r.serverCpu * 100).toFixed(0)}%`, `${(r.loadCpu * 100).toFixed(0)}%`, mb(r.serverPeakRss)];
  console.log(`\nComplete login flows${flags['trusted-browsers'] ? ' (Vigie: each professional from their trusted browser)' : ''}, concurrency ${CONCURRENCY}, each target's best of ${ROUNDS} round(s) of ${fmtS(DURATION_MS)} after ${fmtS(WARMUP_MS)} warm-up (${availableParallelism()} CPUs, load average ${loadAtStart} at start, ${loadavg()[0]!.toFixed(2)} at end)\n`);
  console.log(table([
    ['target', 'flows/s', 'p50 ms', 'p99 ms', 'mean ms', 'req/flow', 'flows', 'errors', 'server CPU', 'bench CPU', 'server peak RSS'],
    row('Vigie e-CPS (SQLite)', vigie),
    row('bare oidc-provider', baseline),
  ]));
  for (const [name, r] of [['Vigie', vigie], ['baseline', baseline]] as const) {
    if (r.firstError) console.log(`\n${name}: ${r.errors} failed flows, first: ${r.firstError}`);
  }
  for (const [name, r] of [['Vigie', vigie], ['bare oidc-provider', baseline]] as const) {
    console.log(`\n${name}: response times by request (time to headers, seen from the load generator)\n`);
    console.log(table([
      ['request', 'per flow', 'p50 ms', 'p99 ms', 'ms per flow'],
      ...r.routes.map(([route, list]) => {
        const sorted = [...list].sort((a, b) => a - b);
        return [route, (list.length / (r.flows || 1)).toFixed(2), n1(percentile(sorted, 50)), n1(percentile(sorted, 99)), n1(list.reduce((a, b) => a + b, 0) / (r.flows || 1))];
      }),
    ]));
  }
  for (const [name, r] of [['Vigie', vigie], ['bare oidc-provider', baseline]] as const) {
    const routes = r.extra.filter(([k]) => k.startsWith('cpu: '));
    if (!routes.length) continue;
    const flows = r.flows || 1;
    const ms = routes.filter(([, v]) => v.count > 0).reduce((a, [, v]) => a + v.ms, 0);
    console.log(`\n${name}: server time per request, from arrival to response end (CPU time at concurrency 1), ${(ms / flows).toFixed(2)} ms per flow\n`);
    console.log(table([
      ['request', 'per flow', 'ms per flow', 'µs each'],
      ...routes.map(([key, v]) => [key.slice(5), (v.count / flows).toFixed(2), (v.ms / flows).toFixed(3), v.count ? ((v.ms / v.count) * 1000).toFixed(0) : '–']),
    ]));
  }
  const sql = vigie.extra.filter(([k]) => !k.startsWith('cpu: '));
  if (sql.length) {
    const flows = vigie.flows || 1;
    const count = sql.filter(([k]) => !k.startsWith('prepare')).reduce((a, [, v]) => a + v.count, 0);
    const ms = sql.reduce((a, [, v]) => a + v.ms, 0);
    const prepared = sql.filter(([k]) => k.startsWith('prepare')).reduce((a, [, v]) => ({ count: a.count + v.count, ms: a.ms + v.ms }), { count: 0, ms: 0 });
    console.log(`\nVigie: SQLite on the server's event loop, ${(count / flows).toFixed(1)} statements and ${(ms / flows).toFixed(2)} ms of synchronous SQLite per flow (event loop blocked), of which ${(prepared.count / flows).toFixed(1)} prepares for ${(prepared.ms / flows).toFixed(2)} ms; the writes the worker thread runs (store/sqlite-worker.ts) are not counted\n`);
    console.log(table([
      ['statement', 'per flow', 'ms per flow', 'µs each'],
      ...sql.slice(0, 30).map(([key, v]) => [key, (v.count / flows).toFixed(2), (v.ms / flows).toFixed(3), ((v.ms / v.count) * 1000).toFixed(0)]),
    ]));
  }
  const rss = (r: RunResult) => `${mb(r.serverPeakRss)} (rss ${mb(r.startRss)} before the load, ${mb(r.server.rss)} at the end)`;
  console.log(`\nServer peak RSS (VmHWM): Vigie ${rss(vigie)}; baseline ${rss(baseline)}`);
}

// ---------------------------------------------------------------- main

// Other work on the machine skews both targets differently: the load average is printed with the results.
const loadAtStart = loadavg()[0]!.toFixed(2);
const dataDir = await mkdtemp(join(tmpdir(), 'vigie-bench-'));
const cleanup = () => {
  killAllServers();
  rmSync(dataDir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });
}

let failed = false;
const targets: Target[] = [];
try {
  const profileDir = flags.profile ? here('./profiles') : undefined;
  if (profileDir) await mkdir(profileDir, { recursive: true });
  const vigie = await startVigie(dataDir, profileDir);
  targets.push(vigie);
  const baseline = await startBaseline(profileDir);
  targets.push(baseline);
  console.log(`\n${ROUNDS} round(s), each ${fmtS(WARMUP_MS)} warm-up + ${fmtS(DURATION_MS)} measured per target, concurrency ${CONCURRENCY}`);
  const rounds: Array<{ vigie: RunResult; baseline: RunResult }> = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    const v = await measure(vigie.server, vigie.flow);
    const b = await measure(baseline.server, baseline.flow);
    rounds.push({ vigie: v, baseline: b });
    console.log(`round ${round}/${ROUNDS}: Vigie ${v.flowsPerSecond.toFixed(2)} flows/s, baseline ${b.flowsPerSecond.toFixed(2)} flows/s (ratio ${(v.flowsPerSecond / b.flowsPerSecond).toFixed(2)})`);
  }
  // Each target's best round: the one least slowed down by whatever else the machine was doing.
  const best = (pick: (r: (typeof rounds)[number]) => RunResult) => rounds.map(pick).reduce((a, b) => (b.flowsPerSecond > a.flowsPerSecond ? b : a));
  const v = best((r) => r.vigie);
  const b = best((r) => r.baseline);
  report(v, b);
  if (profileDir) {
    const split = flags['route-cpu'] ? ` --timeline ${join(profileDir, '<name>.timeline.json')} [--route 'POST /token']` : '';
    console.log(`\nCPU profiles: ${join(profileDir, 'vigie-server.cpuprofile')}, ${join(profileDir, 'baseline-server.cpuprofile')} (summary: npx node bench/profile-summary.ts <file>${split})`);
  }
  if (!v.flows || !b.flows) throw new Error('no flow completed in the measured window');
  console.log(`RESULT login flows_per_s=${v.flowsPerSecond.toFixed(2)} p50_ms=${v.p50.toFixed(2)} p99_ms=${v.p99.toFixed(2)} baseline_flows_per_s=${b.flowsPerSecond.toFixed(2)} ratio=${(v.flowsPerSecond / b.flowsPerSecond).toFixed(2)}`);
} catch (error) {
  failed = true;
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
} finally {
  // A normal stop, so that --profile's server writes its profile.
  for (const target of targets) {
    target.close();
    await target.server.stop();
  }
  killAllServers();
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
