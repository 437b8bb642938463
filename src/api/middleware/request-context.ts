import { randomUUID } from "node:crypto";
import type { Context, Next } from "koa";
import { requestLogWriter, type Logger } from "../../observability/logger";
import { addHeader, applyHeaders } from "../response-headers";
import type { Metrics } from "../../observability/metrics";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The label of requests that matched no route: keeps the metric's label set bounded whatever clients send. */
export const UNMATCHED_ROUTE = "unmatched";

/** The route template of a request (`/events/:id`), as the route table's dispatcher matched it, or `unmatched`. */
export function routeTemplate(ctx: Context): string {
  const route: unknown = ctx.state.route;
  return typeof route === "string" ? route : UNMATCHED_ROUTE;
}

/**
 * Gives each request an id (a well-formed X-Request-Id is kept, otherwise one is made), returns it,
 * and writes one log line and the HTTP metrics when the request ends. The line carries the tenant
 * and key id but never the key, the Authorization header, the query string or a body.
 */
export function requestContext(logger: Logger, metrics: Metrics) {
  const requestLog = requestLogWriter(logger);
  // The labelled series of each (method, route, status), looked up once instead of hashing the
  // labels on every request. Bounded: routes are templates, methods and statuses few.
  // Keyed by method, then route, then status: no key string is built per request.
  type Series = { count: { inc(): void }; duration: { observe(v: number): void } };
  const series = new Map<string, Map<string, Map<number, Series>>>();
  let seriesCount = 0;
  const seriesOf = (method: string, route: string, status: number): Series => {
    let byRoute = series.get(method);
    if (!byRoute) series.set(method, (byRoute = new Map()));
    let byStatus = byRoute.get(route);
    if (!byStatus) byRoute.set(route, (byStatus = new Map()));
    let m = byStatus.get(status);
    if (!m) {
      if (++seriesCount > 1000) {
        series.clear();
        seriesCount = 0;
      }
      m = { count: metrics.httpRequests.labels({ method, route, status: String(status) }), duration: metrics.httpDuration.labels({ method, route }) };
      byStatus.set(status, m);
    }
    return m;
  };
  return async function context(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    const incoming = ctx.req.headers["x-request-id"];
    const requestId = typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    addHeader(ctx, "X-Request-Id", requestId);
    try {
      await next();
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const route = routeTemplate(ctx);
      const m = seriesOf(ctx.method, route, ctx.status);
      m.count.inc();
      m.duration.observe(seconds);
      const principal = ctx.state.principal as { tenantId: string; keyId: string } | undefined;
      requestLog({
        requestId,
        method: ctx.method,
        route,
        path: ctx.path,
        status: ctx.status,
        ms: Math.round(seconds * 1e6) / 1e3,
        tenant: principal?.tenantId,
        keyId: principal?.keyId,
      });
      // Last, so the log line and metrics are recorded even if a header cannot be set.
      applyHeaders(ctx);
    }
  };
}
