import { Type } from "@sinclair/typebox";
import { NOT_READY_RETRY_AFTER_SECONDS, readinessBody, runChecks, type ReadinessChecks } from "../../observability/readiness";
import { operation } from "../contract/operation";
import { HealthSchema, OpenApiSchema, ReadySchema } from "../contract/schemas";
import type { ApiDeps } from "../deps";
import { schemaCurrentCheck } from "../../store/schema-version";

/**
 * The API's dependencies: Postgres (keys, inbox) with every migration of this build applied, SQS
 * (ingest) and Redis when configured (limits, idempotency).
 */
export function apiReadinessChecks(deps: ApiDeps): ReadinessChecks {
  const checks: ReadinessChecks = {
    postgres: () => deps.db.ping(),
    schema: schemaCurrentCheck(deps.db.prisma),
    sqs: () => deps.queue.depth(),
  };
  const redis = deps.redis;
  if (redis) checks.redis = () => redis.ping();
  return checks;
}

const none = Type.Object({}, { additionalProperties: false });

/** GET /healthz: liveness, the process answers; checks nothing else, so a dependency outage never gets the process restarted. */
export const healthz = operation({
  id: "healthz",
  method: "GET",
  path: "/healthz",
  tag: "operations",
  scope: null,
  summary: "Liveness",
  description: "The process answers. Checks no dependency, so an outage of one never gets the process restarted.",
  query: none,
  responses: { 200: { description: "Alive", schema: HealthSchema } },
  handler: () => (ctx) => {
    ctx.body = { status: "ok" };
  },
});

/** GET /readyz: each dependency the API needs, each with a short timeout; 503 naming the failing ones. */
export const readyz = operation({
  id: "readyz",
  method: "GET",
  path: "/readyz",
  tag: "operations",
  scope: null,
  summary: "Readiness",
  description: "Checks Postgres (and that every migration of this build is applied: `schema`), SQS and (when configured) Redis, each with a 1.5 s timeout. 503 not_ready names each failing dependency in details[].dependency, with its message.",
  query: none,
  responses: { 200: { description: "Every dependency answers", schema: ReadySchema } },
  errors: { 503: ["not_ready"] },
  handler: (deps) => {
    const checks = apiReadinessChecks(deps);
    return async (ctx) => {
      const result = await runChecks(checks);
      if (!result.ok) {
        ctx.status = 503;
        ctx.set("Retry-After", String(NOT_READY_RETRY_AFTER_SECONDS));
      }
      ctx.body = readinessBody(result);
    };
  },
});

/** GET /metrics: Prometheus text exposition. */
export const metrics = operation({
  id: "metrics",
  method: "GET",
  path: "/metrics",
  tag: "operations",
  scope: null,
  summary: "Prometheus metrics",
  description: "Prometheus text exposition format 0.0.4; see docs/operations.md for the list.",
  query: none,
  responses: { 200: { description: "Metrics", contentType: "text/plain", schema: Type.String() } },
  handler: (deps) => async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  },
});

/** GET /openapi.json: the document derived from the route table, serialised once by the app. */
export const openapi = operation({
  id: "openapi",
  method: "GET",
  path: "/openapi.json",
  tag: "operations",
  scope: null,
  summary: "This document",
  query: none,
  responses: { 200: { description: "The OpenAPI 3.1 document", schema: OpenApiSchema } },
  handler: (deps) => (ctx) => {
    ctx.type = "application/json";
    ctx.body = deps.openApiJson;
  },
});
