import Koa from "koa";
import Router from "@koa/router";
import compose from "koa-compose";
import type { Context, Next } from "koa";
import type { ApiDeps } from "./deps";
import { AppError, BadRequestError } from "../errors";
import { AuthFailureThrottle, authenticate, requireScope } from "./middleware/auth";
import { errorHandler } from "./middleware/errors";
import { DeliveryBudget } from "./middleware/delivery-budget";
import { rateLimit } from "./middleware/rate-limit";
import { requestContext } from "./middleware/request-context";
import { ackRoutes } from "./routes/acks";
import { eventRoutes, postEvent } from "./routes/events";
import { healthRoutes } from "./routes/health";
import { inboxRoutes } from "./routes/inbox";
import { subscriptionRoutes } from "./routes/subscriptions";
import { schemaRoutes } from "./routes/schemas";
import { openApiDocument } from "./openapi";

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
function boundQuery(ctx: Context, next: Next): Promise<void> {
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

/** The end of a chain that nothing follows. */
const noDownstream = async (): Promise<void> => {};

interface RouteLayer {
  match(path: string): boolean;
  readonly methods: readonly string[];
}

/** A request that matched no route but whose path exists answers 405 with the path's Allow list. */
function methodNotAllowed(routers: readonly Router[]) {
  const layers = routers.flatMap((r) => (r as unknown as { stack: RouteLayer[] }).stack).filter((l) => l.methods.length > 0);
  return async function allow(ctx: Context, next: Next): Promise<void> {
    await next();
    if (ctx.status !== 404 || ctx.body !== undefined) return;
    const methods = new Set<string>();
    for (const layer of layers) if (layer.match(ctx.path)) for (const m of layer.methods) methods.add(m);
    if (methods.size === 0) return;
    methods.add("OPTIONS");
    const list = [...methods].join(", ");
    if (ctx.method === "OPTIONS") {
      ctx.status = 204;
      ctx.set("Allow", list);
      return;
    }
    throw new AppError(405, "method_not_allowed", `${ctx.method} is not allowed on this path`, [], { Allow: list });
  };
}

/** Builds the Koa application (no listen): public routes first, then everything behind an API key. */
export function createApp(deps: ApiDeps): Koa {
  const trustProxy = deps.config.http?.trustProxy ?? false;
  // Behind a load balancer, the client address is the last X-Forwarded-For hop (the one it appended).
  const app = new Koa({ proxy: trustProxy, maxIpsCount: trustProxy ? 1 : 0 });
  app.silent = true; // errors are logged once, by errorHandler
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(errorHandler(deps.logger));
  app.use(boundQuery);

  const open = healthRoutes(deps);
  open.get("/metrics", async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  const openApiJson = JSON.stringify(openApiDocument); // constant: serialise once
  open.get("/openapi.json", (ctx) => {
    ctx.type = "application/json";
    ctx.body = openApiJson;
  });
  const budget = new DeliveryBudget({ perMinute: deps.config.limits.deliveryRowsPerMinutePerTenant, redis: deps.redis, prefix: deps.config.redisPrefix, logger: deps.logger });
  const routers = [eventRoutes(deps, budget), ackRoutes(deps), inboxRoutes(deps), subscriptionRoutes(deps), schemaRoutes(deps)];
  const auth = authenticate(deps.keys, new AuthFailureThrottle(deps.config.authFailuresPerMinute ?? 60));
  const limit = rateLimit({ defaultPerMinute: deps.config.limits.rateLimitPerMinute, redis: deps.redis, prefix: deps.config.redisPrefix, logger: deps.logger });
  // The ingest route, the one producers hit at volume, runs its chain directly: the same
  // middleware as behind the routers below, without matching every router's layers first.
  const ingest = compose([auth, limit, requireScope("events:write"), postEvent(deps, budget)]);
  app.use(function ingestRoute(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== "POST" || ctx.path !== "/events") return next();
    ctx.state.route = "/events";
    return ingest(ctx, noDownstream);
  });
  app.use(methodNotAllowed([open, ...routers]));
  app.use(open.routes());

  const secured = new Router();
  secured.use(auth);
  secured.use(limit);
  for (const r of routers) secured.use(r.routes(), r.allowedMethods({ throw: true }));
  app.use(secured.routes());
  return app;
}
