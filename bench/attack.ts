// Attack simulator (`npm run bench:attack`, not a test): does Vigie stop push bombing?
//
// For each of three configurations — `no-defences` (a plain "approve" button: the victim's tap
// is enough), `number-matching-only` (pick one of three, the national provider's 2022 state) and
// `all-defences` (the defaults) — a child process starts the real Vigie in-process on 127.0.0.1
// (embedded SQLite in a temporary folder, the demo directory, geoip-lite) with an injected clock,
// and simulates one day, event by event, over HTTP:
//   - K attacker sources (French addresses, each in its own /24) take turns at the P victims'
//     public identifiers, every --interval simulated seconds each, from a fresh browser each time
//     (no cookies) — the attacker's page shows the code the victim would need;
//   - each victim's phone (the device simulator, signed protocol) reacts 5–30 s after every
//     notification: with probability p the victim is a reflex approver who approves everything,
//     picking one of the three codes at random or typing six random digits (a plain tap in
//     `no-defences`); otherwise they answer "not me";
//   - the real users log in --logins (16) times a day between 07:00 and 20:00 from the browser they
//     always use (trusted after a first login before the day starts), approving their own request
//     with the right code; when it is not pushed they open the app 30 s later and find it there.
// It prints one table and, last, one RESULT line per configuration:
//   RESULT <config> notifications_per_victim_day=… attacker_success_per_victim_day=… legit_success=… legit_added_p99_ms=…
// attacker_success_per_victim_day is the larger of the observed rate and the bound from the
// notifications delivered times the chance of one blind guess (1/3 picking, 1e-6 typing, 1 for a
// plain approve). legit_added_p99_ms compares the real users' login time under attack (HTTP time
// of their flow, plus 30 s whenever they had to open the app themselves) with a quiet day: the
// same users and logins, no attacker, no defences (run first, as the reference). The table also
// shows the server time of the defence decision alone for the real users' requests (p99).
//
// Flags: --victims P (20) --sources K (10) --interval S (360) --p (1) --logins L (16) --seed N (1)
//        --parallel (the configurations at once, one process each: faster, noisier latencies)
//        --botnet (every attempt from a fresh address in a fresh /24: only the per-professional defences can act)
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import * as client from 'openid-client';
import { loadConfig } from '../src/config/index.ts';
import { createVigie, type Vigie } from '../src/server.ts';
import { ManualClock } from '../src/lib/clock.ts';
import { importContacts, importExtract } from '../src/directory/import.ts';
import { DEMO_CONTACTS, DEMO_EXTRACT } from '../src/demo.ts';
import { DeviceSimulator } from '../src/device/simulator.ts';
import { freePort } from '../test/support/harness.ts';
import { attemptLogin, browserAt, finishLogin, type Attempt, type SourceBrowser } from '../test/support/defence.ts';

const CONFIGS = {
  /** The reference for latency: the real users alone, no attacker, no defences. */
  'quiet-day': { VIGIE_DEFENCES: 'false', VIGIE_CODE_MODE: 'pick' },
  'no-defences': { VIGIE_DEFENCES: 'false', VIGIE_CODE_MODE: 'pick' },
  'number-matching-only': { VIGIE_DEFENCES: 'false', VIGIE_CODE_MODE: 'pick' },
  'all-defences': {},
} as const satisfies Record<string, Record<string, string>>;
type ConfigName = keyof typeof CONFIGS;
const NAMES = Object.keys(CONFIGS) as ConfigName[];
const REPORTED: ConfigName[] = NAMES.filter((n) => n !== 'quiet-day');

const { values: flags } = parseArgs({
  options: {
    victims: { type: 'string', default: '20' },
    sources: { type: 'string', default: '10' },
    interval: { type: 'string', default: '360' },
    p: { type: 'string', default: '1' },
    logins: { type: 'string', default: '16' },
    seed: { type: 'string', default: '1' },
    parallel: { type: 'boolean', default: false },
    botnet: { type: 'boolean', default: false },
    worker: { type: 'string' },
  },
});
const VICTIMS = Number(flags.victims);
const SOURCES = Number(flags.sources);
const INTERVAL_MS = Number(flags.interval) * 1000;
const P_REFLEX = Number(flags.p);
const LOGINS = Number(flags.logins);
const SEED = Number(flags.seed);
for (const [name, value, min] of [['victims', VICTIMS, 1], ['sources', SOURCES, 1], ['interval', INTERVAL_MS, 1000], ['logins', LOGINS, 0], ['seed', SEED, 0]] as const) {
  if (!Number.isFinite(value) || value < min) throw new Error(`--${name}: invalid value`);
}
if (!(P_REFLEX >= 0 && P_REFLEX <= 1)) throw new Error('--p must be between 0 and 1');

