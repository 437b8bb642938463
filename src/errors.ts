/**
 * Typed errors. Each carries an HTTP status, a stable snake_case code and whether its message
 * is safe to show; src/api/middleware/errors.ts renders them, and anything else becomes a
 * generic 500 whose message is never shown.
 */
/**
 * Every error code the HTTP API sends, with the status it is sent with: the enumerated set
 * /openapi.json declares (each error response lists the codes of its status). A code missing here
 * does not compile where AppError is raised; test/integration/openapi.test.ts also scans src/ for
 * code literals that bypass AppError.
 */
export const ERROR_CODES = Object.freeze({
  validation_failed: 400,
  bad_request: 400,
  invalid_json: 400,
  invalid_body: 400,
  invalid_encoding: 400,
  forbidden_key: 400,
  unrepresentable_number: 400,
  too_many_parameters: 400,
  invalid_cursor: 400,
  event_refused_by_queue: 400,
  invalid_schema: 400,
  schema_limit_exceeded: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  idempotency_key_reused: 409,
  lease_expired: 409,
  not_delivered: 409,
  already_acknowledged: 409,
  event_dead: 409,
  not_dead: 409,
  subscription_exists: 409,
  default_subscription: 409,
  subscription_quota_exceeded: 409,
  schema_incompatible: 409,
  schema_quota_exceeded: 409,
  payload_too_large: 413,
  event_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  schema_validation_failed: 422,
  rate_limited: 429,
  too_many_failed_authentications: 429,
  long_poll_quota_exceeded: 429,
  delivery_rate_limited: 429,
  request_header_fields_too_large: 431,
  internal_error: 500,
  service_unavailable: 503,
  enqueue_outcome_unknown: 503,
  not_ready: 503,
} as const);

/** A code of ERROR_CODES. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes sent with one status, in ERROR_CODES order. */
export function codesOfStatus(status: number): ErrorCode[] {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => ERROR_CODES[c] === status);
}

/** The body every error answer carries. */
export function errorBody(code: ErrorCode, message: string, details: readonly ErrorDetail[] = []): { error: { code: ErrorCode; message: string; details: readonly ErrorDetail[] } } {
  return { error: { code, message, details } };
}

/**
 * The `error` of one item of a 207 answer (an event of a batch the queue did not take): the code
 * and message an error answer of its own would carry, without details.
 */
export function itemError(err: AppError): { code: ErrorCode; message: string } {
  return { code: err.code, message: err.message };
}

export interface ErrorDetail {
  readonly path?: string;
  readonly index?: number;
  readonly message: string;
  readonly [key: string]: unknown;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
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
  constructor(code: ErrorCode, message: string) {
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
  constructor(code: ErrorCode, message: string) {
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

/**
 * The tenant's delivery-rows budget (DELIVERY_ROWS_PER_MINUTE_PER_TENANT) cannot cover this
 * request's events times the rows each writes; nothing of the request was accepted.
 */
export class DeliveryRateLimitedError extends AppError {
  constructor(perMinute: number, retryAfterSeconds: number, headers: Record<string, string> = {}) {
    super(
      429,
      "delivery_rate_limited",
      `this tenant's events would write more than ${perMinute} rows (each event plus one delivery per subscription) this minute; none was accepted; retry in ${retryAfterSeconds} s`,
      [{ message: "delivery-rows budget exceeded", limit: perMinute }],
      { ...headers, "Retry-After": String(retryAfterSeconds) },
    );
  }
}

/**
 * The queue did not confirm an event and may still have taken it (its send passed its deadline or
 * lost its connection after the request was written). A retry with the same Idempotency-Key is
 * safe; a retry without one may store the event twice. See docs/api-errors.md.
 */
export class EnqueueOutcomeUnknownError extends AppError {
  constructor(retryAfterSeconds = 1) {
    const message = "the event queue did not confirm this event and may have taken it; retry with the same Idempotency-Key (without one, a retry may store it twice)";
    super(503, "enqueue_outcome_unknown", message, [{ message, dependency: "sqs" }], { "Retry-After": String(retryAfterSeconds) });
  }
}

/** A long poll past its API key's or tenant's quota of concurrent long polls (answered at once, never queued). */
export class LongPollQuotaError extends AppError {
  constructor(scope: "key" | "tenant", limit: number, retryAfterSeconds: number) {
    super(429, "long_poll_quota_exceeded", `this ${scope === "key" ? "API key" : "tenant"} already has ${limit} long polls waiting; retry in ${retryAfterSeconds} s`, [{ message: "long-poll quota exceeded", scope, limit }], {
      "Retry-After": String(retryAfterSeconds),
    });
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

/** The message of any thrown value, for a log field or a wrapping error's message. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Events whose data does not match their type's registered schema (docs/schemas.md): each detail
 * names a JSON pointer into the data, the message, and for a batch the item's index. Nothing of
 * the request was accepted.
 */
export class SchemaValidationError extends AppError {
  constructor(message: string, details: readonly ErrorDetail[]) {
    super(422, "schema_validation_failed", message, details);
  }
}

/** A schema beyond one of the registry's bounds (docs/quotas.md); `limit` names it. */
export class SchemaLimitError extends AppError {
  constructor(limit: string, message: string, max?: number) {
    super(400, "schema_limit_exceeded", message, [{ message, limit, ...(max === undefined ? {} : { max }) }]);
  }
}

/** A schema version the backward-compatibility rule cannot prove accepts every event the previous version accepts (docs/schemas.md). */
export class SchemaIncompatibleError extends AppError {
  constructor(previousVersion: number, reasons: readonly string[]) {
    super(
      409,
      "schema_incompatible",
      `the schema is not backward compatible with version ${previousVersion} (it may refuse events that version accepts); send "compatibility": "none" to register it anyway`,
      reasons.map((message) => ({ message, version: previousVersion })),
    );
  }
}
