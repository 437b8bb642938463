import type { Context, Next } from "koa";
import { AppError, BadRequestError } from "../errors";

/** Longest query string, bytes: checked on the raw URL before anything parses it (414 past it). */
export const MAX_QUERY_BYTES = 4096;
/** Most query parameters, counted with one linear scan before parsing (400 past it). */
export const MAX_QUERY_PARAMS = 64;

class UriTooLongError extends AppError {
  constructor() {
    super(414, "uri_too_long", `the query string exceeds ${MAX_QUERY_BYTES} bytes`);
  }
}

/**
 * Bounds the query string before Koa's parser sees it (that parser is quadratic in the number of
 * repeated parameters): one `indexOf` on requests without a query, one scan on the rest.
 */
export function boundQuery(ctx: Context, next: Next): Promise<void> {
  const url = ctx.req.url ?? "";
  const q = url.indexOf("?");
  if (q !== -1) {
    if (url.length - q - 1 > MAX_QUERY_BYTES) throw new UriTooLongError();
    let params = 1;
    for (let i = q + 1; i < url.length; i++) if (url.charCodeAt(i) === 38 /* & */) params++;
    if (params > MAX_QUERY_PARAMS) throw new BadRequestError("too_many_parameters", `at most ${MAX_QUERY_PARAMS} query parameters`);
  }
  return next();
}
