import { packingOverhead, packQueuedEvents } from "../domain/queued-event";
import { SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, SqsOutcomeUnknownError, type SqsQueue } from "./sqs-queue";
import { errorMessage } from "../errors";
import { Coalescer } from "../coalescer";

interface Pending {
  readonly body: string;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * Raised for a body SQS did not confirm. `inputFault` is true when SQS blamed the body itself (its
 * own entry, sent alone, was refused as a sender fault, e.g. InvalidMessageContents): resending it
 * cannot succeed, so its request answers 4xx. Otherwise the queue is at fault and a retry may work.
 * `outcomeUnknown` is true when the call carrying it may have reached SQS (see
 * SqsOutcomeUnknownError): the body may be on the queue.
 */
export class EnqueueError extends Error {
  constructor(
    message: string,
    readonly inputFault = false,
    readonly outcomeUnknown = false,
  ) {
    super(message);
  }
}

/** The error of every body of a call that failed as a whole. */
function callFailed(err: unknown): EnqueueError {
  const reason = errorMessage(err);
  return new EnqueueError(`SQS send failed: ${reason}`, false, err instanceof SqsOutcomeUnknownError);
}

const FULFILLED: PromiseFulfilledResult<void> = Object.freeze({ status: "fulfilled", value: undefined });
const SENT = (): PromiseSettledResult<void>[] => [FULFILLED];

/** Events one SQS message carries at most, so one poison event holds back few others. */
export const MAX_EVENTS_PER_MESSAGE = 50;

/** Events one call carries at most: a full batch of full entries. */
const MAX_PENDING = SQS_MAX_BATCH_ENTRIES * MAX_EVENTS_PER_MESSAGE;

/** SendMessageBatch calls in flight at most; past it, full batches wait for a call to finish. */
const MAX_CALLS_IN_FLIGHT = 64;

/**
 * Coalesces concurrent sends into SendMessageBatch calls. While no call is in flight, what is
 * pending goes out at the end of the current event-loop turn (no added latency on a quiet API);
 * while one is, sends wait up to `lingerMs` to share the next call. A call carries everything
 * pending, up to 256 KiB: up to 10 entries, each packing `ceil(pending / 10)` events (at most
 * 50), so a busy API makes few calls however many requests it serves. Each caller's promise
 * settles with its entry's outcome, so a 202 is only ever answered for an entry SQS confirmed.
 * When SQS refuses a packed entry for its content, its bodies are resent alone, so one body SQS
 * cannot take fails only its own sender.
 */
export class SendBatcher {
  private readonly batches: Coalescer<Pending>;

  constructor(
    private readonly queue: SqsQueue,
    lingerMs: number,
    private readonly onBatch: (size: number, failed: number, seconds: number) => void = () => undefined,
  ) {
    let bytes = 0; // of the batch being filled: `fits` sees each item once, in order
    this.batches = new Coalescer<Pending>({
      lingerMs,
      maxInFlight: MAX_CALLS_IN_FLIGHT,
      fits: (batch, next) => {
        if (batch.length === 1) bytes = batch[0]!.bytes;
        // Brackets and commas of the packed entries count towards the call's size limit too.
        const ok = batch.length < MAX_PENDING && bytes + next.bytes + packingOverhead(batch.length + 1) + 2 * SQS_MAX_BATCH_ENTRIES <= SQS_MAX_BATCH_BYTES;
        if (ok) bytes += next.bytes;
        return ok;
      },
      flush: (batch) => this.sendNow(batch),
    });
  }

  /** Resolves once SQS confirmed this body; rejects with EnqueueError otherwise. `bytes` is the body's UTF-8 length. */
  send(body: string, bytes = Buffer.byteLength(body)): Promise<void> {
    return new Promise<void>((resolve, reject) => this.batches.add({ body, bytes, resolve, reject }));
  }

  /** Sends several bodies at once (a batch request); one outcome per body, in order. */
  sendMany(bodies: readonly { body: string; bytes: number }[]): Promise<PromiseSettledResult<void>[]> {
    // One body (every POST /events) settles through one promise instead of allSettled's several.
    if (bodies.length === 1) return this.send(bodies[0]!.body, bodies[0]!.bytes).then(SENT, (reason: unknown) => [{ status: "rejected", reason }]);
    return Promise.allSettled(bodies.map((b) => this.send(b.body, b.bytes)));
  }

  /** Sends what is pending now and waits for every call in flight. */
  drain(): Promise<void> {
    return this.batches.drain();
  }

  private async sendNow(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const perEntry = Math.ceil(batch.length / SQS_MAX_BATCH_ENTRIES);
    const entries: Pending[][] = [];
    for (let i = 0; i < batch.length; i += perEntry) entries.push(batch.slice(i, i + perEntry));
    try {
      const outcomes = await this.queue.sendBatch(entries.map((e, i) => ({ id: String(i), body: packQueuedEvents(e.map((p) => p.body)) })));
      let failed = 0;
      const isolate: Pending[] = [];
      outcomes.forEach((o, i) => {
        const senders = entries[i]!;
        if (o.ok) for (const p of senders) p.resolve();
        else if (o.senderFault && senders.length > 1) isolate.push(...senders);
        else {
          failed += senders.length;
          for (const p of senders) p.reject(new EnqueueError(`SQS refused the message: ${o.error ?? "unknown"}`, o.senderFault === true));
        }
      });
      this.onBatch(batch.length, failed, (performance.now() - started) / 1000);
      // SQS blamed a packed entry's content: resend its bodies one per entry, so only the body at
      // fault fails and the requests packed with it still succeed.
      if (isolate.length > 0) await this.sendAlone(isolate);
    } catch (err) {
      this.onBatch(batch.length, batch.length, (performance.now() - started) / 1000);
      const failure = callFailed(err);
      for (const p of batch) p.reject(failure);
    }
  }

  /** Sends each body as its own entry (10 per call), settling each sender with its own outcome. */
  private async sendAlone(senders: readonly Pending[]): Promise<void> {
    for (let i = 0; i < senders.length; i += SQS_MAX_BATCH_ENTRIES) {
      const chunk = senders.slice(i, i + SQS_MAX_BATCH_ENTRIES);
      const started = performance.now();
      try {
        const outcomes = await this.queue.sendBatch(chunk.map((p, j) => ({ id: String(j), body: p.body })));
        let failed = 0;
        outcomes.forEach((o, j) => {
          if (o.ok) chunk[j]!.resolve();
          else {
            failed++;
            chunk[j]!.reject(new EnqueueError(`SQS refused the message: ${o.error ?? "unknown"}`, o.senderFault === true));
          }
        });
        this.onBatch(chunk.length, failed, (performance.now() - started) / 1000);
      } catch (err) {
        this.onBatch(chunk.length, chunk.length, (performance.now() - started) / 1000);
        const failure = callFailed(err);
        for (const p of chunk) p.reject(failure);
      }
    }
  }
}
