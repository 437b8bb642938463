import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { EVENT_ID_PATTERN } from "../../domain/ids";
import { joiDetails } from "../../domain/envelope";
import { NotFoundError, ValidationError } from "../../errors";
import { ackEvent, ackEvents } from "../../store/events/ack-events";
import { eventView } from "../../store/events/event-row";
import { extendLease } from "../../store/events/extend-lease";
import { nackEvent } from "../../store/events/nack-event";
import { redriveEvent } from "../../store/events/redrive-event";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";
import { eventIdParam } from "./events";
import { MAX_VISIBILITY_SECONDS } from "./inbox";
import { subscriptionParam } from "./subscription-param";

/** Largest batch ack. */
const MAX_BATCH_ACK = 1000;
/** Bodies of the single-event routes are a few fields; 4 KiB leaves ample room. */
const SMALL_BODY_BYTES = 4096;
/** 1000 ids of 30 characters with JSON punctuation stay far below this. */
const BATCH_BODY_BYTES = 64 * 1024;

const leaseId = Joi.string().guid();
const ackBody = Joi.object({ lease_id: leaseId }).unknown(false);
const batchAckBody = Joi.object({
  ids: Joi.array().items(Joi.string().pattern(EVENT_ID_PATTERN).messages({ "string.pattern.base": "{{#label}} must be an event id (evt_…)" })).min(1).max(MAX_BATCH_ACK).required(),
}).unknown(false);
const nackBody = Joi.object({
  delay_seconds: Joi.number().integer().min(0).max(MAX_VISIBILITY_SECONDS).default(0),
  lease_id: leaseId,
}).unknown(false);
const extendBody = Joi.object({
  visibility_timeout: Joi.number().integer().min(1).max(MAX_VISIBILITY_SECONDS).required(),
  lease_id: leaseId,
}).unknown(false);

/** Validates a body (JSON numbers stay numbers: no string-to-number conversion). */
function validateBody<T>(schema: Joi.ObjectSchema, body: unknown, what: string): T {
  const { value, error } = schema.validate(body, { abortEarly: false, convert: false });
  if (error) throw new ValidationError(`invalid ${what} body`, joiDetails(error));
  return value as T;
}

/**
 * POST|DELETE /events/{id}/ack, POST /events/ack (batch), POST /events/{id}/nack,
 * POST /events/{id}/extend, POST /events/{id}/redrive. Another tenant's event is always 404.
 */
export function ackRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const ack = async (ctx: Context) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const body = ctx.method === "POST" ? await readJsonBody(ctx, SMALL_BODY_BYTES, { optional: true }) : undefined;
    const value = validateBody<{ lease_id?: string }>(ackBody, body ?? {}, "ack");
    // DELETE has no body, so its lease_id travels in the query string.
    const queryLease = ctx.query.lease_id;
    const lease = value.lease_id ?? (queryLease === undefined ? undefined : queryLease);
    if (lease !== undefined && (typeof lease !== "string" || leaseId.validate(lease).error)) {
      throw new ValidationError("invalid lease_id", [{ path: "lease_id", message: "must be a UUID" }]);
    }
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const acked = await ackEvent(deps.db.prisma, principal.tenantId, subscriptionId, id, lease);
    if (!acked) throw new NotFoundError("event");
    if (acked.newly) deps.metrics.inboxAcks.inc();
    ctx.body = { id: acked.id, status: "acknowledged", acknowledged_at: acked.acknowledged_at.toISOString() };
  };
  router.post("/events/:id/ack", requireScope("events:ack"), ack);
  router.delete("/events/:id/ack", requireScope("events:ack"), ack);

  router.post("/events/ack", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const { ids } = validateBody<{ ids: string[] }>(batchAckBody, await readJsonBody(ctx, BATCH_BODY_BYTES), "batch ack");
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const result = await ackEvents(deps.db.prisma, principal.tenantId, subscriptionId, ids);
    if (result.newly > 0) deps.metrics.inboxAcks.inc(result.newly);
    ctx.body = { acknowledged: result.acknowledged, not_found: result.notFound };
  });

  router.post("/events/:id/nack", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const body = await readJsonBody(ctx, SMALL_BODY_BYTES, { optional: true });
    const v = validateBody<{ delay_seconds: number; lease_id?: string }>(nackBody, body ?? {}, "nack");
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const nacked = await nackEvent(deps.db.prisma, principal.tenantId, subscriptionId, id, { delaySeconds: v.delay_seconds, leaseId: v.lease_id });
    if (!nacked) throw new NotFoundError("event");
    if (nacked.endedLease) deps.metrics.inboxNacks.inc();
    ctx.body = { id: nacked.id, status: nacked.status, available_at: nacked.available_at.toISOString() };
  });

  router.post("/events/:id/extend", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const v = validateBody<{ visibility_timeout: number; lease_id?: string }>(extendBody, await readJsonBody(ctx, SMALL_BODY_BYTES), "extend");
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const extended = await extendLease(deps.db.prisma, principal.tenantId, subscriptionId, id, { visibilitySeconds: v.visibility_timeout, leaseId: v.lease_id });
    if (!extended) throw new NotFoundError("event");
    ctx.body = { id: extended.id, status: "delivered", lease_id: extended.lease_id, lease_expires_at: extended.lease_expires_at.toISOString() };
  });

  router.post("/events/:id/redrive", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const row = await redriveEvent(deps.db.prisma, principal.tenantId, subscriptionId, id);
    if (!row) throw new NotFoundError("event");
    ctx.body = eventView(row);
  });
  return router;
}
