import type { Context, Next } from "koa";
import { AppError, errorBody, UnavailableError, type ErrorCode } from "../../errors";
import type { Logger } from "../../observability/logger";

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  414: "uri_too_long",
  415: "unsupported_media_type",
  429: "rate_limited",
  503: "service_unavailable",
};

/** Renders every error as {"error":{code,message,details}}; unknown errors become a logged, generic 500. */
export function errorHandler(logger: Logger) {
  return async function renderErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = errorBody("not_found", "no such route");
      }
    } catch (err) {
      render(ctx, err, logger);
    }
  };
}

function render(ctx: Context, err: unknown, logger: Logger): void {
  renderError(ctx, err, logger);
  // The unread rest of an oversized body is not worth receiving: answer, then close the connection.
  if (ctx.status === 413) ctx.set("Connection", "close");
}

function renderError(ctx: Context, err: unknown, logger: Logger): void {
  if (err instanceof AppError) {
    ctx.status = err.status;
    for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
    ctx.body = err.expose ? errorBody(err.code, err.message, err.details) : errorBody(err.code, "internal error");
    if (err.status >= 500) logger.warn({ err: { code: err.code, message: err.message }, requestId: ctx.state.requestId }, "request failed");
    return;
  }
  // Errors raised by Koa, its router or http-errors carry status/expose.
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown; headers?: unknown };
  const status = typeof e.status === "number" ? e.status : typeof e.statusCode === "number" ? e.statusCode : 500;
  if (status >= 400 && status < 500 && e.expose === true) {
    ctx.status = status;
    if (e.headers && typeof e.headers === "object") {
      for (const [k, v] of Object.entries(e.headers as Record<string, unknown>)) if (typeof v === "string") ctx.set(k, v);
    }
    ctx.body = errorBody(CODE_BY_STATUS[status] ?? "bad_request", String(e.message ?? "bad request"));
    return;
  }
  if (isDatabaseUnavailable(err)) {
    // A Postgres that is down, frozen or past a statement deadline is the dependency's failure,
    // not the client's: 503 + Retry-After, logged with its cause.
    logger.warn({ err: { message: errorMessage(err) }, requestId: ctx.state.requestId }, "postgres unavailable");
    renderError(ctx, new UnavailableError("postgres", 2, "the database is unavailable; retry later"), logger);
    return;
  }
  logger.error({ err, requestId: ctx.state.requestId }, "unhandled error");
  ctx.status = 500;
  ctx.body = errorBody("internal_error", "internal error");
}

/** Prisma codes of an unreachable, timed-out or closed database (P1001 reach, P1002/P1008 timeouts, P1017 closed, P2024 pool timeout). */
const UNAVAILABLE_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
/** What @prisma/adapter-pg calls a socket that failed (the `kind` of a driver adapter error). */
const UNAVAILABLE_KINDS = new Set(["ConnectionClosed", "SocketTimeout", "DatabaseNotReachable", "TooManyConnections"]);
/**
 * What pg, pg-pool, Postgres and Prisma say when a deadline passes or the connection goes, also
 * inside a raw query's P2010 ("Raw query failed. … Message: `Server has closed the connection.`")
 * a transaction that found no connection in time, and one that ran past its timeout (P2028).
 */
const UNAVAILABLE_MESSAGE =
  /Query read timeout|timeout exceeded when trying to connect|Connection terminated|canceling statement due to statement timeout|connection (?:is )?(?:closed|timeout)|has closed the connection|not queryable|Unable to start a transaction in the given time|expired transaction|Transaction already closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|socket has been ended|Can't reach database server|57014/i;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for errors (or their causes) that mean Postgres did not answer in time or could not be reached. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const o = e as { name?: unknown; code?: unknown; kind?: unknown; message?: unknown };
    if (o.name === "PrismaClientInitializationError") return true;
    if (typeof o.code === "string" && UNAVAILABLE_CODES.has(o.code)) return true;
    if (typeof o.kind === "string" && UNAVAILABLE_KINDS.has(o.kind)) return true;
    if (typeof o.message === "string" && UNAVAILABLE_MESSAGE.test(o.message)) return true;
  }
  return false;
}
