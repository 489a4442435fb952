import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';
import { afterAuthorization } from '../oidc/after-authorization.ts';
import { describeBrowser } from '../login/browser.ts';
import type { LogoutDeliveries } from './backchannel.ts';
import type { LoginContext, SessionInfoStore } from './store.ts';

/**
 * Glue on oidc-provider for the wallet:
 * - every successful authorization records where its session was opened (the approved push
 *   challenge's browser, address and place, from the interaction's result) and when the session was last used — awaited before
 *   the response leaves, so the wallet never lags behind the browser;
 * - back-channel logout deliveries oidc-provider attempted itself (RP-initiated logout) and
 *   failed are queued for the wallet's retries.
 * Must be installed before the provider's HTTP callback is built (Koa composes its middleware then).
 */
export function installProviderHooks(provider: Provider, deps: { info: SessionInfoStore; deliveries: LogoutDeliveries; clock: Clock; logger: Logger }): void {
  afterAuthorization(provider, async (ctx) => {
    const oidc = ctx.oidc;
    const session = oidc?.session;
    const accountId = session?.accountId;
    if (!session || !accountId) return;
    try {
      // A login through the page carries its approved request's context (login/interactions.ts); a
      // session reused without one is described from this request.
      const userAgent = String(ctx.get('user-agent') ?? '');
      const fallback = { challengeId: null, ip: ctx.ip, browser: userAgent ? describeBrowser(userAgent) : null, place: null };
      const login = loginContextOf(oidc.result) ?? fallback;
      await deps.info.record({ sessionUid: session.uid, nationalId: accountId, at: deps.clock.now(), ip: ctx.ip, login });
    } catch (err) {
      deps.logger.error({ err }, 'wallet: recording the session context failed');
    }
  });

  provider.on('backchannel.error', (_ctx, error, client, accountId, sid) => {
    deps.deliveries.recordProviderFailure({ clientId: client.clientId, accountId, sid, error }).catch((err: unknown) => deps.logger.error({ err }, 'wallet: queueing a back-channel retry failed'));
  });
}

function loginContextOf(result: unknown): LoginContext | undefined {
  const context = (result as { loginContext?: LoginContext } | undefined)?.loginContext;
  return context && typeof context === 'object' && typeof context.challengeId === 'string' ? context : undefined;
}
