// Server child processes for the benchmarks: the load generator (parent) and the server under test
// (child, started with process.execPath) never share an event loop. They talk over the IPC channel:
// the child says `ready` with what the parent needs, answers `stats` (memory, CPU) and leaves on
// `stop` (or when the parent disappears). The parent kills what it started, even on error.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { routeCpuStatistics } from './route-cpu.ts';

export interface ServerStats {
  /** Current resident set size, bytes. */
  rss: number;
  /** Peak resident set size (VmHWM), bytes; the current RSS where /proc is missing. */
  peakRss: number;
  /** CPU time used by the process so far, microseconds (user + system). */
  cpuMicros: number;
  /** Cumulative counters the server chose to report (e.g. SQL statements). */
  extra?: Record<string, { count: number; ms: number }>;
}

type ToChild = { type: 'stats' } | { type: 'stop' };
type FromChild<R> = { type: 'ready'; payload: R } | { type: 'stats'; stats: ServerStats } | { type: 'failed'; message: string };

/** Peak RSS from /proc (Linux), in bytes. */
export function peakRssOf(pid: number | 'self'): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function ownStats(extra?: () => ServerStats['extra']): ServerStats {
  const rss = process.memoryUsage().rss;
  const cpu = process.cpuUsage();
  const counters = { ...extra?.(), ...routeCpu?.() };
  return { rss, peakRss: peakRssOf('self') ?? rss, cpuMicros: cpu.user + cpu.system, ...(Object.keys(counters).length ? { extra: counters } : {}) };
}

// ---------------------------------------------------------------- child side

const routeCpu = routeCpuStatistics();

/** Runs in the child: starts the server, reports `ready`, serves `stats`, closes on `stop`. */
export async function runServerChild<R>(start: () => Promise<{ payload: R; close: () => Promise<void> }>, extra?: () => ServerStats['extra']): Promise<void> {
  if (!process.send) throw new Error('this script is started by a benchmark (it needs an IPC channel)');
  const send = (message: FromChild<R>) => process.send?.(message);
  let close: (() => Promise<void>) | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await close?.().catch(() => {});
    // A normal exit (not a signal) so that --cpu-prof writes its profile.
    process.exit(code);
  };
  process.on('message', (message: ToChild) => {
    if (message.type === 'stats') send({ type: 'stats', stats: ownStats(extra) });
    else if (message.type === 'stop') void stop(0);
  });
  // The parent went away (crash, kill -9): do not linger.
  process.on('disconnect', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  try {
    const started = await start();
    close = started.close;
    send({ type: 'ready', payload: started.payload });
  } catch (error) {
    send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  }
}

// ---------------------------------------------------------------- parent side

const running = new Set<ChildProcess>();
let hooked = false;

/** Kills every child still running; synchronous so it also works from an 'exit' handler. */
export function killAllServers(): void {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  running.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllServers);
}

export interface ServerHandle<R> {
  pid: number;
  payload: R;
  stats(): Promise<ServerStats>;
  /** The tail of the child's stdout/stderr. */
  output(): string;
  /** Asks the child to close and exit; kills it when it does not within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `script` in a child Node process (same binary as this one) and waits for its `ready`. */
export async function startServer<R>(script: string | URL, options: { env: Record<string, string>; execArgv?: string[]; readyTimeoutMs?: number; label: string }): Promise<ServerHandle<R>> {
  hookExit();
  const child = fork(script, [], {
    execPath: process.execPath,
    execArgv: options.execArgv ?? [],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  running.add(child);
  // Keep the tail of its output to explain a failure; the servers are silent otherwise.
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const waiters: Array<{ resolve: (stats: ServerStats) => void; reject: (error: Error) => void }> = [];
  // A server that dies under load must fail the benchmark with its output, not leave it waiting.
  child.once('exit', (code, signal) => {
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`${options.label} exited (${signal ?? code})\n${output}`));
  });
  const payload = await new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.label}: not ready after ${options.readyTimeoutMs ?? 120_000} ms\n${output}`)), options.readyTimeoutMs ?? 120_000);
    child.on('message', (message: FromChild<R>) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.payload);
      } else if (message.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${options.label} failed to start: ${message.message}\n${output}`));
      } else if (message.type === 'stats') {
        waiters.shift()?.resolve(message.stats);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${options.label} exited (${signal ?? code}) before being ready\n${output}`));
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited;
    running.delete(child);
    throw error;
  });

  return {
    pid: child.pid!,
    payload,
    output: () => output,
    stats() {
      return new Promise<ServerStats>((resolve, reject) => {
        if (!child.connected) return reject(new Error(`${options.label} is not running`));
        waiters.push({ resolve, reject });
        child.send({ type: 'stats' } satisfies ToChild);
      });
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send({ type: 'stop' } satisfies ToChild);
        else child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
    },
  };
}
