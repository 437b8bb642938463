import Koa from "koa";
import type { ApiDeps } from "./deps";
import { dispatcher } from "./contract/dispatch";
import { openApiDocument } from "./contract/document";
import { AuthFailureThrottle, authenticate } from "./middleware/auth";
import { errorHandler } from "./middleware/errors";
import { DeliveryBudget } from "./middleware/delivery-budget";
import { rateLimit } from "./middleware/rate-limit";
import { requestContext } from "./middleware/request-context";
import { boundQuery } from "./query-bounds";
import { ROUTE_TABLE } from "./route-table";
import { consolePages } from "./routes/console";

export { MAX_QUERY_BYTES, MAX_QUERY_PARAMS } from "./query-bounds";

/** The OpenAPI document of the route table (constant: built once). */
export const openApi = openApiDocument(ROUTE_TABLE);

/**
 * Builds the Koa application (no listen): the request context, the one error renderer, the query
 * bounds, then the route table's dispatcher (every operation through authentication, the rate
 * limit and its scope unless public, its validators and its handler), and the console's static
 * page and assets beside it.
 */
export function createApp(deps: ApiDeps): Koa {
  const trustProxy = deps.config.http?.trustProxy ?? false;
  // Behind a load balancer, the client address is the last X-Forwarded-For hop (the one it appended).
  const app = new Koa({ proxy: trustProxy, maxIpsCount: trustProxy ? 1 : 0 });
  app.silent = true; // errors are logged once, by errorHandler
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(errorHandler(deps.logger));
  app.use(boundQuery);
  const budget = new DeliveryBudget({ perMinute: deps.config.limits.deliveryRowsPerMinutePerTenant, redis: deps.redis, prefix: deps.config.redisPrefix, logger: deps.logger });
  const auth = authenticate(deps.keys, new AuthFailureThrottle(deps.config.authFailuresPerMinute ?? 60));
  const limit = rateLimit({ defaultPerMinute: deps.config.limits.rateLimitPerMinute, redis: deps.redis, prefix: deps.config.redisPrefix, logger: deps.logger });
  app.use(dispatcher(ROUTE_TABLE, { ...deps, budget, openApiJson: JSON.stringify(openApi) }, [auth, limit]));
  // The console's page and assets: static files, not API operations (outside the table and /openapi.json).
  app.use(consolePages());
  return app;
}
