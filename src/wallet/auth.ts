import * as client from 'openid-client';
import type { AuditLog } from '../audit/log.ts';
import type { Clock } from '../lib/clock.ts';
import { randomId, seal, sha256Base64url, unseal } from '../lib/crypto.ts';
import type { OidcModelStore } from '../oidc/adapter.ts';
import { ACR_EIDAS1, PROVIDER_ROUTES } from '../oidc/provider.ts';
import type { WalletSession, WalletSessionStore } from './store.ts';
import { walletErrors } from './errors.ts';

/**
 * Logging in to the wallet with Vigie itself. The wallet is an ordinary OpenID Connect relying
 * party of its own provider (client `vigie-wallet`, registered at start-up): authorization code +
 * PKCE, `prompt=login` so that every wallet login is a fresh e-CPS approval, `acr=eidas1`
 * required. Its token requests go through the provider's own HTTP pipeline in-process (see
 * `setTransport`), so no network hop or TLS hairpin is needed, even behind a load balancer.
 *
 * The wallet session is bound to the provider session it was opened in: when that provider
 * session ends (forced logout, RP-initiated logout, expiry), the wallet session ends too.
 */
export const WALLET_CLIENT_ID = 'vigie-wallet';
export const WALLET_CLIENT_NAME = 'Portefeuille Vigie';

export const SESSION_COOKIE = 'vigie_wallet';
export const LOGIN_COOKIE = 'vigie_wallet_login';
const LOGIN_TTL_MS = 10 * 60_000;
/** The approval must be at most this old when the code comes back (`max_age`). */
const MAX_AGE_SECONDS = 300;

export interface WalletAuthOptions {
  issuer: string;
  clientSecret: string;
  /** Seals the pending-login cookie (state, nonce, PKCE verifier). */
  cookieKey: Buffer;
  sessionTtlMs: number;
}

interface PendingLogin {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  at: number;
}

