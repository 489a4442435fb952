import Provider, { errors, interactionPolicy, type Configuration, type Grant, type KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import type { DirectoryStore } from '../directory/store.ts';
import { claimsFor } from '../directory/claims.ts';
import type { OidcModelStore } from './adapter.ts';
import type { CookieKeys } from './cookie-keys.ts';
import { adapterFactory } from './adapter.ts';
import { clientSecretMatches } from './clients.ts';
import { isLoopbackHostname } from '../lib/loopback.ts';
import { html, page, raw } from '../http/html.ts';

/**
 * How the person authenticated, as `amr` values (RFC 8176):
 * - e-CPS push: `pop` (device-bound key), `pin` (PIN typed on the device), `mca` (the login page
 *   and the device are two channels tied together by the code).
 * `acr` is `eidas1` for the e-CPS, as with the national provider.
 */
export const ACR_EIDAS1 = 'eidas1';
export const AMR_ECPS = ['pop', 'pin', 'mca'];

export const SCOPE_ALL_CLAIMS = ['SubjectNameID', 'preferred_username', 'given_name', 'family_name', 'SubjectRefPro', 'otherIds'];

/** Paths served by oidc-provider itself; everything else is ours. */
export const PROVIDER_ROUTES = {
  authorization: '/auth',
  token: '/token',
  userinfo: '/me',
  jwks: '/jwks',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  end_session: '/session/end',
} as const;
export const PROVIDER_PATH_PREFIXES = ['/.well-known/', ...Object.values(PROVIDER_ROUTES)];

export interface ProviderDeps {
  issuer: string;
  models: OidcModelStore;
  directory: DirectoryStore;
  signingKeys: JWK[];
  /** Key of the stored client secrets' hashes (oidc/clients.ts). */
  clientSecretKey: Buffer;
  /** Signs oidc-provider's cookies; the login pages check the interaction cookie with it too. */
  cookieKeys: CookieKeys;
  sessionTtlSeconds: number;
  /** Proxy hops in front of Vigie (0: none): see VIGIE_TRUST_PROXY. */
  trustProxy: number;
  /** Lets back-channel logout reach services on this machine (development and tests only). */
  allowLoopbackCallbacks: boolean;
  /**
   * Clients every login of which is a new approval, whatever their request says: `prompt=login`
   * is only a parameter, which the browser carrying the request can remove.
   */
  freshLoginClients?: readonly string[];
}

const REFRESH_TOKEN_TTL_SECONDS = 14 * 24 * 3600;

function hasOfflineAccess(grant: Grant): boolean {
  return (grant.getOIDCScope() ?? '').split(' ').includes('offline_access');
}

/**
 * The protocol choices services rely on (routes, scopes, claims, PKCE, client auth, algorithms,
 * features, lifetimes), shared with the benchmark's bare-provider baseline so both compare alike.
 */
export function protocolSettings(sessionTtlSeconds: number) {
  return {
    routes: PROVIDER_ROUTES,
    scopes: ['openid', 'scope_all', 'offline_access'],
    // amr rides with openid so every service learns how the person authenticated.
    claims: { openid: ['sub', 'amr'], scope_all: SCOPE_ALL_CLAIMS, acr: null as never },
    acrValues: [ACR_EIDAS1],
    // The national provider puts the profile claims in the ID token too; services rely on it.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    clientDefaults: { grant_types: ['authorization_code'], id_token_signed_response_alg: 'ES256', response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
    enabledJWA: {
      idTokenSigningAlgValues: ['ES256'],
      userinfoSigningAlgValues: ['ES256'],
      introspectionSigningAlgValues: ['ES256'],
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      // A service may only introspect its own tokens (oidc-provider lets any client see any token).
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      // Not routed (PROVIDER_ROUTES): advertised, it would send services to a 404.
      pushedAuthorizationRequests: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    ttl: {
      Session: sessionTtlSeconds,
      // A grant lasts as long as what it backs: the session, or the refresh tokens of offline access.
      Grant: (_ctx: unknown, grant: Grant) => (hasOfflineAccess(grant) ? REFRESH_TOKEN_TTL_SECONDS : sessionTtlSeconds),
      Interaction: 600,
      AuthorizationCode: 60,
      AccessToken: 3600,
      IdToken: 3600,
      RefreshToken: REFRESH_TOKEN_TTL_SECONDS,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Services are registered by the operator: consent is implied, so no consent screen.
    loadExistingGrant,
  } satisfies Configuration;
}

/** A client assertion (private_key_jwt) may live this long at most: its jti is remembered only so long. */
const CLIENT_ASSERTION_MAX_SECONDS = 300;

/**
 * private_key_jwt assertions must name this provider from its configured issuer: oidc-provider
 * also accepts endpoint URLs built from the request's Host (or X-Forwarded-Host), so an assertion
 * a service signed for another server (`aud=https://other/token`) would pass with that Host. And
 * they must be short-lived (RFC 7523 leaves `exp` open).
 */
function clientAssertionCheck(issuer: string): NonNullable<Configuration['assertJwtClientAuthClaimsAndHeader']> {
  const ours = new Set([issuer, ...[PROVIDER_ROUTES.token, PROVIDER_ROUTES.introspection, PROVIDER_ROUTES.revocation].map((path) => `${issuer}${path}`)]);
  return async (_ctx, claims) => {
    const audiences = (Array.isArray(claims.aud) ? claims.aud : [claims.aud]) as unknown[];
    if (!audiences.some((aud) => typeof aud === 'string' && ours.has(aud))) {
      throw new errors.InvalidClientAuth(`audience (aud) must be this provider's issuer (${issuer}) or one of its endpoint URLs`);
    }
    const exp = Number(claims.exp);
    const issuedAt = typeof claims.iat === 'number' ? claims.iat : Math.floor(Date.now() / 1000);
    if (exp - issuedAt > CLIENT_ASSERTION_MAX_SECONDS) throw new errors.InvalidClientAuth(`client assertions must expire within ${CLIENT_ASSERTION_MAX_SECONDS} seconds of being issued`);
  };
}

/**
 * oidc-provider saves a session again, with a fresh TTL, on every request that finds it: a session
 * used for single sign-on every few hours would never end, nor would a stolen session cookie kept
 * busy. A session lasts `ttlSeconds` from its login (the phone's approval), however it is used; a
 * new approval starts it again.
 */
export function absoluteSessionTtl(ttlSeconds: number, nowSeconds: () => number = () => Math.floor(Date.now() / 1000)) {
  return (_ctx: KoaContextWithOIDC, session: { loginTs?: number | undefined }): number =>
    session.loginTs === undefined ? ttlSeconds : Math.max(1, Math.min(ttlSeconds, session.loginTs + ttlSeconds - nowSeconds()));
}

export function createProvider(deps: ProviderDeps): Provider {
  const settings = protocolSettings(deps.sessionTtlSeconds);
  const configuration: Configuration = {
    adapter: adapterFactory(deps.models),
    jwks: { keys: deps.signingKeys as never },
    cookies: { keys: deps.cookieKeys, long: { signed: true, httpOnly: true, sameSite: 'lax' }, short: { signed: true, httpOnly: true, sameSite: 'lax' } },
    ...settings,
    // oidc-provider dates logins (`loginTs`, from the approval: login/interactions.ts) by its own clock.
    ttl: { ...settings.ttl, Session: absoluteSessionTtl(deps.sessionTtlSeconds) },
    features: { ...settings.features, rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource } },
    interactions: { ...settings.interactions, policy: loginPolicy(new Set(deps.freshLoginClients ?? [])) },
    async findAccount(_ctx, sub) {
      const professional = await deps.directory.get(sub);
      if (!professional) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...claimsFor(professional) }) };
    },
    renderError,
    assertJwtClientAuthClaimsAndHeader: clientAssertionCheck(deps.issuer),
    // oidc-provider refuses outgoing calls to private addresses (SSRF); a local demo service needs them.
    ...(deps.allowLoopbackCallbacks ? { fetch: loopbackFetch } : {}),
  };
  const provider = new Provider(deps.issuer, configuration);
  // TLS ends at the proxy, so the connection says http; with a public https URL every cookie
  // (session, interaction) must still be Secure, whatever X-Forwarded-Proto says or not.
  if (deps.issuer.startsWith('https://')) Object.defineProperty(provider.request, 'secure', { get: () => true });
  provider.proxy = deps.trustProxy > 0;
  // The registry stores secrets hashed (oidc/clients.ts): compare what a service presents by its hash.
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientSecret: string }, presented: string) {
    return Promise.resolve(clientSecretMatches(deps.clientSecretKey, this.clientSecret, presented));
  };
  // Only the last hops of X-Forwarded-For were written by our proxies; the rest is the client's say.
  provider.maxIpsCount = deps.trustProxy;
  return provider;
}

