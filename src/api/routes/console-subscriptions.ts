import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { joiDetails } from "../../domain/envelope";
import { NotFoundError, ValidationError } from "../../errors";
import { redriveDead, replayEvents } from "../../store/events/replay-events";
import { STATS_BUCKET_SECONDS, STATS_COUNT_LIMIT, subscriptionStats } from "../../store/events/subscription-stats";
import { resolveSubscription, SUBSCRIPTION_NAME_PATTERN } from "../../store/subscriptions";
import type { ApiDeps } from "../deps";
import { instant, text } from "./console-params";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";


const replayBody = Joi.object({ since: instant().required(), until: instant().required() }).unknown(false);
const redriveBody = Joi.object({ type: text(128), source: text(256), tags: Joi.array().items(text(128)).max(10), since: instant(), until: instant() }).unknown(false);

const BODY_BYTES = 16 * 1024;

function validate<T>(schema: Joi.ObjectSchema, body: unknown, what: string): T {
  const { value, error } = schema.validate(body ?? {}, { abortEarly: false, convert: false });
  if (error) throw new ValidationError(`invalid ${what} body`, joiDetails(error));
  const v = value as { since?: Date; until?: Date };
  if (v.since && v.until && v.since >= v.until) throw new ValidationError(`invalid ${what} body`, [{ path: "until", message: "until must be after since" }]);
  return value as T;
}

/** The tenant's subscription of the path, or 404 (also for another tenant's). */
async function subscriptionOf(deps: ApiDeps, ctx: Context, tenantId: string): Promise<number> {
  const n = ctx.params.name;
  if (typeof n !== "string" || !SUBSCRIPTION_NAME_PATTERN.test(n)) throw new NotFoundError("subscription");
  const id = await resolveSubscription(deps.db.prisma, tenantId, n);
  if (id === null) throw new NotFoundError("subscription");
  return id;
}

/**
 * POST /subscriptions/{name}/replay, POST /subscriptions/{name}/redrive, GET /subscriptions/{name}/stats:
 * bulk changes of one subscription's deliveries (bounded per call) and its backlog in bounded counts.
 */
export function consoleSubscriptionRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.post("/subscriptions/:name/replay", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const body = validate<{ since: Date; until: Date }>(replayBody, await readJsonBody(ctx, BODY_BYTES), "replay");
    const subscriptionId = await subscriptionOf(deps, ctx, principal.tenantId);
    const r = await replayEvents(deps.db.prisma, principal.tenantId, subscriptionId, body.since, body.until);
    if (r.changed > 0) deps.wakeups.wakeTenant(principal.tenantId, null, r.changed);
    ctx.body = { replayed: r.changed, has_more: r.hasMore };
  });

  router.post("/subscriptions/:name/redrive", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const body = validate<{ type?: string; source?: string; tags?: string[]; since?: Date; until?: Date }>(redriveBody, await readJsonBody(ctx, BODY_BYTES, { optional: true }), "redrive");
    const subscriptionId = await subscriptionOf(deps, ctx, principal.tenantId);
    const r = await redriveDead(deps.db.prisma, principal.tenantId, subscriptionId, body);
    if (r.changed > 0) deps.wakeups.wakeTenant(principal.tenantId, null, r.changed);
    ctx.body = { redriven: r.changed, has_more: r.hasMore };
  });

  router.get("/subscriptions/:name/stats", requireScope("inbox:read"), async (ctx) => {
    const principal = principalOf(ctx);
    ctx.set("Cache-Control", "no-store");
    const subscriptionId = await subscriptionOf(deps, ctx, principal.tenantId);
    const s = await subscriptionStats(deps.db.prisma, principal.tenantId, subscriptionId);
    ctx.body = {
      counts: s.counts,
      count_limit: STATS_COUNT_LIMIT,
      oldest_pending_at: s.oldestPendingAt?.toISOString() ?? null,
      oldest_pending_age_seconds: s.oldestPendingAt ? Math.max(0, Math.round((s.now.getTime() - s.oldestPendingAt.getTime()) / 1000)) : null,
      bucket_seconds: STATS_BUCKET_SECONDS,
      buckets: s.buckets.map((b) => ({ start: b.start.toISOString(), received: b.received, backlog: b.backlog, complete: b.complete })),
    };
  });

  /** GET /key: the calling key's id and scopes, so a client offers only what the key may do. */
  router.get("/key", async (ctx) => {
    const principal = principalOf(ctx);
    ctx.set("Cache-Control", "no-store");
    ctx.body = { id: principal.keyId, scopes: [...principal.scopes].sort() };
  });
  return router;
}
