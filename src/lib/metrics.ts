/**
 * A small registry of counters and gauges rendered in the Prometheus text exposition format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), served at GET /metrics.
 * Counters are per process: Prometheus scrapes every node and sums.
 */
type Labels = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}` : '';
}

export class Counter {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, number>();
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.#values) lines.push(`${this.name}${key} ${value}`);
    return lines;
  }
}

export class Gauge {
  readonly name: string;
  readonly help: string;
  readonly #read: () => number;
  constructor(name: string, help: string, read: () => number) {
    this.name = name;
    this.help = help;
    this.#read = read;
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.#read()}`];
  }
}

export class Metrics {
  readonly #metrics = new Map<string, Counter | Gauge>();

  /** Returns the counter of that name, creating it once. */
  counter(name: string, help: string): Counter {
    const existing = this.#metrics.get(name);
    if (existing instanceof Counter) return existing;
    if (existing || !NAME.test(name)) throw new Error(`invalid or duplicate metric name ${name}`);
    const counter = new Counter(name, help);
    this.#metrics.set(name, counter);
    return counter;
  }

  gauge(name: string, help: string, read: () => number): Gauge {
    if (this.#metrics.has(name) || !NAME.test(name)) throw new Error(`invalid or duplicate metric name ${name}`);
    const gauge = new Gauge(name, help, read);
    this.#metrics.set(name, gauge);
    return gauge;
  }

  render(): string {
    return `${[...this.#metrics.values()].flatMap((m) => m.render()).join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
