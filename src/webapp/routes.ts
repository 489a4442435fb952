import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html, page } from '../http/html.ts';

/** Where `npm run build:app` (app/build.ts) writes the authenticator app. */
export const APP_DIST = fileURLToPath(new URL('../../app/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

// Stricter than the login pages': no inline style or script at all, the manifest and the
// service worker from this origin only.
const APP_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  immutable: boolean;
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const full = join(folder, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const path = relative(dir, full).split(sep).join('/');
        const body = readFileSync(full);
        assets.set(path, {
          body,
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
          // Vite puts content-hashed files under assets/: they never change at a given URL.
          immutable: path.startsWith('assets/'),
        });
      }
    }
  };
  walk(dir);
  return assets;
}

/**
 * Serves the built PWA at /app/ (single-page routes fall back to index.html). The service worker
 * and the HTML are revalidated on every load so a new version reaches phones at once.
 */
export async function webAppRoutes(app: FastifyInstance, options: { dir?: string } = {}): Promise<void> {
  const dir = options.dir ?? APP_DIST;
  const assets = existsSync(join(dir, 'index.html')) ? load(dir) : undefined;
  if (!assets) app.log.warn({ dir }, 'the authenticator app is not built: /app answers 503 until `npm run build:app` has run');

  app.addHook('onSend', async (_request, reply) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) reply.header('content-security-policy', APP_CSP);
  });

  const serve = (request: FastifyRequest, reply: FastifyReply, path: string) => {
    if (!assets) {
      return reply.code(503).type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").send(
        page('Application indisponible', html`<h1>L’application e-CPS n’est pas construite</h1><p>Lancez <code>npm run build:app</code> (ou <code>npm ci</code>), puis rechargez cette page.</p>`),
      );
    }
    let asset = assets.get(path);
    if (!asset && !extname(path)) asset = assets.get('index.html');
    if (!asset) return reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found.' });
    reply.header('etag', asset.etag).header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (path === 'sw.js') reply.header('service-worker-allowed', '/app/');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  app.get('/app', async (_request, reply) => reply.redirect('/app/', 301));
  app.get('/app/', async (request, reply) => serve(request, reply, 'index.html'));
  app.get('/app/*', async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    if (path.includes('..') || path.includes('\\')) return reply.code(404).send({ error: 'NOT_FOUND', message: 'Not found.' });
    return serve(request, reply, path);
  });
}
