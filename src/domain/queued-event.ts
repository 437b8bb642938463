import Joi from "joi";
import type { EventEnvelope } from "./envelope";

/** The message body on SQS: an accepted event, everything the worker needs to store it. */
export interface QueuedEvent extends EventEnvelope {
  readonly v: 1;
  readonly id: string;
  readonly tenant_id: string;
  readonly idempotency_key: string | null;
  readonly body_hash: string;
  readonly received_at: string;
}

const queuedEventSchema = Joi.object({
  v: Joi.number().valid(1).required(),
  id: Joi.string().max(64).required(),
  tenant_id: Joi.string().max(128).required(),
  type: Joi.string().max(128).required(),
  payload: Joi.any().required(),
  source: Joi.string().allow(null).required(),
  tags: Joi.array().items(Joi.string()).required(),
  occurred_at: Joi.string().isoDate().allow(null).required(),
  idempotency_key: Joi.string().allow(null).required(),
  body_hash: Joi.string().hex().length(64).required(),
  received_at: Joi.string().isoDate().required(),
}).unknown(true);

/** Encodes an accepted event as an SQS message body. */
export function encodeQueuedEvent(event: QueuedEvent): string {
  return JSON.stringify(event);
}

/** Decodes an SQS message body; returns null for a message this service cannot store (poison). */
export function decodeQueuedEvent(body: string | undefined): QueuedEvent | null {
  if (body === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  const { error, value } = queuedEventSchema.validate(parsed, { convert: false });
  return error ? null : (value as QueuedEvent);
}
