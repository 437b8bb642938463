import { hash } from "node:crypto";
import { isUtf8 } from "node:buffer";
import { checkEnvelope, ENVELOPE_LIMITS, type EventEnvelope } from "./envelope";
import type { ErrorDetail } from "../errors";
import type { CloudEventAttributes, CloudEventData } from "./cloudevent-attributes";

export type { CloudEventAttributes, CloudEventData } from "./cloudevent-attributes";

/*
 * CloudEvents 1.0 (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) in and out,
 * over the HTTP protocol binding (binary and structured modes) with the JSON event format (one
 * event, or a batch). The mapping to the envelope, attribute by attribute (docs/cloudevents.md):
 *
 *   specversion      must be "1.0"; stored in `cloudevent`
 *   id               stored in `cloudevent.id`; with `source` it identifies the event: unless the
 *                    request carries an Idempotency-Key, the idempotency key is derived from them
 *                    (cloudEventKey), so a resent event is a replay and another body under the same
 *                    source and id a 409 idempotency_key_reused
 *   source           envelope `source` (at most 256 characters)
 *   type             envelope `type` (the envelope's pattern and 128 characters)
 *   subject          stored in `cloudevent.subject`
 *   time             envelope `occurred_at` (normalised to UTC); the text as sent kept in `cloudevent.time`
 *   datacontenttype  stored in `cloudevent.datacontenttype` (binary mode: the Content-Type header)
 *   dataschema       stored in `cloudevent.dataschema`
 *   data             envelope `payload`: the JSON value for a JSON datacontenttype (or none), the
 *                    text for a textual one; `cloudevent.data` records which ("json", "text")
 *   data_base64      envelope `payload` as the base64 text, `cloudevent.data` = "base64"
 *                    (binary mode: a body of a non-textual type, or not UTF-8)
 *   (no data)        envelope `payload` null, `cloudevent.data` = "none"
 *   extensions       stored in `cloudevent.extensions`, with their JSON types
 *   tags             none: a CloudEvent has no tags
 *
 * Out, a stored event becomes the same CloudEvent (toCloudEvent), plus extension attributes of the
 * service (TRIGGERS_EXTENSIONS) that a producer may not send.
 */

/** The media types of the JSON event format. */
export const CE_STRUCTURED = "application/cloudevents+json";
export const CE_BATCH = "application/cloudevents-batch+json";

