// With BENCH_ROUTE_CPU=1 (bench:login --route-cpu): the server's own-thread CPU time from each
// request's arrival to its response's end, by route. Meaningful at --concurrency 1 only, where
// one request runs at a time (work a handler leaves running after its response is not counted).
import { performance } from 'node:perf_hooks';
import { Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ServerStats } from './processes.ts';

export function routeCpuStatistics(): (() => NonNullable<ServerStats['extra']>) | undefined {
  if (process.env.BENCH_ROUTE_CPU !== '1') return undefined;
  const stats: NonNullable<ServerStats['extra']> = {};
  const emit = Server.prototype.emit;
  Server.prototype.emit = function (this: Server, event: string, ...args: unknown[]) {
    if (event === 'request') {
      const [request, response] = args as [IncomingMessage, ServerResponse];
      const started = performance.now();
      const route = `cpu: ${request.method} ${(request.url ?? '').split('?')[0]!.replace(/\/[A-Za-z0-9_-]{16,}(?=\/|$)/g, '/:id')}`;
      response.once('finish', () => {
        const entry = (stats[route] ??= { count: 0, ms: 0 });
        entry.count += 1;
        entry.ms += performance.now() - started;
      });
    }
    return emit.apply(this, [event, ...args] as Parameters<typeof emit>);
  } as typeof emit;
  return () => {
    const main = process.threadCpuUsage();
    return { ...stats, 'cpu: (main thread, in all)': { count: 0, ms: (main.user + main.system) / 1000 } };
  };
}
