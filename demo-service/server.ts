/**
 * "Service de santé (démo)": a small OpenID Connect relying party that signs health
 * professionals in through Vigie, the way a real health service would.
 *
 * - authorization code + PKCE S256, state, nonce, `acr_values=eidas1` (and rejects any lower acr);
 * - userinfo with the national provider's claims (SubjectNameID, SubjectRefPro...);
 * - RP-initiated logout;
 * - OpenID Connect Back-Channel Logout 1.0 receiver (§2.6 validation with jose).
 *
 * Everything is kept in memory: it is a demo, not a production service.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export interface DemoServiceOptions {
  issuer: string;
  port: number;
  host?: string;
  /** Public URL of this service; default http://localhost:PORT (with the port actually bound). */
  baseUrl?: string;
  clientId: string;
  clientSecret: string;
  logger?: boolean;
}

export interface DemoSession {
  id: string;
  /** `sid` claim of the ID token (provider session id), used by back-channel logout. */
  sid: string | undefined;
  sub: string;
  /** ID token claims. */
  idTokenClaims: Record<string, unknown>;
  /** Userinfo claims. */
  claims: Record<string, unknown>;
  /** Raw ID token, kept as id_token_hint for RP-initiated logout. */
  idToken: string;
  tokens: { access_token: string; refresh_token?: string; expires_in?: number; scope?: string };
  /** Anti-CSRF token for the logout form. */
  csrf: string;
  createdAt: number;
}

export interface BackchannelLogoutReceipt {
  sid: string;
  sub: string;
  receivedAt: number;
  valid: boolean;
  error?: string;
}

export interface DemoService {
  url: string;
  close(): Promise<void>;
  sessions: Map<string, DemoSession>;
  backchannelLogouts: BackchannelLogoutReceipt[];
}

/** The client registration the provider must hold for this service. */
export function demoClientMetadata(baseUrl: string, clientSecret: string): Record<string, unknown> {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    client_id: 'demo-sante',
    client_secret: clientSecret,
    client_name: 'Service de santé (démo)',
    redirect_uris: [`${base}/callback`],
    post_logout_redirect_uris: [`${base}/`],
    backchannel_logout_uri: `${base}/backchannel-logout`,
    backchannel_logout_session_required: true,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
}

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const REQUIRED_ACR = 'eidas1';
const SCOPE = 'openid scope_all';
const PENDING_TTL_MS = 10 * 60 * 1000;
const MAX_PENDING = 10_000;
const SESSION_COOKIE = 'demo_session';
const PENDING_COOKIE = 'demo_login';

/** Terminology TRE_G15 (profession codes). */
const PROFESSIONS: Record<string, string> = {
  '10': 'Médecin',
  '21': 'Pharmacien',
  '26': 'Audioprothésiste',
  '28': 'Opticien-Lunetier',
  '40': 'Chirurgien-Dentiste',
  '50': 'Sage-Femme',
  '60': 'Infirmier',
  '69': 'Infirmier psychiatrique',
  '70': 'Masseur-Kinésithérapeute',
  '80': 'Pédicure-Podologue',
  '91': 'Orthophoniste',
  '92': 'Orthoptiste',
  '94': 'Ergothérapeute',
  '95': 'Diététicien',
  '96': 'Psychomotricien',
  '98': 'Manipulateur ERM',
};

/** French messages for the authorization error codes a provider may return. */
const AUTHORIZATION_ERRORS: Record<string, string> = {
  access_denied: 'La connexion a été refusée ou annulée.',
  login_required: 'Une authentification est nécessaire.',
  interaction_required: 'Une action de votre part est nécessaire sur Vigie.',
  consent_required: 'Votre consentement est nécessaire.',
  temporarily_unavailable: 'Le service d’authentification est momentanément indisponible.',
  server_error: 'Le service d’authentification a rencontré une erreur.',
  invalid_request: 'La demande de connexion est invalide.',
  unauthorized_client: 'Ce service n’est pas autorisé à utiliser Vigie.',
  invalid_scope: 'Les informations demandées ne sont pas disponibles.',
};

interface Pending {
  codeVerifier: string;
  state: string;
  nonce: string;
  createdAt: number;
}