const PIN = '2468';
const DAY_MS = 86_400_000;
const PULL_DELAY_MS = 30_000;
/** Midnight in Paris on 15 January 2026. */
const DAY_START = Date.UTC(2026, 0, 14, 23, 0, 0);
const CLIENT_ID = 'attack-sim';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';
const BLIND_GUESS = { plain: 1, pick: 1 / 3, typed: 1e-6 } as const;

interface WorkerResult {
  config: ConfigName;
  victimDays: number;
  attempts: number;
  refused: number;
  silent: number;
  notifications: number;
  bound: number;
  wins: number;
  legitAttempts: number;
  legitSuccesses: number;
  legitMs: number[];
  /** Server time of the defence decision for the real users' requests (trusted browsers). */
  decideMs: number[];
  wallMs: number;
}

// ---------------------------------------------------------------------------------- randomness

/** mulberry32: the same seed gives the same day. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------- the worker

type SimEvent = { at: number; seq: number; run: () => Promise<void> };

class Timeline {
  #events: SimEvent[] = [];
  #seq = 0;
  add(at: number, run: () => Promise<void>): void {
    const event = { at, seq: this.#seq++, run };
    let lo = 0;
    let hi = this.#events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.#events[mid]!;
      if (e.at < at || (e.at === at && e.seq < event.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.#events.splice(lo, 0, event);
  }
  next(): SimEvent | undefined {
    return this.#events.shift();
  }
}

async function simulate(name: ConfigName): Promise<WorkerResult> {
  const started = performance.now();
  const random = prng(SEED);
  const dataDir = await mkdtemp(join(tmpdir(), `vigie-attack-${name}-`));
  const clock = new ManualClock(DAY_START - DAY_MS);
  const port = await freePort();
  const config = loadConfig({
    NODE_ENV: 'test', HOST: '127.0.0.1', PORT: String(port), VIGIE_DATA_DIR: dataDir, LOG_LEVEL: 'silent', VIGIE_DEMO: 'false',
    VIGIE_SECRET: randomBytes(32).toString('hex'), VIGIE_TRUST_PROXY: 'true', VIGIE_ACTIVATION_ATTEMPTS_PER_IP_PER_HOUR: '100000000', VIGIE_AUTHORIZATIONS_PER_IP_PER_MINUTE: '100000000', ...CONFIGS[name],
  });
  const vigie: Vigie = await createVigie(config, { clock, logger: pino({ level: 'silent' }) });
  try {
    await importExtract(DEMO_EXTRACT, vigie.directory);
    await importContacts(DEMO_CONTACTS, vigie.directory);
    await vigie.listen();
    const secret = randomBytes(32).toString('base64url');
    await vigie.clients.put({ client_id: CLIENT_ID, client_name: 'Service attaqué', redirect_uris: [REDIRECT_URI], client_secret: secret });
    const rp = await client.discovery(new URL(config.issuer), CLIENT_ID, undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });

    // Deliveries, from the bus: which challenges were pushed.
    const pushed = new Map<string, boolean>();
    vigie.bus.subscribe('challenge.created', (e) => {
      pushed.set(e.challengeId, e.delivery === 'push');
    });

    // The victims: a device each, a trusted browser each (one login the day before).
    const rows = await vigie.db.kysely.selectFrom('professional').select('national_id').orderBy('national_id').limit(VICTIMS).execute();
    const victims = [] as Array<{ nationalId: string; device: DeviceSimulator; browser: SourceBrowser; reflex: boolean }>;
    for (const [i, row] of rows.entries()) {
      const { code } = await vigie.devices.createActivationCode(row.national_id);
      const device = await DeviceSimulator.create(config.issuer, { clock });
      const activated = await device.activate({ nationalId: row.national_id, activationCode: code, pin: PIN });
      if (activated.status !== 201) throw new Error(`activation: ${JSON.stringify(activated.body)}`);
      // Real users at home or at the practice: French addresses, one /24 each.
      const browser = browserAt(`90.84.${i}.20`);
      const first = await attemptLogin(rp, REDIRECT_URI, browser, row.national_id);
      if (!first.ok) throw new Error(`warm-up login refused: ${first.alert}`);
      await device.approve(first.challengeId, first.displayCode, PIN);
      if (!(await finishLogin(first, REDIRECT_URI))) throw new Error('warm-up login failed');
      clock.advance(1000);
      victims.push({ nationalId: row.national_id, device, browser, reflex: random() < P_REFLEX });
    }
    if (victims.length < VICTIMS) throw new Error(`only ${victims.length} professionals in the demo directory`);

    const result: WorkerResult = { config: name, victimDays: VICTIMS, attempts: 0, refused: 0, silent: 0, notifications: 0, bound: 0, wins: 0, legitAttempts: 0, legitSuccesses: 0, legitMs: [], decideMs: [], wallMs: 0 };
    // The server runs in this process: time its defence decisions for the real users.
    const decide = vigie.defence.decide.bind(vigie.defence);
    vigie.defence.decide = async (attempt) => {
      const t0 = performance.now();
      const decision = await decide(attempt);
      if (attempt.trustedSince !== null) result.decideMs.push(performance.now() - t0);
      return decision;
    };
    const timeline = new Timeline();
    const legitChallenges = new Set<string>();

    // The attackers: K sources (French addresses, a /24 each), each every INTERVAL, round robin over the victims.
    let fresh = 0;
    const botnetAddress = () => {
      fresh += 1;
      // 90.0.0.0/8 is French (geoip-lite); 90.84/16 is left to the real users.
      const second = (fresh >> 8) % 256 === 84 ? 85 : (fresh >> 8) % 256;
      return `90.${second}.${fresh % 256}.77`;
    };
    for (let k = 0; k < (name === 'quiet-day' ? 0 : SOURCES); k += 1) {
      const ip = `90.14.${48 + k}.${10 + k}`;
      let turn = 0;
      const fire = async () => {
        const victim = victims[(k + turn) % victims.length]!;
        turn += 1;
        const attempt = await attemptLogin(rp, REDIRECT_URI, browserAt(flags.botnet ? botnetAddress() : ip), victim.nationalId);
        result.attempts += 1;
        if (!attempt.ok) result.refused += 1;
        else if (!pushed.get(attempt.challengeId)) result.silent += 1;
        else {
          result.notifications += 1;
          const mode = name === 'no-defences' ? 'plain' : attempt.mode;
          result.bound += BLIND_GUESS[mode];
          timeline.add(clock.now() + 5000 + Math.floor(random() * 25_000), () => react(victim, attempt, mode));
        }
        const next = clock.now() + INTERVAL_MS;
        if (next < DAY_START + DAY_MS) timeline.add(next, fire);
      };
      timeline.add(DAY_START + Math.floor((k * INTERVAL_MS) / SOURCES), fire);
    }

    // The victim's phone rings for an attacker's request.
    const react = async (victim: (typeof victims)[number], attempt: Extract<Attempt, { ok: true }>, mode: 'plain' | 'pick' | 'typed') => {
      if (!victim.reflex) {
        await victim.device.deny(attempt.challengeId, 'not_me');
        return;
      }
      const seen = await victim.device.show(attempt.challengeId);
      if (seen.status !== 200) return; // expired or superseded meanwhile
      const code = mode === 'plain' ? attempt.displayCode
        : mode === 'pick' ? seen.body.candidates[Math.floor(random() * seen.body.candidates.length)]!
        : String(Math.floor(random() * 1_000_000)).padStart(6, '0');
      const approved = await victim.device.approve(attempt.challengeId, code, PIN);
      if (approved.status === 200 && (await finishLogin(attempt, REDIRECT_URI))) result.wins += 1;
    };

    // The real users, from their trusted browsers, during the working day.
    for (const victim of victims) {
      for (let n = 0; n < LOGINS; n += 1) {
        const at = DAY_START + 7 * 3_600_000 + Math.floor(random() * 13 * 3_600_000);
        timeline.add(at, async () => {
          result.legitAttempts += 1;
          const t0 = performance.now();
          let waited = 0;
          const attempt = await attemptLogin(rp, REDIRECT_URI, victim.browser, victim.nationalId);
          if (!attempt.ok) return;
          legitChallenges.add(attempt.challengeId);
          if (!pushed.get(attempt.challengeId)) {
            // No notification: the user opens the app, which pulls the pending requests.
            waited = PULL_DELAY_MS;
            const list = await victim.device.listChallenges();
            if (!list.body.challenges.some((c) => c.id === attempt.challengeId)) return;
          }
          const approved = await victim.device.approve(attempt.challengeId, attempt.displayCode, PIN);
          if (approved.status !== 200) return;
          if (!(await finishLogin(attempt, REDIRECT_URI))) return;
          result.legitSuccesses += 1;
          result.legitMs.push(performance.now() - t0 + waited);
        });
      }
    }

    for (let event = timeline.next(); event; event = timeline.next()) {
      if (event.at > clock.now()) clock.set(event.at);
      await vigie.challenges.expireDue();
      await event.run();
    }
    result.wallMs = performance.now() - started;
    return result;
  } finally {
    await vigie.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------- the parent

function runWorker(name: ConfigName): Promise<WorkerResult> {
  const args = [...(flags.botnet ? ['--botnet'] : []), '--worker', name, '--victims', String(VICTIMS), '--sources', String(SOURCES), '--interval', String(INTERVAL_MS / 1000), '--p', String(P_REFLEX), '--logins', String(LOGINS), '--seed', String(SEED)];
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: WorkerResult | undefined;
    child.on('message', (message: WorkerResult) => {
      result = message;
    });
    child.on('error', reject);
    child.on('exit', (code) => (result && code === 0 ? resolve(result) : reject(new Error(`${name}: the simulation failed (exit ${code})`))));
  });
}

function percentile(values: number[], q: number): number {
  if (!values.length) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** 0, or three significant digits (exponent form below 0.001). */
