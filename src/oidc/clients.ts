import { z } from 'zod';
import type { OidcModelStore } from './adapter.ts';
import { randomId } from '../lib/crypto.ts';
import { defineErrors } from '../lib/errors.ts';

export const clientErrors = defineErrors({
  CLIENT_INVALID: [400, 'Invalid client registration.'],
  CLIENT_NOT_FOUND: [404, 'No such client.'],
});

/** A relying party (health service) registered by the operator. */
export const clientInput = z.object({
  client_id: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,62}$/, 'lowercase letters, digits, . _ -'),
  client_name: z.string().min(1).max(120),
  redirect_uris: z.array(z.url()).min(1),
  post_logout_redirect_uris: z.array(z.url()).default([]),
  backchannel_logout_uri: z.url().optional(),
  token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt']).default('client_secret_basic'),
  client_secret: z.string().min(32).optional(),
  jwks_uri: z.url().optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).default(['authorization_code', 'refresh_token']),
});
export type ClientInput = z.input<typeof clientInput>;

export class ClientRegistry {
  readonly #store: OidcModelStore;
  constructor(store: OidcModelStore) {
    this.#store = store;
  }

  /** Registers or replaces a client; generates a secret for secret-based methods when none is given. */
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
    await this.#store.upsert('Client', c.client_id, metadata as never, undefined);
    return metadata;
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
