import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { VigieError, commonErrors } from '../lib/errors.ts';
import { html, page } from './html.ts';

/** Parses input with a zod schema; failures become one 400 naming each bad field. */
export function parse<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => ({ field: issue.path.join('.') || '(body)', message: issue.message }));
  throw commonErrors.VALIDATION_FAILED({ message: `Invalid request: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}` });
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// PostgreSQL: connection exceptions (class 08), shutting down, cannot connect now, too many connections.
const POSTGRES_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;
const DRIVER_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Connection is closed|Stream isn't writeable|Command timed out|Reached the max retries per request limit|connect ECONNREFUSED/i;

/**
 * True when `error` (or its cause) says a dependency — PostgreSQL or Redis — is unreachable rather
 * than that the request is wrong: the answer is then 503 + Retry-After, and the node heals by itself
 * when the dependency is back (the pools reconnect).
 */
export function isDependencyDown(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const { code, name } = e as Error & { code?: unknown };
    if (typeof code === 'string' && (CONNECTION_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code))) return true;
    if (name === 'MaxRetriesPerRequestError' || DRIVER_MESSAGES.test(e.message)) return true;
    if (e instanceof AggregateError && e.errors.some(isDependencyDown)) return true;
  }
  return false;
}

export const RETRY_AFTER_SECONDS = '5';

export function unavailable(cause: unknown): VigieError {
  return commonErrors.UNAVAILABLE({ cause, headers: { 'retry-after': RETRY_AFTER_SECONDS } });
}

function fromFastify(error: FastifyError): VigieError {
  if (isDependencyDown(error)) return unavailable(error);
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new VigieError('BODY_TOO_LARGE', 413, 'The request body is too large.');
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new VigieError('UNSUPPORTED_MEDIA_TYPE', 415, 'Unsupported content type.');
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError) return commonErrors.VALIDATION_FAILED({ message: 'The request body is not valid JSON.' });
  if (error.validation) return commonErrors.VALIDATION_FAILED({ message: error.message });
  // A schema parsed without `parse()` is still the caller's mistake, not a server failure.
  if (error instanceof z.ZodError) return commonErrors.VALIDATION_FAILED({ message: 'Invalid request.' });
  if (typeof error.statusCode === 'number' && error.statusCode < 500) return new VigieError(error.code ?? 'BAD_REQUEST', error.statusCode, error.message);
  return commonErrors.INTERNAL({ cause: error });
}

/** The one place errors become HTTP answers: JSON for APIs, a French page for browsers. 5xx never leak details. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | VigieError, request: FastifyRequest, reply: FastifyReply) => {
    const vigie = error instanceof VigieError ? error : fromFastify(error as FastifyError);
    if (vigie.status === 503) request.log.warn({ err: error, code: vigie.code }, 'dependency unavailable');
    else if (vigie.status >= 500) request.log.error({ err: error, code: vigie.code }, 'request failed');
    else request.log.info({ code: vigie.code, status: vigie.status }, 'request refused');
    reply.code(vigie.status).headers(vigie.headers);
    const message = vigie.expose || vigie.status === 503 ? vigie.message : 'Internal error.';
    if (request.headers.accept?.includes('text/html') && !request.url.startsWith('/device/')) {
      return reply.type('text/html; charset=utf-8').send(page('Erreur', html`<h1>Une erreur est survenue</h1><p>${vigie.status >= 500 ? 'Le service rencontre un problème. Réessayez dans un instant.' : message}</p>`));
    }
    return reply.send({ error: vigie.code, message });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found.' });
  });
}
