import type { default as Provider, Interaction } from 'oidc-provider';
import type { Clock } from '../lib/clock.ts';
import type { Challenge } from '../challenge/challenge.ts';
import type { LoginContext } from '../wallet/store.ts';
import { ACR_EIDAS1, AMR_ECPS } from '../oidc/provider.ts';
import { afterAuthorization } from '../oidc/after-authorization.ts';
import { BROWSER_COOKIE, parseCookies, type TrustedBrowsers } from '../defence/trusted-browser.ts';

/** What an approved challenge leaves in its oidc-provider interaction (kept server-side). */
type LoginResult = {
  /** `ts`: when the phone approved, in seconds (oidc-provider's auth_time; it would take the browser's return instead). */
  login: { accountId: string; acr: string; amr: string[]; remember: boolean; ts: number };
  /** The challenge whose approval this is: of several in one interaction, the newest wins. */
  challenge: { id: string; createdAt: number };
  /** Where the approved request came from: the wallet records it with the session (wallet/tracking.ts). */
  loginContext: LoginContext;
  /** The browser that asked for the approval: it becomes trusted when it finishes the login. */
  browserId: string | null;
};

/** The login's side of oidc-provider's interactions (login/service.ts). */
export interface LoginInteractions {
  /** Stores the approved login as its interaction's result; false when the interaction is gone or not its own. */
  finish(challenge: Challenge): Promise<boolean>;
  /** Takes back this challenge's login from its interaction, if it waits there. */
  withdraw(challenge: Challenge): Promise<void>;
  /** Where the browser finishes interaction `uid`, when the login of challenge `challengeId` waits in it. */
  resumeUrl(uid: string, challengeId: string): Promise<string | undefined>;
}

/** What provider.interactionResult does, without the browser's request: the approval comes from the device. */
function setResult(interaction: Interaction, result: LoginResult | undefined): Promise<unknown> {
  interaction.result = result;
  return interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
}

/** The interaction, when the login waiting in it is challenge `challengeId`'s. */
async function waitingFor(provider: Provider, uid: string, challengeId: string): Promise<Interaction | undefined> {
  const interaction = await provider.Interaction.find(uid);
  return (interaction?.result as Partial<LoginResult> | undefined)?.challenge?.id === challengeId ? interaction : undefined;
}

export function providerInteractions(provider: Provider, clock: Clock): LoginInteractions {
  return {
    async finish(challenge) {
      if (challenge.state !== 'approved' || !challenge.nationalId) return false;
      const interaction = await provider.Interaction.find(challenge.interactionUid);
      if (!interaction || interaction.params.client_id !== challenge.clientId || interaction.prompt.name !== 'login') return false;
      // The person cancelled (abort), or a newer challenge of this page was approved: a late
      // approval of a request the page has left must not replace what the page is waiting for.
      const existing = interaction.result as Partial<LoginResult> & { error?: string } | undefined;
      if (existing?.error) return false;
      if (existing?.challenge && existing.challenge.id !== challenge.id && existing.challenge.createdAt >= challenge.createdAt) return false;
      const result: LoginResult = {
        // The approval's age, measured on our clock, set back from the system clock oidc-provider
        // reads for max_age and auth_time (they are one clock outside tests).
        login: { accountId: challenge.nationalId, acr: ACR_EIDAS1, amr: AMR_ECPS, remember: true, ts: Math.floor((Date.now() - Math.max(0, clock.now() - (challenge.settledAt ?? clock.now()))) / 1000) },
        challenge: { id: challenge.id, createdAt: challenge.createdAt },
        loginContext: { challengeId: challenge.id, ip: challenge.context.ip, browser: challenge.context.browser ?? null, place: challenge.context.place ?? null },
        browserId: challenge.context.browserId ?? null,
      };
      await setResult(interaction, result);
      return true;
    },
    async withdraw(challenge) {
      const interaction = await waitingFor(provider, challenge.interactionUid, challenge.id);
      if (interaction) await setResult(interaction, undefined);
    },
    async resumeUrl(uid, challengeId) {
      return (await waitingFor(provider, uid, challengeId))?.returnTo;
    },
  };
}

/**
 * A browser that finishes a login it asked for is trusted for that professional from then on
 * (defence/trusted-browser.ts): the cookie is set on the response that finishes it. It is dated
 * from the request, not from the finish: a request made before the professional revoked their
 * trusted browsers gives no trust when it finishes after.
 */
export function trustBrowsersOnLogin(provider: Provider, trust: TrustedBrowsers): void {
  afterAuthorization(provider, async (ctx) => {
    const result = ctx.oidc.result as Partial<LoginResult> | undefined;
    const accountId = ctx.oidc.session?.accountId;
    if (!result?.login || !result.browserId || !result.challenge || accountId !== result.login.accountId) return;
    if (parseCookies(ctx.get('cookie')).get(BROWSER_COOKIE) !== result.browserId) return;
    ctx.append('set-cookie', trust.issue(accountId, result.browserId, result.challenge.createdAt));
  });
}