/** The context attributes the spec defines (everything else is an extension). */
const CORE = new Set(["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"]);
/** An attribute name: lower-case ASCII letters and digits (spec: "SHOULD" at most 20; 64 here). */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,64}$/;
/** Extensions this service adds to what it delivers; a producer may send none named `triggers…`. */
export const TRIGGERS_EXTENSIONS = ["triggersid", "triggerslease", "triggersleaseexpires", "triggersdeliveries", "triggersschemaversion"] as const;
const MAX_EXTENSIONS = 32;
export const MAX_ATTRIBUTE_LENGTH = 1024;
export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A media type (RFC 2046): type/subtype and optional parameters. */
export const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*(\s*;.*)?$/;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** True for a JSON datacontenttype (or none: the JSON format's default). */
export function isJsonMediaType(ct: string | undefined): boolean {
  if (ct === undefined) return true;
  const base = ct.split(";")[0]!.trim().toLowerCase();
  return base === "application/json" || (base.startsWith("application/") && base.endsWith("+json"));
}

/** True for a media type whose data is text (carried as a string when it is UTF-8). */
function isTextMediaType(ct: string): boolean {
  const base = ct.split(";")[0]!.trim().toLowerCase();
  return base.startsWith("text/") || base === "application/xml" || base.endsWith("+xml");
}

/** A parsed CloudEvent: the envelope to accept, and the idempotency key derived from source and id. */
export interface ParsedCloudEvent {
  readonly envelope: EventEnvelope;
  readonly derivedKey: string;
}

export type CloudEventResult = { ok: true; value: ParsedCloudEvent } | { ok: false; details: ErrorDetail[] };

/** The idempotency key of a CloudEvent (its `source` and `id`): `ce:` and their sha256 in hex. */
export function cloudEventKey(source: string, id: string): string {
  return `ce:${hash("sha256", `${source}\u0000${id}`, "hex")}`;
}

const detail = (attribute: string, message: string, index?: number): ErrorDetail => ({ path: attribute, message, ...(index === undefined ? {} : { index }) });

/** False for text Postgres cannot store in jsonb: a NUL character or an unpaired UTF-16 surrogate. */
const storable = (s: string): boolean => !s.includes("\u0000") && s.isWellFormed();

/** The checks every mode shares, on the attributes as strings (binary) or JSON values (structured). */
function checkAttributes(attrs: Record<string, unknown>, index: number | undefined, fromHeaders: boolean): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const str = (name: string, required: boolean) => {
    const v = attrs[name];
    if (v === undefined) {
      if (required) details.push(detail(name, `"${name}" is required`, index));
      return;
    }
    if (typeof v !== "string" || v.length === 0) details.push(detail(name, `"${name}" must be a non-empty string`, index));
    else if (v.length > MAX_ATTRIBUTE_LENGTH) details.push(detail(name, `"${name}" is longer than ${MAX_ATTRIBUTE_LENGTH} characters`, index));
    else if (!storable(v)) details.push(detail(name, `"${name}" contains a NUL character or an unpaired surrogate, which cannot be stored`, index));
  };
  if (attrs.specversion === undefined) details.push(detail("specversion", `"specversion" is required`, index));
  else if (attrs.specversion !== "1.0") details.push(detail("specversion", `"specversion" must be "1.0" (the version this service speaks)`, index));
  str("id", true);
  str("source", true);
  str("type", true);
  str("subject", false);
  str("dataschema", false);
  str("datacontenttype", false);
  if (typeof attrs.time === "string" && !RFC3339.test(attrs.time)) details.push(detail("time", `"time" must be an RFC 3339 timestamp`, index));
  else if (attrs.time !== undefined && typeof attrs.time !== "string") details.push(detail("time", `"time" must be an RFC 3339 timestamp`, index));
  if (typeof attrs.datacontenttype === "string" && !MEDIA_TYPE.test(attrs.datacontenttype)) details.push(detail("datacontenttype", `"datacontenttype" must be a media type (RFC 2046)`, index));
  if (typeof attrs.dataschema === "string" && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(attrs.dataschema)) details.push(detail("dataschema", `"dataschema" must be an absolute URI`, index));
  let extensions = 0;
  for (const [name, v] of Object.entries(attrs)) {
    if (CORE.has(name)) continue;
    if (!ATTRIBUTE_NAME.test(name)) {
      details.push(detail(name, `"${name}": an attribute name is 1–64 lower-case ASCII letters and digits`, index));
      continue;
    }
    if (name.startsWith("triggers")) {
      details.push(detail(name, `"${name}": extensions named triggers… are set by this service on delivery; they cannot be sent`, index));
      continue;
    }
    if (++extensions > MAX_EXTENSIONS) {
      details.push(detail(name, `at most ${MAX_EXTENSIONS} extension attributes`, index));
      break;
    }
    const ok = fromHeaders
      ? typeof v === "string"
      : typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX);
    if (!ok) details.push(detail(name, `"${name}" must be a string, a boolean or a 32-bit integer`, index));
    else if (typeof v === "string" && v.length > MAX_ATTRIBUTE_LENGTH) details.push(detail(name, `"${name}" is longer than ${MAX_ATTRIBUTE_LENGTH} characters`, index));
    else if (typeof v === "string" && !storable(v)) details.push(detail(name, `"${name}" contains a NUL character or an unpaired surrogate, which cannot be stored`, index));
  }
  return details;
}

/** The envelope of checked attributes and data, through the envelope's own checks (their paths renamed to attributes). */
function toEnvelope(attrs: Record<string, unknown>, payload: unknown, data: CloudEventData, index?: number): CloudEventResult {
  const rename: Record<string, string> = { payload: "data", occurred_at: "time" };
  const checked = checkEnvelope({ type: attrs.type, source: attrs.source, payload, ...(attrs.time === undefined ? {} : { occurred_at: normaliseTime(attrs.time as string) }) }, index);
  if (!checked.ok) {
    return { ok: false, details: checked.details.map((d) => ({ ...d, path: rename[d.path ?? ""] ?? d.path, message: d.message.replace(/"payload"/g, '"data"').replace(/"occurred_at"/g, '"time"') })) };
  }
  const extensions: Record<string, string | number | boolean> = {};
  let anyExtension = false;
  for (const [name, v] of Object.entries(attrs)) {
    if (CORE.has(name) || v === undefined) continue;
    extensions[name] = v as string | number | boolean;
    anyExtension = true;
  }
  const cloudevent: CloudEventAttributes = {
    specversion: "1.0",
    id: attrs.id as string,
    ...(attrs.subject === undefined ? {} : { subject: attrs.subject as string }),
    ...(attrs.time === undefined ? {} : { time: attrs.time as string }),
    ...(attrs.datacontenttype === undefined ? {} : { datacontenttype: attrs.datacontenttype as string }),
    ...(attrs.dataschema === undefined ? {} : { dataschema: attrs.dataschema as string }),
    ...(anyExtension ? { extensions } : {}),
    data,
  };
  return { ok: true, value: { envelope: { ...checked.value, cloudevent }, derivedKey: cloudEventKey(attrs.source as string, attrs.id as string) } };
}

