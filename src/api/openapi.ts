import { BATCH_BODY_SCHEMA, BATCH_EVENTS_SCHEMA, ENVELOPE_LIMITS, ENVELOPE_PROPERTIES, ENVELOPE_SCHEMA, IDEMPOTENCY_KEY_SCHEMA, INSTANT_SCHEMA } from "../domain/envelope";
import { codesOfStatus, ERROR_CODES, type ErrorCode } from "../errors";
import { EVENT_ID_PATTERN } from "../domain/ids";
import { SUBSCRIPTION_FILTER_SCHEMA } from "../domain/subscription-filter";
import { EVENT_STATUSES } from "../store/events/peek-events";
import { MAX_VISIBILITY_SECONDS } from "./params";
import { MAX_NACK_DELAY_SECONDS } from "./routes/acks";
import { MAX_WAIT_SECONDS } from "../inbox/wakeups";

/*
 * The OpenAPI 3.1 description of the HTTP API, served at GET /openapi.json. It is checked against
 * the live code in two ways: every response the integration suite receives is validated against it
 * (test/helpers/openapi-validator.ts), and every route registered in the Koa routers must appear in
 * it (test/integration/openapi.test.ts). Schemas are JSON Schema draft 2020-12, as OpenAPI 3.1 says.
 */

/** A JSON Schema (draft 2020-12) as OpenAPI 3.1 embeds it; only the keywords this document uses are typed. */
export interface JsonSchema {
  readonly $ref?: string;
  readonly type?: string | readonly string[];
  readonly description?: string;
  readonly format?: string;
  readonly pattern?: string;
  readonly enum?: readonly (string | number | boolean | null)[];
  readonly const?: string | number | boolean | null;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly default?: unknown;
  readonly examples?: readonly unknown[];
  readonly items?: JsonSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly oneOf?: readonly JsonSchema[];
  readonly anyOf?: readonly JsonSchema[];
  readonly allOf?: readonly JsonSchema[];
}

/** A reference to a reusable component. */
export interface Reference {
  readonly $ref: string;
  readonly description?: string;
}

/** An operation parameter (path, query or header). */
export interface Parameter {
  readonly name: string;
  readonly in: "path" | "query" | "header";
  readonly description?: string;
  readonly required?: boolean;
  readonly style?: "form" | "simple";
  readonly explode?: boolean;
  readonly schema: JsonSchema;
}

/** A response header. */
export interface Header {
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

/** The body of one media type. */
export interface MediaType {
  readonly schema: JsonSchema;
}

/** One response of an operation. */
export interface Response {
  readonly description: string;
  readonly headers?: Readonly<Record<string, Header | Reference>>;
  readonly content?: Readonly<Record<string, MediaType>>;
}

/** One HTTP operation. */
export interface Operation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  /** `[]` = no authentication; absent = the document-wide bearer key. */
  readonly security?: readonly Readonly<Record<string, readonly string[]>>[];
  readonly parameters?: readonly (Parameter | Reference)[];
  readonly requestBody?: { readonly required: boolean; readonly description?: string; readonly content: Readonly<Record<string, MediaType>> };
  readonly responses: Readonly<Record<string, Response | Reference>>;
}

/** The methods this API uses. */
export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

/** A path and its operations. */
export type PathItem = Partial<Readonly<Record<HttpMethod, Operation>>>;

/** An OpenAPI 3.1 document (the subset this API uses). */
export interface OpenApiDocument {
  readonly openapi: string;
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly jsonSchemaDialect: string;
  readonly servers: readonly { readonly url: string; readonly description: string }[];
  readonly tags: readonly { readonly name: string; readonly description: string }[];
  readonly security: readonly Readonly<Record<string, readonly string[]>>[];
  readonly paths: Readonly<Record<string, PathItem>>;
  readonly components: {
    readonly securitySchemes: Readonly<Record<string, { readonly type: "http"; readonly scheme: "bearer"; readonly description: string }>>;
    readonly schemas: Readonly<Record<string, JsonSchema>>;
    readonly parameters: Readonly<Record<string, Parameter>>;
    readonly headers: Readonly<Record<string, Header>>;
    readonly responses: Readonly<Record<string, Response>>;
  };
}

const ref = (kind: "schemas" | "parameters" | "headers" | "responses", name: string): Reference => ({ $ref: `#/components/${kind}/${name}` });
const schemaRef = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema): Readonly<Record<string, MediaType>> => ({ "application/json": { schema } });
const nullable = (type: string, extra: Omit<JsonSchema, "type"> = {}): JsonSchema => ({ type: [type, "null"], ...extra });
const dateTime: JsonSchema = { type: "string", format: "date-time" };
const eventId: JsonSchema = { type: "string", pattern: EVENT_ID_PATTERN.source, description: "evt_ + 26 Crockford base32 characters (ULID, time-ordered)" };
const uuid: JsonSchema = { type: "string", format: "uuid" };

/** Headers every response carries. */
const common = { "X-Request-Id": ref("headers", "X-Request-Id") } as const;
/** Headers of a response that passed the rate limiter. */
const limited = {
  ...common,
  "RateLimit-Policy": ref("headers", "RateLimit-Policy"),
  RateLimit: ref("headers", "RateLimit"),
  "X-RateLimit-Limit": ref("headers", "X-RateLimit-Limit"),
  "X-RateLimit-Remaining": ref("headers", "X-RateLimit-Remaining"),
  "X-RateLimit-Reset": ref("headers", "X-RateLimit-Reset"),
} as const;

/** A success response of an authenticated route. */
const ok = (description: string, schema: JsonSchema, headers: Readonly<Record<string, Header | Reference>> = {}): Response => ({
  description,
  headers: { ...limited, ...headers },
  content: json(schema),
});

type ErrorStatus = "400" | "401" | "403" | "404" | "408" | "409" | "413" | "414" | "415" | "422" | "429" | "431" | "500" | "503";
const ERROR_RESPONSE: Record<ErrorStatus | "405" | "501", string> = {
  "400": "BadRequest",
  "401": "Unauthorized",
  "403": "Forbidden",
  "404": "NotFound",
  "405": "MethodNotAllowed",
  "408": "RequestTimeout",
  "409": "Conflict",
  "413": "PayloadTooLarge",
  "414": "UriTooLong",
  "415": "UnsupportedMediaType",
  "422": "SchemaValidationFailed",
  "429": "RateLimited",
  "431": "RequestHeaderFieldsTooLarge",
  "500": "InternalError",
  "501": "NotImplemented",
  "503": "Unavailable",
};

/**
 * The Error shape narrowed to `codes`: what a client may read in error.code of this response.
 * Codes come from ERROR_CODES (src/errors.ts), the table the server raises them from.
 */
const errorSchema = (codes: readonly ErrorCode[]): JsonSchema => ({
  allOf: [
    schemaRef("Error"),
    { type: "object", properties: { error: { type: "object", properties: { code: { type: "string", enum: [...codes] } } } } },
  ],
});

/**
 * 400 too_many_parameters and 414 uri_too_long come before routing, and 400 bad_request (a
 * malformed request), 408 request_timeout and 431 request_header_fields_too_large before the app
 * (src/api/client-error.ts): every operation may answer them.
 */
const BEFORE_ROUTING: readonly ErrorStatus[] = ["400", "408", "414", "431", "500"];

