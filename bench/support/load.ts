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
