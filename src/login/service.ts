import type { ChallengeService } from '../challenge/service.ts';
import type { Challenge, RequestContext } from '../challenge/challenge.ts';
import type { DirectoryStore } from '../directory/store.ts';
import type { DeviceStore } from '../device/store.ts';
import type { DefenceService } from '../defence/service.ts';
import type { Source } from '../defence/source.ts';
import { describePlace } from '../defence/geo.ts';
import { defenceErrors } from '../defence/errors.ts';
import { VigieError } from '../lib/errors.ts';
import { TimingCover } from './timing-cover.ts';
import type { LoginInteractions } from './interactions.ts';

/**
 * The login page's domain: from a typed identifier to a push challenge, and from an approved
 * challenge to the account that may be logged in. It answers the same way whether or not the
 * identifier exists or has a device, so the page cannot be used to learn who has the app: not by
 * its content, nor by its timing (login/timing-cover.ts).
 */
export class LoginService {
  readonly #challenges: ChallengeService;
  readonly #directory: DirectoryStore;
  readonly #devices: DeviceStore;
  readonly #defence: DefenceService;
  readonly #interactions: LoginInteractions;
  readonly #cover = new TimingCover();

  constructor(deps: { challenges: ChallengeService; directory: DirectoryStore; devices: DeviceStore; defence: DefenceService; interactions: LoginInteractions }) {
    this.#challenges = deps.challenges;
    this.#directory = deps.directory;
    this.#devices = deps.devices;
    this.#defence = deps.defence;
    this.#interactions = deps.interactions;
  }

  /**
   * Asks the defences (defence/service.ts) how to treat this request — refuse it, or create a
   * challenge notified or silent, with number matching or a typed code — then creates it. A
   * browser has at most one pending challenge per professional: a new one supersedes the last.
   */
  async start(input: { nationalId: string; interactionUid: string; clientId: string; clientName: string; context: RequestContext; source: Source; trustedSince: number | null }): Promise<Challenge> {
    const timing = this.#cover.start();
    const professional = await this.#directory.get(input.nationalId);
    const devices = professional ? (await this.#devices.listByProfessional(input.nationalId)).filter((d) => d.state === 'active') : [];
    const subject = professional ? input.nationalId : null;
    const { source } = input;
    const decision = await this.#defence.decide({ nationalId: input.nationalId, known: subject !== null, hasDevice: devices.length > 0, clientId: input.clientId, source, trustedSince: input.trustedSince });
    if (decision.kind === 'refuse') {
      const headers = { 'retry-after': String(decision.retryAfterSeconds) };
      if (decision.reason === 'source_blocked') throw defenceErrors.SOURCE_BLOCKED({ headers });
      throw defenceErrors.LOGIN_THROTTLED({ message: `Trop de demandes depuis votre connexion. Réessayez dans ${decision.retryAfterSeconds} secondes.`, headers });
    }
    const context: RequestContext = {
      ...input.context,
      place: input.context.place ?? describePlace(source.geo),
      browserId: source.browserId,
      prefix: source.prefix,
      geo: source.geo,
      trusted: decision.trusted,
      holds: decision.holds,
      risk: decision.risk,
    };
    if (subject) await this.#challenges.cancelPendingFrom(subject, source.browserId, `browser:${source.ip}`);
    const challenge = await this.#challenges.start({
      nationalId: subject,
      interactionUid: input.interactionUid,
      clientId: input.clientId,
      clientName: input.clientName,
      mode: decision.mode,
      delivery: decision.delivery,
      context,
    });
    await this.#defence.recorded(challenge, decision, source);
    // Whether the identifier has an activated device must not show in the answer time.
    if (devices.length > 0) this.#cover.record(timing.elapsedMs());
    else await this.#cover.hold(timing.elapsedMs());
    return challenge;
  }

  /** The challenge of this interaction, or undefined when the pair does not match. */
  async challengeOf(interactionUid: string, challengeId: string): Promise<Challenge | undefined> {
    const challenge = await this.#challenges.get(challengeId);
    return challenge?.interactionUid === interactionUid ? challenge : undefined;
  }

  /**
   * Hands an approved challenge to its interaction, as soon as it is approved (server.ts) and
   * again from the page's continue form if that failed: oidc-provider finishes the login when the
   * browser holding the interaction comes back to it, and the interaction is used only once.
   * The challenge is then marked consumed. False when its interaction is gone, was cancelled,
   * or waits for the login of a newer challenge of the same page.
   */
  async finish(challenge: Challenge): Promise<boolean> {
    if (!(await this.#interactions.finish(challenge))) return false;
    await this.#challenges.consume(challenge.id);
    return true;
  }

  /**
   * The person left the page (another identifier, cancel): its request is withdrawn from the
   * phone; approved meanwhile, its login no longer waits in the interaction.
   */
  async leave(challenge: Challenge, actor: string): Promise<void> {
    if (challenge.state === 'pending') {
      const withdrawn = await this.#challenges.cancel(challenge, actor).then(
        () => true,
        (error: unknown) => {
          // Answered or expired meanwhile.
          if (!(error instanceof VigieError) || error.status >= 500) throw error;
          return false;
        },
      );
      if (withdrawn) return;
    }
    await this.#interactions.withdraw(challenge);
  }

  /** Where this browser finishes its login, when this approved challenge's login waits in its interaction. */
  resumeUrl(challenge: Challenge): Promise<string | undefined> {
    return this.#interactions.resumeUrl(challenge.interactionUid, challenge.id);
  }
}
