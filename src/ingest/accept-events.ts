import { bodyHash, type EventEnvelope } from "../domain/envelope";
import { isoString } from "../domain/clock";
import { idempotentEventId, newEventId } from "../domain/ids";
import { encodeQueuedEvent, type QueuedEvent } from "../domain/queued-event";
import { AppError, BadRequestError, ConflictError, EnqueueOutcomeUnknownError, EventTooLargeError, UnavailableError } from "../errors";
import { SQS_MAX_MESSAGE_BYTES } from "../queue/sqs-queue";
import { EnqueueError, type SendBatcher } from "../queue/send-batcher";
import type { AcceptedReceipts } from "./accepted-receipts";
import type { IdempotencyGuard } from "./idempotency";

export interface AcceptInput {
  readonly envelope: EventEnvelope;
  readonly idempotencyKey: string | null;
  /** The request body the envelope was parsed from, when it held this one event (POST /events); see bodyHash. */
  readonly rawBody?: Uint8Array;
  /** The version of the type's schema the event was validated against (src/schemas/registry.ts). */
  readonly schemaVersion?: number;
}

export interface Accepted {
  readonly ok: true;
  readonly id: string;
  readonly status: "accepted";
  readonly received_at: string;
  /** True when an earlier send with the same Idempotency-Key and body was answered already. */
  readonly replayed: boolean;
  /** True when the key was claimed without the shared fast path: accepted, pending the worker's uniqueness check. */
  readonly pending: boolean;
}

/** An event the queue did not take. `retryable` is false when the event itself is at fault (resending it cannot succeed). */
export interface NotAccepted {
  readonly ok: false;
  readonly error: AppError;
  readonly retryable: boolean;
}

export type AcceptOutcome = Accepted | NotAccepted;

export interface AcceptDeps {
  readonly batcher: SendBatcher;
  readonly idempotency: IdempotencyGuard;
  readonly onAccepted?: (n: number) => void;
  readonly onEnqueueFailed?: (n: number) => void;
  /** Called once per event the queue refused, with the cause (for the log). */
  readonly onRefused?: (tenantId: string, eventId: string, cause: string, inputFault: boolean) => void;
  readonly receipts?: AcceptedReceipts;
}

/** The error of an event SQS refused for its content: the input is at fault, a retry cannot succeed. */
export class EventRefusedError extends BadRequestError {
  constructor() {
    super("event_refused_by_queue", "the event queue refused this event's content; resending it unchanged will not succeed");
  }
}

const queueUnavailable = () =>
  new UnavailableError("sqs", 1, "the event queue is unavailable; retry later (with an Idempotency-Key to stay exactly-once)");

/**
 * Accepts validated events for a tenant: assigns ids, settles idempotency, enqueues on SQS and
 * reports, per event, whether SQS confirmed it. A replay is enqueued again (the worker's insert
 * dedups it by id), so a first send that was lost between SQS and the database is still stored.
 * Throws 413 for an event too large for one SQS message and 409 for a reused key with another
 * body (nothing enqueued in either case). An event SQS did not confirm answers `ok: false`: a 400
 * when SQS blamed its content, a retryable 503 otherwise (`enqueue_outcome_unknown` when the send
 * may have reached SQS, `service_unavailable` when it did not); the others are accepted regardless.
 * A key's claim is released only when its event is known not to be on the queue: after an unknown
 * outcome, a retry with the same key and body is a replay and one with another body a conflict.
 */
