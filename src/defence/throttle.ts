import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * First line against push bombing: a source address may start only so many challenges a minute
 * (refused beyond), and a professional receives only so many notifications an hour (beyond, the
 * challenge is created silent: the real user still sees it when opening the app).
 */
export interface ThrottleDecision {
  allowed: boolean;
  notify: boolean;
  retryAfterSeconds: number;
}

export class LoginThrottle {
  readonly #perIp: RateLimiterMemory;
  readonly #perProfessional: RateLimiterMemory;

  constructor(options: { perIpPerMinute: number; perProfessionalPerHour: number}) {
    this.#perIp = new RateLimiterMemory({ keyPrefix: 'ip', points: options.perIpPerMinute, duration: 60 });
    this.#perProfessional = new RateLimiterMemory({ keyPrefix: 'pro', points: options.perProfessionalPerHour, duration: 3600 });
  }

  async decide(ip: string, nationalId: string | null): Promise<ThrottleDecision> {
    const ipVerdict = await consume(this.#perIp, ip);
    if (ipVerdict) return { allowed: false, notify: false, retryAfterSeconds: ipVerdict };
    if (!nationalId) return { allowed: true, notify: false, retryAfterSeconds: 0 };
    const proVerdict = await consume(this.#perProfessional, nationalId);
    return { allowed: true, notify: proVerdict === 0, retryAfterSeconds: 0 };
  }
}

/** Returns 0 when a point was available, else the seconds until one is. */
async function consume(limiter: RateLimiterMemory, key: string): Promise<number> {
  try {
    await limiter.consume(key);
    return 0;
  } catch (res) {
    if (res instanceof RateLimiterRes) return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    throw res;
  }
}
