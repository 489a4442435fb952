import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import type { Logger } from 'pino';
import type Provider from 'oidc-provider';
import { PROVIDER_PATH_PREFIXES, PROVIDER_ROUTES } from '../oidc/provider.ts';
import { commonErrors } from '../lib/errors.ts';
import { installErrorHandling } from './errors.ts';

const LOGIN_SCRIPT = readFileSync(new URL('../login/static/login.js', import.meta.url), 'utf8');
const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
// form-action: the login pages post to themselves, oidc-provider's form_post to the services.
const CSP = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'";
/**
 * The same policy on oidc-provider's pages (logout, errors, form_post): it adds the hash of each
 * inline script it writes (form_post's auto-submit) to a script-src it finds on the response, so
 * no other script runs on the origin where the e-CPS app keeps its device key.
 */
const PROVIDER_HEADERS = { ...SECURITY_HEADERS, 'content-security-policy': CSP };

export interface HttpOptions {
  logger: Logger;
  /** Proxy hops in front of Vigie (0: none): see VIGIE_TRUST_PROXY. */
  trustProxy: number;
  provider: Provider;
  /** Plugins registered in their own encapsulated context (login pages, device protocol, ...). */
  plugins: Array<(app: FastifyInstance) => Promise<void>>;
  /** Throws (a VigieError) to refuse a new authorization request, e.g. past its source's rate. */
  beforeAuthorization?: (request: FastifyRequest) => Promise<void>;
}

/**
 * Every new authorization request stores an Interaction (10 minutes) before anyone logs in: its
 * size is capped here, its rate by `beforeAuthorization`, so that no one can fill Redis or the
 * node's memory with them. 4 KB is far more than a request of ours needs (the `claims` parameter
 * included).
 */
const MAX_AUTHORIZATION_REQUEST_BYTES = 4096;

/**
 * A new authorization request, as oidc-provider's router sees it: it ignores the case and one
 * trailing slash (`/AUTH/` reaches Fastify's `/auth/*` route). `/auth/:uid`, a login resuming, is not.
 */
function isAuthorizationRequest(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0]!.toLowerCase();
  return path === PROVIDER_ROUTES.authorization || path === `${PROVIDER_ROUTES.authorization}/`;
}

/** The last `hops` addresses of a request's chain are proxies of ours (proxy-addr's hop count). */
function trustHops(hops: number): false | ((address: string, hop: number) => boolean) {
  return hops > 0 ? (_address, hop) => hop < hops : false;
}

/**
 * The HTTP assembly. oidc-provider's paths are handed to its own handler before Fastify reads
 * the body (it parses its own: a body consumed by Fastify makes /token fail).
 */
export async function buildHttp(options: HttpOptions): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: options.logger as FastifyBaseLogger, trustProxy: trustHops(options.trustProxy), bodyLimit: 64 * 1024, logController: new LogController({ disableRequestLogging: true }) });
  const callback = options.provider.callback();
  // Before the routes: the provider's take it when they were added (its size and rate refusals).
  installErrorHandling(app);

  // A hijacked reply skips onSend below: the provider's pages (logout, errors) get their headers here.
  const toProvider = async (request: FastifyRequest, reply: FastifyReply) => {
    if (isAuthorizationRequest(request)) {
      // A body of unknown length (chunked) could be as large as oidc-provider reads (56 KB).
      const bodyBytes = request.method === 'POST' ? Number(request.headers['content-length'] ?? Infinity) : 0;
      if (request.url.length > MAX_AUTHORIZATION_REQUEST_BYTES || !(bodyBytes <= MAX_AUTHORIZATION_REQUEST_BYTES)) {
        throw commonErrors.VALIDATION_FAILED({ message: `The authorization request is larger than ${MAX_AUTHORIZATION_REQUEST_BYTES} bytes, or of unknown length.` });
      }
      await options.beforeAuthorization?.(request);
    }
    reply.hijack();
    for (const [name, value] of Object.entries(PROVIDER_HEADERS)) reply.raw.setHeader(name, value);
    callback(request.raw, reply.raw);
  };
  for (const prefix of PROVIDER_PATH_PREFIXES) {
    const base = prefix.replace(/\/$/, '');
    for (const url of prefix.endsWith('/') ? [`${base}/*`] : [base, `${base}/*`]) {
      app.route({ method: ['GET', 'HEAD', 'POST', 'OPTIONS', 'PUT', 'DELETE'], url, onRequest: toProvider, handler: async () => undefined });
    }
  }

  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, url: request.routeOptions.url ?? request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) reply.header('content-security-policy', CSP);
  });

  await app.register(formbody, { bodyLimit: 4 * 1024 });

  app.get('/static/login.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(LOGIN_SCRIPT));

  for (const plugin of options.plugins) await app.register(plugin);
  return app;
}
