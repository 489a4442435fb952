// `npm run cluster -- [--nodes 3] [--port 3000]`: N Vigie nodes on PostgreSQL + Redis behind the
// small load balancer of scripts/balancer.ts, on this machine, to try the several-node mode (see
// docs/deployment.md). Needs DATABASE_URL and REDIS_URL. Every node gets the same VIGIE_SECRET and
// issuer; node 1 also runs the demo service (outside production). Migrations run once, before the
// nodes start. A node that exits is restarted after a second; Ctrl-C stops everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.ts';
import { migrate, openDatabase } from '../src/store/db.ts';
import { startBalancer } from './balancer.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '3' }, port: { type: 'string', default: '3000' }, 'first-node-port': { type: 'string' } } });
const nodes = Number(values.nodes);
const port = Number(values.port);
const firstNodePort = Number(values['first-node-port'] ?? port + 101);
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) throw new Error('--nodes: 1 to 16');

const env = { ...process.env };
if (!env.DATABASE_URL || !env.REDIS_URL) {
  console.error('npm run cluster needs DATABASE_URL (postgres://…) and REDIS_URL (redis://…): several nodes share them.');
  process.exit(1);
}
if (!env.VIGIE_SECRET) {
  env.VIGIE_SECRET = randomBytes(32).toString('base64url');
  console.warn('VIGIE_SECRET is not set: using a random one for this run (sessions and codes do not survive a restart of the cluster). Set it in production.');
}
env.VIGIE_ISSUER ??= `http://localhost:${port}`;
env.VIGIE_TRUST_PROXY = 'true';
env.HOST = '127.0.0.1';

// Once, before any node: the schema (nodes also migrate at start, which is then a no-op).
const config = loadConfig(env);
const db = openDatabase({ databaseUrl: config.databaseUrl });
const applied = await migrate(db);
await db.close();
if (applied.length) console.log(`migrations applied: ${applied.join(', ')}`);

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const children = new Map<number, ChildProcess>();
let stopping = false;

function start(index: number): Promise<void> {
  const nodePort = firstNodePort + index;
  const child = spawn(process.execPath, [main], {
    env: { ...env, PORT: String(nodePort), VIGIE_DEMO: index === 0 && !config.production ? 'true' : 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.set(index, child);
  const prefix = `[node${index + 1}:${nodePort}] `;
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
    });
  }
  child.once('exit', (code, signal) => {
    children.delete(index);
    if (stopping) return;
    console.log(`${prefix}exited (${signal ?? code}); restarting in 1 s`);
    setTimeout(() => void start(index), 1000);
  });
  return waitReady(`http://127.0.0.1:${nodePort}/readyz`, child);
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i += 1) {
    if (child.exitCode !== null) return;
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} not ready after 60 s`);
}

const stop = async () => {
  if (stopping) return;
  stopping = true;
  await balancer?.close();
  for (const child of children.values()) child.kill('SIGTERM');
  const deadline = Date.now() + 10_000;
  while (children.size && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const child of children.values()) child.kill('SIGKILL');
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
process.on('exit', () => {
  for (const child of children.values()) child.kill('SIGKILL');
});

let balancer: Awaited<ReturnType<typeof startBalancer>> | undefined;
try {
  // The first node alone first: it creates the signing key the others then load.
  await start(0);
  await Promise.all(Array.from({ length: nodes - 1 }, (_, i) => start(i + 1)));
  balancer = await startBalancer({ port, targets: Array.from({ length: nodes }, (_, i) => ({ host: '127.0.0.1', port: firstNodePort + i })) });
  console.log(`\n${nodes} Vigie node(s) on ports ${firstNodePort}–${firstNodePort + nodes - 1}, load balancer on ${balancer.url} (issuer ${env.VIGIE_ISSUER})`);
  console.log(`Readiness: curl ${balancer.url}/readyz — stop with Ctrl-C.`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  await stop();
}
