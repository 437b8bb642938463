import type { EventEnvelope } from "./envelope";

/** The message body on SQS: an accepted event, everything the worker needs to store it. */
export interface QueuedEvent extends EventEnvelope {
  readonly v: 1;
  readonly id: string;
  readonly tenant_id: string;
  readonly idempotency_key: string | null;
  readonly body_hash: string;
  readonly received_at: string;
  /** The version of its type's schema the event was validated against at ingest; absent when its type had none. */
  readonly schema_version?: number;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const HEX64 = /^[0-9a-f]{64}$/;

const isString = (v: unknown, max = Infinity): v is string => typeof v === "string" && v.length <= max;
const isNullableString = (v: unknown): v is string | null => v === null || typeof v === "string";

/**
 * Structural check of a decoded message, hand-written because it runs once per message on the
 * worker's hot path; the API has already validated the envelope before the message was sent.
 */
function isQueuedEvent(v: unknown): v is QueuedEvent {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return (
    e.v === 1 &&
    isString(e.id, 64) &&
    isString(e.tenant_id, 128) &&
    isString(e.type, 128) &&
    "payload" in e &&
    e.payload !== undefined &&
    isNullableString(e.source) &&
    Array.isArray(e.tags) &&
    e.tags.every((t) => typeof t === "string") &&
    (e.occurred_at === null || (isString(e.occurred_at) && ISO_DATE.test(e.occurred_at))) &&
    isNullableString(e.idempotency_key) &&
    isString(e.body_hash) &&
    HEX64.test(e.body_hash) &&
    isString(e.received_at) &&
    ISO_DATE.test(e.received_at) &&
    (e.schema_version === undefined || (typeof e.schema_version === "number" && Number.isInteger(e.schema_version))) &&
    (e.cloudevent === undefined || (e.cloudevent !== null && typeof e.cloudevent === "object" && !Array.isArray(e.cloudevent)))
  );
}

const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_ALL = /[^\x00-\x7f]/g;
const escapeUnit = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Encodes an accepted event as an SQS message body: JSON in printable ASCII only. SQS refuses
 * some code points (U+FFFE, U+FFFF, most controls; the emulator also every one outside the BMP),
 * so every non-ASCII UTF-16 unit is written as a `\uXXXX` escape, which JSON.parse turns back
 * into the same string. JSON.stringify already escapes controls and unpaired surrogates.
 */
export function encodeQueuedEvent(event: QueuedEvent): string {
  const json = JSON.stringify(event);
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_ALL, escapeUnit) : json;
}

/**
 * One SQS message body carrying encoded events: a single event is its own body (an object);
 * several travel as a JSON array of them. Packing lets one SendMessageBatch entry carry many
 * events when more requests are waiting than a batch has entries.
 */
export function packQueuedEvents(encoded: readonly string[]): string {
  return encoded.length === 1 ? encoded[0]! : `[${encoded.join(",")}]`;
}

/** Bytes `packQueuedEvents` adds to `count` encoded events: the brackets and commas of an array. */
export function packingOverhead(count: number): number {
  return count <= 1 ? 0 : count + 1;
}

/** What one SQS message body holds: the events that decoded, and how many parts did not. */
export interface DecodedBody {
  readonly events: QueuedEvent[];
  readonly invalid: number;
}

/**
 * Decodes an SQS message body (one event, or an array of them). A part that is not a stored-able
 * event counts as invalid; the caller keeps the message for the dead-letter queue after storing
 * the valid ones.
 */
export function decodeQueuedMessage(body: string | undefined): DecodedBody {
  if (body === undefined) return { events: [], invalid: 1 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { events: [], invalid: 1 };
  }
  if (!Array.isArray(parsed)) return isQueuedEvent(parsed) ? { events: [parsed], invalid: 0 } : { events: [], invalid: 1 };
  if (parsed.length === 0) return { events: [], invalid: 1 };
  const events = parsed.filter(isQueuedEvent);
  return { events, invalid: parsed.length - events.length };
}
