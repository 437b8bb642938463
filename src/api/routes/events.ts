import { Type } from "@sinclair/typebox";
import { checkBatchItem, ENVELOPE_LIMITS, MAX_BATCH_EVENTS, parseEnvelope, parseIdempotencyKey } from "../../domain/envelope";
import { itemError, NotFoundError, ValidationError, type AppError, type ErrorDetail } from "../../errors";
import { acceptEvents } from "../../ingest/accept-events";
import { getEvent } from "../../store/events/get-event";
import { operation } from "../contract/operation";
import {
  AcceptedBatchSchema,
  AcceptedEventSchema,
  BatchBody,
  EventDetailSchema,
  EventEnvelope,
  IdempotencyKey,
  PartialBatchSchema,
  QueuedEventSchema,
} from "../contract/schemas";
import { principalOf } from "../middleware/auth";
import { readJsonBody, readJsonBodyWithBytes } from "../middleware/json-body";
import { idParams, subscriptionId, subscriptionQuery } from "../params";
import { addHeader } from "../response-headers";
import { deliveryView, eventView } from "../views/event-view";

/**
 * The events of a batch body (BATCH_BODY_SCHEMA): `{"events":[…]}` with no other field, or the
 * bare array of 1 to MAX_BATCH_EVENTS events; 400 otherwise.
 */
function batchEvents(body: unknown): unknown[] {
  const isObject = body !== null && typeof body === "object" && !Array.isArray(body);
  if (isObject) {
    const extra = Object.keys(body).filter((k) => k !== "events");
    if (extra.length > 0) throw new ValidationError("the batch is invalid", extra.map((k) => ({ path: k, message: `"${k}" is not allowed` })));
  }
  const events = isObject ? (body as { events?: unknown }).events : body;
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_BATCH_EVENTS) {
    throw new ValidationError("the batch is invalid", [{ path: "events", message: `must be an array of 1 to ${MAX_BATCH_EVENTS} events` }]);
  }
  return events;
}

const ENVELOPE_RULES = [
  `payload nests at most ${ENVELOPE_LIMITS.payloadMaxDepth} levels deep (400 validation_failed)`,
  "no string or key of payload, and not source, holds a NUL character or an unpaired surrogate (400 validation_failed)",
  "occurred_at, read in UTC, is between 1900-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the pattern bounds the year as written, an offset can move it past a bound (400 validation_failed)",
  "the event, with the queue's metadata, fits one 256 KiB queue message (413 event_too_large)",
];

/** POST /events: one event, 202 once SQS has it (and the tenant's delivery-rows budget covers it). */
export const createEvent = operation({
  id: "createEvent",
  method: "POST",
  path: "/events",
  tag: "events",
  scope: "events:write",
  summary: "Accept one event",
  description:
    "Answers 202 only after SQS has durably accepted the event. 503 with Retry-After: `service_unavailable` when SQS is unreachable (the event is not on the queue), " +
    "`enqueue_outcome_unknown` when SQS did not confirm the send in time or dropped the connection after the request was written (the event may be on the queue: " +
    "retrying with the same Idempotency-Key is safe, retrying without one may store it twice). See docs/api-errors.md.",
  headers: [
    { name: "Idempotency-Key", description: "1–255 printable ASCII characters. A retry with the same key and body answers the same id (Idempotent-Replayed: true); another body answers 409.", schema: IdempotencyKey },
  ],
  body: { schema: EventEnvelope, required: true, limit: (deps) => deps.config.limits.maxEventBytes, read: "handler" },
  responses: {
    202: {
      description: "Accepted: the event is on the queue",
      schema: AcceptedEventSchema,
      headers: {
        Location: { description: "The event's URL", required: true, schema: { type: "string", pattern: "^/events/evt_[0-9A-HJKMNP-TV-Z]{26}$" } },
        "Idempotent-Replayed": "Idempotent-Replayed",
        "Idempotency-Pending": "Idempotency-Pending",
      },
    },
  },
  errors: { 400: ["event_refused_by_queue"], 409: ["idempotency_key_reused"], 413: ["event_too_large"], 429: ["delivery_rate_limited"], 503: ["enqueue_outcome_unknown"] },
  rules: ENVELOPE_RULES,
  handler: (deps) =>
    async function postEvent(ctx) {
      const principal = principalOf(ctx);
      const idempotencyKey = parseIdempotencyKey(ctx.headers["idempotency-key"]);
      const body = await readJsonBodyWithBytes(ctx, deps.config.limits.maxEventBytes);
      const envelope = parseEnvelope(body?.value);
      const charged = deps.budget.charge(ctx, principal, 1);
      if (charged) await charged;
      const [outcome] = await acceptEvents(deps.accept, principal.tenantId, [{ envelope, idempotencyKey, rawBody: body?.bytes }]);
      const a = outcome!;
      if (!a.ok) throw a.error;
      addHeader(ctx, "Location", `/events/${a.id}`);
      if (a.replayed) addHeader(ctx, "Idempotent-Replayed", "true");
      if (a.pending) addHeader(ctx, "Idempotency-Pending", "true");
      ctx.status = 202;
      ctx.body = { id: a.id, status: a.status, received_at: a.received_at };
    },
});

