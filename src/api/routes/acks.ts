import Router from "@koa/router";
import Joi from "joi";
import type { Context } from "koa";
import { EVENT_ID_PATTERN } from "../../domain/ids";
import { joiDetails } from "../../domain/envelope";
import { ConflictError, NotFoundError, ValidationError } from "../../errors";
import { ackEvent, ackEvents, ackLeases } from "../../store/events/ack-events";
import { notifyDeliverable } from "../../inbox/wakeups";
import { isRefused, type Refused } from "../../store/events/delivery-transition";
import { extendLease } from "../../store/events/extend-lease";
import { nackEvent } from "../../store/events/nack-event";
import { redriveEvent } from "../../store/events/redrive-event";
import type { ApiDeps } from "../deps";
import { principalOf, requireScope } from "../middleware/auth";
import { readJsonBody } from "../middleware/json-body";
import { eventIdParam, MAX_VISIBILITY_SECONDS, subscriptionParam } from "../params";
import { eventView } from "../views/event-view";

/** Largest batch ack. */
const MAX_BATCH_ACK = 1000;
/** Bodies of the single-event routes are a few fields; 4 KiB leaves ample room. */
const SMALL_BODY_BYTES = 4096;
/** 1000 ids of 30 characters with JSON punctuation stay far below this. */
const BATCH_BODY_BYTES = 64 * 1024;

/**
 * A lease id in the one form this service issues (8-4-4-4-12 hex). Joi's guid() also takes
 * `{…}`, `(…)`, `[…]` and colon-separated forms, which Postgres's uuid cast then refuses.
 */
const leaseId = Joi.string()
  .pattern(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/)
  .messages({ "string.pattern.base": "{{#label}} must be a UUID (8-4-4-4-12 hex digits)" });
const ackBody = Joi.object({ lease_id: leaseId }).unknown(false);
const eventId = Joi.string().pattern(EVENT_ID_PATTERN).messages({ "string.pattern.base": "{{#label}} must be an event id (evt_…)" });
const batchAckBody = Joi.object({
  ids: Joi.array().items(eventId).min(1).max(MAX_BATCH_ACK),
  leases: Joi.array().items(Joi.object({ id: eventId.required(), lease_id: leaseId.required() }).unknown(false)).min(1).max(MAX_BATCH_ACK),
})
  .xor("ids", "leases")
  .unknown(false);
/** Longest nack delay, seconds (12 h): a delay holds no lease, so it may be longer than one. */
export const MAX_NACK_DELAY_SECONDS = 43_200;
const nackBody = Joi.object({
  delay_seconds: Joi.number().integer().min(0).max(MAX_NACK_DELAY_SECONDS).default(0),
  lease_id: leaseId.required(),
}).unknown(false);
const extendBody = Joi.object({
  visibility_timeout: Joi.number().integer().min(1).max(MAX_VISIBILITY_SECONDS).required(),
  lease_id: leaseId.required(),
}).unknown(false);

/**
 * A nacked event is deliverable again at `at`: waiters of this process are told at once, the other
 * API processes through the wake-up channel (in the background: the answer does not wait for it).
 */
function announceNack(deps: ApiDeps, tenantId: string, at: Date): void {
  deps.wakeups.dueAt(tenantId, at);
  notifyDeliverable(deps.db.prisma, new Map([[tenantId, null]]), at.getTime() > Date.now() ? at : undefined).catch((err: unknown) => {
    deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "could not notify long polls of a nack");
  });
}

/** The 409 of a transition the delivery's state refused. */
function refusalError(r: Refused): ConflictError {
  switch (r.refused) {
    case "lease_expired":
      return new ConflictError("lease_expired", "the lease is no longer current; the event may have been redelivered");
    case "not_delivered":
      return new ConflictError("not_delivered", "the event was never delivered to a consumer; lease it before acknowledging it");
    case "already_acknowledged":
      return new ConflictError("already_acknowledged", "the event is already acknowledged");
    case "event_dead":
      return new ConflictError("event_dead", "the event is dead; redrive it to deliver it again");
    case "not_dead":
      return new ConflictError("not_dead", `only a dead event can be redriven; this one is ${r.prior}`);
  }
}

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
  // With a lease id the caller must hold that lease (or have acknowledged under it); by event id
  // alone only an event delivered to a consumer is acknowledged (409 not_delivered otherwise).
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
    if (isRefused(acked)) throw refusalError(acked);
    if (acked.newly) deps.metrics.inboxAcks.inc();
    ctx.body = { id: acked.id, status: "acknowledged", acknowledged_at: acked.acknowledged_at.toISOString() };
  };
  router.post("/events/:id/ack", requireScope("events:ack"), ack);
  router.delete("/events/:id/ack", requireScope("events:ack"), ack);

  router.post("/events/ack", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const body = validateBody<{ ids?: string[]; leases?: Array<{ id: string; lease_id: string }> }>(batchAckBody, await readJsonBody(ctx, BATCH_BODY_BYTES), "batch ack");
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    if (body.leases) {
      const result = await ackLeases(deps.db.prisma, principal.tenantId, subscriptionId, body.leases);
      if (result.newly > 0) deps.metrics.inboxAcks.inc(result.newly);
      ctx.body = { results: result.results };
      return;
    }
    const result = await ackEvents(deps.db.prisma, principal.tenantId, subscriptionId, body.ids!);
    if (result.newly > 0) deps.metrics.inboxAcks.inc(result.newly);
    ctx.body = { acknowledged: result.acknowledged, not_delivered: result.notDelivered, not_found: result.notFound };
  });

  router.post("/events/:id/nack", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const body = await readJsonBody(ctx, SMALL_BODY_BYTES, { optional: true });
    const v = validateBody<{ delay_seconds: number; lease_id: string }>(nackBody, body ?? {}, "nack");
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const nacked = await nackEvent(deps.db.prisma, principal.tenantId, subscriptionId, id, { delaySeconds: v.delay_seconds, leaseId: v.lease_id });
    if (!nacked) throw new NotFoundError("event");
    if (isRefused(nacked)) throw refusalError(nacked);
    if (nacked.endedLease) deps.metrics.inboxNacks.inc();
    announceNack(deps, principal.tenantId, nacked.available_at);
    ctx.body = { id: nacked.id, status: nacked.status, available_at: nacked.available_at.toISOString() };
  });

  router.post("/events/:id/extend", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const v = validateBody<{ visibility_timeout: number; lease_id: string }>(extendBody, await readJsonBody(ctx, SMALL_BODY_BYTES), "extend");
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const extended = await extendLease(deps.db.prisma, principal.tenantId, subscriptionId, id, { visibilitySeconds: v.visibility_timeout, leaseId: v.lease_id });
    if (!extended) throw new NotFoundError("event");
    if (isRefused(extended)) throw refusalError(extended);
    ctx.body = { id: extended.id, status: "delivered", lease_id: extended.lease_id, lease_expires_at: extended.lease_expires_at.toISOString() };
  });

  router.post("/events/:id/redrive", requireScope("events:ack"), async (ctx) => {
    const principal = principalOf(ctx);
    const id = eventIdParam(ctx);
    const subscriptionId = await subscriptionParam(deps, ctx, principal.tenantId);
    const row = await redriveEvent(deps.db.prisma, principal.tenantId, subscriptionId, id);
    if (!row) throw new NotFoundError("event");
    if (isRefused(row)) throw refusalError(row);
    ctx.body = eventView(row);
  });
  return router;
}