interface Provider {
  config: client.Configuration;
  jwks: ReturnType<typeof createRemoteJWKSet>;
  logoutAlgorithms: string[];
}

class HttpError extends Error {
  readonly status: number;
  readonly title: string;
  constructor(status: number, title: string, message: string) {
    super(message);
    this.status = status;
    this.title = title;
  }
}

function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index <= 0) continue;
    const name = part.slice(0, index).trim();
    const value = part.slice(index + 1).trim();
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

const STYLE = `
  :root { color-scheme: light; }
  * { box-sizing: border-box; }
  body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
    background: #f4f6fb; color: #161616; line-height: 1.5; }
  header { background: #000091; color: #fff; padding: 1rem 1.5rem; }
  header p { margin: 0; font-size: 1.25rem; font-weight: 700; }
  main { max-width: 48rem; margin: 2rem auto; padding: 0 1rem; }
  .card { background: #fff; border: 1px solid #d0d4e0; border-radius: 8px; padding: 1.5rem; }
  h1 { font-size: 1.6rem; margin-top: 0; }
  h2 { font-size: 1.15rem; margin-bottom: .5rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
  dt { font-weight: 600; }
  dd { margin: 0; }
  .button { display: inline-block; font: inherit; font-weight: 600; padding: .7rem 1.2rem;
    border-radius: 4px; border: 2px solid #000091; background: #000091; color: #fff;
    text-decoration: none; cursor: pointer; }
  .button.secondary { background: #fff; color: #000091; }
  .button:focus-visible, summary:focus-visible, a:focus-visible { outline: 3px solid #0a76f6; outline-offset: 2px; }
  .error { border-left: 6px solid #ce0500; }
  pre { background: #1e1e1e; color: #f0f0f0; padding: 1rem; border-radius: 4px; overflow: auto; font-size: .85rem; }
  ul { padding-left: 1.25rem; }
  a { color: #000091; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — Service de santé (démo)</title>
<style>${STYLE}</style>
</head>
<body>
<header><p>Service de santé (démo)</p></header>
<main id="contenu">
${body}
</main>
</body>
</html>`;
}

function errorPage(title: string, message: string): string {
  return page(
    title,
    `<section class="card error" role="alert" aria-labelledby="titre-erreur">
  <h1 id="titre-erreur">${escapeHtml(title)}</h1>
  <p>${escapeHtml(message)}</p>
  <p><a class="button" href="/login">Réessayer la connexion</a> <a class="button secondary" href="/">Retour à l’accueil</a></p>
</section>`,
  );
}

function loggedOutPage(): string {
  return page(
    'Accueil',
    `<section class="card" aria-labelledby="titre">
  <h1 id="titre">Bienvenue</h1>
  <p>Ce service de démonstration est réservé aux professionnels de santé. Connectez-vous avec votre e-CPS via Vigie.</p>
  <p><a class="button" href="/login">Se connecter avec Vigie (e-CPS)</a></p>
</section>`,
  );
}