export const createEvents = operation({
  id: "createEvents",
  method: "POST",
  path: "/events/batch",
  tag: "events",
  scope: "events:write",
  summary: `Accept up to ${MAX_BATCH_EVENTS} events`,
  description:
    "Every event is validated before any is enqueued; a 400 names each bad index in `details`. " +
    "202: every event is on the queue. 207: the queue took some events and not others; `data` names each event by `index`, with its id when accepted " +
    "and its error (and whether a retry can succeed) when rejected: resend only the rejected ones. 503: the queue confirmed none (`service_unavailable`: none is on it; " +
    "`enqueue_outcome_unknown`: some may be on it, so retry with the same idempotency keys); retry the whole batch.",
  body: { schema: BatchBody, required: true, description: '`{"events":[…]}` or the bare array.', limit: (deps) => deps.config.limits.maxEventBytes * 4, read: "handler" },
  responses: {
    202: { description: "Accepted: every event is on the queue", schema: AcceptedBatchSchema, headers: { "Idempotency-Pending": "Idempotency-Pending" } },
    207: {
      description: "Partly accepted: each event's outcome, by index",
      schema: PartialBatchSchema,
      headers: {
        "Idempotency-Pending": "Idempotency-Pending",
        "Retry-After": { description: "Seconds to wait before resending the rejected events; present when one may succeed on retry", required: false, schema: { type: "integer", minimum: 0 } },
      },
    },
  },
  errors: { 409: ["idempotency_key_reused"], 413: ["event_too_large"], 429: ["delivery_rate_limited"], 503: ["enqueue_outcome_unknown"] },
  rules: [...ENVELOPE_RULES, "idempotency_key values are unique within the batch (400 validation_failed)"],
  handler: (deps) => async (ctx) => {
    const principal = principalOf(ctx);
    const body = await readJsonBody(ctx, deps.config.limits.maxEventBytes * 4);
    const events = batchEvents(body);
    const details: ErrorDetail[] = [];
    const inputs = events.map((item: unknown, index) => {
      const checked = checkBatchItem(item, index);
      if (!checked.ok) {
        details.push(...checked.details.map((d) => ({ ...d, path: `events.${index}${d.path ? `.${d.path}` : ""}` })));
        return null;
      }
      return { envelope: checked.value, idempotencyKey: checked.idempotencyKey };
    });
    const keys = inputs.flatMap((i) => (i?.idempotencyKey ? [i.idempotencyKey] : []));
    if (new Set(keys).size !== keys.length) details.push({ path: "events", message: "idempotency keys must be unique within a batch" });
    if (details.length > 0) throw new ValidationError("some events in the batch are invalid; none was accepted", details);
    // The whole batch is charged, or refused, at once.
    const charged = deps.budget.charge(ctx, principal, events.length);
    if (charged) await charged;
    const outcomes = await acceptEvents(deps.accept, principal.tenantId, inputs.filter((i) => i !== null));
    if (outcomes.some((o) => o.ok && o.pending)) ctx.set("Idempotency-Pending", "true");
    if (outcomes.every((o) => o.ok)) {
      ctx.status = 202;
      ctx.body = { data: outcomes.map((a) => ({ id: a.id, status: a.status, received_at: a.received_at, replayed: a.replayed })) };
      return;
    }
    // Nothing was accepted and a retry may work: the plain retryable 503 (Retry-After), and
    // enqueue_outcome_unknown when any of the events may be on the queue after all.
    if (outcomes.every((o) => !o.ok && o.retryable)) {
      const errors = outcomes.map((o) => (o as { error: AppError }).error);
      throw errors.find((e) => e.code === "enqueue_outcome_unknown") ?? errors[0]!;
    }
    // Some events are on the queue and some are not: name each one, so a retry resends only the rejected.
    ctx.status = 207;
    if (outcomes.some((o) => !o.ok && o.retryable)) ctx.set("Retry-After", "1");
    ctx.body = {
      data: outcomes.map((o, index) =>
        o.ok
          ? { index, id: o.id, status: o.status, received_at: o.received_at, replayed: o.replayed }
          : { index, status: "rejected", error: itemError(o.error), retryable: o.retryable },
      ),
    };
  },
});

export const getEventOperation = operation({
  id: "getEvent",
  method: "GET",
  path: "/events/{id}",
  tag: "events",
  scope: "inbox:read",
  summary: "Read one event",
  description:
    "The stored event once, with the delivery fields of `subscription` (default `default`; null when that subscription has no delivery of the event) and `deliveries`, its delivery state in every subscription; " +
    "or {id, status:\"queued\"} while it is still on its way from SQS to the database. Another tenant's event, and an unknown subscription, are 404.",
  params: idParams,
  query: subscriptionQuery,
  responses: { 200: { description: "The event", schema: Type.Union([EventDetailSchema, QueuedEventSchema]) } },
  handler: (deps) => async (ctx, { params, query }) => {
    const principal = principalOf(ctx);
    const id = params.id;
    const subscription = await subscriptionId(deps, principal.tenantId, query.subscription);
    const found = await getEvent(deps.db.prisma, principal.tenantId, id, subscription);
    if (found) {
      // The top-level state is the delivery of `subscription` (default `default`); `deliveries` lists every one.
      ctx.body = { ...eventView(found.row), deliveries: found.deliveries.map(deliveryView) };
      return;
    }
    // Accepted by this API but still on its way through SQS to the database.
    if (await deps.receipts.wasAccepted(principal.tenantId, id)) {
      ctx.body = { id, status: "queued" };
      return;
    }
    throw new NotFoundError("event");
  },
});
