import type { TSchema } from "@sinclair/typebox";
import { codesOfStatus, ERROR_CODES, type ErrorCode } from "../../errors";
import { MAX_QUERY_BYTES } from "../query-bounds";
import type { ErrorStatus, HeaderDoc, Operation } from "./operation";
import * as S from "./schemas";

/*
 * The OpenAPI 3.1 document of the route table, served at GET /openapi.json. Each operation's
 * parameters, bodies and responses are its own TypeBox schemas; its error responses are the
 * statuses and codes every operation of its kind may carry plus the ones it declares. HEAD of
 * every GET and OPTIONS of every path are derived, as the dispatcher answers them.
 */

type Json = Record<string, unknown>;

/** Schemas published under components/schemas: wherever one of these objects appears it becomes a $ref. */
const NAMED: ReadonlyArray<readonly [string, TSchema]> = [
  ["EventEnvelope", S.EventEnvelope],
  ["BatchBody", S.BatchBody],
  ["AcceptedEvent", S.AcceptedEventSchema],
  ["AcceptedBatch", S.AcceptedBatchSchema],
  ["PartialBatch", S.PartialBatchSchema],
  ["Event", S.EventViewSchema],
  ["LeasedEvent", S.LeasedEventSchema],
  ["EventDetail", S.EventDetailSchema],
  ["Delivery", S.DeliverySchema],
  ["QueuedEvent", S.QueuedEventSchema],
  ["SubscriptionName", S.SubscriptionName],
  ["SubscriptionFilter", S.SubscriptionFilterSchema],
  ["Subscription", S.SubscriptionViewSchema],
  ["InboxLease", S.InboxLeaseSchema],
  ["InboxPage", S.InboxPageSchema],
  ["Acknowledged", S.AcknowledgedSchema],
  ["BatchAck", S.BatchAckSchema],
  ["BatchLeaseAck", S.BatchLeaseAckSchema],
  ["Nacked", S.NackedSchema],
  ["Extended", S.ExtendedSchema],
  ["Ready", S.ReadySchema],
  ["CloudEvent", S.CloudEventSchema],
  ["CloudEventIn", S.CloudEventInSchema],
  ["SchemaRegistration", S.SchemaRegistrationSchema],
  ["SchemaVersion", S.SchemaVersionSchema],
  ["SchemaRegistered", S.SchemaRegisteredSchema],
  ["SchemaDetail", S.SchemaDetailSchema],
  ["SchemaList", S.SchemaListSchema],
];

const ref = (kind: string, name: string) => ({ $ref: `#/components/${kind}/${name}` });

/** A plain JSON copy of a schema, with named schemas (other than `root`) replaced by $refs and titled unions named. */
function plain(node: unknown, names: Map<object, string>, root?: object): unknown {
  if (Array.isArray(node)) return node.map((v) => plain(v, names, root));
  if (node === null || typeof node !== "object") return node;
  const name = names.get(node);
  if (name !== undefined && node !== root) return ref("schemas", name);
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) if (v !== undefined) out[k] = plain(v, names, root);
  return out;
}

/** Headers every response carries. */
const COMMON_HEADERS = { "X-Request-Id": ref("headers", "X-Request-Id") };
/** Headers of a response that passed the rate limiter (present from then on, errors included). */
const LIMITED_HEADERS = {
  ...COMMON_HEADERS,
  "RateLimit-Policy": ref("headers", "RateLimit-Policy"),
  RateLimit: ref("headers", "RateLimit"),
  "X-RateLimit-Limit": ref("headers", "X-RateLimit-Limit"),
  "X-RateLimit-Remaining": ref("headers", "X-RateLimit-Remaining"),
  "X-RateLimit-Reset": ref("headers", "X-RateLimit-Reset"),
};

