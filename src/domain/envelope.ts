import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { hash } from "node:crypto";
import { ErrorDetail, ValidationError } from "../errors";
import type { CloudEventAttributes } from "./cloudevent-attributes";

/** Documented envelope limits (README "Event envelope"). */
export const ENVELOPE_LIMITS = Object.freeze({
  typeMaxLength: 128,
  sourceMaxLength: 256,
  maxTags: 20,
  tagMaxLength: 64,
  payloadMaxDepth: 32,
  idempotencyKeyMaxLength: 255,
});

/** What a producer sends, after validation. */
export interface EventEnvelope {
  readonly type: string;
  readonly payload: unknown;
  readonly source: string | null;
  readonly tags: readonly string[];
  readonly occurred_at: string | null;
  /** Set when the event came in as a CloudEvent: the attributes the envelope has no field for (src/domain/cloudevents.ts). */
  readonly cloudevent?: CloudEventAttributes;
}

const OCCURRED_AT_MIN = Date.parse("1900-01-01T00:00:00Z");
const OCCURRED_AT_MAX = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * An instant as RFC 3339 writes it: date, time to the second (optional fraction, at most 9
 * digits) and an explicit offset, Z or ±hh:mm. Without an offset the time would be read in the
 * server's zone. The same schema describes occurred_at and the inbox's since/until.
 */
export const INSTANT_SCHEMA = Object.freeze({
  type: "string",
  format: "date-time",
  pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$",
} as const);
/** INSTANT_SCHEMA's pattern, for checks outside ajv. */
export const INSTANT_PATTERN = new RegExp(INSTANT_SCHEMA.pattern);

/** An Idempotency-Key: 1–255 printable ASCII characters (header or a batch item's field). */
export const IDEMPOTENCY_KEY_SCHEMA = Object.freeze({
  type: "string",
  minLength: 1,
  maxLength: ENVELOPE_LIMITS.idempotencyKeyMaxLength,
  pattern: "^[\\x21-\\x7e]+$",
} as const);
const IDEMPOTENCY_KEY_PATTERN = new RegExp(IDEMPOTENCY_KEY_SCHEMA.pattern);

/**
 * The envelope's fields as JSON Schema (draft 2020-12): the one description of the contract. The
 * API validates with it (compiled by ajv below) and /openapi.json embeds it unchanged. What JSON
 * Schema cannot say (payload depth, storable text, the occurred_at range) is checked in code after
 * it, and stated in the descriptions.
 */
export const ENVELOPE_PROPERTIES = Object.freeze({
  type: { type: "string", minLength: 1, maxLength: ENVELOPE_LIMITS.typeMaxLength, pattern: "^[A-Za-z0-9][A-Za-z0-9._:/-]*$", examples: ["order.created"] },
  payload: {
    description: `Any JSON value, nested at most ${ENVELOPE_LIMITS.payloadMaxDepth} levels deep, with no NUL character or unpaired surrogate in any string or key. Required (null is a value).`,
  },
  source: { type: ["string", "null"], minLength: 1, maxLength: ENVELOPE_LIMITS.sourceMaxLength, description: "No NUL character or unpaired surrogate." },
  tags: {
    type: "array",
    maxItems: ENVELOPE_LIMITS.maxTags,
    uniqueItems: true,
    items: { type: "string", maxLength: ENVELOPE_LIMITS.tagMaxLength, pattern: "^[A-Za-z0-9][A-Za-z0-9._:=/-]*$" },
  },
  occurred_at: {
    ...INSTANT_SCHEMA,
    // The year as written is 1900–9999; the UTC range past an offset is checked after the schema.
    pattern: INSTANT_SCHEMA.pattern.replace("^\\d{4}", "^(?:19\\d\\d|[2-9]\\d{3})"),
    type: ["string", "null"],
    description: "When the event happened at the producer: an RFC 3339 date-time with seconds and a UTC offset (Z or ±hh:mm), between 1900-01-01 and 9999-12-31.",
  },
} as const);