/** RFC 3339 as the envelope's occurred_at pattern takes it: upper-case T and Z, at most 9 fraction digits kept as they are. */
function normaliseTime(time: string): string {
  return time.replace("t", "T").replace(/z$/, "Z");
}

/**
 * One event of the JSON event format (structured mode's body, or an item of a batch): checked
 * against the spec and the envelope. Errors name the attribute (`path`) and, in a batch, `index`.
 */
export function parseStructured(body: unknown, index?: number): CloudEventResult {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return { ok: false, details: [detail("", "a CloudEvent must be a JSON object", index)] };
  const attrs = { ...(body as Record<string, unknown>) };
  // The JSON format: an attribute whose value is null is absent.
  for (const [k, v] of Object.entries(attrs)) if (v === null && k !== "data") delete attrs[k];
  const details = checkAttributes(attrs, index, false);
  const hasData = "data" in attrs;
  const hasBase64 = attrs.data_base64 !== undefined;
  if (hasData && hasBase64) details.push(detail("data_base64", `"data" and "data_base64" cannot both be present`, index));
  if (hasBase64 && (typeof attrs.data_base64 !== "string" || !BASE64.test(attrs.data_base64))) details.push(detail("data_base64", `"data_base64" must be base64 text`, index));
  if (details.length > 0) return { ok: false, details };
  if (hasBase64) return toEnvelope(attrs, attrs.data_base64, "base64", index);
  if (!hasData) return toEnvelope(attrs, null, "none", index);
  const ct = attrs.datacontenttype as string | undefined;
  // Non-JSON data in the JSON format is the text of the data, as a JSON string.
  const data: CloudEventData = !isJsonMediaType(ct) && typeof attrs.data === "string" ? "text" : "json";
  return toEnvelope(attrs, attrs.data, data, index);
}

/** A batch (application/cloudevents-batch+json): a JSON array of events. */
export function parseBatch(body: unknown, maxEvents: number): { ok: true; events: ParsedCloudEvent[] } | { ok: false; details: ErrorDetail[] } {
  if (!Array.isArray(body) || body.length === 0 || body.length > maxEvents) {
    return { ok: false, details: [detail("", `a CloudEvents batch must be a JSON array of 1 to ${maxEvents} events`)] };
  }
  const details: ErrorDetail[] = [];
  const events: ParsedCloudEvent[] = [];
  body.forEach((item, index) => {
    const r = parseStructured(item, index);
    if (r.ok) events.push(r.value);
    else details.push(...r.details.map((d) => ({ ...d, path: `${index}${d.path ? `.${d.path}` : ""}` })));
  });
  return details.length > 0 ? { ok: false, details } : { ok: true, events };
}

/** True when a request is binary mode: it carries the `ce-specversion` header. */
export function isBinaryMode(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers["ce-specversion"] !== undefined;
}

/**
 * Decodes a header value of the HTTP binding: percent-encoded UTF-8 (spec: space, `"`, `%` and
 * anything outside printable ASCII are encoded). Null for a malformed encoding.
 */
function decodeHeader(value: string): string | null {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return null;
  }
}

/** Binary mode's body, as the route read it. */
export interface BinaryBody {
  /** The Content-Type header, if any (the event's datacontenttype). */
  readonly contentType: string | undefined;
  /** The body's bytes (empty: no data). */
  readonly bytes: Buffer;
  /** The parsed JSON value, when the type is JSON (parsed by the JSON body reader). */
  readonly json?: { value: unknown };
}

/**
 * Binary mode: the attributes from the `ce-*` headers, the datacontenttype from Content-Type, the
 * body as the data: a JSON value for a JSON type, text for a textual type in UTF-8, base64 for
 * anything else (and no data for an empty body).
 */
