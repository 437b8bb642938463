import { TriggersError } from "./http";

/** An event of a batch that is on the queue (fields as the API's, plus the key it was sent with). */
export interface BatchItemAccepted {
  /** Position in the array given to sendBatch. */
  readonly index: number;
  readonly status: "accepted";
  readonly id: string;
  readonly received_at: string;
  /** True when the idempotency key matched an earlier send and nothing new was queued. */
  readonly replayed: boolean;
  readonly idempotency_key: string;
}

/**
 * An event of a batch that is not known to be on the queue: refused by the API (a 207 item), or
 * still unanswered when the retries or the deadline ran out. Resending it with `idempotency_key`
 * can never store it twice.
 */
export interface BatchItemRejected {
  readonly index: number;
  readonly status: "rejected";
  /** The API's error for the item (service_unavailable, event_refused_by_queue, …), or the last call's error. */
  readonly error: { readonly code: string; readonly message: string };
  /** False when resending it unchanged cannot succeed (event_refused_by_queue). */
  readonly retryable: boolean;
  readonly idempotency_key: string;
}

export type BatchItemResult = BatchItemAccepted | BatchItemRejected;

/**
 * sendBatch could not get every event accepted within its retries: `results` holds every event's
 * outcome, in order. Thrown (not returned) so that a caller who only awaits sendBatch cannot take a
 * partial success for a full one.
 */
export class BatchPartiallyAcceptedError extends TriggersError {
  constructor(readonly results: readonly BatchItemResult[]) {
    const rejected = results.filter((r) => r.status === "rejected").length;
    super(`${rejected} of ${results.length} events were not accepted`, 207, "batch_partially_accepted");
    this.name = "BatchPartiallyAcceptedError";
  }

  /** The events on the queue. */
  get accepted(): BatchItemAccepted[] {
    return this.results.filter((r): r is BatchItemAccepted => r.status === "accepted");
  }

  /** The events not known to be on the queue. */
  get rejected(): BatchItemRejected[] {
    return this.results.filter((r): r is BatchItemRejected => r.status === "rejected");
  }

  /** True when resending the rejected events (with their keys) may succeed. */
  override get retryable(): boolean {
    return this.rejected.some((r) => r.retryable);
  }
}