/** What each error status means, and the headers it carries beyond the common ones. */
const ERROR_STATUS: Record<ErrorStatus, { description: string; headers?: Json }> = {
  400: { description: "Malformed JSON, a body, path or query that fails the schema or a rule listed in x-rules (details name each field), too many query parameters, or a request Node's HTTP parser refuses (bad_request: an unknown method, a malformed request line or header; the connection is closed)" },
  401: { description: "Missing, malformed, invalid or revoked API key", headers: { "WWW-Authenticate": ref("headers", "WWW-Authenticate") } },
  403: { description: "The key lacks the scope this operation needs (details name it)" },
  404: { description: "No such event or subscription for this tenant (another tenant's included), or a path parameter that cannot name one" },
  408: { description: "The request headers did not arrive within HTTP_HEADERS_TIMEOUT_MS (default 10 s), or the whole request within HTTP_REQUEST_TIMEOUT_MS (default 30 s); the server closes the connection", headers: { Connection: ref("headers", "Connection") } },
  409: { description: "The request conflicts with the resource's state (the codes name how)" },
  413: { description: "The body exceeds the operation's limit (payload_too_large; MAX_EVENT_BYTES, default 256 KiB, for events; the connection is closed), or an event does not fit one 256 KiB queue message with its metadata (event_too_large, details name its index)" },
  414: { description: `The query string exceeds ${MAX_QUERY_BYTES} bytes` },
  415: { description: "The body is not uncompressed UTF-8 JSON" },
  422: {
    description:
      "The data of an event (of a batch: of one or more events) does not match the latest registered schema of its type; nothing was accepted. Each detail has `pointer` (a JSON pointer into the data), `message`, `keyword`, `type`, `version` and, in a batch, `index` (docs/schemas.md).",
  },
  429: {
    description:
      "The key's rate limit is used up (rate_limited), this address failed authentication too often (too_many_failed_authentications), the key or tenant already has its quota of concurrent long polls waiting (long_poll_quota_exceeded; LONG_POLLS_PER_KEY, LONG_POLLS_PER_TENANT per API process), " +
      'or the tenant\'s delivery-rows budget cannot cover the request (delivery_rate_limited: each event costs 1 + the tenant\'s live subscriptions; DELIVERY_ROWS_PER_MINUTE_PER_TENANT; RateLimit-Policy and RateLimit then name "delivery-rows"; nothing of the request was accepted)',
    headers: { "Retry-After": ref("headers", "Retry-After") },
  },
  431: { description: "The request line and headers exceed Node's limit (16 KiB); the server closes the connection", headers: { Connection: ref("headers", "Connection") } },
  500: { description: "An unexpected error (logged with the request id); the message is generic" },
  503: { description: "A dependency this request needs is down (details name it); retry after Retry-After seconds", headers: { "Retry-After": ref("headers", "Retry-After") } },
};

/** The Error shape narrowed to `codes`: what a client may read in error.code of this response. */
const errorSchema = (codes: readonly string[]) => ({
  allOf: [ref("schemas", "Error"), { type: "object", properties: { error: { type: "object", properties: { code: { type: "string", enum: [...codes] } } } } }],
});

/** 400s of a body the table reads: JSON that cannot be parsed, or holds what the parser refuses. */
const BODY_400: readonly ErrorCode[] = ["invalid_json", "invalid_body", "invalid_encoding", "forbidden_key", "unrepresentable_number"];

/**
 * The error codes, by status, an operation may answer: those answered before routing (400
 * bad_request and too_many_parameters, 408, 414, 431) and 500, every validation failure, the
 * key's (401, 403, 429, 503) on an authenticated one, the body's (400, 413, 415) when it has one,
 * 404 when it has path parameters, and the ones it declares.
 */
export function errorCodesOf(op: Pick<Operation, "scope" | "params" | "body" | "errors">): Map<number, ErrorCode[]> {
  const codes = new Map<number, Set<ErrorCode>>();
  const add = (status: number, ...list: ErrorCode[]) => {
    for (const c of list) {
      if (ERROR_CODES[c] !== status) throw new Error(`${c} is not sent with ${status}`);
      (codes.get(status) ?? codes.set(status, new Set()).get(status)!).add(c);
    }
  };
  add(400, "validation_failed", "bad_request", "too_many_parameters");
  add(408, "request_timeout");
  add(414, "uri_too_long");
  add(431, "request_header_fields_too_large");
  add(500, "internal_error");
  if (op.scope !== null) {
    add(401, "unauthorized");
    if (op.scope !== "any") add(403, "forbidden");
    add(429, "rate_limited", "too_many_failed_authentications");
    add(503, "service_unavailable");
  }
  if (op.params) add(404, "not_found");
  if (op.body) {
    add(400, ...BODY_400);
    add(413, "payload_too_large");
    add(415, "unsupported_media_type");
  }
  for (const [status, list] of Object.entries(op.errors ?? {})) add(Number(status), ...(list ?? []));
  return new Map([...codes].sort(([a], [b]) => a - b).map(([s, set]) => [s, [...set]]));
}

function headerDoc(h: HeaderDoc | string): unknown {
  return typeof h === "string" ? ref("headers", h) : h;
}

