import { z } from 'zod';
import type { OidcModelStore } from './adapter.ts';
import { constantTimeEqual, keyedHash, randomId } from '../lib/crypto.ts';
import { defineErrors } from '../lib/errors.ts';

export const clientErrors = defineErrors({
  CLIENT_INVALID: [400, 'Invalid client registration.'],
  CLIENT_NOT_FOUND: [404, 'No such client.'],
});

/**
 * Client secrets are stored as keyed hashes, as PINs are: a database dump alone does not let anyone
 * act as a health service. oidc-provider only ever compares them (client_secret_basic and
 * client_secret_post; no HS* algorithm is enabled, which would need the secret itself as a key):
 * `compareClientSecret` is replaced to compare hashes (oidc/provider.ts).
 */
const HASHED_SECRET_PREFIX = 'hmac-sha256:';
const SECRET_PURPOSE = 'client-secret';

export function hashClientSecret(key: Buffer, secret: string): string {
  return HASHED_SECRET_PREFIX + keyedHash(key, SECRET_PURPOSE, secret);
}

/**
 * Whether `presented` is the secret `stored` was made from. A secret still in clear (written by a
 * version before hashing, until the next start-up hashes it) is compared as such; both compare in
 * constant time.
 */
export function clientSecretMatches(key: Buffer, stored: string, presented: string): boolean {
  if (!stored.startsWith(HASHED_SECRET_PREFIX)) return constantTimeEqual(keyedHash(key, SECRET_PURPOSE, stored), keyedHash(key, SECRET_PURPOSE, presented));
  return constantTimeEqual(stored, hashClientSecret(key, presented));
}

/** A relying party (health service) registered by the operator. */
export const clientInput = z.object({
  client_id: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,62}$/, 'lowercase letters, digits, . _ -'),
  client_name: z.string().min(1).max(120),
  redirect_uris: z.array(z.url()).min(1),
  post_logout_redirect_uris: z.array(z.url()).default([]),
  backchannel_logout_uri: z.url().optional(),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt']).default('client_secret_basic'),
  client_secret: z
    .string()
    .min(32)
    .refine((secret) => !secret.startsWith(HASHED_SECRET_PREFIX), `must not start with ${HASHED_SECRET_PREFIX}`)
    .optional(),
  jwks_uri: z.url().optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).default(['authorization_code', 'refresh_token']),
});
export type ClientInput = z.input<typeof clientInput>;

export class ClientRegistry {
  readonly #store: OidcModelStore;
  readonly #secretKey: Buffer;
  constructor(store: OidcModelStore, secretKey: Buffer) {
    this.#store = store;
    this.#secretKey = secretKey;
  }

  /**
   * Registers or replaces a client; generates a secret for secret-based methods when none is given.
   * Answers the metadata with the secret in clear, the only time it is available: only its hash is kept.
   */
  async put(input: ClientInput): Promise<Record<string, unknown>> {
    const parsed = clientInput.safeParse(input);
    if (!parsed.success) throw clientErrors.CLIENT_INVALID({ message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
    const c = parsed.data;
    const metadata: Record<string, unknown> = {
      ...c,
      response_types: ['code'],
      ...(c.backchannel_logout_uri ? { backchannel_logout_session_required: true } : {}),
    };
    if (c.token_endpoint_auth_method === 'private_key_jwt') {
      if (!c.jwks && !c.jwks_uri) throw clientErrors.CLIENT_INVALID({ message: 'private_key_jwt needs jwks or jwks_uri' });
      delete metadata.client_secret;
    } else {
      metadata.client_secret = c.client_secret ?? randomId(32);
    }
    const stored = typeof metadata.client_secret === 'string' ? { ...metadata, client_secret: hashClientSecret(this.#secretKey, metadata.client_secret) } : metadata;
    await this.#store.upsert('Client', c.client_id, stored as never, undefined);
    return metadata;
  }

  /**
   * Replaces the secrets stored in clear (registered before they were hashed) by their hash; run at
   * every start-up. Idempotent: nodes starting together write the same values.
   */
  async hashClearSecrets(): Promise<number> {
    let hashed = 0;
    for (const { id, payload } of await this.#store.list('Client')) {
      const secret = payload.client_secret;
      if (typeof secret !== 'string' || secret.startsWith(HASHED_SECRET_PREFIX)) continue;
      await this.#store.upsert('Client', id, { ...payload, client_secret: hashClientSecret(this.#secretKey, secret) }, undefined);
      hashed += 1;
    }
    return hashed;
  }

  async get(clientId: string): Promise<Record<string, unknown> | undefined> {
    return this.#store.find('Client', clientId) as Promise<Record<string, unknown> | undefined>;
  }

  async list(): Promise<Array<Record<string, unknown>>> {
    return (await this.#store.list('Client')).map((c) => c.payload as Record<string, unknown>);
  }

  async remove(clientId: string): Promise<void> {
    if (!(await this.get(clientId))) throw clientErrors.CLIENT_NOT_FOUND();
    await this.#store.destroy('Client', clientId);
  }
}
