import { envelopeHash, type EventEnvelope } from "../domain/envelope";
import { idempotentEventId, newEventId } from "../domain/ids";
import { encodeQueuedEvent, type QueuedEvent } from "../domain/queued-event";
import { ConflictError, EventTooLargeError, UnavailableError } from "../errors";
import { SQS_MAX_MESSAGE_BYTES } from "../queue/sqs-queue";
import type { SendBatcher } from "../queue/send-batcher";
import type { AcceptedReceipts } from "./accepted-receipts";
import type { IdempotencyGuard } from "./idempotency";

export interface AcceptInput {
  readonly envelope: EventEnvelope;
  readonly idempotencyKey: string | null;
}

export interface Accepted {
  readonly id: string;
  readonly status: "accepted";
  readonly received_at: string;
  /** True when an earlier send with the same Idempotency-Key and body was answered already. */
  readonly replayed: boolean;
}

export interface AcceptDeps {
  readonly batcher: SendBatcher;
  readonly idempotency: IdempotencyGuard;
  readonly onAccepted?: (n: number) => void;
  readonly onEnqueueFailed?: (n: number) => void;
  readonly receipts?: AcceptedReceipts;
}

/**
 * Accepts validated events for a tenant: assigns ids, settles idempotency, enqueues on SQS and
 * resolves only once SQS confirmed every one. A replay is enqueued again (the worker's insert
 * dedups it by id), so a first send that was lost between SQS and the database is still stored.
 * Throws 413 for an event too large for one SQS message and 409 for a reused key with another
 * body (nothing enqueued in either case), 503 when SQS failed.
 */
export async function acceptEvents(deps: AcceptDeps, tenantId: string, inputs: readonly AcceptInput[]): Promise<Accepted[]> {
  const now = new Date();
  const receivedAt = now.toISOString();
  const built = inputs.map(({ envelope, idempotencyKey }) => {
    const event: QueuedEvent = {
      v: 1,
      id: idempotencyKey === null ? newEventId(now.getTime()) : idempotentEventId(tenantId, idempotencyKey),
      tenant_id: tenantId,
      ...envelope,
      idempotency_key: idempotencyKey,
      body_hash: envelopeHash(envelope),
      received_at: receivedAt,
    };
    const body = encodeQueuedEvent(event);
    return { event, body, bytes: Buffer.byteLength(body) };
  });
  // Each event travels in one SQS message: one that cannot fit is refused before anything is claimed or sent.
  const oversized = built.flatMap(({ bytes }, index) =>
    bytes > SQS_MAX_MESSAGE_BYTES ? [{ index, message: `the event takes ${bytes} bytes on the queue with its metadata; the limit is ${SQS_MAX_MESSAGE_BYTES}` }] : [],
  );
  if (oversized.length > 0) throw new EventTooLargeError(oversized);

  type Prepared = { kind: "ok"; event: QueuedEvent; body: string; bytes: number; replayed: boolean } | { kind: "conflict"; key: string };
  const prepared = await Promise.all(
    built.map(async ({ event, body, bytes }): Promise<Prepared> => {
      let replayed = false;
      if (event.idempotency_key !== null) {
        const verdict = await deps.idempotency.reserve(tenantId, event.idempotency_key, event.body_hash);
        if (verdict === "conflict") return { kind: "conflict", key: event.idempotency_key };
        replayed = verdict === "replay";
      }
      return { kind: "ok", event, body, bytes, replayed };
    }),
  );
  const conflict = prepared.find((p) => p.kind === "conflict");
  if (conflict) {
    // Release the keys this call claimed so nothing is half-reserved, then refuse the whole request.
    await Promise.all(
      prepared.flatMap((p) =>
        p.kind === "ok" && p.event.idempotency_key !== null && !p.replayed
          ? [deps.idempotency.release(tenantId, p.event.idempotency_key, p.event.body_hash)]
          : [],
      ),
    );
    throw new ConflictError("idempotency_key_reused", `Idempotency-Key "${conflict.key}" was used with a different body`);
  }
  const ready = prepared.filter((p): p is Extract<Prepared, { kind: "ok" }> => p.kind === "ok");
  const outcomes = await deps.batcher.sendMany(ready);
  const failed = outcomes.filter((o) => o.status === "rejected").length;
  if (failed > 0) {
    deps.onEnqueueFailed?.(failed);
    deps.onAccepted?.(outcomes.length - failed);
    await Promise.all(
      ready.map((p, i) =>
        outcomes[i]!.status === "rejected" && p.event.idempotency_key !== null && !p.replayed
          ? deps.idempotency.release(tenantId, p.event.idempotency_key, p.event.body_hash)
          : undefined,
      ),
    );
    throw new UnavailableError("sqs", 1, "the event queue is unavailable; retry later (with an Idempotency-Key to stay exactly-once)");
  }
  deps.onAccepted?.(ready.length);
  await deps.receipts?.remember(tenantId, ready.map((p) => p.event.id));
  return ready.map((p) => ({ id: p.event.id, status: "accepted", received_at: receivedAt, replayed: p.replayed }));
}