/** The parameters of an operation: X-Request-Id, its headers, path parameters and query (one per property, or one exploded object for a union of modes). */
function parameters(op: Operation, names: Map<object, string>): unknown[] {
  const out: unknown[] = [ref("parameters", "X-Request-Id")];
  for (const h of op.headers ?? []) out.push({ name: h.name, in: "header", description: h.description, schema: plain(h.schema, names) });
  const props = (schema: TSchema) => Object.entries((schema as { properties?: Record<string, Json> }).properties ?? {});
  if (op.params) for (const [name, s] of props(op.params)) out.push({ name, in: "path", required: true, description: s.description, schema: plain(s, names) });
  const query = op.query as Json | undefined;
  if (query && Array.isArray(query.anyOf)) {
    out.push({
      name: "query",
      in: "query",
      description: "The query is exactly one of these parameter sets (each parameter of the chosen set a query parameter of its own, as form style with explode writes an object).",
      style: "form",
      explode: true,
      schema: plain(query, names),
    });
  } else if (query) {
    const required = new Set((query.required as string[] | undefined) ?? []);
    for (const [name, s] of props(query as TSchema)) {
      out.push({ name, in: "query", description: s.description, required: required.has(name) || undefined, ...(s.type === "array" ? { style: "form", explode: true } : {}), schema: plain(s, names) });
    }
  }
  return out;
}

/** The responses of an operation: its successes, then every error status it may answer, each narrowed to its codes. */
function responses(op: Operation, names: Map<object, string>, head = false): Json {
  const base = op.scope === null ? COMMON_HEADERS : LIMITED_HEADERS;
  const out: Json = {};
  for (const [status, r] of Object.entries(op.responses)) {
    const headers: Json = { ...base };
    for (const [k, h] of Object.entries(r.headers ?? {})) headers[k] = headerDoc(h);
    const content: Json = {};
    if (r.schema) content[r.contentType ?? "application/json"] = { schema: plain(r.schema, names) };
    for (const [type, schema] of Object.entries(r.alternatives ?? {})) content[type] = { schema: plain(schema, names) };
    out[status] = { description: r.description, headers, ...(r.schema && !head ? { content } : {}) };
  }
  for (const [status, codes] of errorCodesOf(op)) {
    const meta = ERROR_STATUS[status as ErrorStatus];
    const headers: Json = { ...(status === 401 || status >= 500 || status === 408 || status === 414 || status === 431 ? COMMON_HEADERS : base), ...(meta.headers ?? {}) };
    if (status === 413) headers.Connection = ref("headers", "Connection");
    out[String(status)] = { description: meta.description, headers, ...(head ? {} : { content: { "application/json": { schema: errorSchema(codes) } } }) };
  }
  return out;
}

/** What an operation's x-rules add to its description. */
const withRules = (op: Operation): string | undefined => {
  if (!op.rules?.length) return op.description;
  return `${op.description ? `${op.description} ` : ""}Beyond the schema (x-rules): ${op.rules.join("; ")}.`;
};

/** The media types a request body may have: JSON, and those the operation's handler also reads (any media type: its schema unstated). */
function requestContent(body: NonNullable<Operation["body"]>, names: Map<object, string>): Json {
  const content: Json = { "application/json": { schema: plain(body.schema, names) } };
  for (const [type, schema] of Object.entries(body.alternatives ?? {})) content[type] = schema === null ? {} : { schema: plain(schema, names) };
  return content;
}

function operationObject(op: Operation, names: Map<object, string>): Json {
  const body = op.body;
  return {
    operationId: op.id,
    summary: op.summary,
    ...(withRules(op) ? { description: withRules(op) } : {}),
    tags: [op.tag],
    ...(op.scope === null ? { security: [] } : { "x-scope": op.scope }),
    parameters: parameters(op, names),
    ...(body ? { requestBody: { required: body.required, ...(body.description ? { description: body.description } : {}), content: requestContent(body, names) } } : {}),
    responses: responses(op, names),
    ...(op.rules?.length ? { "x-rules": op.rules } : {}),
  };
}

/** HEAD of a GET: the same parameters and statuses, headers only. */
function headObject(op: Operation, names: Map<object, string>): Json {
  return {
    operationId: `${op.id}Head`,
    summary: `${op.summary} (headers only)`,
    description: `As GET ${op.path}, without a body${op.head ? "; it has no effect beyond validating the request" : ""}.`,
    tags: [op.tag],
    ...(op.scope === null ? { security: [] } : { "x-scope": op.scope }),
    parameters: parameters(op, names),
    responses: responses(op, names, true),
  };
}

