import type { Context, Next } from "koa";
import { AppError, errorBody, errorMessage, UnavailableError, type ErrorCode } from "../../errors";
import { classifyDatabaseError } from "../../store/db-errors";
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
  if (classifyDatabaseError(err) === "unavailable") {
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
