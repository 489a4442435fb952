import { performance } from 'node:perf_hooks';

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface LoadOutcome {
  /** Flows that ended inside the measured window. */
  flows: number;
  errors: number;
  firstError: string | undefined;
  /** Durations of flows that began and ended inside the window, sorted. */
  latencies: number[];
}

/**
 * Runs `flow(worker)` in `concurrency` loops until `measureTo`; gives up when failures keep
 * outnumbering successes, so a broken server ends the bench instead of spinning.
 */
export async function runWorkers(concurrency: number, measureFrom: number, measureTo: number, flow: (worker: number) => Promise<void>): Promise<LoadOutcome> {
  const latencies: number[] = [];
  let flows = 0;
  let errors = 0;
  let succeeded = 0;
  let firstError: string | undefined;
  const workers = Array.from({ length: concurrency }, async (_, worker) => {
    while (performance.now() < measureTo) {
      const began = performance.now();
      try {
        await flow(worker);
        succeeded += 1;
        const ended = performance.now();
        if (ended >= measureFrom && ended <= measureTo) flows += 1;
        if (began >= measureFrom && ended <= measureTo) latencies.push(ended - began);
      } catch (error) {
        errors += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
        if (errors >= 50 && errors > succeeded) throw new Error(`flows keep failing (${errors} errors): ${firstError}`);
      }
    }
  });
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  return { flows, errors, firstError, latencies };
}

/**
 * `runWorkers` over a warm-up then a measured window, with `snapshot(phase)` taken as the window
 * opens and as it closes (CPU counters and the like). The closing snapshot is awaited even when the
 * last flow ends before its timer fires, as it may at low concurrency (a timer fires late).
 */
export async function measureWindow<S>(concurrency: number, warmupMs: number, durationMs: number, flow: (worker: number) => Promise<void>, snapshot: (phase: 'open' | 'close') => Promise<S>): Promise<LoadOutcome & { opened: S; closed: S }> {
  const measureFrom = performance.now() + warmupMs;
  const measureTo = measureFrom + durationMs;
  const timers: NodeJS.Timeout[] = [];
  const at = (time: number, phase: 'open' | 'close') => {
    const taken = new Promise<S>((resolve, reject) => {
      timers.push(setTimeout(() => snapshot(phase).then(resolve, reject), Math.max(0, time - performance.now())));
    });
    // Awaited below on success; on failure the benchmark reports the flows' error, not this one.
    taken.catch(() => {});
    return taken;
  };
  const opened = at(measureFrom, 'open');
  const closed = at(measureTo, 'close');
  try {
    const outcome = await runWorkers(concurrency, measureFrom, measureTo, flow);
    return { ...outcome, opened: await opened, closed: await closed };
  } catch (error) {
    for (const timer of timers) clearTimeout(timer);
    throw error;
  }
}