/** One event of POST /events. */
export const ENVELOPE_SCHEMA = Object.freeze({
  type: "object",
  required: ["type", "payload"],
  additionalProperties: false,
  properties: ENVELOPE_PROPERTIES,
} as const);

/** Most events in one POST /events/batch. */
export const MAX_BATCH_EVENTS = 100;

/** One event of POST /events/batch: an envelope plus its own idempotency key. */
export const BATCH_ITEM_SCHEMA = Object.freeze({
  type: "object",
  required: ["type", "payload"],
  additionalProperties: false,
  properties: { ...ENVELOPE_PROPERTIES, idempotency_key: { ...IDEMPOTENCY_KEY_SCHEMA, description: "As the Idempotency-Key header; unique within the batch" } },
} as const);

/** The events of a batch. */
export const BATCH_EVENTS_SCHEMA = Object.freeze({ type: "array", minItems: 1, maxItems: MAX_BATCH_EVENTS, items: BATCH_ITEM_SCHEMA } as const);

/** POST /events/batch: `{"events":[…]}` and nothing else beside it, or the bare array. */
export const BATCH_BODY_SCHEMA = Object.freeze({
  oneOf: [{ type: "object", required: ["events"], additionalProperties: false, properties: { events: BATCH_EVENTS_SCHEMA } }, BATCH_EVENTS_SCHEMA],
} as const);

/*
 * ajv on this path: the envelope is validated once per event on POST /events and per item of a
 * batch, and /openapi.json embeds the very schema it runs (why not Joi, measured:
 * docs/performance.md, "Validation: ajv rather than Joi").
 */
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats(ajv, ["date-time"]);
const validateEnvelope = ajv.compile(ENVELOPE_SCHEMA);
const validateBatchItem = ajv.compile(BATCH_ITEM_SCHEMA);
const validateInstant = ajv.compile(INSTANT_SCHEMA);

/** True for a string INSTANT_SCHEMA allows (a real calendar date and time, with seconds and an offset). */
export function isInstant(value: unknown): value is string {
  return validateInstant(value);
}

/** The field an ajv error is about, dotted ("tags.3"); a missing or extra property names itself. */
function ajvPath(e: ErrorObject): string {
  const parts = e.instancePath === "" ? [] : e.instancePath.slice(1).split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  const extra = (e.params as { missingProperty?: string; additionalProperty?: string }).missingProperty ?? (e.params as { additionalProperty?: string }).additionalProperty;
  if ((e.keyword === "required" || e.keyword === "additionalProperties") && extra !== undefined) parts.push(extra);
  return parts.join(".");
}

const AJV_MESSAGE: Partial<Record<string, (e: ErrorObject, label: string) => string>> = {
  required: (_e, label) => `${label} is required`,
  additionalProperties: (_e, label) => `${label} is not allowed`,
  pattern: (e, label) => (e.instancePath === "/occurred_at" ? OCCURRED_AT_MESSAGE : `${label} must match ${(e.params as { pattern: string }).pattern}`),
  format: (e, label) => (e.instancePath === "/occurred_at" ? OCCURRED_AT_MESSAGE : `${label} must be a ${(e.params as { format: string }).format}`),
};
const OCCURRED_AT_MESSAGE = `"occurred_at" must be an RFC 3339 date and time with seconds and a UTC offset, in the years 1900 to 9999, e.g. 2026-01-02T03:04:05Z or 2026-01-02T05:04:05+02:00`;

/** Turns ajv's errors into our details: one entry per failing field and keyword. */
export function ajvDetails(errors: readonly ErrorObject[] | null | undefined, index?: number): ErrorDetail[] {
  const seen = new Set<string>();
  const details: ErrorDetail[] = [];
  for (const e of errors ?? []) {
    const path = ajvPath(e);
    const label = JSON.stringify(path === "" ? "value" : path);
    const message = AJV_MESSAGE[e.keyword]?.(e, label) ?? `${label} ${e.message ?? "is invalid"}`;
    // A union type fails both branches: report the field once.
    if (seen.has(`${path}\u0000${message}`)) continue;
    seen.add(`${path}\u0000${message}`);
    details.push({ path, message, ...(index === undefined ? {} : { index }) });
  }
  return details;
}

