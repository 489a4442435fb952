import type { FastifyInstance } from 'fastify';

/** One dependency check: resolves when the dependency answers. */
export type HealthCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 2000;
export const RETRY_AFTER_SECONDS = 5;

/**
 * `/healthz`: liveness — the process serves HTTP (a load balancer or orchestrator restarts it
 * otherwise). `/readyz`: readiness — every dependency answers within 2 s; while one does not, the
 * node answers 503 so the load balancer sends traffic elsewhere, and turns green again by itself.
 */
export function healthRoutes(checks: Record<string, HealthCheck>, info: { node: string }) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/healthz', async (_request, reply) => {
      reply.header('cache-control', 'no-store');
      return { status: 'ok', node: info.node };
    });

    app.get('/readyz', async (_request, reply) => {
      const results = await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          const started = performance.now();
          try {
            await withTimeout(check(), CHECK_TIMEOUT_MS);
            return [name, { status: 'ok', ms: Math.round(performance.now() - started) }] as const;
          } catch (error) {
            // The reason stays in the logs; the answer only says which dependency is down.
            reply.log.warn({ err: error, dependency: name }, 'readiness check failed');
            return [name, { status: 'down' }] as const;
          }
        }),
      );
      const ready = results.every(([, r]) => r.status === 'ok');
      reply.code(ready ? 200 : 503).header('cache-control', 'no-store');
      if (!ready) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      return { status: ready ? 'ready' : 'unavailable', node: info.node, checks: Object.fromEntries(results) };
    });
  };
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
