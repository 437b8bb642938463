import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { BASE64 as CE_BASE64, MAX_ATTRIBUTE_LENGTH as CE_ATTRIBUTE_MAX, MEDIA_TYPE as CE_MEDIA_TYPE, RFC3339 as CE_RFC3339 } from "../../domain/cloudevents";
import { BATCH_BODY_SCHEMA, ENVELOPE_LIMITS, ENVELOPE_PROPERTIES, MAX_BATCH_EVENTS, ENVELOPE_SCHEMA, IDEMPOTENCY_KEY_SCHEMA, INSTANT_SCHEMA } from "../../domain/envelope";
import { EVENT_ID_PATTERN } from "../../domain/ids";
import { SUBSCRIPTION_FILTER_SCHEMA } from "../../domain/subscription-filter";
import { EVENT_STATUSES } from "../../store/events/peek-events";
import type { SubscriptionFilter } from "../../store/subscriptions";

/*
 * The API's shapes as TypeBox schemas: each is a JSON Schema (draft 2020-12) that ajv compiles and
 * /openapi.json embeds, and a TypeScript type (Static<typeof X>) that the handlers and views are
 * checked against. Schemas the domain already owns (the envelope, the subscription filter) are
 * wrapped, never copied.
 */

/** A schema the domain owns, with the type it describes. */
const domain = <T>(schema: object): TSchema & { static: T } => Type.Unsafe<T>({ ...schema });

export const EventId = Type.String({ pattern: EVENT_ID_PATTERN.source, description: "evt_ + 26 Crockford base32 characters (ULID, time-ordered)", examples: ["evt_01J00000000000000000000000"] });

/** A lease id in the one form this service issues and accepts (8-4-4-4-12 hex, either case). */
export const LeaseId = Type.String({
  format: "uuid",
  pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
  examples: ["0f8fad5b-d9cb-469f-a165-70867728950e"],
});

/** 1–64 characters of [a-z0-9][a-z0-9._-]*. */
export const SubscriptionName = Type.String({ minLength: 1, maxLength: 64, pattern: "^[a-z0-9][a-z0-9._-]*$", description: "1–64 characters of [a-z0-9][a-z0-9._-]*", examples: ["default", "billing", "a.b_c-1"] });

/** An instant in a query: RFC 3339 with seconds and an offset, years 1 to 9999. */
export const Instant = Type.Unsafe<string>({ ...INSTANT_SCHEMA, pattern: INSTANT_SCHEMA.pattern.replace("^", "^(?!0000)"), examples: ["2026-01-02T03:04:05Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999+00:00"] });

export const IdempotencyKey = Type.Unsafe<string>({ ...IDEMPOTENCY_KEY_SCHEMA, examples: ["order-42", "~"] });

const DateTime = Type.String({ format: "date-time" });
const NullableDateTime = Type.Union([Type.String({ format: "date-time" }), Type.Null()]);
export const EventStatus = Type.Union(EVENT_STATUSES.map((s) => Type.Literal(s)));

export const EventEnvelope = domain<unknown>(ENVELOPE_SCHEMA);
export const BatchBody = domain<unknown>(BATCH_BODY_SCHEMA);
export const SubscriptionFilterSchema = domain<SubscriptionFilter>(SUBSCRIPTION_FILTER_SCHEMA);

/** A delivery's state, on an event (its subscription's delivery) and on each delivery. */
const deliveryState = {
  status: EventStatus,
  delivery_count: Type.Integer({ minimum: 0 }),
  leased_at: NullableDateTime,
  lease_expires_at: NullableDateTime,
  acknowledged_at: NullableDateTime,
  dead_at: NullableDateTime,
};
const eventFields = {
  id: EventId,
  type: Type.String(),
  source: Type.Union([Type.String(), Type.Null()]),
  payload: Type.Unknown({ description: "The producer's JSON value, unchanged" }),
  tags: Type.Array(Type.String()),
  occurred_at: NullableDateTime,
  received_at: DateTime,
  stored_at: DateTime,
  schema_version: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
    description: "The version of its type's registered schema the event was validated against at ingest; null when its type had none",
  }),
};

