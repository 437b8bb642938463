import { Type } from "@sinclair/typebox";
import type { Context } from "koa";
import { CE_BATCH, CE_STRUCTURED, isBinaryMode, isJsonMediaType, parseBatch, parseBinary, parseStructured, toCloudEvent, type ParsedCloudEvent } from "../../domain/cloudevents";
import { checkBatchItem, ENVELOPE_LIMITS, MAX_BATCH_EVENTS, parseEnvelope, parseIdempotencyKey, type EventEnvelope as Envelope } from "../../domain/envelope";
import { itemError, NotFoundError, ValidationError, type AppError, type ErrorDetail } from "../../errors";
import { acceptEvents, type AcceptInput } from "../../ingest/accept-events";
import { checkSchemas } from "../../schemas/check-events";
import { getEvent } from "../../store/events/get-event";
import type { ApiDeps } from "../deps";
import { operation, type HeaderParam } from "../contract/operation";
import {
  AcceptedBatchSchema,
  AcceptedEventSchema,
  BatchBody,
  CloudEventBatchIn,
  CloudEventInSchema,
  CloudEventSchema,
  EventDetailSchema,
  EventEnvelope,
  IdempotencyKey,
  PartialBatchSchema,
  QueuedEventSchema,
} from "../contract/schemas";
import { principalOf } from "../middleware/auth";
import { readJsonBody, readJsonBodyWithBytes, readRawBody } from "../middleware/json-body";
import { idParams, subscriptionId, subscriptionQuery } from "../params";
import { addHeader, reply } from "../response-headers";
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

/** A CloudEvent of POST /events: binary mode (`ce-*` headers, the body is the data) or structured mode; 400 naming the attribute. */
async function readCloudEvent(ctx: Context, limit: number): Promise<ParsedCloudEvent> {
  let result;
  if (isBinaryMode(ctx.headers)) {
    const contentType = ctx.headers["content-type"] || undefined;
    if (contentType !== undefined && isJsonMediaType(contentType)) {
      const body = await readJsonBodyWithBytes(ctx, limit, { optional: true });
      result = parseBinary(ctx.headers, { contentType, bytes: body?.bytes ?? Buffer.alloc(0), ...(body ? { json: { value: body.value } } : {}) });
    } else {
      result = parseBinary(ctx.headers, { contentType, bytes: await readRawBody(ctx, limit) });
    }
  } else {
    result = parseStructured((await readJsonBodyWithBytes(ctx, limit))?.value);
  }
  if (!result.ok) throw new ValidationError("the CloudEvent is invalid", result.details);
  return result.value;
}

/** The schema versions of validated events (a 422 when one does not match its type's schema). */
function schemaVersionsOf(deps: ApiDeps, tenantId: string, envelopes: readonly Envelope[], batch: boolean) {
  return checkSchemas(deps.schemas, tenantId, envelopes, batch);
}

/** Binary mode's required attribute headers (CloudEvents HTTP binding): the body is the data, Content-Type its datacontenttype. */
const ceHeader = (name: string, description: string): HeaderParam => ({ name: `ce-${name}`, description, schema: Type.String({ minLength: 1 }) });
const CE_BINARY_HEADERS: readonly HeaderParam[] = [
  ceHeader("specversion", 'Binary mode (CloudEvents HTTP binding): "1.0". Its presence selects binary mode; the other attributes are ce-* headers (percent-encoded), extensions included.'),
  ceHeader("id", "Binary mode: the event's id"),
  ceHeader("source", "Binary mode: the event's source"),
  ceHeader("type", "Binary mode: the event's type"),
];

