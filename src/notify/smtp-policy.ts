import { isLoopbackHostname } from '../lib/loopback.ts';

/**
 * Whether an smtp:// connection must be upgraded with STARTTLS or fail: in production, codes and
 * revocation links must not cross a network in clear. A relay on this machine is exempt (it is
 * that relay's job to send on with TLS); smtps:// is encrypted from the start anyway.
 */
export function smtpRequiresTls(url: string, production: boolean): boolean {
  return production && !isLoopbackHostname(new URL(url).hostname);
}
