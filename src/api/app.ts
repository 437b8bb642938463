import Koa from "koa";
import Router from "@koa/router";
import type { ApiDeps } from "./deps";
import { authenticate } from "./middleware/auth";
import { errorHandler } from "./middleware/errors";
import { rateLimit } from "./middleware/rate-limit";
import { requestContext } from "./middleware/request-context";
import { ackRoutes } from "./routes/acks";
import { eventRoutes } from "./routes/events";
import { healthRoutes } from "./routes/health";
import { inboxRoutes } from "./routes/inbox";
import { subscriptionRoutes } from "./routes/subscriptions";
import { openApiDocument } from "./openapi";

/** Builds the Koa application (no listen): public routes first, then everything behind an API key. */
export function createApp(deps: ApiDeps): Koa {
  const app = new Koa({ proxy: false });
  app.silent = true; // errors are logged once, by errorHandler
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(errorHandler(deps.logger));

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
  app.use(open.routes());

  const secured = new Router();
  secured.use(authenticate(deps.keys));
  secured.use(
    rateLimit({ defaultPerMinute: deps.config.limits.rateLimitPerMinute, redis: deps.redis, prefix: deps.config.redisPrefix, logger: deps.logger }),
  );
  for (const r of [eventRoutes(deps), ackRoutes(deps), inboxRoutes(deps), subscriptionRoutes(deps)]) secured.use(r.routes(), r.allowedMethods({ throw: true }));
  app.use(secured.routes());
  return app;
}