const SCHEMA_RULE = "the data of an event whose type has a registered schema matches its latest version (422 schema_validation_failed, each detail a JSON pointer into the data)";
const CLOUDEVENT_RULES = [
  "a CloudEvent (structured, binary or batch mode) follows CloudEvents 1.0: specversion 1.0, id, source and type present, attribute names of lower-case letters and digits, no extension named triggers…, no attribute holding a NUL character or an unpaired surrogate, data and data_base64 not both, time within occurred_at's bounds (400 validation_failed naming the attribute)",
];

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
    {
      name: "Idempotency-Key",
      description:
        "1–255 printable ASCII characters. A retry with the same key and body answers the same id (Idempotent-Replayed: true); another body answers 409. A CloudEvent without one is keyed by its source and id.",
      schema: IdempotencyKey,
    },
    ...CE_BINARY_HEADERS,
  ],
  body: {
    schema: EventEnvelope,
    required: true,
    description:
      "An envelope (application/json), a CloudEvent in structured mode (application/cloudevents+json), or in binary mode the event's data of any media type with its attributes in ce-* headers (docs/cloudevents.md).",
    limit: (deps) => deps.config.limits.maxEventBytes,
    read: "handler",
    alternatives: { [CE_STRUCTURED]: CloudEventInSchema, "*/*": null },
  },
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
  errors: {
    400: ["event_refused_by_queue"],
    409: ["idempotency_key_reused"],
    413: ["event_too_large"],
    422: ["schema_validation_failed"],
    429: ["delivery_rate_limited"],
    503: ["enqueue_outcome_unknown"],
  },
  rules: [...ENVELOPE_RULES, ...CLOUDEVENT_RULES, SCHEMA_RULE],
  handler: (deps) =>
    async function postEvent(ctx) {
      const principal = principalOf(ctx);
      let idempotencyKey = parseIdempotencyKey(ctx.headers["idempotency-key"]);
      let envelope: Envelope;
      let rawBody: Buffer | undefined;
      if (isBinaryMode(ctx.headers) || (ctx.headers["content-type"] !== "application/json" && ctx.is(CE_STRUCTURED))) {
        const ce = await readCloudEvent(ctx, deps.config.limits.maxEventBytes);
        envelope = ce.envelope;
        // The spec: source and id identify an event; an explicit Idempotency-Key takes precedence.
        idempotencyKey ??= ce.derivedKey;
      } else {
        const body = await readJsonBodyWithBytes(ctx, deps.config.limits.maxEventBytes);
        envelope = parseEnvelope(body?.value);
        rawBody = body?.bytes;
      }
      const checked = schemaVersionsOf(deps, principal.tenantId, [envelope], false);
      const [schemaVersion] = Array.isArray(checked) ? checked : await checked;
      const charged = deps.budget.charge(ctx, principal, 1);
      if (charged) await charged;
      const [outcome] = await acceptEvents(deps.accept, principal.tenantId, [{ envelope, idempotencyKey, rawBody, ...(schemaVersion === undefined ? {} : { schemaVersion }) }]);
      const a = outcome!;
      if (!a.ok) throw a.error;
      addHeader(ctx, "Location", `/events/${a.id}`);
      if (a.replayed) addHeader(ctx, "Idempotent-Replayed", "true");
      if (a.pending) addHeader(ctx, "Idempotency-Pending", "true");
      reply(ctx, 202, { id: a.id, status: a.status, received_at: a.received_at });
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
  body: {
    schema: BatchBody,
    required: true,
    description: '`{"events":[…]}` or the bare array, or a CloudEvents batch (application/cloudevents-batch+json; each event keyed by its source and id).',
    limit: (deps) => deps.config.limits.maxEventBytes * 4,
    read: "handler",
    alternatives: { [CE_BATCH]: CloudEventBatchIn },
  },
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
  errors: { 409: ["idempotency_key_reused"], 413: ["event_too_large"], 422: ["schema_validation_failed"], 429: ["delivery_rate_limited"], 503: ["enqueue_outcome_unknown"] },
  rules: [...ENVELOPE_RULES, ...CLOUDEVENT_RULES, "idempotency_key values (a CloudEvent's source and id) are unique within the batch (400 validation_failed)", SCHEMA_RULE],
  handler: (deps) => async (ctx) => {
    const principal = principalOf(ctx);
    const body = await readJsonBody(ctx, deps.config.limits.maxEventBytes * 4);
    const details: ErrorDetail[] = [];
    let inputs: Array<AcceptInput | null>;
    if (ctx.is(CE_BATCH)) {
      // CloudEvents batch mode: each event's idempotency key is derived from its source and id.
      const parsed = parseBatch(body, MAX_BATCH_EVENTS);
      if (!parsed.ok) throw new ValidationError("some events in the batch are invalid; none was accepted", parsed.details);
      inputs = parsed.events.map((e) => ({ envelope: e.envelope, idempotencyKey: e.derivedKey }));
    } else {
      inputs = batchEvents(body).map((item: unknown, index) => {
        const checked = checkBatchItem(item, index);
        if (!checked.ok) {
          details.push(...checked.details.map((d) => ({ ...d, path: `events.${index}${d.path ? `.${d.path}` : ""}` })));
          return null;
        }
        return { envelope: checked.value, idempotencyKey: checked.idempotencyKey };
      });
    }
    const keys = inputs.flatMap((i) => (i?.idempotencyKey ? [i.idempotencyKey] : []));
    if (new Set(keys).size !== keys.length) details.push({ path: "events", message: "idempotency keys (a CloudEvent's source and id) must be unique within a batch" });
    if (details.length > 0) throw new ValidationError("some events in the batch are invalid; none was accepted", details);
    const valid = inputs.filter((i) => i !== null);
    const checked = schemaVersionsOf(deps, principal.tenantId, valid.map((i) => i.envelope), true);
    const versions = Array.isArray(checked) ? checked : await checked;
    const events = valid.map((i, index) => (versions[index] === undefined ? i : { ...i, schemaVersion: versions[index] }));
    // The whole batch is charged, or refused, at once.
    const charged = deps.budget.charge(ctx, principal, events.length);
    if (charged) await charged;
    const outcomes = await acceptEvents(deps.accept, principal.tenantId, events);
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
    "or {id, status:\"queued\"} while it is still on its way from SQS to the database. Another tenant's event, and an unknown subscription, are 404. " +
    "With Accept: application/cloudevents+json (preferred to application/json), a stored event is answered as a CloudEvent, without its deliveries (docs/cloudevents.md).",
  params: idParams,
  query: subscriptionQuery,
  responses: { 200: { description: "The event", schema: Type.Union([EventDetailSchema, QueuedEventSchema]), alternatives: { [CE_STRUCTURED]: CloudEventSchema } } },
  handler: (deps) => async (ctx, { params, query }) => {
    const principal = principalOf(ctx);
    const id = params.id;
    const subscription = await subscriptionId(deps, principal.tenantId, query.subscription);
    const found = await getEvent(deps.db.prisma, principal.tenantId, id, subscription);
    if (found && ctx.accepts("application/json", CE_STRUCTURED) === CE_STRUCTURED) {
      // Asked for as a CloudEvent (docs/cloudevents.md): the event alone, without its deliveries.
      ctx.type = CE_STRUCTURED;
      ctx.body = toCloudEvent(found.row);
      return;
    }
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
