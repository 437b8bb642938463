import type { PrismaClient } from "../generated/prisma/client";
import { decodeQueuedEvent, type QueuedEvent } from "../domain/queued-event";
import type { Logger } from "../observability/logger";
import type { Metrics } from "../observability/metrics";
import type { ReceivedMessage, SqsQueue } from "../queue/sqs-queue";
import { insertEvents } from "../store/events/insert-events";

export interface IngestWorkerOptions {
  /** Concurrent long-poll receivers. */
  readonly receivers: number;
  /** Long-poll wait, seconds (0–20). */
  readonly waitSeconds: number;
  /** Visibility timeout of received messages, seconds: longer than one insert can take. */
  readonly visibilitySeconds: number;
}

export interface IngestWorkerDeps {
  readonly prisma: PrismaClient;
  readonly queue: SqsQueue;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Drains SQS into Postgres. Each receiver long-polls up to 10 messages, stores them in one
 * idempotent INSERT, and deletes them from SQS only after that statement committed. A message it
 * cannot decode is left alone, so SQS moves it to the dead-letter queue after maxReceiveCount;
 * a batch whose insert fails is left to reappear after its visibility timeout.
 */
export class IngestWorker {
  private stopping = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(
    private readonly deps: IngestWorkerDeps,
    private readonly opts: IngestWorkerOptions,
  ) {}

  start(): void {
    if (this.loops.length > 0) return;
    for (let i = 0; i < this.opts.receivers; i++) this.loops.push(this.loop(i));
  }

  /** Stops receiving, finishes the batches in hand, and resolves when every receiver has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort(); // ends pending long polls now; messages they would have returned stay in SQS
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** Processes one received batch: insert, then delete. Exposed for tests and benchmarks. */
  async handle(messages: readonly ReceivedMessage[]): Promise<{ inserted: number; duplicates: number; poison: number }> {
    const events: QueuedEvent[] = [];
    const handles: string[] = [];
    let poison = 0;
    for (const m of messages) {
      const event = decodeQueuedEvent(m.body);
      if (event === null) {
        poison++;
        this.deps.logger.warn({ messageId: m.messageId, receiveCount: m.receiveCount }, "undecodable message left for the dead-letter queue");
        continue;
      }
      events.push(event);
      handles.push(m.receiptHandle);
    }
    this.deps.metrics.workerPoison.inc(poison);
    if (events.length === 0) return { inserted: 0, duplicates: 0, poison };
    const inserted = await insertEvents(this.deps.prisma, events);
    const committedAt = Date.now();
    this.deps.metrics.workerBatches.inc();
    this.deps.metrics.workerRowsInserted.inc(inserted);
    this.deps.metrics.workerDuplicates.inc(events.length - inserted);
    for (const e of events) this.deps.metrics.ingestLag.observe(Math.max(0, committedAt - Date.parse(e.received_at)) / 1000);
    const failed = await this.deps.queue.deleteBatch(handles);
    if (failed.length > 0) {
      // The rows are committed; a message that reappears is a duplicate the insert will skip.
      this.deps.metrics.workerErrors.inc({ stage: "delete" }, failed.length);
      this.deps.logger.warn({ failed: failed.length }, "some messages could not be deleted; they will be deduplicated on redelivery");
    }
    return { inserted, duplicates: events.length - inserted, poison };
  }

  private async loop(index: number): Promise<void> {
    let backoff = 0;
    while (!this.stopping) {
      let messages: ReceivedMessage[];
      try {
        messages = await this.deps.queue.receive({
          max: 10,
          waitSeconds: this.opts.waitSeconds,
          visibilitySeconds: this.opts.visibilitySeconds,
          signal: this.abort.signal,
        });
      } catch (err) {
        if (this.stopping) break;
        this.deps.metrics.workerErrors.inc({ stage: "receive" });
        backoff = Math.min(backoff === 0 ? 100 : backoff * 2, 5000);
        this.deps.logger.warn({ receiver: index, err: errorMessage(err), backoffMs: backoff }, "receive failed");
        await sleep(backoff);
        continue;
      }
      if (messages.length === 0) continue;
      try {
        await this.handle(messages);
        backoff = 0;
      } catch (err) {
        this.deps.metrics.workerErrors.inc({ stage: "insert" });
        backoff = Math.min(backoff === 0 ? 100 : backoff * 2, 5000);
        this.deps.logger.warn({ receiver: index, err: errorMessage(err), messages: messages.length, backoffMs: backoff }, "insert failed; batch left for redelivery");
        await sleep(backoff);
      }
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