/** Only our own wallet pages are acceptable destinations after login. */
export function safeReturnTo(value: unknown): string {
  // Printable ASCII only: it becomes a Location header, where a line break or a non-Latin-1 character is a 500.
  return typeof value === 'string' && /^\/wallet(?:[/?#]|$)/.test(value) && /^[\x21-\x7e]*$/.test(value) && !value.includes('\\') && !value.startsWith('//') ? value : '/wallet';
}

export class WalletAuth {
  readonly #store: WalletSessionStore;
  readonly #models: OidcModelStore;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #options: WalletAuthOptions;
  readonly #config: client.Configuration;

  constructor(deps: { store: WalletSessionStore; models: OidcModelStore; audit: AuditLog; clock: Clock }, options: WalletAuthOptions) {
    this.#store = deps.store;
    this.#models = deps.models;
    this.#audit = deps.audit;
    this.#clock = deps.clock;
    this.#options = options;
    const issuer = options.issuer;
    // The provider's metadata is known: no discovery round trip at start-up.
    this.#config = new client.Configuration(
      {
        issuer,
        authorization_endpoint: `${issuer}${PROVIDER_ROUTES.authorization}`,
        token_endpoint: `${issuer}${PROVIDER_ROUTES.token}`,
        jwks_uri: `${issuer}${PROVIDER_ROUTES.jwks}`,
        end_session_endpoint: `${issuer}${PROVIDER_ROUTES.end_session}`,
      },
      WALLET_CLIENT_ID,
      { client_secret: options.clientSecret, id_token_signed_response_alg: 'ES256' },
      client.ClientSecretBasic(options.clientSecret),
    );
    if (issuer.startsWith('http:')) client.allowInsecureRequests(this.#config);
  }

  get redirectUri(): string {
    return `${this.#options.issuer}/wallet/callback`;
  }

  /** The client registration the provider holds for the wallet (written at every start-up). */
  clientMetadata(): Record<string, unknown> {
    return {
      client_id: WALLET_CLIENT_ID,
      client_name: WALLET_CLIENT_NAME,
      client_secret: this.#options.clientSecret,
      redirect_uris: [this.redirectUri],
      post_logout_redirect_uris: [`${this.#options.issuer}/wallet`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    };
  }

  /** Routes the wallet's calls to the token endpoint through `fetchImpl` (the in-process transport). */
  setTransport(fetchImpl: client.CustomFetch): void {
    this.#config[client.customFetch] = fetchImpl;
  }

  /** Starts a login: the URL to send the browser to, and the sealed pending-login cookie value. */
  async beginLogin(returnTo: string): Promise<{ url: URL; pending: string }> {
    const pending: PendingLogin = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), returnTo: safeReturnTo(returnTo), at: this.#clock.now() };
    const url = client.buildAuthorizationUrl(this.#config, {
      redirect_uri: this.redirectUri,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      acr_values: ACR_EIDAS1,
      prompt: 'login',
      max_age: String(MAX_AGE_SECONDS),
      // `sid` ties this wallet session to its provider session.
      claims: JSON.stringify({ id_token: { sid: null, auth_time: { essential: true } } }),
    });
    return { url, pending: seal(this.#options.cookieKey, JSON.stringify(pending)) };
  }

  /** Finishes a login from the callback URL; returns the new wallet session and its cookie value. */
  async finishLogin(callbackUrl: URL, sealedPending: string | undefined, ip: string): Promise<{ session: WalletSession; cookie: string; returnTo: string }> {
    const pending = this.#openPending(sealedPending);
    let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      tokens = await client.authorizationCodeGrant(this.#config, callbackUrl, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        maxAge: MAX_AGE_SECONDS,
        idTokenExpected: true,
      });
    } catch (error) {
      throw walletErrors.WALLET_LOGIN_FAILED({ detail: error instanceof Error ? error.message : String(error), cause: error });
    }
    const claims = tokens.claims();
    if (!claims) throw walletErrors.WALLET_LOGIN_FAILED({ detail: 'no ID token' });
    if (claims.acr !== ACR_EIDAS1) throw walletErrors.WALLET_ACR_TOO_LOW();
    const sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    if (!sid) throw walletErrors.WALLET_LOGIN_FAILED({ detail: 'no sid in the ID token' });
    const nationalId = claims.sub;
    const providerSession = (await this.#models.listByAccount('Session', nationalId)).find((r) => r.payload.authorizations?.[WALLET_CLIENT_ID]?.sid === sid);
    const sessionUid = providerSession?.payload.uid;
    if (typeof sessionUid !== 'string') throw walletErrors.WALLET_LOGIN_FAILED({ detail: 'provider session not found' });

    const cookie = randomId(32);
    const now = this.#clock.now();
    // The step-up window (contacts.ts) counts from the approval, not from this callback, which may
    // come minutes later. oidc-provider stamps auth_time with the system clock: the approval's age
    // is measured on that clock, then applied to ours (tests inject theirs).
    const approvalAgeMs = typeof claims.auth_time === 'number' ? Math.max(0, Date.now() - claims.auth_time * 1000) : MAX_AGE_SECONDS * 1000;
    const session: WalletSession = {
      idHash: sha256Base64url(cookie),
      nationalId,
      sessionUid,
      sid,
      csrf: randomId(24),
      authenticatedAt: now - approvalAgeMs,
      createdAt: now,
      expiresAt: now + this.#options.sessionTtlMs,
    };
    await this.#store.create(session);
    await this.#audit.append({ actor: `browser:${ip}`, event: 'wallet.login', subject: nationalId, details: { sessionUid, authTime: claims.auth_time ?? null } });
    return { session, cookie, returnTo: pending.returnTo };
  }

  /** The wallet session behind a cookie, as long as its provider session is still open. */
  async current(cookie: string | undefined): Promise<WalletSession | undefined> {
    if (!cookie || cookie.length > 100) return undefined;
    const session = await this.#store.get(sha256Base64url(cookie), this.#clock.now());
    if (!session) return undefined;
    const providerSession = await this.#models.findBy('Session', 'uid', session.sessionUid);
    if (!providerSession || providerSession.accountId !== session.nationalId) {
      await this.#store.delete(session.idHash);
      return undefined;
    }
    return session;
  }

  async logout(session: WalletSession, ip: string): Promise<void> {
    await this.#store.delete(session.idHash);
    await this.#audit.append({ actor: `browser:${ip}`, event: 'wallet.logout', subject: session.nationalId, details: {} });
  }

  #openPending(sealed: string | undefined): PendingLogin {
    if (!sealed) throw walletErrors.WALLET_LOGIN_EXPIRED();
    let pending: PendingLogin;
    try {
      pending = JSON.parse(unseal(this.#options.cookieKey, sealed)) as PendingLogin;
    } catch {
      throw walletErrors.WALLET_LOGIN_EXPIRED();
    }
    if (typeof pending.at !== 'number' || this.#clock.now() - pending.at > LOGIN_TTL_MS) throw walletErrors.WALLET_LOGIN_EXPIRED();
    return pending;
  }
}

export const LOGIN_COOKIE_MAX_AGE_SECONDS = LOGIN_TTL_MS / 1000;
