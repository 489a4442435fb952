import { pino, stdSerializers, type Logger } from 'pino';

/** Fields no log line may show, wherever they appear. */
const REDACTED = ['req.headers.authorization', 'req.headers.cookie', '*.pin', '*.code', '*.activationCode', '*.client_secret'];

/**
 * Fields that clients attach to their errors and that may carry secrets: ioredis puts the failed
 * command on the error (`HELLO 3 AUTH default <password>` when Redis refuses the password; keys
 * and payloads, such as authorization codes and challenges, on other failures).
 */
const SECRET_BEARING_ERROR_FIELDS = ['command', 'previousErrors'];

function withoutSecretFields(serialized: unknown): unknown {
  if (serialized === null || typeof serialized !== 'object') return serialized;
  const record = serialized as Record<string, unknown>;
  for (const field of SECRET_BEARING_ERROR_FIELDS) delete record[field];
  // Nested errors, serialized the same way (aggregateErrors, an error-valued field).
  for (const value of Object.values(record)) {
    if (Array.isArray(value)) value.forEach(withoutSecretFields);
    else if (value && typeof value === 'object') withoutSecretFields(value);
  }
  return record;
}

/** pino's error serializer, minus the fields of SECRET_BEARING_ERROR_FIELDS at any depth. */
export function serializeError(error: unknown): unknown {
  return withoutSecretFields(stdSerializers.err(error as Error));
}

/** The service's logger: structured (pino), secrets redacted. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: REDACTED, serializers: { err: serializeError } };
  return destination ? pino(options, destination as never) : pino(options);
}
