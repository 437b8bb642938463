/*
 * CloudEvents 1.0 for the client library: encoding an event for the HTTP binding (structured or
 * binary mode, or a batch) and the shape of the events the API delivers (docs/cloudevents.md).
 * No dependency: a CloudEvent is a plain object in the JSON event format, which is also what the
 * official `cloudevents` SDK's `event.toJSON()` gives and what its `new CloudEvent(obj)` takes.
 */

/** Media types of the JSON event format. */
export const CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json";
export const CLOUDEVENT_BATCH_CONTENT_TYPE = "application/cloudevents-batch+json";

/** A CloudEvent to send: `specversion` defaults to "1.0"; extension attributes are further properties. */
export interface CloudEventInput {
  readonly specversion?: "1.0";
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject?: string;
  readonly time?: string;
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  readonly data?: unknown;
  readonly data_base64?: string;
  readonly [extension: string]: unknown;
}

/** A CloudEvent as the API delivers it: what was sent, plus the service's `triggers*` extensions. */
export interface DeliveredCloudEvent extends CloudEventInput {
  readonly specversion: "1.0";
  /** The event's id in the service (for ack, nack, extend). */
  readonly triggersid: string;
  /** A lease answer only: the lease id. */
  readonly triggerslease?: string;
  /** A lease answer only: when the lease expires. */
  readonly triggersleaseexpires?: string;
  readonly triggersdeliveries?: number;
  /** The schema version the event was validated against, when its type has a schema. */
  readonly triggersschemaversion?: number;
}

const CORE = new Set(["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"]);

/** Percent-encodes a header value as the HTTP binding asks (space, `"`, `%` and anything outside printable ASCII). */
function encodeHeader(value: string): string {
  return Array.from(new TextEncoder().encode(value), (b) => (b > 0x20 && b < 0x7f && b !== 0x22 && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

const isJson = (ct: string | undefined) => ct === undefined || /^application\/(?:[^;]*\+)?json\s*(?:;|$)/i.test(ct);

/** The JSON event format of an event (structured mode's body, an item of a batch). */
export function toStructured(event: CloudEventInput): Record<string, unknown> {
  return { specversion: "1.0", ...event };
}

/**
 * Binary mode: the attributes as `ce-*` headers, the data as the body with its datacontenttype as
 * Content-Type (JSON data serialised; a string as it is; `data_base64` or a Uint8Array as bytes).
 */
export function toBinary(event: CloudEventInput): { headers: Record<string, string>; body: string | Uint8Array; contentType: string | undefined } {
  const headers: Record<string, string> = { "ce-specversion": "1.0" };
  for (const [k, v] of Object.entries(event)) {
    if (k === "specversion" || k === "datacontenttype" || k === "data" || k === "data_base64" || v === undefined) continue;
    headers[`ce-${k}`] = encodeHeader(String(v));
  }
  const ct = event.datacontenttype;
  let body: string | Uint8Array = "";
  if (event.data_base64 !== undefined) body = Uint8Array.from(Buffer.from(event.data_base64, "base64"));
  else if (event.data instanceof Uint8Array) body = event.data;
  else if (event.data !== undefined) body = typeof event.data === "string" && !isJson(ct) ? event.data : JSON.stringify(event.data);
  return { headers, body, contentType: ct ?? (event.data === undefined && event.data_base64 === undefined ? undefined : event.data_base64 !== undefined || event.data instanceof Uint8Array ? "application/octet-stream" : "application/json") };
}

/** The extension attributes of an event (neither the spec's attributes nor the service's `triggers*`). */
export function extensionsOf(event: CloudEventInput): Record<string, unknown> {
  return Object.fromEntries(Object.entries(event).filter(([k]) => !CORE.has(k) && !k.startsWith("triggers")));
}