function rate(value: number): string {
  if (value === 0) return '0';
  if (value < 1e-3) return value.toExponential(1).replace('e-', 'e-');
  return String(Number(value.toPrecision(3)));
}

async function main(): Promise<void> {
  if (flags.worker) {
    const name = flags.worker as ConfigName;
    if (!NAMES.includes(name)) throw new Error(`unknown configuration ${name}`);
    const result = await simulate(name);
    if (process.send) process.send(result);
    else console.log(JSON.stringify({ ...result, legitMs: undefined, legitPercentiles: [0.5, 0.9, 0.95, 0.99, 1].map((q) => Math.round(percentile(result.legitMs, q))) }));
    return;
  }
  const started = performance.now();
  console.log(`Attack simulation: ${VICTIMS} victims, ${SOURCES} attacker ${flags.botnet ? 'streams from ever new /24s' : 'sources'} each every ${INTERVAL_MS / 1000} s for one simulated day, p = ${P_REFLEX}, ${LOGINS} real logins per victim (seed ${SEED}).`);
  const results: WorkerResult[] = [];
  if (flags.parallel) results.push(...(await Promise.all(NAMES.map(runWorker))));
  else for (const name of NAMES) results.push(await runWorker(name));

  const baseline = percentile(results.find((r) => r.config === 'quiet-day')!.legitMs, 0.99);
  const rows = results.map((r) => {
    const perVictim = (n: number) => n / r.victimDays;
    const p99 = percentile(r.legitMs, 0.99);
    return {
      r,
      notifications: perVictim(r.notifications),
      observed: perVictim(r.wins),
      success: Math.max(perVictim(r.wins), perVictim(r.bound)),
      legit: r.legitAttempts ? r.legitSuccesses / r.legitAttempts : 1,
      p99,
      added: Math.max(0, Math.round(p99 - baseline)),
    };
  });
  const header = ['configuration', 'attempts', 'refused', 'silent', 'notif/victim/day', 'wins/victim/day', 'success bound', 'legit success', 'legit p50 ms', 'legit p99 ms', 'added p99 ms', 'decision p99 ms', 'wall s'];
  const table = rows.map((x) => [
    x.r.config, String(x.r.attempts), String(x.r.refused), String(x.r.silent), x.notifications.toFixed(1), x.observed.toFixed(2), rate(x.success),
    x.legit.toFixed(4), percentile(x.r.legitMs, 0.5).toFixed(1), x.p99.toFixed(1), String(x.added), percentile(x.r.decideMs, 0.99).toFixed(2), (x.r.wallMs / 1000).toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log('');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  const all = rows.find((x) => x.r.config === 'all-defences')!;
  console.log('');
  console.log(`Targets with all defences (p = ${P_REFLEX}; they are set for p = 1): notifications ≤ 3 per victim-day: ${all.notifications <= 3 ? 'met' : 'MISSED'}; attacker success ≤ 1e-5: ${all.success <= 1e-5 ? 'met' : 'MISSED'}; legit success ≥ 0.999: ${all.legit >= 0.999 ? 'met' : 'MISSED'}; added p99 < 50 ms: ${all.added < 50 ? 'met' : 'MISSED'}.`);
  console.log(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  console.log('');
  for (const x of rows.filter((row) => REPORTED.includes(row.r.config))) {
    console.log(`RESULT ${x.r.config} notifications_per_victim_day=${x.notifications.toFixed(1)} attacker_success_per_victim_day=${rate(x.success)} legit_success=${x.legit.toFixed(4)} legit_added_p99_ms=${x.added}`);
  }
}

await main();
