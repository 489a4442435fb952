/**
 * One error base for the whole service. Each capability declares its stable codes in its own
 * `errors.ts`; `http/errors.ts` is the single place that maps them to HTTP answers.
 * `message` is safe to show to the caller; `detail` is for logs only.
 */
export class VigieError extends Error {
  readonly code: string;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;

  constructor(code: string, status: number, message: string, options: { detail?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'VigieError';
    this.code = code;
    this.status = status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  get expose(): boolean {
    return this.status < 500;
  }
}

/** Declares a module's error codes once: `const errors = defineErrors({ NOT_FOUND: [404, 'Not found'] })`. */
export function defineErrors<const T extends Record<string, readonly [number, string]>>(table: T) {
  type Factory = (options?: { detail?: string; message?: string; headers?: Record<string, string>; cause?: unknown }) => VigieError;
  const factories = {} as { [K in keyof T]: Factory };
  for (const [code, [status, message]] of Object.entries(table)) {
    factories[code as keyof T] = (options = {}) => new VigieError(code, status, options.message ?? message, options);
  }
  return factories;
}

export const commonErrors = defineErrors({
  VALIDATION_FAILED: [400, 'The request is invalid.'],
  NOT_FOUND: [404, 'Not found.'],
  RATE_LIMITED: [429, 'Too many requests, try again later.'],
  UNAVAILABLE: [503, 'The service is temporarily unavailable, try again shortly.'],
  INTERNAL: [500, 'Internal error.'],
});
