import { Type } from "@sinclair/typebox";
import { ConflictError, NotFoundError } from "../../errors";
import { ackEvent, ackEvents, ackLeases } from "../../store/events/ack-events";
import { notifyDeliverable } from "../../inbox/wakeups";
import { isRefused, type Refused } from "../../store/events/delivery-transition";
import { extendLease } from "../../store/events/extend-lease";
import { nackEvent } from "../../store/events/nack-event";
import { redriveEvent } from "../../store/events/redrive-event";
import type { Context } from "koa";
import type { ApiDeps } from "../deps";
import { operation } from "../contract/operation";
import { AcknowledgedSchema, BatchAckSchema, BatchLeaseAckSchema, EventId, EventViewSchema, ExtendedSchema, LeaseId, NackedSchema } from "../contract/schemas";
import { principalOf } from "../middleware/auth";
import { idParams, MAX_VISIBILITY_SECONDS, SUBSCRIPTION_RULE, subscriptionField, subscriptionId, subscriptionQuery } from "../params";
import { eventView } from "../views/event-view";

/** Largest batch ack. */
const MAX_BATCH_ACK = 1000;
/** Bodies of the single-event routes are a few fields; 4 KiB leaves ample room. */
const SMALL_BODY_BYTES = 4096;
/** 1000 ids of 30 characters with JSON punctuation stay far below this. */
const BATCH_BODY_BYTES = 64 * 1024;
/** Longest nack delay, seconds (12 h): a delay holds no lease, so it may be longer than one. */
export const MAX_NACK_DELAY_SECONDS = 43_200;

const leaseIdBody = (what: string) =>
  Type.Object({ lease_id: Type.Optional({ ...LeaseId, description: `Refuse (409 lease_expired) unless this is still the event's current lease, or the lease it was acknowledged under; ${what}.` }) }, { additionalProperties: false });
const batchAckBody = Type.Union([
  Type.Object({ ids: Type.Array(EventId, { minItems: 1, maxItems: MAX_BATCH_ACK }) }, { additionalProperties: false }),
  Type.Object({ leases: Type.Array(Type.Object({ id: EventId, lease_id: LeaseId }, { additionalProperties: false }), { minItems: 1, maxItems: MAX_BATCH_ACK }) }, { additionalProperties: false }),
]);
const nackBody = Type.Object(
  {
    delay_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_NACK_DELAY_SECONDS, default: 0 })),
    lease_id: { ...LeaseId, description: "The lease to end: refused (409 lease_expired) unless it is still the current lease." },
  },
  { additionalProperties: false },
);
const extendBody = Type.Object(
  {
    visibility_timeout: Type.Integer({ minimum: 1, maximum: MAX_VISIBILITY_SECONDS, description: "seconds" }),
    lease_id: { ...LeaseId, description: "The lease to extend, as GET /inbox handed it out." },
  },
  { additionalProperties: false },
);
const small = () => SMALL_BODY_BYTES;

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

const ACK_DESCRIPTION =
  "Idempotent: a second ack answers 200 with the first acknowledged_at. With lease_id, 409 lease_expired unless it is still the current lease (or, for a repeat, the lease the event was acknowledged under). " +
  "Without lease_id (the original contract, for simple consumers) it acknowledges whatever delivery is current, even one leased to another consumer after this one's lease expired, " +
  "but only of an event that was delivered to a consumer (leased at least once): 409 not_delivered for one nobody leased.";

/**
 * Acknowledges one event. With a lease id the caller must hold that lease (or have acknowledged
 * under it); by event id alone only an event delivered to a consumer is acknowledged (409
 * not_delivered otherwise). Another tenant's event is always 404.
 */