function loggedInPage(session: DemoSession): string {
  const claims = { ...session.idTokenClaims, ...session.claims };
  const given = claims.given_name ?? '';
  const family = claims.family_name ?? '';
  const nationalId = claims.SubjectNameID ?? claims.preferred_username ?? '';
  const refPro = isRecord(claims.SubjectRefPro) ? claims.SubjectRefPro : {};
  const exercices = asArray(refPro.exercices).filter(isRecord);

  const professions = exercices
    .map((exercice) => {
      const code = String(exercice.codeProfession ?? '');
      const label = PROFESSIONS[code] ?? 'Profession';
      const activities = asArray(exercice.activities)
        .filter(isRecord)
        .map((activity) => {
          const site = activity.raisonSocialeSite || activity.enseigneCommercialeSite || 'Site sans raison sociale';
          const commune = activity.libelleCommune ? ` — ${escapeHtml(activity.libelleCommune)}` : '';
          return `<li>${escapeHtml(site)}${commune}</li>`;
        });
      return `<li><strong>${escapeHtml(label)}</strong> (code ${escapeHtml(code)})${
        activities.length > 0 ? `<ul>${activities.join('')}</ul>` : '<p>Aucun lieu d’activité.</p>'
      }</li>`;
    })
    .join('');

  const acr = session.idTokenClaims.acr;
  const amr = asArray(session.idTokenClaims.amr).map(String).join(', ');
  const allClaims = { id_token: session.idTokenClaims, userinfo: session.claims };

  return page(
    'Votre espace',
    `<section class="card" aria-labelledby="titre">
  <h1 id="titre">Bonjour ${escapeHtml(given)} ${escapeHtml(family)}</h1>
  <dl>
    <dt>Identifiant national</dt><dd>${escapeHtml(nationalId) || 'non communiqué'}</dd>
    <dt>Niveau d’authentification (acr)</dt><dd>${escapeHtml(acr) || 'non communiqué'}</dd>
    <dt>Méthodes d’authentification (amr)</dt><dd>${escapeHtml(amr) || 'non communiquées'}</dd>
  </dl>
  <h2>Professions et lieux d’activité</h2>
  ${professions ? `<ul>${professions}</ul>` : '<p>Aucune profession communiquée.</p>'}
  <details>
    <summary>Toutes les informations transmises par Vigie</summary>
    <pre>${escapeHtml(JSON.stringify(allClaims, null, 2))}</pre>
  </details>
  <form method="post" action="/logout">
    <input type="hidden" name="csrf" value="${escapeHtml(session.csrf)}">
    <p><button class="button" type="submit">Se déconnecter</button></p>
  </form>
</section>`,
  );
}