/** A stored event as peek, GET /events/{id} and redrive show it: never its lease id. */
export const EventViewSchema = Type.Object(
  { ...eventFields, ...deliveryState },
  { additionalProperties: false, description: "A stored event. lease_expires_at is set only while it is delivered (leased); the lease's id is never shown here (see LeasedEvent)." },
);
export type EventView = Static<typeof EventViewSchema>;

export const LeasedEventSchema = Type.Object(
  { ...eventFields, ...deliveryState, lease_id: LeaseId },
  { additionalProperties: false, description: "An event as GET /inbox leases it: the Event and its lease_id, the lease's secret (ack, nack and extend name it). No other answer shows it." },
);
export type LeasedEvent = Static<typeof LeasedEventSchema>;

export const DeliverySchema = Type.Object({ subscription: Type.String(), ...deliveryState }, { additionalProperties: false, description: "An event's delivery state in one subscription." });
export type DeliveryView = Static<typeof DeliverySchema>;

export const EventDetailSchema = Type.Object(
  {
    ...eventFields,
    status: Type.Union([EventStatus, Type.Null()]),
    delivery_count: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    leased_at: NullableDateTime,
    lease_expires_at: NullableDateTime,
    acknowledged_at: NullableDateTime,
    dead_at: NullableDateTime,
    deliveries: Type.Array(DeliverySchema),
  },
  { additionalProperties: false, description: "A stored event, once: its own fields, the delivery fields of the requested subscription (null when it has no delivery of the event) and its delivery in every subscription." },
);

export const QueuedEventSchema = Type.Object({ id: EventId, status: Type.Literal("queued") }, { additionalProperties: false, description: "Accepted by the API, not yet stored by a worker." });

export const SubscriptionViewSchema = Type.Object({ name: SubscriptionName, filter: SubscriptionFilterSchema, created_at: DateTime, updated_at: DateTime }, { additionalProperties: false });
export type SubscriptionView = Static<typeof SubscriptionViewSchema>;

export const AcceptedEventSchema = Type.Object({ id: EventId, status: Type.Literal("accepted"), received_at: DateTime }, { additionalProperties: false });
const acceptedItem = { id: EventId, status: Type.Literal("accepted"), received_at: DateTime, replayed: Type.Boolean() };
export const AcceptedBatchSchema = Type.Object({ data: Type.Array(Type.Object(acceptedItem, { additionalProperties: false })) }, { additionalProperties: false });
export const PartialBatchSchema = Type.Object(
  {
    data: Type.Array(
      Type.Union([
        Type.Object({ index: Type.Integer({ minimum: 0 }), ...acceptedItem }, { additionalProperties: false }),
        Type.Object(
          {
            index: Type.Integer({ minimum: 0 }),
            status: Type.Literal("rejected"),
            error: Type.Object(
              {
                code: Type.Union([Type.Literal("service_unavailable"), Type.Literal("enqueue_outcome_unknown"), Type.Literal("event_refused_by_queue")], {
                  description:
                    "`service_unavailable` (the queue failed and does not have the event; retryable), `enqueue_outcome_unknown` (the queue did not confirm the event and may have it; " +
                    "retry with the same idempotency_key) or `event_refused_by_queue` (the queue refused the event's content; not retryable)",
                }),
                message: Type.String(),
              },
              { additionalProperties: false },
            ),
            retryable: Type.Boolean({ description: "False when resending the event unchanged cannot succeed" }),
          },
          { additionalProperties: false },
        ),
      ]),
      { description: "One entry per event, in request order" },
    ),
  },
  { additionalProperties: false },
);

export const InboxLeaseSchema = Type.Object({ data: Type.Array(LeasedEventSchema), has_more: Type.Boolean({ description: "More deliverable events matched beyond this answer" }) }, { additionalProperties: false });
export const InboxPageSchema = Type.Object(
  { data: Type.Array(EventViewSchema), next_cursor: Type.Union([Type.String(), Type.Null()], { description: "Pass as cursor for the next page; null on the last page" }) },
  { additionalProperties: false },
);

