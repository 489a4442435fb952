import { pino, stdSerializers, type Logger } from 'pino';

/** Fields no log line may show, wherever they appear. */
const REDACTED = ['req.headers.authorization', 'req.headers.cookie', '*.pin', '*.code', '*.activationCode', '*.client_secret'];

/**
 * Fields that clients attach to their errors and that may carry secrets: ioredis puts the failed
 * command on the error (`HELLO 3 AUTH default <password>` when Redis refuses the password; keys
 * and payloads, such as authorization codes and challenges, on other failures).
 */
const SECRET_BEARING_ERROR_FIELDS = ['command', 'previousErrors'];

/**
 * Drops those fields from a serialized error and from the errors serialized within it (pino's
 * serializer builds new objects for them, all of one prototype). Live values it copied by
 * reference are never walked nor changed.
 */
function withoutSecretFields(serialized: Record<string, unknown>, prototype: object): void {
  for (const field of SECRET_BEARING_ERROR_FIELDS) delete serialized[field];
  for (const value of Object.values(serialized)) {
    for (const nested of Array.isArray(value) ? value : [value]) {
      if (nested !== null && typeof nested === 'object' && Object.getPrototypeOf(nested) === prototype) withoutSecretFields(nested as Record<string, unknown>, prototype);
    }
  }
}

/** pino's error serializer, minus the fields of SECRET_BEARING_ERROR_FIELDS at any depth. */
export function serializeError(error: unknown): unknown {
  const serialized: unknown = stdSerializers.err(error as Error);
  // Not an error (a value thrown as is): pino passes it through untouched, and so do we.
  if (serialized === error || serialized === null || typeof serialized !== 'object') return serialized;
  withoutSecretFields(serialized as Record<string, unknown>, Object.getPrototypeOf(serialized) as object);
  return serialized;
}

/** The service's logger: structured (pino), secrets redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: REDACTED, serializers: { err: serializeError } };
  return destination ? pino(options, destination as never) : pino(options);
}
