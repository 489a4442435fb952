import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/**
 * Runs `after` once oidc-provider has answered an authorization request that succeeded (a code
 * issued, often on the resume after a login), before the response leaves: its headers can still
 * be added to. Must be installed before the provider's HTTP callback is built (Koa composes its
 * middleware then).
 */
export function afterAuthorization(provider: Provider, after: (ctx: KoaContextWithOIDC) => Promise<void>): void {
  const authorized = new WeakSet<object>();
  provider.on('authorization.success', (ctx) => {
    authorized.add(ctx);
  });
  provider.use(async (ctx, next) => {
    await next();
    if (authorized.has(ctx)) await after(ctx as KoaContextWithOIDC);
  });
}
