import Router from "@koa/router";
import { NOT_READY_RETRY_AFTER_SECONDS, readinessBody, runChecks, type ReadinessChecks } from "../../observability/readiness";
import type { ApiDeps } from "../deps";

/** The API's dependencies: Postgres (keys, inbox), SQS (ingest) and Redis when configured (limits, idempotency). */
export function apiReadinessChecks(deps: ApiDeps): ReadinessChecks {
  const checks: ReadinessChecks = {
    postgres: () => deps.db.ping(),
    sqs: () => deps.queue.depth(),
  };
  const redis = deps.redis;
  if (redis) checks.redis = () => redis.ping();
  return checks;
}

/**
 * GET /healthz (liveness: the process answers; checks nothing else, so a dependency outage never
 * gets the process restarted) and GET /readyz (each dependency the API needs, each with a short
 * timeout; 503 naming the failing ones).
 */
export function healthRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get("/healthz", (ctx) => {
    ctx.body = { status: "ok" };
  });
  router.get("/readyz", async (ctx) => {
    const result = await runChecks(apiReadinessChecks(deps));
    if (!result.ok) {
      ctx.status = 503;
      ctx.set("Retry-After", String(NOT_READY_RETRY_AFTER_SECONDS));
    }
    ctx.body = readinessBody(result);
  });
  return router;
}