const ack = (deps: ApiDeps) => async (ctx: Context, id: string, lease: string | undefined, subscription: string | undefined) => {
  const principal = principalOf(ctx);
  const subscriptionNumber = await subscriptionId(deps, principal.tenantId, subscription);
  const acked = await ackEvent(deps.db.prisma, principal.tenantId, subscriptionNumber, id, lease);
  if (!acked) throw new NotFoundError("event");
  if (isRefused(acked)) throw refusalError(acked);
  if (acked.newly) deps.metrics.inboxAcks.inc();
  ctx.body = { id: acked.id, status: "acknowledged", acknowledged_at: acked.acknowledged_at.toISOString() };
};

export const ackEventOperation = operation({
  id: "ackEvent",
  method: "POST",
  path: "/events/{id}/ack",
  tag: "inbox",
  scope: "events:ack",
  summary: "Acknowledge an event",
  description: ACK_DESCRIPTION,
  params: idParams,
  query: subscriptionQuery,
  body: { schema: leaseIdBody("a repeat under the same lease answers 200"), required: false, limit: small },
  responses: { 200: { description: "Acknowledged", schema: AcknowledgedSchema } },
  errors: { 409: ["lease_expired", "not_delivered"] },
  rules: [SUBSCRIPTION_RULE],
  handler: (deps) => (ctx, { params, query, body }) => ack(deps)(ctx, params.id, body?.lease_id, query.subscription),
});

export const ackEventByDelete = operation({
  id: "ackEventByDelete",
  method: "DELETE",
  path: "/events/{id}/ack",
  tag: "inbox",
  scope: "events:ack",
  summary: "Acknowledge an event (DELETE form)",
  description: "The same as POST; the optional lease_id travels in the query string.",
  params: idParams,
  query: Type.Object({ subscription: subscriptionField, lease_id: Type.Optional({ ...LeaseId, description: "As lease_id of the POST body." }) }, { additionalProperties: false }),
  responses: { 200: { description: "Acknowledged", schema: AcknowledgedSchema } },
  errors: { 409: ["lease_expired", "not_delivered"] },
  rules: [SUBSCRIPTION_RULE],
  handler: (deps) => (ctx, { params, query }) => ack(deps)(ctx, params.id, query.lease_id, query.subscription),
});

export const ackEventsOperation = operation({
  id: "ackEvents",
  method: "POST",
  path: "/events/ack",
  tag: "inbox",
  scope: "events:ack",
  summary: `Acknowledge up to ${MAX_BATCH_ACK} events`,
  description:
    "Two forms (exactly one of them). {ids}: acknowledges whatever delivery of each event is current (no lease check), but only of an event that was delivered to a consumer " +
    "(leased at least once): ids of events nobody leased are listed in not_delivered and stay pending; idempotent per id; ids the tenant has no event for " +
    "(other tenants' included) are listed in not_found; answers {acknowledged, not_delivered, not_found}. {leases:[{id, lease_id}]}: acknowledges each event only if lease_id is still its " +
    "current lease (or the lease it was acknowledged under), like the single lease-bound ack; answers {results}, one per item in request order, status acknowledged, lease_expired or not_found.",
  query: subscriptionQuery,
  body: { schema: batchAckBody, required: true, limit: () => BATCH_BODY_BYTES },
  responses: { 200: { description: "The outcome per id ({ids}) or per item ({leases})", schema: Type.Union([BatchAckSchema, BatchLeaseAckSchema]) } },
  errors: { 404: ["not_found"] },
  rules: [SUBSCRIPTION_RULE],
  handler: (deps) => async (ctx, { query, body }) => {
    const principal = principalOf(ctx);
    const subscription = await subscriptionId(deps, principal.tenantId, query.subscription);
    if ("leases" in body) {
      const result = await ackLeases(deps.db.prisma, principal.tenantId, subscription, body.leases);
      if (result.newly > 0) deps.metrics.inboxAcks.inc(result.newly);
      ctx.body = { results: result.results };
      return;
    }
    const result = await ackEvents(deps.db.prisma, principal.tenantId, subscription, body.ids);
    if (result.newly > 0) deps.metrics.inboxAcks.inc(result.newly);
    ctx.body = { acknowledged: result.acknowledged, not_delivered: result.notDelivered, not_found: result.notFound };
  },
});