/**
 * The error responses of an operation: 401, 403, 429, 500 and 503 for an authenticated one, plus
 * `extra`. `narrow` lists, per status, the codes this operation may carry when they are fewer than
 * the status's component declares (the response is then inlined with those codes).
 */
const errors = (extra: readonly ErrorStatus[], narrow: Partial<Record<ErrorStatus, readonly ErrorCode[]>> = {}, authenticated = true): Record<string, Response | Reference> => {
  const statuses = new Set<ErrorStatus>([...BEFORE_ROUTING, ...(authenticated ? (["401", "403", "429", "503"] as const) : []), ...extra]);
  return Object.fromEntries(
    [...statuses].sort().map((s) => {
      const codes = narrow[s];
      if (!codes) return [s, ref("responses", ERROR_RESPONSE[s])];
      const component = errorResponses[ERROR_RESPONSE[s]]!;
      for (const c of codes) if (ERROR_CODES[c] !== Number(s)) throw new Error(`${c} is not sent with ${s}`);
      return [s, { ...component, content: json(errorSchema(codes)) }];
    }),
  );
};

/** Codes of 429 every authenticated operation may carry (delivery_rate_limited only where events are accepted). */
const KEY_429: readonly ErrorCode[] = codesOfStatus(429).filter((c) => c !== "delivery_rate_limited");
/** Codes of 429 an operation that accepts events may carry: the key's limits, and the tenant's delivery-rows budget. */
const ENQUEUE_429: readonly ErrorCode[] = [...KEY_429, "delivery_rate_limited"];
/** Codes of 503 an operation that enqueues events may carry: the queue is down, or did not confirm a send that may have reached it. */
const ENQUEUE_503: readonly ErrorCode[] = ["service_unavailable", "enqueue_outcome_unknown"];
/** Codes of 400 an operation without a body or filters may carry: the pre-routing ones. */
const QUERY_BOUND_400: readonly ErrorCode[] = ["too_many_parameters", "bad_request"];
/** Codes of 400 an operation that reads a JSON body may carry. */
const BODY_400: readonly ErrorCode[] = ["validation_failed", "invalid_json", "invalid_body", "invalid_encoding", "forbidden_key", "unrepresentable_number", ...QUERY_BOUND_400];
const PUBLIC_ERRORS = (extra: readonly ErrorStatus[] = []) => errors(extra, { "400": QUERY_BOUND_400 }, false);

const idParam = ref("parameters", "EventId");
const subscriptionParam = ref("parameters", "Subscription");
const requestIdParam = ref("parameters", "X-Request-Id");

const errorResponses: Record<string, Response> = {
  BadRequest: { description: "Malformed JSON, a body or query that fails the schema (details name each field), a bad header, or a request Node's HTTP parser refuses (an unknown method, a malformed request line or header: bad_request, and the connection is closed)", headers: limited, content: json(errorSchema(codesOfStatus(400))) },
  Unauthorized: {
    description: "Missing, malformed, invalid or revoked API key",
    headers: { ...common, "WWW-Authenticate": ref("headers", "WWW-Authenticate") },
    content: json(errorSchema(codesOfStatus(401))),
  },
  Forbidden: { description: "The key lacks the scope this route needs (details name it)", headers: limited, content: json(errorSchema(codesOfStatus(403))) },
  NotFound: { description: "No such event for this tenant (another tenant's event included), or no such route", headers: limited, content: json(errorSchema(codesOfStatus(404))) },
  MethodNotAllowed: {
    description: "The path exists but not with this method; Allow lists the methods it has. Answered for any method the document does not list on a path.",
    headers: { ...common, Allow: { description: "The path's methods", required: true, schema: { type: "string" } } },
    content: json(errorSchema(codesOfStatus(405))),
  },
  Conflict: {
    description: "Idempotency-Key reused with another body (idempotency_key_reused), lease no longer current (lease_expired), already_acknowledged, event_dead or not_dead",
    headers: limited,
    content: json(errorSchema(codesOfStatus(409))),
  },
  PayloadTooLarge: { description: "The body exceeds the limit (MAX_EVENT_BYTES, default 256 KiB; `payload_too_large`), or an event does not fit one 256 KiB queue message with its metadata (`event_too_large`, details name its index)", headers: limited, content: json(errorSchema(codesOfStatus(413))) },
  UriTooLong: { description: "The query string exceeds 4096 bytes", headers: common, content: json(errorSchema(codesOfStatus(414))) },
  RequestTimeout: {
    description: "The request headers did not arrive within HTTP_HEADERS_TIMEOUT_MS (default 10 s), or the whole request within HTTP_REQUEST_TIMEOUT_MS (default 30 s); the server closes the connection",
    headers: { ...common, Connection: ref("headers", "Connection") },
    content: json(errorSchema(codesOfStatus(408))),
  },
  RequestHeaderFieldsTooLarge: {
    description: "The request line and headers exceed Node's limit (16 KiB); the server closes the connection",
    headers: { ...common, Connection: ref("headers", "Connection") },
    content: json(errorSchema(codesOfStatus(431))),
  },
  UnsupportedMediaType: { description: "The body is not uncompressed UTF-8 JSON", headers: limited, content: json(errorSchema(codesOfStatus(415))) },
  SchemaValidationFailed: {
    description:
      "The data of an event (of a batch: of one or more events) does not match the latest registered schema of its type; nothing was accepted. Each detail has `pointer` (a JSON pointer into the data), `message`, `keyword`, `type`, `version` and, in a batch, `index` (docs/schemas.md).",
    headers: limited,
    content: json(errorSchema(codesOfStatus(422))),
  },
  RateLimited: {
    description:
      "The key's rate limit is used up (rate_limited), this address failed authentication too often (too_many_failed_authentications), the key or tenant already has its quota of concurrent long polls waiting (long_poll_quota_exceeded: GET /inbox with wait_seconds > 0; LONG_POLLS_PER_KEY, LONG_POLLS_PER_TENANT per API process), " +
      "or, on POST /events and /events/batch, the tenant's delivery-rows budget cannot cover the request (delivery_rate_limited: each event costs 1 + the tenant's live subscriptions; DELIVERY_ROWS_PER_MINUTE_PER_TENANT; RateLimit-Policy and RateLimit then name \"delivery-rows\"; nothing of the request was accepted)",
    headers: { ...limited, "Retry-After": ref("headers", "Retry-After") },
    content: json(errorSchema(KEY_429)),
  },
  InternalError: { description: "An unexpected error (logged with the request id); the message is generic", headers: common, content: json(errorSchema(codesOfStatus(500))) },
  NotImplemented: { description: "A method this server does not implement on any path", headers: common, content: json(errorSchema(codesOfStatus(501))) },
  Unavailable: {
    description: "A dependency this request needs is down (details name it); retry after Retry-After seconds",
    headers: { ...limited, "Retry-After": ref("headers", "Retry-After") },
    content: json(errorSchema(["service_unavailable"])),
  },
};

