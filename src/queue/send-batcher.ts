import { SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_ENTRIES, type SqsQueue } from "./sqs-queue";

interface Pending {
  readonly body: string;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Raised for one entry SQS did not accept; the request that sent it answers 503. */
export class EnqueueError extends Error {}

/**
 * Coalesces concurrent sends into SendMessageBatch calls: a batch goes out when it holds 10
 * entries, when the next entry would pass 256 KiB, or `lingerMs` after its first entry.
 * Each caller's promise settles with its own entry's outcome, so a 202 is only ever answered
 * for an entry SQS confirmed.
 */
export class SendBatcher {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly queue: SqsQueue,
    private readonly lingerMs: number,
    private readonly onBatch: (size: number, failed: number, seconds: number) => void = () => undefined,
  ) {}

  /** Resolves once SQS confirmed this body; rejects with EnqueueError otherwise. */
  send(body: string): Promise<void> {
    const bytes = Buffer.byteLength(body);
    return new Promise<void>((resolve, reject) => {
      if (this.pendingBytes + bytes > SQS_MAX_BATCH_BYTES) this.flush();
      this.pending.push({ body, bytes, resolve, reject });
      this.pendingBytes += bytes;
      if (this.pending.length >= SQS_MAX_BATCH_ENTRIES) this.flush();
      else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  /** Sends several bodies at once (a batch request); one outcome per body, in order. */
  sendMany(bodies: readonly string[]): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled(bodies.map((b) => this.send(b)));
  }

  /** Sends what is pending now and waits for every call in flight. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const call = this.sendNow(batch).finally(() => this.inFlight.delete(call));
    this.inFlight.add(call);
  }

  private async sendNow(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      const outcomes = await this.queue.sendBatch(batch.map((p, i) => ({ id: String(i), body: p.body })));
      let failed = 0;
      outcomes.forEach((o, i) => {
        const p = batch[i]!;
        if (o.ok) p.resolve();
        else {
          failed++;
          p.reject(new EnqueueError(`SQS rejected the message: ${o.error ?? "unknown"}`));
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