/** oidc-provider's prompts, plus: the clients in `freshLogin` get the login prompt until this very interaction logged in. */
function loginPolicy(freshLogin: ReadonlySet<string>) {
  const policy = interactionPolicy.base();
  const { Check } = interactionPolicy;
  policy.get('login')?.checks.push(
    new Check('fresh_login_required', 'this client requires a new approval for every login', 'login_required', (ctx) =>
      freshLogin.has(String(ctx.oidc.client?.clientId)) && !ctx.oidc.result?.login ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
  );
  return policy;
}

function loopbackFetch(input: string | URL | Request, init?: RequestInit) {
  const url = new URL(input instanceof Request ? input.url : input);
  if (init && isLoopbackHostname(url.hostname)) {
    const { dispatcher: _ssrfGuard, ...rest } = init as RequestInit & { dispatcher?: unknown };
    return globalThis.fetch(input, rest);
  }
  return globalThis.fetch(input, init);
}

async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { session, client, provider } = ctx.oidc;
  const accountId = session?.accountId;
  if (!client || !accountId) return undefined;
  const grantId = (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId ?? session.grantIdFor(client.clientId);
  const grant = (grantId && (await provider.Grant.find(grantId))) || new provider.Grant({ clientId: client.clientId, accountId });
  const wasOffline = hasOfflineAccess(grant);
  const scopes = [...(ctx.oidc.requestParamScopes ?? [])].join(' ');
  if (scopes) grant.addOIDCScope(scopes);
  // A session's grant that now backs refresh tokens: it must outlive the session (its expiry was set when first saved).
  if (!wasOffline && hasOfflineAccess(grant) && grant.exp !== undefined) grant.exp = Math.max(grant.exp, Math.floor(Date.now() / 1000) + REFRESH_TOKEN_TTL_SECONDS);
  const claims = [...(ctx.oidc.requestParamClaims ?? [])];
  if (claims.length) grant.addOIDCClaims(claims);
  await grant.save();
  return grant;
}

async function logoutSource(ctx: KoaContextWithOIDC, form: string) {
  ctx.body = page(
    'Déconnexion',
    html`<h1>Se déconnecter de Vigie ?</h1>
      <p>Vous allez fermer votre session Vigie. Les services qui le prennent en charge seront prévenus.</p>
      ${raw(form)}
      <button form="op.logoutForm" name="logout" value="yes">Me déconnecter</button>
      <button form="op.logoutForm" class="secondary">Rester connecté</button>`,
  );
}

async function postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
  ctx.body = page('Déconnecté', html`<h1>Vous êtes déconnecté</h1><p>Votre session Vigie est fermée.</p>`);
}

async function renderError(ctx: KoaContextWithOIDC, out: { error?: string; error_description?: string }, error: Error) {
  ctx.type = 'html';
  // The login's interaction is gone (expired, already used) or this browser does not hold it:
  // nothing the service did wrong, the person starts again from the service.
  const expired = error instanceof errors.SessionNotFound;
  ctx.body = page(
    'Erreur',
    html`<h1>La connexion n'a pas pu aboutir</h1>
      <p>${expired ? 'Cette demande de connexion a expiré ou a déjà été utilisée.' : 'Le service qui vous a envoyé ici a fait une demande que Vigie ne peut pas traiter.'}</p>
      <p class="hint">Code : ${String(out.error ?? 'server_error')}${out.error_description ? html` — ${String(out.error_description)}` : ''}</p>
      <p>Revenez au service et recommencez. Si le problème persiste, contactez son support.</p>`,
  );
}