/** A lease id in the one form this service issues and accepts (8-4-4-4-12 hex). */
const leaseIdSchema: JsonSchema = { type: "string", format: "uuid", pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$" };

const leaseIdBody = (what: string): JsonSchema => ({
  type: "object",
  additionalProperties: false,
  properties: { lease_id: { ...leaseIdSchema, description: `Refuse (409 lease_expired) unless this is still the event's current lease, or the lease it was acknowledged under; ${what}.` } },
});

const inboxQuery = (name: string, description: string, schema: JsonSchema, extra: Partial<Parameter> = {}): Parameter => ({ name, in: "query", description, schema, ...extra });

/** A stored event as peek, GET /events/{id} and redrive show it: never its lease id. */
const eventSchema = {
  type: "object",
  description: "A stored event. lease_expires_at is set only while it is delivered (leased); the lease's id is never shown here (see LeasedEvent).",
  required: [
    "id",
    "type",
    "source",
    "payload",
    "tags",
    "occurred_at",
    "received_at",
    "stored_at",
    "schema_version",
    "status",
    "delivery_count",
    "leased_at",
    "lease_expires_at",
    "acknowledged_at",
    "dead_at",
  ],
  additionalProperties: false,
  properties: {
    id: eventId,
    type: { type: "string" },
    source: nullable("string"),
    payload: { description: "The producer's JSON value, unchanged" },
    tags: { type: "array", items: { type: "string" } },
    occurred_at: nullable("string", { format: "date-time" }),
    received_at: dateTime,
    stored_at: dateTime,
    schema_version: nullable("integer", { minimum: 1, description: "The version of its type's registered schema the event was validated against at ingest; null when its type had none" }),
    status: { type: "string", enum: [...EVENT_STATUSES] },
    delivery_count: { type: "integer", minimum: 0 },
    leased_at: nullable("string", { format: "date-time" }),
    lease_expires_at: nullable("string", { format: "date-time" }),
    acknowledged_at: nullable("string", { format: "date-time" }),
    dead_at: nullable("string", { format: "date-time" }),
  },
} satisfies JsonSchema;

/*
 * ---- CloudEvents 1.0 and the schema registry (docs/cloudevents.md, docs/schemas.md) ----
 * The content types, parameters, paths and schemas of both features, merged into the document
 * below where they apply.
 */

/** A CloudEvent in the JSON event format (structured mode, and each item of a batch). */
const cloudEventSchema: JsonSchema = {
  type: "object",
  description:
    "A CloudEvents 1.0 event in the JSON format. Extension attributes (lower-case letters and digits; strings, booleans, 32-bit integers) are kept and delivered back; the `triggers*` ones are set by this service on delivery. " +
    "`id` and `source` identify the event: without an Idempotency-Key, a resend is a replay and another body under them a 409.",
  required: ["specversion", "id", "source", "type"],
  properties: {
    specversion: { const: "1.0" },
    id: { type: "string", minLength: 1 },
    source: { type: "string", minLength: 1, maxLength: ENVELOPE_LIMITS.sourceMaxLength },
    type: { type: "string", minLength: 1, maxLength: ENVELOPE_LIMITS.typeMaxLength },
    subject: { type: "string", minLength: 1 },
    time: { type: "string", description: "RFC 3339; becomes occurred_at" },
    datacontenttype: { type: "string" },
    dataschema: { type: "string" },
    data: { description: "The data: a JSON value for a JSON datacontenttype, else its text" },
    data_base64: { type: "string", description: "Binary data, base64" },
    triggersid: { ...eventId, description: "Out only: the event's id in this service" },
    triggerslease: { ...uuid, description: "Out only (a lease answer of GET /inbox): the lease id" },
    triggersleaseexpires: { type: "string", format: "date-time", description: "Out only (a lease answer of GET /inbox): when the lease expires" },
    triggersdeliveries: { type: "integer", minimum: 0, description: "Out only: how many times the event was leased" },
    triggersschemaversion: { type: "integer", minimum: 1, description: "Out only: the schema version the event was validated against" },
  },
};

/** Binary mode's required attribute headers (the body is the data, Content-Type its datacontenttype). */
const ceHeader = (name: string, description: string): Parameter => ({ name: `ce-${name}`, in: "header", description, schema: { type: "string", minLength: 1 } });
const CE_BINARY_PARAMETERS: readonly Parameter[] = [
  ceHeader("specversion", "Binary mode (CloudEvents HTTP binding): \"1.0\". Its presence selects binary mode; the other attributes are ce-* headers (percent-encoded), extensions included."),
  ceHeader("id", "Binary mode: the event's id"),
  ceHeader("source", "Binary mode: the event's source"),
  ceHeader("type", "Binary mode: the event's type"),
];

/** The request content types of POST /events beyond the envelope. */
const CE_EVENT_CONTENT: Readonly<Record<string, MediaType>> = { "application/cloudevents+json": { schema: cloudEventSchema } };
/** The request content types of POST /events/batch beyond the envelope batch. */
const CE_BATCH_CONTENT: Readonly<Record<string, MediaType>> = { "application/cloudevents-batch+json": { schema: { type: "array", minItems: 1, maxItems: 100, items: cloudEventSchema } } };

const eventTypeParam: Parameter = {
  name: "type",
  in: "path",
  required: true,
  description: "An event type (as the envelope's `type`); an unknown one is 404.",
  schema: ENVELOPE_PROPERTIES.type,
};

const schemaVersionSchema: JsonSchema = {
  type: "object",
  required: ["version", "schema", "compatibility", "created_at"],
  additionalProperties: false,
  properties: {
    version: { type: "integer", minimum: 1 },
    schema: { description: "The JSON Schema (draft 2020-12)" },
    compatibility: { type: "string", enum: ["backward", "none"], description: "The rule this version was checked against the previous one with" },
    created_at: dateTime,
  },
};

const SCHEMA_400: readonly ErrorCode[] = ["validation_failed", "invalid_json", "invalid_body", "invalid_encoding", "forbidden_key", "unrepresentable_number", "invalid_schema", "schema_limit_exceeded", "too_many_parameters", "bad_request"];

/** The /schemas paths. */
const SCHEMA_PATHS: Readonly<Record<string, PathItem>> = {
  "/schemas": {
    get: {
      operationId: "listSchemas",
      summary: "List the tenant's event types with a schema",
      description: "Each type's latest version and how many versions it has. Scope schemas:manage (or admin).",
      tags: ["schemas"],
      parameters: [ref("parameters", "X-Request-Id")],
      responses: {
        "200": ok("The types", {
          type: "object",
          required: ["data"],
          additionalProperties: false,
          properties: {
            data: {
              type: "array",
              items: {
                type: "object",
                required: ["type", "version", "versions", "compatibility", "created_at"],
                additionalProperties: false,
                properties: { type: { type: "string" }, version: { type: "integer", minimum: 1 }, versions: { type: "integer", minimum: 1 }, compatibility: { type: "string", enum: ["backward", "none"] }, created_at: dateTime },
              },
            },
          },
        }),
        ...errors([], { "400": QUERY_BOUND_400 }),
      },
    },
  },
  "/schemas/{type}": {
    put: {
      operationId: "registerSchema",
      summary: "Register a new version of a type's schema",
      description:
        "Registers a JSON Schema (draft 2020-12) for an event type as its next version (201); the same schema as the latest answers 200 with it. From then on an event of the type is validated against it at ingest (422 schema_validation_failed). " +
        "With compatibility `backward` (the default) the new version must provably accept every event the latest accepts (409 schema_incompatible, details name each reason; docs/schemas.md states the rule); `none` skips the check. " +
        "Bounded (400 schema_limit_exceeded, details name the limit): SCHEMA_MAX_BYTES, SCHEMA_MAX_DEPTH, SCHEMA_MAX_NODES, only in-document `$ref`s (remote_ref), patterns without exponential backtracking (pattern_cost, pattern_length), uniqueItems only with maxItems ≤ 1000 (unique_items), SCHEMA_MAX_COMPILE_MS (compile_time). " +
        "400 invalid_schema for what is not a 2020-12 schema. 409 schema_quota_exceeded past SCHEMA_MAX_TYPES_PER_TENANT or SCHEMA_MAX_VERSIONS_PER_TYPE. Scope schemas:manage (or admin).",
      tags: ["schemas"],
      parameters: [ref("parameters", "X-Request-Id"), eventTypeParam],
      requestBody: {
        required: true,
        content: json({
          type: "object",
          required: ["schema"],
          additionalProperties: false,
          properties: { schema: { description: "A JSON Schema, draft 2020-12 (an object or a boolean)" }, compatibility: { type: "string", enum: ["backward", "none"], default: "backward" } },
        }),
      },
      responses: {
        "200": ok("The same schema is the latest version already", schemaRef("SchemaRegistered"), { Location: { description: "The type's schema URL", required: true, schema: { type: "string" } } }),
        "201": ok("Registered as a new version", schemaRef("SchemaRegistered"), { Location: { description: "The type's schema URL", required: true, schema: { type: "string" } } }),
        ...errors(["400", "409", "413", "415"], { "400": SCHEMA_400, "409": ["schema_incompatible", "schema_quota_exceeded"] }),
      },
    },
    get: {
      operationId: "getSchema",
      summary: "Read a type's schema with its versions",
      tags: ["schemas"],
      parameters: [ref("parameters", "X-Request-Id"), eventTypeParam],
      responses: {
        "200": ok("The latest version and every version, oldest first", {
          type: "object",
          required: ["type", "version", "schema", "versions"],
          additionalProperties: false,
          properties: { type: { type: "string" }, version: { type: "integer", minimum: 1 }, schema: { description: "The latest version's schema" }, versions: { type: "array", items: schemaVersionSchema } },
        }),
        ...errors(["404"], { "400": QUERY_BOUND_400 }),
      },
    },
    delete: {
      operationId: "deleteSchema",
      summary: "Delete a type's schema, every version",
      description: "Events of the type are no longer validated (every API process within SCHEMA_CACHE_TTL_MS, at once with Redis). A later registration starts at version 1.",
      tags: ["schemas"],
      parameters: [ref("parameters", "X-Request-Id"), eventTypeParam],
      responses: { "204": { description: "Deleted", headers: common }, ...errors(["404"], { "400": QUERY_BOUND_400 }) },
    },
  },
};

/** The components of both features. */
const CE_SCHEMA_COMPONENTS: Readonly<Record<string, JsonSchema>> = {
  CloudEvent: cloudEventSchema,
  SchemaRegistered: { ...schemaVersionSchema, required: ["type", ...(schemaVersionSchema.required ?? [])], properties: { type: { type: "string" }, ...schemaVersionSchema.properties } },
};

/** The OpenAPI 3.1 document of the v1 HTTP API. */
export const openApiDocument: OpenApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "Triggers API",
    version: "1.0.0",
    description:
      "Multi-tenant event ingestion and delivery. Producers POST events (202 once SQS has them); consumers lease them from GET /inbox and acknowledge them. " +
      "Every error is {\"error\":{\"code\",\"message\",\"details\"}}, those answered before a request reaches the routes included (a malformed request 400, a slow one 408, oversized headers 431; they close the connection). Every response carries X-Request-Id.",
  },
  jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
  servers: [{ url: "/", description: "this server" }],
  tags: [
    { name: "events", description: "Ingest and read events" },
    { name: "inbox", description: "Lease, browse, acknowledge and retry events" },
    { name: "subscriptions", description: "Named consumers, each receiving every matching event with its own leases and acks" },
    { name: "schemas", description: "Per-type JSON Schemas enforced at ingest" },
    { name: "operations", description: "Health, readiness, metrics and this document (no authentication)" },
  ],
  security: [{ bearerAuth: [] }],
  paths: {
    "/events": {
      post: {
        operationId: "createEvent",
        summary: "Accept one event",
        description:
          "Answers 202 only after SQS has durably accepted the event. 503 with Retry-After: `service_unavailable` when SQS is unreachable (the event is not on the queue), " +
          "`enqueue_outcome_unknown` when SQS did not confirm the send in time or dropped the connection after the request was written (the event may be on the queue: " +
          "retrying with the same Idempotency-Key is safe, retrying without one may store it twice). See docs/api-errors.md.",
        tags: ["events"],
        parameters: [requestIdParam, ref("parameters", "Idempotency-Key"), ...CE_BINARY_PARAMETERS],
        requestBody: {
          required: true,
          description: "An envelope (application/json), a CloudEvent in structured mode (application/cloudevents+json), or in binary mode the event's data of any media type with its attributes in ce-* headers (docs/cloudevents.md).",
          content: { ...json(schemaRef("EventEnvelope")), ...CE_EVENT_CONTENT },
        },
        responses: {
          "202": ok("Accepted: the event is on the queue", schemaRef("AcceptedEvent"), {
            Location: { description: "The event's URL", required: true, schema: { type: "string", pattern: `^/events/${EVENT_ID_PATTERN.source.slice(1)}` } },
            "Idempotent-Replayed": ref("headers", "Idempotent-Replayed"),
            "Idempotency-Pending": ref("headers", "Idempotency-Pending"),
          }),
          ...errors(["400", "409", "413", "415", "422"], { "400": [...BODY_400, "event_refused_by_queue"], "409": ["idempotency_key_reused"], "429": ENQUEUE_429, "503": ENQUEUE_503 }),
        },
      },
    },
    "/events/batch": {
      post: {
        operationId: "createEvents",
        summary: "Accept up to 100 events",
        description:
          "Every event is validated before any is enqueued; a 400 names each bad index in `details`. " +
          "202: every event is on the queue. 207: the queue took some events and not others; `data` names each event by `index`, with its id when accepted " +
          "and its error (and whether a retry can succeed) when rejected: resend only the rejected ones. 503: the queue confirmed none (`service_unavailable`: none is on it; " +
          "`enqueue_outcome_unknown`: some may be on it, so retry with the same idempotency keys); retry the whole batch.",
        tags: ["events"],
        parameters: [requestIdParam],
        requestBody: {
          required: true,
          description: "`{\"events\":[…]}` or the bare array, or a CloudEvents batch (application/cloudevents-batch+json).",
          content: { ...json(BATCH_BODY_SCHEMA), ...CE_BATCH_CONTENT },
        },
        responses: {
          "202": ok("Accepted: every event is on the queue", schemaRef("AcceptedBatch"), { "Idempotency-Pending": ref("headers", "Idempotency-Pending") }),
          "207": ok("Partly accepted: each event's outcome, by index", schemaRef("PartialBatch"), {
            "Idempotency-Pending": ref("headers", "Idempotency-Pending"),
            "Retry-After": { description: "Seconds to wait before resending the rejected events; present when one may succeed on retry", required: false, schema: { type: "integer", minimum: 0 } },
          }),
          ...errors(["400", "409", "413", "415", "422"], { "400": BODY_400, "409": ["idempotency_key_reused"], "429": ENQUEUE_429, "503": ENQUEUE_503 }),
        },
      },
    },
    "/events/ack": {
      post: {
        operationId: "ackEvents",
        summary: "Acknowledge up to 1000 events",
        description:
          "Two forms (exactly one of them). {ids}: acknowledges whatever delivery of each event is current (no lease check), but only of an event that was delivered to a consumer " +
          "(leased at least once): ids of events nobody leased are listed in not_delivered and stay pending; idempotent per id; ids the tenant has no event for " +
          "(other tenants' included) are listed in not_found; answers {acknowledged, not_delivered, not_found}. {leases:[{id, lease_id}]}: acknowledges each event only if lease_id is still its " +
          "current lease (or the lease it was acknowledged under), like the single lease-bound ack; answers {results}, one per item in request order, status acknowledged, lease_expired or not_found.",
        tags: ["inbox"],
        parameters: [requestIdParam, subscriptionParam],
        requestBody: {
          required: true,
          content: json({
            oneOf: [
              {
                type: "object",
                required: ["ids"],
                additionalProperties: false,
                properties: { ids: { type: "array", minItems: 1, maxItems: 1000, items: eventId } },
              },
              {
                type: "object",
                required: ["leases"],
                additionalProperties: false,
                properties: {
                  leases: {
                    type: "array",
                    minItems: 1,
                    maxItems: 1000,
                    items: { type: "object", required: ["id", "lease_id"], additionalProperties: false, properties: { id: eventId, lease_id: leaseIdSchema } },
                  },
                },
              },
            ],
          }),
        },
        responses: { "200": ok("The outcome per id ({ids}) or per item ({leases})", { oneOf: [schemaRef("BatchAck"), schemaRef("BatchLeaseAck")] }), ...errors(["400", "404", "413", "415"], { "400": BODY_400 }) },
      },
    },
    "/events/{id}": {
      get: {
        operationId: "getEvent",
        summary: "Read one event",
        description:
          "The stored event once, with the delivery fields of `subscription` (default `default`; null when that subscription has no delivery of the event) and `deliveries`, its delivery state in every subscription; " +
          "or {id, status:\"queued\"} while it is still on its way from SQS to the database. Another tenant's event, and an unknown subscription, are 404.",
        tags: ["events"],
        parameters: [requestIdParam, idParam, subscriptionParam],
        responses: {
          "200": {
            ...ok("The event (with Accept: application/cloudevents+json, a stored event as a CloudEvent)", { oneOf: [schemaRef("EventDetail"), schemaRef("QueuedEvent")] }),
            content: { ...json({ oneOf: [schemaRef("EventDetail"), schemaRef("QueuedEvent")] }), "application/cloudevents+json": { schema: schemaRef("CloudEvent") } },
          },
          ...errors(["400", "404"], { "400": ["validation_failed", ...QUERY_BOUND_400] }),
        },
      },
    },
    "/events/{id}/ack": {
      post: {
        operationId: "ackEvent",
        summary: "Acknowledge an event",
        description:
          "Idempotent: a second ack answers 200 with the first acknowledged_at. With lease_id, 409 lease_expired unless it is still the current lease (or, for a repeat, the lease the event was acknowledged under). " +
          "Without lease_id (the original contract, for simple consumers) it acknowledges whatever delivery is current, even one leased to another consumer after this one's lease expired, " +
          "but only of an event that was delivered to a consumer (leased at least once): 409 not_delivered for one nobody leased.",
        tags: ["inbox"],
        parameters: [requestIdParam, idParam, subscriptionParam],
        requestBody: { required: false, content: json(leaseIdBody("a repeat under the same lease answers 200")) },
        responses: { "200": ok("Acknowledged", schemaRef("Acknowledged")), ...errors(["400", "404", "409", "413", "415"], { "400": BODY_400, "409": ["lease_expired", "not_delivered"] }) },
      },
      delete: {
        operationId: "ackEventByDelete",
        summary: "Acknowledge an event (DELETE form)",
        description: "The same as POST; the optional lease_id travels in the query string.",
        tags: ["inbox"],
        parameters: [requestIdParam, idParam, subscriptionParam, { name: "lease_id", in: "query", description: "As lease_id of the POST body.", schema: leaseIdSchema }],
        responses: { "200": ok("Acknowledged", schemaRef("Acknowledged")), ...errors(["400", "404", "409"], { "400": ["validation_failed", ...QUERY_BOUND_400], "409": ["lease_expired", "not_delivered"] }) },
      },
    },
    "/events/{id}/nack": {
      post: {
        operationId: "nackEvent",
        summary: "End the lease now",
        description:
          "The event becomes pending and deliverable again after delay_seconds (waking long polls then). lease_id is required (400 without): only the lease's holder may end it. " +
          "409 already_acknowledged, event_dead or lease_expired.",
        tags: ["inbox"],
        parameters: [requestIdParam, idParam, subscriptionParam],
        requestBody: {
          required: true,
          content: json({
            type: "object",
            required: ["lease_id"],
            additionalProperties: false,
            properties: {
              delay_seconds: { type: "integer", minimum: 0, maximum: MAX_NACK_DELAY_SECONDS, default: 0 },
              lease_id: { ...leaseIdSchema, description: "The lease to end: refused (409 lease_expired) unless it is still the current lease." },
            },
          }),
        },
        responses: { "200": ok("The lease ended", schemaRef("Nacked")), ...errors(["400", "404", "409", "413", "415"], { "400": BODY_400, "409": ["already_acknowledged", "event_dead", "lease_expired"] }) },
      },
    },
    "/events/{id}/extend": {
      post: {
        operationId: "extendLease",
        summary: "Extend (or shorten) the current lease",
        description:
          "Sets the lease to expire visibility_timeout seconds from now (at most the 1 h lease maximum), keeping its lease_id. lease_id is required (400 without). " +
          "409 lease_expired when it is not the current lease.",
        tags: ["inbox"],
        parameters: [requestIdParam, idParam, subscriptionParam],
        requestBody: {
          required: true,
          content: json({
            type: "object",
            required: ["visibility_timeout", "lease_id"],
            additionalProperties: false,
            properties: {
              visibility_timeout: { type: "integer", minimum: 1, maximum: MAX_VISIBILITY_SECONDS, description: "seconds" },
              lease_id: { ...leaseIdSchema, description: "The lease to extend, as GET /inbox handed it out." },
            },
          }),
        },
        responses: { "200": ok("The lease now ends later", schemaRef("Extended")), ...errors(["400", "404", "409", "413", "415"], { "400": BODY_400, "409": ["already_acknowledged", "lease_expired"] }) },
      },
    },
    "/events/{id}/redrive": {
      post: {
        operationId: "redriveEvent",
        summary: "Make a dead event deliverable again",
        description: "Resets delivery_count to 0. 409 not_dead for an event in any other status.",
        tags: ["inbox"],
        parameters: [requestIdParam, idParam, subscriptionParam],
        responses: { "200": ok("The event, pending again", schemaRef("Event")), ...errors(["400", "404", "409"], { "400": ["validation_failed", ...QUERY_BOUND_400], "409": ["not_dead"] }) },
      },
    },
    "/inbox": {
      get: {
        operationId: "getInbox",
        summary: "Lease deliverable events, or browse with mode=peek",
        description:
          "Lease mode (default): leases up to `limit` pending or lease-expired events, oldest first, each with a lease_id valid for visibility_timeout seconds " +
          "(the lease's secret: only this answer carries it; peek and GET /events/{id} show a lease's status and expiry, never its id); " +
          "two consumers never receive the same event inside one lease. Answers {data, has_more}. " +
          "With wait_seconds=N (long polling) and nothing deliverable, the request waits up to N seconds for a matching event (woken by the ingest worker's commit, a nack, or a lease expiring), " +
          "then answers as usual: an empty page if nothing came. A client that disconnects while waiting leases nothing; on shutdown waiting requests answer an empty page at once. " +
          "Concurrent long polls are bounded per API key and per tenant (per API process): past either quota the request answers 429 long_poll_quota_exceeded at once, with Retry-After. " +
          "Leases last at most 1 h (3600 s): a consumer that needs longer extends its lease while it works. " +
          "Peek mode (mode=peek): a read-only page in arrival order, any status, with an opaque next_cursor; leases nothing. Answers {data, next_cursor}.",
        tags: ["inbox"],
        parameters: [
          requestIdParam,
          subscriptionParam,
          inboxQuery("mode", "lease (default) or peek", { type: "string", enum: ["lease", "peek"], default: "lease" }),
          inboxQuery("limit", "Events per answer", { type: "integer", minimum: 1, maximum: 500, default: 50 }),
          inboxQuery("visibility_timeout", "Lease mode only: lease length, seconds (default INBOX_VISIBILITY_SECONDS, 30)", { type: "integer", minimum: 1, maximum: MAX_VISIBILITY_SECONDS }),
          inboxQuery("wait_seconds", `Lease mode only: long polling, seconds to wait for an event when none is deliverable (0 = answer at once)`, { type: "integer", minimum: 0, maximum: MAX_WAIT_SECONDS, default: 0 }),
          inboxQuery("type", "Only events of this type", { type: "string", minLength: 1, maxLength: 128 }),
          inboxQuery("source", "Only events from this source", { type: "string", minLength: 1, maxLength: 256 }),
          inboxQuery("tag", "Only events carrying this tag; repeat to require several (at most 10)", { type: "array", maxItems: 10, items: { type: "string", minLength: 1, maxLength: 128 } }, { style: "form", explode: true }),
          inboxQuery("since", "Only events received at or after this time (RFC 3339 with seconds and an offset; years 1 to 9999)", INSTANT_SCHEMA),
          inboxQuery("until", "Only events received before this time (RFC 3339 with seconds and an offset; years 1 to 9999)", INSTANT_SCHEMA),
          inboxQuery("status", "Peek mode only: only events in this status", { type: "string", enum: [...EVENT_STATUSES] }),
          inboxQuery("cursor", "Peek mode only: next_cursor of the previous page (bound to the same status and filters)", { type: "string", maxLength: 512 }),
          inboxQuery("format", "cloudevents: answer a CloudEvents batch (application/cloudevents-batch+json), as Accept: application/cloudevents-batch+json does; has_more and next_cursor are then the Triggers-Has-More and Triggers-Next-Cursor headers", { type: "string", enum: ["json", "cloudevents"], default: "json" }),
        ],
        responses: {
          "200": {
            ...ok("Leased events (lease mode) or one page (peek mode)", { oneOf: [schemaRef("InboxLease"), schemaRef("InboxPage")] }, {
              "Triggers-Has-More": { description: "CloudEvents answer of lease mode: whether more events were deliverable", schema: { type: "string", enum: ["true", "false"] } },
              "Triggers-Next-Cursor": { description: "CloudEvents answer of peek mode: the next page's cursor, when there is one", schema: { type: "string" } },
            }),
            content: { ...json({ oneOf: [schemaRef("InboxLease"), schemaRef("InboxPage")] }), "application/cloudevents-batch+json": { schema: { type: "array", items: schemaRef("CloudEvent") } } },
          },
          ...errors(["400", "404"], { "400": ["validation_failed", "invalid_cursor", ...QUERY_BOUND_400] }),
        },
      },
    },
    "/subscriptions": {
      post: {
        operationId: "createSubscription",
        summary: "Create a subscription",
        description:
          "A named consumer of the tenant's events, with its own leases, delivery counts, dead state and acks. It receives the events stored after its creation that match its filter " +
          "(types and sources match any listed value, tags must all be present, an absent field matches all). 409 subscription_exists when the name is taken, 409 subscription_quota_exceeded when the tenant has MAX_SUBSCRIPTIONS_PER_TENANT subscriptions (default 100, `default` included). Scope subscriptions:manage (or admin).",
        tags: ["subscriptions"],
        parameters: [requestIdParam],
        requestBody: {
          required: true,
          content: json({
            type: "object",
            required: ["name"],
            additionalProperties: false,
            properties: { name: schemaRef("SubscriptionName"), filter: schemaRef("SubscriptionFilter") },
          }),
        },
        responses: {
          "201": ok("Created", schemaRef("Subscription"), { Location: { description: "The subscription's URL", required: true, schema: { type: "string" } } }),
          ...errors(["400", "409", "413", "415"], { "400": BODY_400, "409": ["subscription_exists", "subscription_quota_exceeded"] }),
        },
      },
      get: {
        operationId: "listSubscriptions",
        summary: "List the tenant's subscriptions",
        description: "Every subscription of the tenant, by name; `default` always exists. Scope subscriptions:manage (or admin).",
        tags: ["subscriptions"],
        parameters: [requestIdParam],
        responses: {
          "200": ok("The subscriptions", { type: "object", required: ["data"], additionalProperties: false, properties: { data: { type: "array", items: schemaRef("Subscription") } } }),
          ...errors([], { "400": QUERY_BOUND_400 }),
        },
      },
    },
    "/subscriptions/{name}": {
      get: {
        operationId: "getSubscription",
        summary: "Read a subscription",
        tags: ["subscriptions"],
        parameters: [requestIdParam, ref("parameters", "SubscriptionName")],
        responses: { "200": ok("The subscription", schemaRef("Subscription")), ...errors(["404"], { "400": QUERY_BOUND_400 }) },
      },
      patch: {
        operationId: "updateSubscription",
        summary: "Change a subscription's filter",
        description: "Replaces the filter (null: no filter); it applies to events stored from then on. The default subscription cannot be changed (409 default_subscription).",
        tags: ["subscriptions"],
        parameters: [requestIdParam, ref("parameters", "SubscriptionName")],
        requestBody: {
          required: true,
          content: json({
            type: "object",
            required: ["filter"],
            additionalProperties: false,
            properties: { filter: { oneOf: [schemaRef("SubscriptionFilter"), { type: "null" }] } },
          }),
        },
        responses: { "200": ok("The subscription", schemaRef("Subscription")), ...errors(["400", "404", "409", "413", "415"], { "400": BODY_400, "409": ["default_subscription"] }) },
      },
      delete: {
        operationId: "deleteSubscription",
        summary: "Delete a subscription and its deliveries",
        description:
          "Answers at once: the subscription leaves the API, fan-out and leases immediately and its name is free again; its deliveries are removed in the background. The default subscription cannot be deleted (409 default_subscription).",
        tags: ["subscriptions"],
        parameters: [requestIdParam, ref("parameters", "SubscriptionName")],
        responses: { "204": { description: "Deleted", headers: common }, ...errors(["404", "409"], { "400": QUERY_BOUND_400, "409": ["default_subscription"] }) },
      },
    },
    ...SCHEMA_PATHS,
    "/healthz": {
      get: {
        operationId: "healthz",
        summary: "Liveness",
        description: "The process answers. Checks no dependency, so an outage of one never gets the process restarted.",
        tags: ["operations"],
        security: [],
        responses: {
          "200": { description: "Alive", headers: common, content: json({ type: "object", required: ["status"], additionalProperties: false, properties: { status: { const: "ok" } } }) },
          ...PUBLIC_ERRORS(),
        },
      },
    },
    "/readyz": {
      get: {
        operationId: "readyz",
        summary: "Readiness",
        description: "Checks Postgres, SQS and (when configured) Redis, each with a 1.5 s timeout. 503 names each failing dependency in details[].dependency.",
        tags: ["operations"],
        security: [],
        responses: {
          "200": { description: "Every dependency answers", headers: common, content: json(schemaRef("Ready")) },
          ...PUBLIC_ERRORS(),
          "503": {
            description: "A dependency does not answer (error code not_ready; details name each one)",
            headers: { ...common, "Retry-After": { ...ref("headers", "Retry-After"), description: "Seconds before asking again" } },
            content: json(errorSchema(["not_ready"])),
          },
        },
      },
    },
    "/metrics": {
      get: {
        operationId: "metrics",
        summary: "Prometheus metrics",
        description: "Prometheus text exposition format 0.0.4; see docs/operations.md for the list.",
        tags: ["operations"],
        security: [],
        responses: {
          "200": { description: "Metrics", headers: common, content: { "text/plain": { schema: { type: "string" } } } },
          ...PUBLIC_ERRORS(),
        },
      },
    },
    "/openapi.json": {
      get: {
        operationId: "openapi",
        summary: "This document",
        tags: ["operations"],
        security: [],
        responses: {
          "200": {
            description: "The OpenAPI 3.1 document",
            headers: common,
            content: json({
              type: "object",
              required: ["openapi", "info", "paths"],
              properties: { openapi: { type: "string", pattern: "^3\\.1\\.\\d+$" }, info: { type: "object" }, paths: { type: "object" } },
            }),
          },
          ...PUBLIC_ERRORS(),
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearerAuth: { type: "http", scheme: "bearer", description: "An API key (trg_…) of one tenant, with scopes events:write, inbox:read, events:ack, subscriptions:manage or admin (admin implies every other)." },
    },
    parameters: {
      EventId: { name: "id", in: "path", required: true, description: "An event id; an id that cannot exist is 404.", schema: { type: "string", pattern: EVENT_ID_PATTERN.source } },
      Subscription: {
        name: "subscription",
        in: "query",
        description: "The subscription whose deliveries this acts on (default `default`); an unknown one is 404.",
        schema: { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-z0-9][a-z0-9._-]*$", default: "default" },
      },
      SubscriptionName: { name: "name", in: "path", required: true, description: "A subscription name; an unknown one is 404.", schema: { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-z0-9][a-z0-9._-]*$" } },
      "X-Request-Id": {
        name: "X-Request-Id",
        in: "header",
        description: "Your id for this request (1–128 of A-Z a-z 0-9 . _ : -), echoed back and logged; any other value is replaced by a generated one.",
        schema: { type: "string" },
      },
      "Idempotency-Key": {
        name: "Idempotency-Key",
        in: "header",
        description: "1–255 printable ASCII characters. A retry with the same key and body answers the same id (Idempotent-Replayed: true); another body answers 409.",
        schema: { type: "string", minLength: 1, maxLength: ENVELOPE_LIMITS.idempotencyKeyMaxLength, pattern: "^[\\x21-\\x7e]+$" },
      },
    },
    headers: {
      "X-Request-Id": { description: "The request's id (yours if well-formed, else generated); it is in the request's log line.", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" } },
      "Retry-After": { description: "Seconds to wait before retrying", required: true, schema: { type: "integer", minimum: 0 } },
      Connection: { description: "close: the server closes the connection after this answer", required: true, schema: { const: "close" } },
      "Idempotent-Replayed": { description: "Present (true) when the answer repeats an earlier send with the same Idempotency-Key", schema: { type: "string", enum: ["true"] } },
      "Idempotency-Pending": {
        description:
          "Present (true) when an Idempotency-Key was claimed without the shared fast path (Redis down or not configured, or the tenant past its claim budget): " +
          "accepted, pending the uniqueness check. If another API process accepted another body for the key first, this body is not stored: it is logged and dead-lettered, and its retries answer 409.",
        schema: { type: "string", enum: ["true"] },
      },
      "RateLimit-Policy": {
        description: 'draft-ietf-httpapi-ratelimit-headers: quota q per window w seconds; "per-key" (requests of this key), or on a 429 delivery_rate_limited "delivery-rows" (rows the tenant\'s events write)',
        schema: { type: "string", pattern: '^"(per-key|delivery-rows)";q=\\d+;w=\\d+$' },
      },
      RateLimit: {
        description: 'draft-ietf-httpapi-ratelimit-headers: r requests (or, for "delivery-rows", rows) remaining, t seconds until the window resets',
        schema: { type: "string", pattern: '^"(per-key|delivery-rows)";r=\\d+;t=\\d+$' },
      },
      "X-RateLimit-Limit": { description: "Requests per minute of this key", schema: { type: "integer", minimum: 1 } },
      "X-RateLimit-Remaining": { description: "Requests left in the current window", schema: { type: "integer", minimum: 0 } },
      "X-RateLimit-Reset": { description: "When the window resets, Unix time in seconds", schema: { type: "number", minimum: 0 } },
      "WWW-Authenticate": { description: "The authentication scheme", required: true, schema: { type: "string", pattern: "^Bearer " } },
    },
    responses: errorResponses,
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        additionalProperties: false,
        properties: {
          error: {
            type: "object",
            required: ["code", "message", "details"],
            additionalProperties: false,
            properties: {
              code: { type: "string", enum: Object.keys(ERROR_CODES), description: "Stable, snake_case; each error response narrows it to the codes it may carry" },
              message: { type: "string" },
              details: { type: "array", items: schemaRef("ErrorDetail") },
            },
          },
        },
      },
      ErrorDetail: {
        type: "object",
        required: ["message"],
        properties: {
          message: { type: "string" },
          path: { type: "string", description: "The failing field (dotted path)" },
          index: { type: "integer", minimum: 0, description: "The failing event of a batch" },
          dependency: { type: "string", description: "The unavailable dependency (postgres, sqs, redis)" },
          scope: { type: "string", description: "The missing scope" },
          pointer: { type: "string", description: "422: a JSON pointer (RFC 6901) into the event's data" },
          keyword: { type: "string", description: "422: the JSON Schema keyword that failed" },
          limit: { type: "string", description: "schema_limit_exceeded: the bound the schema passed" },
        },
      },
      EventEnvelope: ENVELOPE_SCHEMA,
      ...CE_SCHEMA_COMPONENTS,
      BatchEvents: BATCH_EVENTS_SCHEMA,
      AcceptedEvent: {
        type: "object",
        required: ["id", "status", "received_at"],
        additionalProperties: false,
        properties: { id: eventId, status: { const: "accepted" }, received_at: dateTime },
      },
      AcceptedBatch: {
        type: "object",
        required: ["data"],
        additionalProperties: false,
        properties: {
          data: {
            type: "array",
            items: {
              type: "object",
              required: ["id", "status", "received_at", "replayed"],
              additionalProperties: false,
              properties: { id: eventId, status: { const: "accepted" }, received_at: dateTime, replayed: { type: "boolean" } },
            },
          },
        },
      },
      PartialBatch: {
        type: "object",
        required: ["data"],
        additionalProperties: false,
        properties: {
          data: {
            type: "array",
            description: "One entry per event, in request order",
            items: {
              oneOf: [
                {
                  type: "object",
                  required: ["index", "id", "status", "received_at", "replayed"],
                  additionalProperties: false,
                  properties: { index: { type: "integer", minimum: 0 }, id: eventId, status: { const: "accepted" }, received_at: dateTime, replayed: { type: "boolean" } },
                },
                {
                  type: "object",
                  required: ["index", "status", "error", "retryable"],
                  additionalProperties: false,
                  properties: {
                    index: { type: "integer", minimum: 0 },
                    status: { const: "rejected" },
                    error: {
                      type: "object",
                      required: ["code", "message"],
                      additionalProperties: false,
                      properties: {
                        code: {
                          type: "string",
                          enum: ["service_unavailable", "enqueue_outcome_unknown", "event_refused_by_queue"],
                          description:
                            "`service_unavailable` (the queue failed and does not have the event; retryable), `enqueue_outcome_unknown` (the queue did not confirm the event and may have it; " +
                            "retry with the same idempotency_key) or `event_refused_by_queue` (the queue refused the event's content; not retryable)",
                        },
                        message: { type: "string" },
                      },
                    },
                    retryable: { type: "boolean", description: "False when resending the event unchanged cannot succeed" },
                  },
                },
              ],
            },
          },
        },
      },
      Event: eventSchema,
      LeasedEvent: {
        ...eventSchema,
        description: "An event as GET /inbox leases it: the Event and its lease_id, the lease's secret (ack, nack and extend name it). No other answer shows it.",
        required: [...eventSchema.required, "lease_id"],
        properties: { ...eventSchema.properties, lease_id: { ...leaseIdSchema, description: "The lease's id, valid until lease_expires_at" } },
      },
      EventDetail: {
        type: "object",
        description:
          "A stored event, once: its own fields, the delivery fields of the requested subscription (null when it has no delivery of the event) and its delivery in every subscription.",
        required: ["id", "type", "source", "payload", "tags", "occurred_at", "received_at", "stored_at", "schema_version", "status", "delivery_count", "leased_at", "lease_expires_at", "acknowledged_at", "dead_at", "deliveries"],
        additionalProperties: false,
        properties: {
          id: eventId,
          type: { type: "string" },
          source: nullable("string"),
          payload: { description: "The producer's JSON value, unchanged" },
          tags: { type: "array", items: { type: "string" } },
          occurred_at: nullable("string", { format: "date-time" }),
          received_at: dateTime,
          stored_at: dateTime,
          schema_version: nullable("integer", { minimum: 1, description: "The version of its type's registered schema the event was validated against at ingest; null when its type had none" }),
          status: { type: ["string", "null"], enum: [...EVENT_STATUSES, null] },
          delivery_count: nullable("integer", { minimum: 0 }),
          leased_at: nullable("string", { format: "date-time" }),
          lease_expires_at: nullable("string", { format: "date-time" }),
          acknowledged_at: nullable("string", { format: "date-time" }),
          dead_at: nullable("string", { format: "date-time" }),
          deliveries: { type: "array", items: schemaRef("Delivery") },
        },
      },
      Delivery: {
        type: "object",
        description: "An event's delivery state in one subscription.",
        required: ["subscription", "status", "delivery_count", "leased_at", "lease_expires_at", "acknowledged_at", "dead_at"],
        additionalProperties: false,
        properties: {
          subscription: { type: "string" },
          status: { type: "string", enum: [...EVENT_STATUSES] },
          delivery_count: { type: "integer", minimum: 0 },
          leased_at: nullable("string", { format: "date-time" }),
          lease_expires_at: nullable("string", { format: "date-time" }),
          acknowledged_at: nullable("string", { format: "date-time" }),
          dead_at: nullable("string", { format: "date-time" }),
        },
      },
      SubscriptionName: { type: "string", pattern: "^[a-z0-9][a-z0-9._-]{0,63}$", description: "1–64 characters of [a-z0-9][a-z0-9._-]*" },
      SubscriptionFilter: SUBSCRIPTION_FILTER_SCHEMA,
      Subscription: {
        type: "object",
        required: ["name", "filter", "created_at", "updated_at"],
        additionalProperties: false,
        properties: { name: schemaRef("SubscriptionName"), filter: schemaRef("SubscriptionFilter"), created_at: dateTime, updated_at: dateTime },
      },
      QueuedEvent: {
        type: "object",
        description: "Accepted by the API, not yet stored by a worker.",
        required: ["id", "status"],
        additionalProperties: false,
        properties: { id: eventId, status: { const: "queued" } },
      },
      InboxLease: {
        type: "object",
        required: ["data", "has_more"],
        additionalProperties: false,
        properties: {
          data: { type: "array", items: schemaRef("LeasedEvent") },
          has_more: { type: "boolean", description: "More deliverable events matched beyond this answer" },
        },
      },
      InboxPage: {
        type: "object",
        required: ["data", "next_cursor"],
        additionalProperties: false,
        properties: {
          data: { type: "array", items: schemaRef("Event") },
          next_cursor: nullable("string", { description: "Pass as cursor for the next page; null on the last page" }),
        },
      },
      Acknowledged: {
        type: "object",
        required: ["id", "status", "acknowledged_at"],
        additionalProperties: false,
        properties: { id: eventId, status: { const: "acknowledged" }, acknowledged_at: dateTime },
      },
      BatchAck: {
        type: "object",
        required: ["acknowledged", "not_delivered", "not_found"],
        additionalProperties: false,
        properties: {
          acknowledged: { type: "array", items: eventId },
          not_delivered: { type: "array", items: eventId, description: "Events nobody leased yet: not acknowledged, still pending" },
          not_found: { type: "array", items: eventId },
        },
      },
      BatchLeaseAck: {
        type: "object",
        required: ["results"],
        additionalProperties: false,
        properties: {
          results: {
            type: "array",
            items: {
              type: "object",
              required: ["id", "lease_id", "status"],
              additionalProperties: false,
              properties: { id: eventId, lease_id: uuid, status: { type: "string", enum: ["acknowledged", "lease_expired", "not_found"] } },
            },
          },
        },
      },
      Nacked: {
        type: "object",
        required: ["id", "status", "available_at"],
        additionalProperties: false,
        properties: { id: eventId, status: { const: "pending" }, available_at: dateTime },
      },
      Extended: {
        type: "object",
        required: ["id", "status", "lease_id", "lease_expires_at"],
        additionalProperties: false,
        properties: { id: eventId, status: { const: "delivered" }, lease_id: uuid, lease_expires_at: dateTime },
      },
      Ready: {
        type: "object",
        required: ["status", "checks"],
        additionalProperties: false,
        properties: {
          status: { const: "ready" },
          checks: {
            type: "object",
            description: "One entry per dependency (postgres, sqs, redis when configured)",
            additionalProperties: { type: "object", required: ["ok"], properties: { ok: { type: "boolean" }, error: { type: "string" } } },
          },
        },
      },
    },
  },
};
