import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './index.ts';
import { deriveKey } from '../lib/crypto.ts';

export interface Keys {
  pin: Buffer;
  code: Buffer;
  seal: Buffer;
  csrf: Buffer;
  /** HMAC key of the stored client secrets (oidc/clients.ts). */
  clientSecret: Buffer;
  /** HMAC key of the trusted-browser cookies (defence/trusted-browser.ts). */
  trustedBrowser: Buffer;
  /** Seed of the VAPID key pair (Web Push), the same on every node sharing VIGIE_SECRET. */
  vapid: Buffer;
  cookies: string[];
}

/**
 * One root secret, many purpose-bound keys. In development a random secret is generated once
 * into the data folder (and the log says so loudly); production refuses to start without one.
 */
export function resolveKeys(config: Config, logger: Logger): Keys {
  let root: Buffer;
  if (config.secret) {
    root = Buffer.from(config.secret, 'utf8');
  } else {
    const file = join(config.dataDir, 'secret');
    if (!existsSync(file)) {
      mkdirSync(config.dataDir, { recursive: true });
      writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
    }
    root = Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
    logger.warn({ file }, 'VIGIE_SECRET is not set: using a development secret from the data folder. You MUST set VIGIE_SECRET in production.');
  }
  return {
    pin: deriveKey(root, 'pin-hash'),
    code: deriveKey(root, 'code-hash'),
    seal: deriveKey(root, 'key-seal'),
    csrf: deriveKey(root, 'csrf'),
    clientSecret: deriveKey(root, 'client-secret-hash'),
    trustedBrowser: deriveKey(root, 'trusted-browser'),
    vapid: deriveKey(root, 'vapid'),
    cookies: [deriveKey(root, 'cookie').toString('base64url')],
  };
}
