import { packingOverhead, packQueuedEvents } from "../domain/queued-event";
import { SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, type SqsQueue } from "./sqs-queue";

interface Pending {
  readonly body: string;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Raised for one entry SQS did not accept; the requests it carried answer 503. */
export class EnqueueError extends Error {}

/** Events one SQS message carries at most, so one poison event holds back few others. */
export const MAX_EVENTS_PER_MESSAGE = 50;

/** Events one call carries at most: a full batch of full entries. */
const MAX_PENDING = SQS_MAX_BATCH_ENTRIES * MAX_EVENTS_PER_MESSAGE;

/**
 * Coalesces concurrent sends into SendMessageBatch calls. While no call is in flight, what is
 * pending goes out at the end of the current event-loop turn (no added latency on a quiet API);
 * while one is, sends wait up to `lingerMs` to share the next call. A call carries everything
 * pending, up to 256 KiB: up to 10 entries, each packing `ceil(pending / 10)` events (at most
 * 50), so a busy API makes few calls however many requests it serves. Each caller's promise
 * settles with its entry's outcome, so a 202 is only ever answered for an entry SQS confirmed.
 */
export class SendBatcher {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly queue: SqsQueue,
    private readonly lingerMs: number,
    private readonly onBatch: (size: number, failed: number, seconds: number) => void = () => undefined,
  ) {}

  /** Resolves once SQS confirmed this body; rejects with EnqueueError otherwise. `bytes` is the body's UTF-8 length. */
  send(body: string, bytes = Buffer.byteLength(body)): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Brackets and commas of the packed entries count towards the call's size limit too.
      if (this.pendingBytes + bytes + packingOverhead(this.pending.length + 1) + 2 * SQS_MAX_BATCH_ENTRIES > SQS_MAX_BATCH_BYTES) this.flush();
      this.pending.push({ body, bytes, resolve, reject });
      this.pendingBytes += bytes;
      if (this.pending.length >= MAX_PENDING) this.flush();
      else this.schedule();
    });
  }

  /** Sends several bodies at once (a batch request); one outcome per body, in order. */
  sendMany(bodies: readonly { body: string; bytes: number }[]): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled(bodies.map((b) => this.send(b.body, b.bytes)));
  }

  /** Sends what is pending now and waits for every call in flight. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private schedule(): void {
    if (this.timer !== undefined || this.immediate !== undefined) return;
    if (this.inFlight.size === 0) this.immediate = setImmediate(() => this.flush());
    else this.timer = setTimeout(() => this.flush(), this.lingerMs);
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const call = this.sendNow(batch).finally(() => this.inFlight.delete(call));
    this.inFlight.add(call);
  }

  private async sendNow(batch: Pending[]): Promise<void> {
    const started = performance.now();
    const perEntry = Math.ceil(batch.length / SQS_MAX_BATCH_ENTRIES);
    const entries: Pending[][] = [];
    for (let i = 0; i < batch.length; i += perEntry) entries.push(batch.slice(i, i + perEntry));
    try {
      const outcomes = await this.queue.sendBatch(entries.map((e, i) => ({ id: String(i), body: packQueuedEvents(e.map((p) => p.body)) })));
      let failed = 0;
      outcomes.forEach((o, i) => {
        const senders = entries[i]!;
        if (o.ok) for (const p of senders) p.resolve();
        else {
          failed += senders.length;
          for (const p of senders) p.reject(new EnqueueError(`SQS rejected the message: ${o.error ?? "unknown"}`));
        }
      });
      this.onBatch(batch.length, failed, (performance.now() - started) / 1000);
    } catch (err) {
      this.onBatch(batch.length, batch.length, (performance.now() - started) / 1000);
      const reason = err instanceof Error ? err.message : String(err);
      for (const p of batch) p.reject(new EnqueueError(`SQS send failed: ${reason}`));
    }
  }
}