/** OPTIONS of a path: 204 with Allow, without a key. */
function optionsObject(path: string, allow: string): Json {
  const codes = errorCodesOf({ scope: null, params: undefined, body: undefined, errors: {} });
  const errors: Json = {};
  for (const [status, all] of codes) {
    // OPTIONS reads no query: it is never refused for one.
    const list = all.filter((c) => c !== "validation_failed");
    const meta = ERROR_STATUS[status as ErrorStatus];
    errors[String(status)] = { description: meta.description, headers: { ...COMMON_HEADERS, ...(meta.headers ?? {}) }, content: { "application/json": { schema: errorSchema(list) } } };
  }
  return {
    operationId: `options${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: "The path's methods",
    description: `Answers 204 with Allow: ${allow}. Needs no key.`,
    tags: ["operations"],
    security: [],
    parameters: [ref("parameters", "X-Request-Id"), ...[...path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, description: "Any value: OPTIONS does not look it up", schema: { type: "string" } }))],
    responses: { "204": { description: "The methods of this path", headers: { ...COMMON_HEADERS, Allow: ref("headers", "Allow") } }, ...errors },
  };
}

/** The Allow list of each path: its methods, HEAD with GET, and OPTIONS. */
export function allowedMethods(table: readonly Operation[]): Map<string, string> {
  const byPath = new Map<string, string[]>();
  for (const op of table) {
    const list = byPath.get(op.path) ?? byPath.set(op.path, []).get(op.path)!;
    list.push(op.method);
    if (op.method === "GET") list.push("HEAD");
  }
  return new Map([...byPath].map(([p, m]) => [p, [...m, "OPTIONS"].join(", ")]));
}

/** The OpenAPI 3.1 document of a route table. */
export function openApiDocument(table: readonly Operation[]): Json {
  const names = new Map<object, string>(NAMED.map(([n, s]) => [s as object, n]));
  for (const op of table) {
    const q = op.query as Json | undefined;
    if (q && Array.isArray(q.anyOf)) for (const branch of q.anyOf as Json[]) if (typeof branch.title === "string") names.set(branch, branch.title);
  }
  const allow = allowedMethods(table);
  const paths: Record<string, Json> = {};
  for (const op of table) {
    const item = (paths[op.path] ??= {});
    item[op.method.toLowerCase()] = operationObject(op, names);
    if (op.method === "GET") item.head = headObject(op, names);
  }
  for (const [path, item] of Object.entries(paths)) {
    item.options = optionsObject(path, allow.get(path)!);
    item["x-method-not-allowed"] = ref("responses", "MethodNotAllowed");
  }
  const schemas: Json = {
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
            details: { type: "array", items: ref("schemas", "ErrorDetail") },
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
        limit: { type: ["string", "integer"], description: "schema_limit_exceeded: the bound the schema passed (its name); long_poll_quota_exceeded: the quota that was full (a count)" },
      },
    },
  };
  for (const [schema, name] of names) schemas[name] = plain(schema, names, schema);
  return {
    openapi: "3.1.0",
    info: {
      title: "Triggers API",
      version: "1.0.0",
      description:
        "Multi-tenant event ingestion and delivery. Producers POST events (202 once SQS has them); consumers lease them from GET /inbox and acknowledge them. " +
        'Every error is {"error":{"code","message","details"}}, those answered before a request reaches the routes included (a malformed request 400, a slow one 408, oversized headers 431; they close the connection). Every response carries X-Request-Id. ' +
        "Every path answers OPTIONS (204, Allow) and a method it does not list with 405 method_not_allowed and Allow (x-method-not-allowed); a path not listed here answers 404 not_found. " +
        "Each operation lists in x-rules what its schemas cannot state, with the answer to breaking it; x-scope names the API-key scope it needs (`any`: a valid key, whatever its scopes).",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: "/", description: "this server" }],
    tags: [
      { name: "events", description: "Ingest and read events" },
      { name: "inbox", description: "Lease, browse, acknowledge and retry events" },
      { name: "subscriptions", description: "Named consumers, each receiving every matching event with its own leases and acks" },
      { name: "schemas", description: "Per-type JSON Schemas enforced at ingest" },
      { name: "operations", description: "Health, readiness, metrics, this document and OPTIONS (no authentication)" },
    ],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", description: "An API key (trg_…) of one tenant, with scopes events:write, inbox:read, events:ack, subscriptions:manage, schemas:manage or admin (admin implies every other)." },
      },
      parameters: {
        "X-Request-Id": {
          name: "X-Request-Id",
          in: "header",
          description: "Your id for this request (1–128 of A-Z a-z 0-9 . _ : -), echoed back and logged; any other value is replaced by a generated one.",
          schema: { type: "string" },
        },
      },
      headers: {
        "X-Request-Id": { description: "The request's id (yours if well-formed, else generated); it is in the request's log line.", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" } },
        "Retry-After": { description: "Seconds to wait before retrying", required: true, schema: { type: "integer", minimum: 0 } },
        Connection: { description: "close: the server closes the connection after this answer", required: true, schema: { const: "close" } },
        Allow: { description: "The path's methods", required: true, schema: { type: "string" } },
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
      responses: {
        MethodNotAllowed: {
          description: "The path exists but not with this method; Allow lists the methods it has. Answered for any method a path does not list, before authentication.",
          headers: { ...COMMON_HEADERS, Allow: ref("headers", "Allow") },
          content: { "application/json": { schema: errorSchema(codesOfStatus(405)) } },
        },
      },
      schemas,
    },
  };
}