export async function startDemoService(options: DemoServiceOptions): Promise<DemoService> {
  const issuerUrl = new URL(options.issuer);
  const sessions = new Map<string, DemoSession>();
  const backchannelLogouts: BackchannelLogoutReceipt[] = [];
  const pending = new Map<string, Pending>();
  let baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
  let secureCookies = baseUrl.startsWith('https:');

  // Lazy, retried discovery: the provider may start after us. A failed attempt is forgotten
  // so the next request tries again.
  let providerPromise: Promise<Provider> | undefined;
  async function discover(): Promise<Provider> {
    const config = await client.discovery(
      issuerUrl,
      options.clientId,
      undefined,
      client.ClientSecretBasic(options.clientSecret),
      issuerUrl.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined,
    );
    const metadata = config.serverMetadata();
    if (!metadata.jwks_uri) throw new Error('provider metadata has no jwks_uri');
    const advertised = metadata.id_token_signing_alg_values_supported ?? ['RS256'];
    const logoutAlgorithms = advertised.filter((alg) => alg !== 'none' && !alg.startsWith('HS'));
    return { config, jwks: createRemoteJWKSet(new URL(metadata.jwks_uri)), logoutAlgorithms };
  }
  function provider(): Promise<Provider> {
    providerPromise ??= discover().catch((error: unknown) => {
      providerPromise = undefined;
      throw error;
    });
    return providerPromise;
  }
  async function providerOrUnavailable(): Promise<Provider> {
    try {
      return await provider();
    } catch (error) {
      app.log.warn({ err: error }, 'OpenID Connect discovery failed');
      throw new HttpError(
        503,
        'Vigie est momentanément indisponible',
        'Le fournisseur d’identité ne répond pas. Merci de réessayer dans quelques instants.',
      );
    }
  }

  function cookie(name: string, value: string, maxAgeSeconds: number): string {
    return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secureCookies ? '; Secure' : ''}`;
  }

  function currentSession(request: FastifyRequest): DemoSession | undefined {
    const id = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
    return id ? sessions.get(id) : undefined;
  }

  function purgePending(now: number): void {
    for (const [key, entry] of pending) {
      if (now - entry.createdAt > PENDING_TTL_MS || pending.size > MAX_PENDING) pending.delete(key);
      else break; // insertion order = age order
    }
  }

  function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
    return reply.code(status).type('text/html; charset=utf-8').send(html);
  }

  const app = Fastify({ logger: options.logger ?? false });

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    if (!reply.hasHeader('Cache-Control')) reply.header('Cache-Control', 'no-store');
    const type = String(reply.getHeader('content-type') ?? '');
    if (type.startsWith('text/html')) {
      reply.header(
        'Content-Security-Policy',
        `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${issuerUrl.origin}; frame-ancestors 'none'; base-uri 'none'`,
      );
    }
    return payload;
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof HttpError) {
      return sendHtml(reply, error.status, errorPage(error.title, error.message));
    }
    request.log.error({ err: error }, 'unexpected error');
    const status = typeof error === 'object' && error !== null && 'statusCode' in error && typeof error.statusCode === 'number' && error.statusCode < 500 ? error.statusCode : 500;
    return sendHtml(reply, status, errorPage('Une erreur est survenue', 'La demande n’a pas pu être traitée. Merci de réessayer.'));
  });

  app.setNotFoundHandler((_request, reply) =>
    sendHtml(reply, 404, errorPage('Page introuvable', 'La page demandée n’existe pas.')),
  );

  app.get('/', async (request, reply) => {
    const session = currentSession(request);
    return sendHtml(reply, 200, session ? loggedInPage(session) : loggedOutPage());
  });

  app.get('/login', async (_request, reply) => {
    const { config } = await providerOrUnavailable();
    const now = Date.now();
    purgePending(now);
    const codeVerifier = client.randomPKCECodeVerifier();
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
    const state = client.randomState();
    const nonce = client.randomNonce();
    const key = randomToken();
    pending.set(key, { codeVerifier, state, nonce, createdAt: now });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${baseUrl}/callback`,
      scope: SCOPE,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce,
      acr_values: REQUIRED_ACR,
    });
    reply.header('set-cookie', cookie(PENDING_COOKIE, key, PENDING_TTL_MS / 1000));
    return reply.redirect(url.href, 303);
  });

  app.get('/callback', async (request, reply) => {
    const currentUrl = new URL(request.url, `${baseUrl}/`);
    const params = currentUrl.searchParams;
    const key = parseCookies(request.headers.cookie).get(PENDING_COOKIE);
    const entry = key ? pending.get(key) : undefined;
    if (key) pending.delete(key); // one attempt per login
    reply.header('set-cookie', cookie(PENDING_COOKIE, '', 0));

    const errorCode = params.get('error');
    if (errorCode !== null) {
      throw new HttpError(
        400,
        'Connexion impossible',
        AUTHORIZATION_ERRORS[errorCode] ?? 'Vigie n’a pas pu vous authentifier.',
      );
    }
    if (!entry || Date.now() - entry.createdAt > PENDING_TTL_MS) {
      throw new HttpError(400, 'Connexion expirée', 'La tentative de connexion a expiré ou est inconnue. Merci de recommencer.');
    }

    const { config } = await providerOrUnavailable();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: entry.codeVerifier,
        expectedState: entry.state,
        expectedNonce: entry.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      request.log.warn({ err: error }, 'authorization code grant failed');
      if (error instanceof client.AuthorizationResponseError) {
        throw new HttpError(400, 'Connexion impossible', AUTHORIZATION_ERRORS[error.error] ?? 'Vigie n’a pas pu vous authentifier.');
      }
      throw new HttpError(400, 'Connexion impossible', 'La réponse de Vigie n’a pas pu être validée. Merci de recommencer.');
    }

    const idTokenClaims = tokens.claims();
    if (!idTokenClaims || !tokens.id_token) {
      throw new HttpError(400, 'Connexion impossible', 'La réponse de Vigie ne contient pas de jeton d’identité.');
    }
    if (idTokenClaims.acr !== REQUIRED_ACR) {
      throw new HttpError(
        400,
        'Niveau d’authentification insuffisant',
        'Ce service exige une authentification forte par e-CPS ou carte CPS (niveau eidas1).',
      );
    }

    let userinfo: Record<string, unknown>;
    try {
      userinfo = await client.fetchUserInfo(config, tokens.access_token, idTokenClaims.sub);
    } catch (error) {
      request.log.warn({ err: error }, 'userinfo request failed');
      throw new HttpError(400, 'Connexion impossible', 'Les informations de votre compte n’ont pas pu être obtenues.');
    }

    const id = randomToken();
    sessions.set(id, {
      id,
      sid: typeof idTokenClaims.sid === 'string' ? idTokenClaims.sid : undefined,
      sub: idTokenClaims.sub,
      idTokenClaims: { ...idTokenClaims },
      claims: userinfo,
      idToken: tokens.id_token,
      tokens: {
        access_token: tokens.access_token,
        ...(tokens.refresh_token ? { refresh_token: tokens.refresh_token } : {}),
        ...(tokens.expires_in !== undefined ? { expires_in: tokens.expires_in } : {}),
        ...(tokens.scope ? { scope: tokens.scope } : {}),
      },
      csrf: randomToken(),
      createdAt: Date.now(),
    });
    reply.header('set-cookie', [cookie(PENDING_COOKIE, '', 0), cookie(SESSION_COOKIE, id, 12 * 3600)]);
    return reply.redirect('/', 303);
  });

  app.post('/logout', async (request, reply) => {
    const session = currentSession(request);
    const body = isRecord(request.body) ? request.body : {};
    if (!session) {
      reply.header('set-cookie', cookie(SESSION_COOKIE, '', 0));
      return reply.redirect('/', 303);
    }
    if (typeof body.csrf !== 'string' || !safeEqual(body.csrf, session.csrf)) {
      throw new HttpError(403, 'Déconnexion refusée', 'La demande de déconnexion n’a pas pu être vérifiée. Merci de réessayer depuis la page d’accueil.');
    }
    sessions.delete(session.id);
    reply.header('set-cookie', cookie(SESSION_COOKIE, '', 0));
    let target = '/';
    try {
      const { config } = await provider();
      if (config.serverMetadata().end_session_endpoint) {
        target = client.buildEndSessionUrl(config, {
          id_token_hint: session.idToken,
          post_logout_redirect_uri: `${baseUrl}/`,
        }).href;
      }
    } catch (error) {
      request.log.warn({ err: error }, 'provider unavailable for RP-initiated logout');
    }
    return reply.redirect(target, 303);
  });

  app.post('/backchannel-logout', async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    const receipt: BackchannelLogoutReceipt = { sid: '', sub: '', receivedAt: Date.now(), valid: false };
    backchannelLogouts.push(receipt);
    const reject = (description: string) => {
      receipt.error = description;
      return reply.code(400).send({ error: 'invalid_request', error_description: description });
    };

    const body = isRecord(request.body) ? request.body : {};
    const logoutToken = body.logout_token;
    if (typeof logoutToken !== 'string' || logoutToken.length === 0) return reject('missing logout_token');

    let verifier: Provider;
    try {
      verifier = await provider();
    } catch (error) {
      request.log.warn({ err: error }, 'provider unavailable for back-channel logout');
      receipt.error = 'provider unavailable';
      return reply.code(503).send({ error: 'temporarily_unavailable', error_description: 'provider metadata unavailable' });
    }

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(logoutToken, verifier.jwks, {
        issuer: verifier.config.serverMetadata().issuer,
        audience: options.clientId,
        algorithms: verifier.logoutAlgorithms,
        requiredClaims: ['iat'],
      }));
    } catch (error) {
      return reject(`logout token verification failed: ${error instanceof Error ? error.message : 'invalid'}`);
    }

    // §2.6 steps 4-7.
    const sid = typeof payload.sid === 'string' && payload.sid.length > 0 ? payload.sid : undefined;
    const sub = typeof payload.sub === 'string' && payload.sub.length > 0 ? payload.sub : undefined;
    receipt.sid = sid ?? '';
    receipt.sub = sub ?? '';
    if (!sid && !sub) return reject('logout token has neither sid nor sub');
    const events = payload.events;
    if (!isRecord(events) || !isRecord(events[BACKCHANNEL_LOGOUT_EVENT])) {
      return reject('logout token has no back-channel logout event');
    }
    if ('nonce' in payload) return reject('logout token must not contain a nonce');

    for (const [id, session] of sessions) {
      const matches = sid ? session.sid === sid && (!sub || session.sub === sub) : session.sub === sub;
      if (matches) sessions.delete(id);
    }
    receipt.valid = true;
    return reply.code(200).send();
  });

  const address = await app.listen({ port: options.port, host: options.host ?? 'localhost' });
  const port = new URL(address).port;
  if (!baseUrl) baseUrl = `http://localhost:${port}`;
  secureCookies = baseUrl.startsWith('https:');

  return {
    url: baseUrl,
    sessions,
    backchannelLogouts,
    async close() {
      await app.close();
    },
  };
}
