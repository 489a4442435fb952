import { setTimeout as sleep } from 'node:timers/promises';

const SAMPLES = 64;

/**
 * Keeps the identifier form's answer time from telling who has the app. A login for a
 * professional with an activated device does the defences' bookkeeping and the delivery (several
 * reads and writes: on PostgreSQL and Redis, several round trips); one for an identifier nobody
 * can approve does not, and would answer measurably faster. So the durations of the first kind
 * are kept (the last 64), and an answer of the second kind is held until a duration drawn from
 * them: both then take the same time, as seen from outside.
 *
 * Real elapsed time (not the injected clock): this is about what a stopwatch sees.
 */
export class TimingCover {
  readonly #samples: number[] = [];
  #next = 0;
  readonly #random: () => number;

  constructor(options: { random?: () => number } = {}) {
    this.#random = options.random ?? Math.random;
  }

  /** Starts timing one answer. */
  start(): { elapsedMs(): number } {
    const began = performance.now();
    return { elapsedMs: () => performance.now() - began };
  }

  /** An answer that did the full work took `ms`. */
  record(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % SAMPLES;
  }

  /** How much longer an answer that did not do the full work, after `elapsedMs`, must wait. */
  holdFor(elapsedMs: number): number {
    if (this.#samples.length === 0) return 0;
    const target = this.#samples[Math.floor(this.#random() * this.#samples.length)]!;
    return Math.max(0, target - elapsedMs);
  }

  /** Waits out `holdFor(elapsedMs)`, to the nearest millisecond (what timers resolve). */
  async hold(elapsedMs: number): Promise<void> {
    const ms = Math.round(this.holdFor(elapsedMs));
    if (ms >= 1) await sleep(ms);
  }
}