/** False for a string Postgres text and jsonb refuse: one holding a NUL character or an unpaired UTF-16 surrogate. */
function storableString(s: string): boolean {
  return !s.includes("\u0000") && s.isWellFormed();
}

/**
 * One walk over a JSON value: its depth (scalars are 0, `{}`/`[]` are 1; the walk stops once it
 * passes payloadMaxDepth) and whether every string and object key in it is storable (see
 * storableString). Iterative, so hostile nesting cannot overflow the stack.
 */
export function scanJson(value: unknown): { depth: number; storable: boolean } {
  let max = 0;
  let storable = true;
  const values: unknown[] = [value];
  const depths: number[] = [0];
  while (values.length > 0) {
    const v = values.pop();
    const d = depths.pop()!;
    if (typeof v === "string") {
      if (storable && !storableString(v)) storable = false;
      continue;
    }
    if (v === null || typeof v !== "object") continue;
    const depth = d + 1;
    if (depth > max) {
      max = depth;
      if (max > ENVELOPE_LIMITS.payloadMaxDepth) break;
    }
    if (Array.isArray(v)) {
      for (const child of v) {
        values.push(child);
        depths.push(depth);
      }
    } else {
      for (const k of Object.keys(v)) {
        if (storable && !storableString(k)) storable = false;
        values.push((v as Record<string, unknown>)[k]);
        depths.push(depth);
      }
    }
  }
  return { depth: max, storable };
}

/** Depth of a JSON value (see scanJson). */
export function depthOf(value: unknown): number {
  return scanJson(value).depth;
}

/** What JSON Schema cannot say about an envelope that passed the schema. */
function checkBeyondSchema(v: { payload: unknown; source?: string | null; occurred_at?: string | null }, index?: number): ErrorDetail[] {
  const at = index === undefined ? {} : { index };
  const details: ErrorDetail[] = [];
  const payload = scanJson(v.payload);
  if (payload.depth > ENVELOPE_LIMITS.payloadMaxDepth) details.push({ path: "payload", message: `"payload" nests deeper than ${ENVELOPE_LIMITS.payloadMaxDepth} levels`, ...at });
  else if (!payload.storable) details.push({ path: "payload", message: `"payload" contains a NUL character or an unpaired surrogate, which cannot be stored`, ...at });
  if (typeof v.source === "string" && !storableString(v.source)) details.push({ path: "source", message: `"source" contains a NUL character or an unpaired surrogate`, ...at });
  if (typeof v.occurred_at === "string") {
    const t = Date.parse(v.occurred_at);
    if (!(t >= OCCURRED_AT_MIN && t <= OCCURRED_AT_MAX)) details.push({ path: "occurred_at", message: `"occurred_at" must be between 1900-01-01 and 9999-12-31`, ...at });
  }
  return details;
}

type ValidEnvelope = { type: string; payload: unknown; source?: string | null; tags?: string[]; occurred_at?: string | null };

function normalise(v: ValidEnvelope): EventEnvelope {
  const occurred = v.occurred_at === undefined || v.occurred_at === null ? null : new Date(v.occurred_at).toISOString();
  return { type: v.type, payload: v.payload, source: v.source ?? null, tags: v.tags ?? [], occurred_at: occurred };
}

function check(
  validate: ValidateFunction,
  body: unknown,
  index?: number,
): { ok: true; value: EventEnvelope } | { ok: false; details: ErrorDetail[] } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, details: [{ path: "", message: "event must be a JSON object", ...(index === undefined ? {} : { index }) }] };
  }
  if (!validate(body)) return { ok: false, details: ajvDetails(validate.errors, index) };
  const v = body as ValidEnvelope;
  const details = checkBeyondSchema(v, index);
  if (details.length > 0) return { ok: false, details };
  return { ok: true, value: normalise(v) };
}