export async function acceptEvents(deps: AcceptDeps, tenantId: string, inputs: readonly AcceptInput[]): Promise<AcceptOutcome[]> {
  const now = Date.now();
  const receivedAt = isoString(now);
  // Plain loops and one object per event: this runs for every POST /events.
  const built: Prepared[] = [];
  let keyed = false;
  let oversized: { index: number; message: string }[] | undefined;
  for (let index = 0; index < inputs.length; index++) {
    const { envelope, idempotencyKey, rawBody, schemaVersion } = inputs[index]!;
    if (idempotencyKey !== null) keyed = true;
    const event: QueuedEvent = {
      v: 1,
      id: idempotencyKey === null ? newEventId(now) : idempotentEventId(tenantId, idempotencyKey),
      tenant_id: tenantId,
      type: envelope.type,
      payload: envelope.payload,
      source: envelope.source,
      tags: envelope.tags,
      occurred_at: envelope.occurred_at,
      idempotency_key: idempotencyKey,
      body_hash: bodyHash(envelope, idempotencyKey, rawBody),
      received_at: receivedAt,
      ...(envelope.cloudevent === undefined ? {} : { cloudevent: envelope.cloudevent }),
      ...(schemaVersion === undefined ? {} : { schema_version: schemaVersion }),
    };
    const body = encodeQueuedEvent(event);
    // The encoding is ASCII: its length is its byte length. Each event travels in one SQS
    // message: one that cannot fit is refused before anything is claimed or sent.
    if (body.length > SQS_MAX_MESSAGE_BYTES) {
      (oversized ??= []).push({ index, message: `the event takes ${body.length} bytes on the queue with its metadata (non-ASCII text is sent as \\u escapes); the limit is ${SQS_MAX_MESSAGE_BYTES}` });
    }
    built.push({ event, body, bytes: body.length, replayed: false, pending: false });
  }
  if (oversized) throw new EventTooLargeError(oversized);

  const claim = async (b: Prepared): Promise<Prepared | Conflict> => {
    const { event } = b;
    if (event.idempotency_key === null) return b;
    const verdict = await deps.idempotency.reserve(tenantId, event.idempotency_key, event.body_hash, receivedAt);
    if (verdict.kind === "conflict") return { conflict: event.idempotency_key };
    if (verdict.kind === "new") return verdict.shared ? b : { ...b, pending: true };
    // A replay is enqueued again with the first send's received_at, which is what it answers.
    const replay: QueuedEvent = { ...event, received_at: verdict.receivedAt };
    const body = encodeQueuedEvent(replay);
    return { event: replay, body, bytes: body.length, replayed: true, pending: false };
  };
  // Events without an Idempotency-Key claim nothing: no promise per event for them.
  let ready = built;
  if (keyed) {
    const claimed = await Promise.all(built.map(claim));
    const conflict = claimed.find((p): p is Conflict => "conflict" in p);
    if (conflict) {
      // Release the keys this call claimed so nothing is half-reserved, then refuse the whole request.
      await Promise.all(claimed.map((p) => ("conflict" in p ? undefined : release(deps, tenantId, p.event, p.replayed))));
      throw new ConflictError("idempotency_key_reused", `Idempotency-Key "${conflict.conflict}" was used with a different body`);
    }
    ready = claimed as Prepared[];
  }
  const sent = await deps.batcher.sendMany(ready);
  const outcomes: AcceptOutcome[] = [];
  const acceptedIds: string[] = [];
  let refused: Promise<void>[] | undefined;
  for (let i = 0; i < ready.length; i++) {
    const p = ready[i]!;
    const s = sent[i]!;
    if (s.status === "fulfilled") {
      outcomes.push({ ok: true, id: p.event.id, status: "accepted", received_at: p.event.received_at, replayed: p.replayed, pending: p.pending });
      acceptedIds.push(p.event.id);
      continue;
    }
    const inputFault = s.reason instanceof EnqueueError && s.reason.inputFault;
    const unknown = s.reason instanceof EnqueueError && s.reason.outcomeUnknown;
    deps.onRefused?.(tenantId, p.event.id, s.reason instanceof Error ? s.reason.message : String(s.reason), inputFault);
    if (unknown) {
      outcomes.push({ ok: false, error: new EnqueueOutcomeUnknownError(), retryable: true });
      continue; // the event may be on the queue: its key stays claimed
    }
    outcomes.push(inputFault ? { ok: false, error: new EventRefusedError(), retryable: false } : { ok: false, error: queueUnavailable(), retryable: true });
    const released = release(deps, tenantId, p.event, p.replayed);
    if (released) (refused ??= []).push(released);
  }
  if (refused) await Promise.all(refused);
  if (acceptedIds.length < outcomes.length) deps.onEnqueueFailed?.(outcomes.length - acceptedIds.length);
  deps.onAccepted?.(acceptedIds.length);
  // Best effort, so the 202 does not wait for it (see AcceptedReceipts.remember).
  if (acceptedIds.length > 0) deps.receipts?.remember(tenantId, acceptedIds);
  return outcomes;
}

/** An event ready to send: its message body and how its key was settled. */
interface Prepared {
  readonly event: QueuedEvent;
  readonly body: string;
  readonly bytes: number;
  readonly replayed: boolean;
  readonly pending: boolean;
}

/** A key already used with another body. */
interface Conflict {
  readonly conflict: string;
}

/** Forgets the claim of an event that was not sent (a replay claimed nothing). */
function release(deps: AcceptDeps, tenantId: string, event: QueuedEvent, replayed: boolean): Promise<void> | undefined {
  if (event.idempotency_key === null || replayed) return undefined;
  return deps.idempotency.release(tenantId, event.idempotency_key, event.body_hash, event.received_at);
}