export const AcknowledgedSchema = Type.Object({ id: EventId, status: Type.Literal("acknowledged"), acknowledged_at: DateTime }, { additionalProperties: false });
export const BatchAckSchema = Type.Object(
  {
    acknowledged: Type.Array(EventId),
    not_delivered: Type.Array(EventId, { description: "Events nobody leased yet: not acknowledged, still pending" }),
    not_found: Type.Array(EventId),
  },
  { additionalProperties: false },
);
export const BatchLeaseAckSchema = Type.Object(
  {
    results: Type.Array(
      Type.Object({ id: EventId, lease_id: Type.String({ format: "uuid" }), status: Type.Union([Type.Literal("acknowledged"), Type.Literal("lease_expired"), Type.Literal("not_found")]) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
export const NackedSchema = Type.Object({ id: EventId, status: Type.Literal("pending"), available_at: DateTime }, { additionalProperties: false });
export const ExtendedSchema = Type.Object({ id: EventId, status: Type.Literal("delivered"), lease_id: Type.String({ format: "uuid" }), lease_expires_at: DateTime }, { additionalProperties: false });
export const HealthSchema = Type.Object({ status: Type.Literal("ok") }, { additionalProperties: false });
export const ReadySchema = Type.Object(
  {
    status: Type.Literal("ready"),
    checks: Type.Record(Type.String(), Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) }), { description: "One entry per dependency (postgres, sqs, redis when configured)" }),
  },
  { additionalProperties: false },
);
export const OpenApiSchema = Type.Object({ openapi: Type.String({ pattern: "^3\\.1\\.\\d+$" }), info: Type.Object({}), paths: Type.Object({}) });

/*
 * CloudEvents 1.0 (docs/cloudevents.md) and the schema registry (docs/schemas.md).
 */

/** The attributes of a CloudEvent in the JSON event format, in and out. */
const cloudEventCore = {
  specversion: Type.Literal("1.0"),
  id: Type.String({ minLength: 1, maxLength: CE_ATTRIBUTE_MAX }),
  source: Type.String({ minLength: 1, maxLength: Math.min(CE_ATTRIBUTE_MAX, ENVELOPE_LIMITS.sourceMaxLength), examples: ["/shop", "urn:example:billing"] }),
  type: Type.String({ ...ENVELOPE_PROPERTIES.type, description: "As the envelope's type" }),
  subject: Type.Optional(Type.String({ minLength: 1, maxLength: CE_ATTRIBUTE_MAX })),
  time: Type.Optional(Type.String({ pattern: CE_RFC3339.source, description: "RFC 3339; becomes occurred_at (with its bounds)", examples: ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123+01:00"] })),
  datacontenttype: Type.Optional(Type.String({ maxLength: CE_ATTRIBUTE_MAX, pattern: CE_MEDIA_TYPE.source, description: "A media type (RFC 2046)", examples: ["application/json", "text/plain; charset=utf-8"] })),
  dataschema: Type.Optional(Type.String({ minLength: 1, maxLength: CE_ATTRIBUTE_MAX, pattern: "^[A-Za-z][A-Za-z0-9+.-]*:", description: "An absolute URI", examples: ["https://example.com/order.json"] })),
  data: Type.Optional(Type.Unknown({ description: "The data: a JSON value for a JSON datacontenttype, else its text; never beside data_base64" })),
  data_base64: Type.Optional(Type.String({ pattern: CE_BASE64.source, description: "Binary data, base64; never beside data", examples: ["aGVsbG8=", "AAEC"] })),
};

/** Extension attributes: lower-case letters and digits, not a core attribute's name, never triggers… (the service's own, set on delivery). */
const EXTENSIONS = {
  "^(?!triggers|(specversion|id|source|type|subject|time|datacontenttype|dataschema|data)$)[a-z0-9]{1,64}$": {
    anyOf: [{ type: "string", maxLength: CE_ATTRIBUTE_MAX }, { type: "boolean" }, { type: "integer", minimum: -2147483648, maximum: 2147483647 }],
  },
};

/** A CloudEvent as POST /events (structured mode) and each item of POST /events/batch (batch mode) take it. */
export const CloudEventInSchema = Type.Object(cloudEventCore, {
  patternProperties: EXTENSIONS,
  additionalProperties: false,
  description:
    "A CloudEvents 1.0 event in the JSON format. Extension attributes (lower-case letters and digits; strings, booleans, 32-bit integers) are kept and delivered back; those named triggers… are the service's own and refused. " +
    "`id` and `source` identify the event: without an Idempotency-Key, a resend is a replay and another body under them a 409.",
});

/** A stored event answered as a CloudEvent (GET /events/{id}, GET /inbox), with the service's triggers… extensions. */
export const CloudEventSchema = Type.Object(
  {
    ...cloudEventCore,
    triggersid: Type.Optional({ ...EventId, description: "The event's id in this service" }),
    triggerslease: Type.Optional({ ...LeaseId, description: "A lease answer of GET /inbox: the lease id" }),
    triggersleaseexpires: Type.Optional(Type.String({ format: "date-time", description: "A lease answer of GET /inbox: when the lease expires" })),
    triggersdeliveries: Type.Optional(Type.Integer({ minimum: 0, description: "How many times the event was leased" })),
    triggersschemaversion: Type.Optional(Type.Integer({ minimum: 1, description: "The schema version the event was validated against" })),
  },
  {
    patternProperties: EXTENSIONS,
    additionalProperties: false,
    description: "A stored event as a CloudEvents 1.0 event in the JSON format: its attributes and extensions as received, with the triggers… extensions this service sets.",
  },
);

/** A CloudEvents batch (application/cloudevents-batch+json): in, 1 to MAX_BATCH_EVENTS events; out, a page of GET /inbox. */
export const CloudEventBatchIn = Type.Array(CloudEventInSchema, { minItems: 1, maxItems: MAX_BATCH_EVENTS });
export const CloudEventBatchOut = Type.Array(CloudEventSchema);

export const Compatibility = Type.Union([Type.Literal("backward"), Type.Literal("none")], { description: "The rule a new version is checked against the previous one with (docs/schemas.md)" });

/** A JSON Schema (draft 2020-12): an object or a boolean; what it may hold is checked by the registry (400 invalid_schema, schema_limit_exceeded). */
const JsonSchemaValue = Type.Unknown({ description: "A JSON Schema, draft 2020-12 (an object or a boolean)" });

export const SchemaRegistrationSchema = Type.Object({ schema: Type.Union([Type.Object({}), Type.Boolean()], { description: "A JSON Schema, draft 2020-12 (an object or a boolean)" }), compatibility: Type.Optional({ ...Compatibility, default: "backward" }) }, { additionalProperties: false });

const schemaVersionFields = { version: Type.Integer({ minimum: 1 }), schema: JsonSchemaValue, compatibility: Compatibility, created_at: DateTime };
export const SchemaVersionSchema = Type.Object(schemaVersionFields, { additionalProperties: false });
export const SchemaRegisteredSchema = Type.Object({ type: Type.String(), ...schemaVersionFields }, { additionalProperties: false });
export const SchemaDetailSchema = Type.Object(
  { type: Type.String(), version: Type.Integer({ minimum: 1 }), schema: JsonSchemaValue, versions: Type.Array(SchemaVersionSchema, { description: "Every version, oldest first" }) },
  { additionalProperties: false },
);
export const SchemaListSchema = Type.Object(
  {
    data: Type.Array(
      Type.Object({ type: Type.String(), version: Type.Integer({ minimum: 1 }), versions: Type.Integer({ minimum: 1 }), compatibility: Compatibility, created_at: DateTime }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

export { ENVELOPE_LIMITS };
