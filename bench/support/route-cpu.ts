// With BENCH_ROUTE_CPU=1 (bench:login --route-cpu): the server's time from each request's arrival
// to its response's end, by route. Meant for --concurrency 1, where the server handles one request
// at a time and that time is its own CPU time (work a handler leaves running after its response is
// not counted). With BENCH_ROUTE_TIMELINE=<file> too, each request's interval (monotonic clock,
// µs, as V8 CPU profiles count) is written there when the server stops: bench/profile-summary.ts
// --timeline then splits a --profile by route.
import { writeFileSync } from 'node:fs';
import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ServerStats } from './processes.ts';

export function routeCpuStatistics(): (() => NonNullable<ServerStats['extra']>) | undefined {
  if (process.env.BENCH_ROUTE_CPU !== '1') return undefined;
  const stats: NonNullable<ServerStats['extra']> = {};
  const timelineFile = process.env.BENCH_ROUTE_TIMELINE;
  const timeline: Array<[string, number, number]> = [];
  if (timelineFile) process.once('exit', () => writeFileSync(timelineFile, JSON.stringify(timeline)));
  const micros = () => Number(process.hrtime.bigint() / 1000n);
  const emit = Server.prototype.emit;
  Server.prototype.emit = function (this: Server, event: string, ...args: unknown[]) {
    if (event === 'request') {
      const [request, response] = args as [IncomingMessage, ServerResponse];
      const started = micros();
      const route = `${request.method} ${(request.url ?? '').split('?')[0]!.replace(/\/[A-Za-z0-9_-]{16,}(?=\/|$)/g, '/:id')}`;
      response.once('finish', () => {
        const ended = micros();
        const entry = (stats[`cpu: ${route}`] ??= { count: 0, ms: 0 });
        entry.count += 1;
        entry.ms += (ended - started) / 1000;
        if (timelineFile) timeline.push([route, started, ended]);
      });
    }
    return emit.apply(this, [event, ...args] as Parameters<typeof emit>);
  } as typeof emit;
  return () => {
    const main = process.threadCpuUsage();
    return { ...stats, 'cpu: (main thread, in all)': { count: 0, ms: (main.user + main.system) / 1000 } };
  };
}
