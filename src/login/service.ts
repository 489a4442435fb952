import type { ChallengeService } from '../challenge/service.ts';
import type { Challenge, RequestContext } from '../challenge/challenge.ts';
import type { DirectoryStore } from '../directory/store.ts';
import type { DeviceStore } from '../device/store.ts';
import type { LoginThrottle } from '../defence/throttle.ts';
import type { AuditLog } from '../audit/log.ts';
import { commonErrors } from '../lib/errors.ts';

/**
 * The login page's domain: from a typed identifier to a push challenge, and from an approved
 * challenge to the account that may be logged in. It answers the same way whether or not the
 * identifier exists or has a device, so the page cannot be used to learn who has the app.
 */
export class LoginService {
  readonly #challenges: ChallengeService;
  readonly #directory: DirectoryStore;
  readonly #devices: DeviceStore;
  readonly #throttle: LoginThrottle;
  readonly #audit: AuditLog;

  constructor(deps: { challenges: ChallengeService; directory: DirectoryStore; devices: DeviceStore; throttle: LoginThrottle; audit: AuditLog }) {
    this.#challenges = deps.challenges;
    this.#directory = deps.directory;
    this.#devices = deps.devices;
    this.#throttle = deps.throttle;
    this.#audit = deps.audit;
  }

  async start(input: { nationalId: string; interactionUid: string; clientId: string; clientName: string; context: RequestContext }): Promise<Challenge> {
    const professional = await this.#directory.get(input.nationalId);
    const devices = professional ? (await this.#devices.listByProfessional(input.nationalId)).filter((d) => d.state === 'active') : [];
    const subject = professional ? input.nationalId : null;
    const decision = await this.#throttle.decide(input.context.ip, subject);
    if (!decision.allowed) {
      await this.#audit.append({ actor: `browser:${input.context.ip}`, event: 'login.throttled', subject, details: { clientId: input.clientId, scope: 'ip' } });
      throw commonErrors.RATE_LIMITED({ message: `Trop de demandes depuis votre connexion. Réessayez dans ${decision.retryAfterSeconds} secondes.`, headers: { 'retry-after': String(decision.retryAfterSeconds) } });
    }
    const delivery = devices.length === 0 ? 'none' : decision.notify ? 'push' : 'silent';
    return this.#challenges.start({
      nationalId: subject,
      interactionUid: input.interactionUid,
      clientId: input.clientId,
      clientName: input.clientName,
      mode: 'pick',
      delivery,
      context: input.context,
    });
  }

  /** The challenge of this interaction, or undefined when the pair does not match. */
  async challengeOf(interactionUid: string, challengeId: string): Promise<Challenge | undefined> {
    const challenge = await this.#challenges.get(challengeId);
    return challenge?.interactionUid === interactionUid ? challenge : undefined;
  }

  /** Spends an approved challenge once; returns the account to log in, or the state to explain. */
  async complete(challenge: Challenge): Promise<{ accountId: string } | { state: string }> {
    if (challenge.state !== 'approved' || !challenge.nationalId) return { state: challenge.state };
    if (!(await this.#challenges.consume(challenge.id))) return { state: 'consumed' };
    return { accountId: challenge.nationalId };
  }
}