export const nackEventOperation = operation({
  id: "nackEvent",
  method: "POST",
  path: "/events/{id}/nack",
  tag: "inbox",
  scope: "events:ack",
  summary: "End the lease now",
  description:
    "The event becomes pending and deliverable again after delay_seconds (waking long polls then). lease_id is required (400 without): only the lease's holder may end it. " +
    "409 already_acknowledged, event_dead or lease_expired.",
  params: idParams,
  query: subscriptionQuery,
  body: { schema: nackBody, required: true, limit: small },
  responses: { 200: { description: "The lease ended", schema: NackedSchema } },
  errors: { 409: ["already_acknowledged", "event_dead", "lease_expired"] },
  rules: [SUBSCRIPTION_RULE],
  handler: (deps) => async (ctx, { params, query, body }) => {
    const principal = principalOf(ctx);
    const subscription = await subscriptionId(deps, principal.tenantId, query.subscription);
    const nacked = await nackEvent(deps.db.prisma, principal.tenantId, subscription, params.id, { delaySeconds: body.delay_seconds ?? 0, leaseId: body.lease_id });
    if (!nacked) throw new NotFoundError("event");
    if (isRefused(nacked)) throw refusalError(nacked);
    if (nacked.endedLease) deps.metrics.inboxNacks.inc();
    announceNack(deps, principal.tenantId, nacked.available_at);
    ctx.body = { id: nacked.id, status: nacked.status, available_at: nacked.available_at.toISOString() };
  },
});

export const extendLeaseOperation = operation({
  id: "extendLease",
  method: "POST",
  path: "/events/{id}/extend",
  tag: "inbox",
  scope: "events:ack",
  summary: "Extend (or shorten) the current lease",
  description:
    "Sets the lease to expire visibility_timeout seconds from now (at most the 1 h lease maximum), keeping its lease_id. lease_id is required (400 without). " +
    "409 lease_expired when it is not the current lease.",
  params: idParams,
  query: subscriptionQuery,
  body: { schema: extendBody, required: true, limit: small },
  responses: { 200: { description: "The lease now ends later", schema: ExtendedSchema } },
  errors: { 409: ["already_acknowledged", "lease_expired"] },
  rules: [SUBSCRIPTION_RULE],
  handler: (deps) => async (ctx, { params, query, body }) => {
    const principal = principalOf(ctx);
    const subscription = await subscriptionId(deps, principal.tenantId, query.subscription);
    const extended = await extendLease(deps.db.prisma, principal.tenantId, subscription, params.id, { visibilitySeconds: body.visibility_timeout, leaseId: body.lease_id });
    if (!extended) throw new NotFoundError("event");
    if (isRefused(extended)) throw refusalError(extended);
    ctx.body = { id: extended.id, status: "delivered", lease_id: extended.lease_id, lease_expires_at: extended.lease_expires_at.toISOString() };
  },
});

export const redriveEventOperation = operation({
  id: "redriveEvent",
  method: "POST",
  path: "/events/{id}/redrive",
  tag: "inbox",
  scope: "events:ack",
  summary: "Make a dead event deliverable again",
  description: "Resets delivery_count to 0. 409 not_dead for an event in any other status.",
  params: idParams,
  query: subscriptionQuery,
  responses: { 200: { description: "The event, pending again", schema: EventViewSchema } },
  errors: { 409: ["not_dead"] },
  rules: [SUBSCRIPTION_RULE],
  handler: (deps) => async (ctx, { params, query }) => {
    const principal = principalOf(ctx);
    const subscription = await subscriptionId(deps, principal.tenantId, query.subscription);
    const row = await redriveEvent(deps.db.prisma, principal.tenantId, subscription, params.id);
    if (!row) throw new NotFoundError("event");
    if (isRefused(row)) throw refusalError(row);
    ctx.body = eventView(row);
  },
});
