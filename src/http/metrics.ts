import type { FastifyInstance } from 'fastify';
import { constantTimeEqual } from '../lib/crypto.ts';
import { PROMETHEUS_CONTENT_TYPE, type Metrics } from '../lib/metrics.ts';

/** GET /metrics in the Prometheus text format; behind a bearer token when one is configured. */
export async function metricsRoutes(app: FastifyInstance, deps: { metrics: Metrics; token?: string | undefined }): Promise<void> {
  app.get('/metrics', async (request, reply) => {
    if (deps.token && !constantTimeEqual(String(request.headers.authorization ?? ''), `Bearer ${deps.token}`)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'UNAUTHORIZED', message: 'A bearer token is required.' });
    }
    return reply.type(PROMETHEUS_CONTENT_TYPE).header('cache-control', 'no-store').send(deps.metrics.render());
  });
}