/** Validates one envelope (ENVELOPE_SCHEMA and the checks beyond it); returns it normalised or the field errors. */
export function checkEnvelope(body: unknown, index?: number): { ok: true; value: EventEnvelope } | { ok: false; details: ErrorDetail[] } {
  return check(validateEnvelope, body, index);
}

/**
 * Validates one item of a batch (BATCH_ITEM_SCHEMA): an envelope plus an optional
 * `idempotency_key`, returned apart from the envelope.
 */
export function checkBatchItem(
  item: unknown,
  index: number,
): { ok: true; value: EventEnvelope; idempotencyKey: string | null } | { ok: false; details: ErrorDetail[] } {
  const r = check(validateBatchItem, item, index);
  if (!r.ok) return r;
  const key = (item as { idempotency_key?: string }).idempotency_key;
  return { ...r, idempotencyKey: key ?? null };
}

/** Validates one envelope or throws a 400 with the field paths. */
export function parseEnvelope(body: unknown): EventEnvelope {
  const result = checkEnvelope(body);
  if (!result.ok) throw new ValidationError("the event is invalid", result.details);
  return result.value;
}

/** Validates an Idempotency-Key header value (printable ASCII, 1–255 characters). */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | null {
  if (raw === undefined) return null;
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return null;
  if (value.length === 0 || value.length > ENVELOPE_LIMITS.idempotencyKeyMaxLength || !IDEMPOTENCY_KEY_PATTERN.test(value)) {
    throw new ValidationError("invalid Idempotency-Key header", [
      { path: "Idempotency-Key", message: `must be 1–${ENVELOPE_LIMITS.idempotencyKeyMaxLength} printable ASCII characters` },
    ]);
  }
  return value;
}

/** JSON with object keys sorted, so equal envelopes hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i]);
    return `${out}]`;
  }
  // Keys in UTF-16 code unit order (the default sort's order); undefined members are left out.
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let out = "{";
  let first = true;
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    out += `${first ? "" : ","}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** A JSON datacontenttype that says no more than the JSON event format's default: application/json, UTF-8. */
const PLAIN_JSON_MEDIA_TYPE = /^application\/json[ \t]*(;[ \t]*charset[ \t]*=[ \t]*"?utf-8"?[ \t]*)?$/i;

/**
 * sha256 of the canonical envelope: the identity of "the same body" for idempotency. A CloudEvent's
 * JSON data declared `application/json`, `application/json; charset=utf-8` or not at all is the
 * same data (the JSON format's default; JSON text is UTF-8), so the same event resent in another
 * mode (the SDK's binary mode adds the charset, its structured mode leaves the attribute out) is a
 * replay, not a 409.
 */
export function envelopeHash(envelope: EventEnvelope): string {
  const ce = envelope.cloudevent;
  if (ce !== undefined && ce.data === "json" && ce.datacontenttype !== undefined && PLAIN_JSON_MEDIA_TYPE.test(ce.datacontenttype)) {
    const { datacontenttype: _, ...rest } = ce;
    return hash("sha256", canonicalJson({ ...envelope, cloudevent: rest }), "hex");
  }
  return hash("sha256", canonicalJson(envelope), "hex");
}

/**
 * The body_hash an event travels and is stored with. With an Idempotency-Key it is envelopeHash:
 * a replay of the key is compared with it, whatever its key order or spacing. Without a key
 * nothing compares it, so when the request's own bytes are at hand (POST /events) it is their
 * sha256, which costs a tenth of the canonical encoding; a batch item without a key has no bytes
 * of its own and keeps envelopeHash.
 */
export function bodyHash(envelope: EventEnvelope, idempotencyKey: string | null, rawBody?: Uint8Array): string {
  return idempotencyKey === null && rawBody !== undefined ? hash("sha256", rawBody, "hex") : envelopeHash(envelope);
}
