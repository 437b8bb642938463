/**
 * Typed errors. Each carries an HTTP status, a stable snake_case code and whether its message
 * is safe to show; src/api/middleware/errors.ts renders them, and anything else becomes a
 * generic 500 whose message is never shown.
 */
export interface ErrorDetail {
  readonly path?: string;
  readonly index?: number;
  readonly message: string;
  readonly [key: string]: unknown;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: readonly ErrorDetail[] = [],
    readonly headers: Readonly<Record<string, string>> = {},
    readonly expose = status < 500 || status === 503,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details: readonly ErrorDetail[] = []) {
    super(400, "validation_failed", message, details);
  }
}

export class BadRequestError extends AppError {
  constructor(code: string, message: string) {
    super(400, code, message);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = "missing or invalid API key") {
    super(401, "unauthorized", message, [], { "WWW-Authenticate": 'Bearer realm="triggers"' });
  }
}

export class ForbiddenError extends AppError {
  constructor(scope: string) {
    super(403, "forbidden", `this API key lacks the ${scope} scope`, [{ message: "missing scope", scope }]);
  }
}

export class NotFoundError extends AppError {
  constructor(what = "resource") {
    super(404, "not_found", `${what} not found`);
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(limit: number) {
    super(413, "payload_too_large", `request body exceeds ${limit} bytes`);
  }
}

/** Events that fit the request limit but not one queue message once their metadata is added. */
export class EventTooLargeError extends AppError {
  constructor(details: readonly ErrorDetail[]) {
    super(413, "event_too_large", "an event is too large for the queue; none was accepted", details);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor() {
    super(415, "unsupported_media_type", "request body must be application/json");
  }
}

export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number, headers: Record<string, string> = {}) {
    const present = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== ""));
    super(429, "rate_limited", `rate limit exceeded; retry in ${retryAfterSeconds} s`, [], { ...present, "Retry-After": String(retryAfterSeconds) });
  }
}

/** A dependency the request needs is down; the client should retry after `retryAfterSeconds`. */
export class UnavailableError extends AppError {
  constructor(dependency: string, retryAfterSeconds = 1, message = `${dependency} is unavailable`) {
    super(503, "service_unavailable", message, [{ message, dependency }], {
      "Retry-After": String(retryAfterSeconds),
    });
  }
}