export function parseBinary(headers: Readonly<Record<string, string | string[] | undefined>>, body: BinaryBody): CloudEventResult {
  const attrs: Record<string, unknown> = {};
  const details: ErrorDetail[] = [];
  for (const [name, raw] of Object.entries(headers)) {
    if (!name.startsWith("ce-") || raw === undefined) continue;
    const attribute = name.slice(3);
    if (attribute === "datacontenttype" || attribute === "data" || attribute === "data_base64") {
      details.push(detail(attribute, `"${attribute}" is not a header in binary mode (the data is the body, its type Content-Type)`));
      continue;
    }
    const value = decodeHeader(Array.isArray(raw) ? raw.join(",") : raw);
    if (value === null) details.push(detail(attribute, `"${attribute}" is not a valid percent-encoded header value`));
    else attrs[attribute] = value;
  }
  if (body.contentType !== undefined) attrs.datacontenttype = body.contentType;
  details.push(...checkAttributes(attrs, undefined, true));
  if (details.length > 0) return { ok: false, details };
  if (body.bytes.length === 0) return toEnvelope(attrs, null, "none");
  if (body.json) return toEnvelope(attrs, body.json.value, "json");
  if (body.contentType !== undefined && isTextMediaType(body.contentType) && isUtf8(body.bytes)) return toEnvelope(attrs, body.bytes.toString("utf8"), "text");
  return toEnvelope(attrs, body.bytes.toString("base64"), "base64");
}

/** A stored event as toCloudEvent reads it (the event row's own columns). */
export interface StoredEventForCloudEvent {
  readonly id: string;
  readonly type: string;
  readonly source: string | null;
  readonly payload: unknown;
  readonly occurred_at: Date | string | null;
  readonly cloudevent?: CloudEventAttributes | null;
  readonly schema_version?: number | null;
}

/** What the delivery adds, as extensions: the lease of a leased event and its delivery count. */
export interface DeliveryExtensions {
  readonly lease_id?: string | null;
  readonly lease_expires_at?: Date | string | null;
  readonly delivery_count?: number;
}

/** `source` of an event that was sent without one (a CloudEvent must have one). */
export const DEFAULT_SOURCE = "/triggers";

const iso = (d: Date | string): string => new Date(d).toISOString();

/**
 * A stored event as a CloudEvent (the JSON event format). An event that came in as a CloudEvent
 * comes back with the same id, source, type, subject, time (as sent), datacontenttype, dataschema,
 * extensions and data; a plain event gets its own id, its source (or DEFAULT_SOURCE), occurred_at
 * as time and its payload as JSON data. Extensions of the service: `triggersid` (its id here),
 * `triggersschemaversion` (the schema version it was validated against, when one was), and on a
 * lease `triggerslease`, `triggersleaseexpires` and `triggersdeliveries`.
 */
export function toCloudEvent(row: StoredEventForCloudEvent, delivery: DeliveryExtensions = {}): Record<string, unknown> {
  const ce = row.cloudevent ?? null;
  const out: Record<string, unknown> = {
    specversion: "1.0",
    id: ce?.id ?? row.id,
    source: row.source ?? DEFAULT_SOURCE,
    type: row.type,
  };
  if (ce?.subject !== undefined) out.subject = ce.subject;
  if (ce?.time !== undefined) out.time = ce.time;
  else if (row.occurred_at !== null) out.time = iso(row.occurred_at);
  if (ce === null) out.datacontenttype = "application/json";
  else if (ce.datacontenttype !== undefined) out.datacontenttype = ce.datacontenttype;
  if (ce?.dataschema !== undefined) out.dataschema = ce.dataschema;
  if (ce?.extensions) Object.assign(out, ce.extensions);
  out.triggersid = row.id;
  if (row.schema_version !== undefined && row.schema_version !== null) out.triggersschemaversion = row.schema_version;
  if (delivery.lease_id) out.triggerslease = delivery.lease_id;
  if (delivery.lease_expires_at) out.triggersleaseexpires = iso(delivery.lease_expires_at);
  if (delivery.delivery_count !== undefined) out.triggersdeliveries = delivery.delivery_count;
  const data = ce?.data ?? "json";
  if (data === "base64") out.data_base64 = row.payload;
  else if (data !== "none") out.data = row.payload;
  return out;
}

/** The envelope limit a CloudEvent's `type` must also meet, for the docs. */
export const CLOUDEVENT_TYPE_MAX = ENVELOPE_LIMITS.typeMaxLength;
