import Joi from "joi";
import { createHash } from "node:crypto";
import { ErrorDetail, ValidationError } from "../errors";

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
}

const OCCURRED_AT_MIN = Date.parse("1900-01-01T00:00:00Z");
const OCCURRED_AT_MAX = Date.parse("9999-12-31T23:59:59.999Z");
/** An ISO 8601 date-time with an explicit offset (Z or ±hh:mm): the instant is unambiguous. */
const OCCURRED_AT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:\/-]*$/;
const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:=\/-]*$/;

const envelopeSchema = Joi.object({
  type: Joi.string().max(ENVELOPE_LIMITS.typeMaxLength).pattern(TYPE_PATTERN, "event type").required(),
  payload: Joi.any()
    .required()
    .custom((value: unknown, helpers) => {
      if (depthOf(value) > ENVELOPE_LIMITS.payloadMaxDepth) return helpers.error("payload.depth");
      if (!storableText(value)) return helpers.error("payload.text");
      return value;
    })
    .messages({
      "payload.depth": `"payload" nests deeper than ${ENVELOPE_LIMITS.payloadMaxDepth} levels`,
      "payload.text": `"payload" contains a NUL character or an unpaired surrogate, which cannot be stored`,
    }),
  source: Joi.string()
    .min(1)
    .max(ENVELOPE_LIMITS.sourceMaxLength)
    .allow(null)
    .custom((value: string, helpers) => (storableText(value) ? value : helpers.error("string.storable")))
    .messages({ "string.storable": `"source" contains a NUL character or an unpaired surrogate` }),
  tags: Joi.array()
    .items(Joi.string().max(ENVELOPE_LIMITS.tagMaxLength).pattern(TAG_PATTERN, "tag"))
    .max(ENVELOPE_LIMITS.maxTags)
    .unique(),
  // An instant: date, time and a UTC offset (without one, the time would be read in the server's
  // zone). Bounded so every accepted timestamp is one Postgres can store.
  occurred_at: Joi.string()
    .pattern(OCCURRED_AT_PATTERN, "timestamp with a UTC offset")
    .isoDate()
    .allow(null)
    .custom((value: string, helpers) => {
      const t = Date.parse(value);
      return t >= OCCURRED_AT_MIN && t <= OCCURRED_AT_MAX ? value : helpers.error("date.storable");
    })
    .messages({
      "string.pattern.name": `"occurred_at" must be an ISO 8601 date and time with a UTC offset, e.g. 2026-01-02T03:04:05Z or 2026-01-02T05:04:05+02:00`,
      "date.storable": `"occurred_at" must be between 1900-01-01 and 9999-12-31`,
    }),
})
  .required()
  .unknown(false);

/** Depth of a JSON value: scalars are 0, `{}`/`[]` are 1. Iterative, so hostile nesting cannot overflow the stack. */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v !== null && typeof v === "object") {
      const depth = d + 1;
      if (depth > max) max = depth;
      if (max > ENVELOPE_LIMITS.payloadMaxDepth) return max;
      for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, depth]);
    }
  }
  return max;
}

/**
 * False when a string or object key anywhere in `value` holds a NUL character or an unpaired
 * UTF-16 surrogate: Postgres text and jsonb refuse both, so such an event could never be stored.
 */
export function storableText(value: unknown): boolean {
  const ok = (s: string) => !s.includes("\u0000") && s.isWellFormed();
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (!ok(v)) return false;
    } else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        if (!ok(k)) return false;
        stack.push(child);
      }
    }
  }
  return true;
}

/** Turns Joi's error into our details: one entry per failing field path. */
export function joiDetails(error: Joi.ValidationError, index?: number): ErrorDetail[] {
  return error.details.map((d) => ({
    path: d.path.map(String).join("."),
    message: d.message,
    ...(index === undefined ? {} : { index }),
  }));
}

/** Validates one envelope; returns it normalised or the field errors. */
export function checkEnvelope(
  body: unknown,
  index?: number,
): { ok: true; value: EventEnvelope } | { ok: false; details: ErrorDetail[] } {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, details: [{ path: "", message: "event must be a JSON object", ...(index === undefined ? {} : { index }) }] };
  }
  const { value, error } = envelopeSchema.validate(body, { abortEarly: false, convert: false });
  if (error) return { ok: false, details: joiDetails(error, index) };
  const v = value as { type: string; payload: unknown; source?: string | null; tags?: string[]; occurred_at?: string | null };
  const occurred = v.occurred_at === undefined || v.occurred_at === null ? null : new Date(v.occurred_at).toISOString();
  return {
    ok: true,
    value: { type: v.type, payload: v.payload, source: v.source ?? null, tags: v.tags ?? [], occurred_at: occurred },
  };
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
  if (value.length === 0 || value.length > ENVELOPE_LIMITS.idempotencyKeyMaxLength || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ValidationError("invalid Idempotency-Key header", [
      { path: "Idempotency-Key", message: `must be 1–${ENVELOPE_LIMITS.idempotencyKeyMaxLength} printable ASCII characters` },
    ]);
  }
  return value;
}

/** JSON with object keys sorted, so equal envelopes hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** sha256 of the canonical envelope: the identity of "the same body" for idempotency. */
export function envelopeHash(envelope: EventEnvelope): string {
  return createHash("sha256").update(canonicalJson(envelope)).digest("hex");
}
