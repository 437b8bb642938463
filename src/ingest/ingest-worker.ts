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

interface Waiting {
  readonly messages: readonly ReceivedMessage[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Drains SQS into Postgres. Receivers long-poll up to 10 messages each; what they bring in while
 * a flush is running is group-committed by the next flush in one idempotent INSERT (up to
 * `maxBatchRows` rows), and each message is deleted from SQS only after the statement holding it
 * committed. A message it cannot decode is left alone, so SQS moves it to the dead-letter queue
 * after maxReceiveCount; a batch whose insert fails is left to reappear after its visibility timeout.
 */
export class IngestWorker {
  private stopping = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private buffer: Waiting[] = [];
  private flushing = 0;
  private readonly deletes = new Set<Promise<void>>();
  /** Rows per INSERT at most; bigger statements amortise the commit. */
  private readonly maxBatchRows = 200;
  /** Concurrent INSERTs at most, so a slow database sees bounded load from one process. */
  private readonly maxConcurrentFlushes = 2;

  constructor(
    private readonly deps: IngestWorkerDeps,
    private readonly opts: IngestWorkerOptions,
  ) {}

  start(): void {
    if (this.loops.length > 0) return;
    for (let i = 0; i < this.opts.receivers; i++) this.loops.push(this.loop(i));
  }

  /** Stops receiving, finishes the batches in hand (insert and delete), and resolves when every receiver has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort(); // ends pending long polls now; messages they would have returned stay in SQS
    await Promise.all(this.loops);
    this.loops = [];
    while (this.deletes.size > 0) await Promise.allSettled([...this.deletes]);
  }

  /** Stores one received batch and deletes it from SQS after the commit. Exposed for tests and benchmarks. */
  async handle(messages: readonly ReceivedMessage[]): Promise<{ inserted: number; duplicates: number; poison: number }> {
    const result = await this.insert(messages);
    await this.delete(result.handles);
    return { inserted: result.inserted, duplicates: result.duplicates, poison: result.poison };
  }

  /** Queues messages for the next group commit; resolves once their rows are committed. */
  private store(messages: readonly ReceivedMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({ messages, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.flushing < this.maxConcurrentFlushes && this.buffer.length > 0) {
      const group: Waiting[] = [];
      let rows = 0;
      while (this.buffer.length > 0 && rows + this.buffer[0]!.messages.length <= this.maxBatchRows) {
        const w = this.buffer.shift()!;
        group.push(w);
        rows += w.messages.length;
      }
      if (group.length === 0) group.push(this.buffer.shift()!);
      this.flushing++;
      void this.flush(group).finally(() => {
        this.flushing--;
        this.pump();
      });
    }
  }

  private async flush(group: readonly Waiting[]): Promise<void> {
    try {
      const { handles } = await this.insert(group.flatMap((w) => w.messages));
      for (const w of group) w.resolve();
      // Receivers go on as soon as the rows are committed; deletes finish in the background (stop() waits for them).
      const pending = this.delete(handles).catch((err) => {
        this.deps.metrics.workerErrors.inc({ stage: "delete" });
        this.deps.logger.warn({ err: errorMessage(err) }, "delete failed; the messages will be deduplicated on redelivery");
      });
      this.deletes.add(pending);
      void pending.finally(() => this.deletes.delete(pending));
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  }

  private async insert(messages: readonly ReceivedMessage[]): Promise<{ inserted: number; duplicates: number; poison: number; handles: string[] }> {
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
    if (events.length === 0) return { inserted: 0, duplicates: 0, poison, handles };
    const inserted = await insertEvents(this.deps.prisma, events);
    const committedAt = Date.now();
    this.deps.metrics.workerBatches.inc();
    this.deps.metrics.workerRowsInserted.inc(inserted);
    this.deps.metrics.workerDuplicates.inc(events.length - inserted);
    for (const e of events) this.deps.metrics.ingestLag.observe(Math.max(0, committedAt - Date.parse(e.received_at)) / 1000);
    return { inserted, duplicates: events.length - inserted, poison, handles };
  }

  private async delete(handles: readonly string[]): Promise<void> {
    if (handles.length === 0) return;
    const chunks: string[][] = [];
    for (let i = 0; i < handles.length; i += 10) chunks.push(handles.slice(i, i + 10));
    const failed = (await Promise.all(chunks.map((c) => this.deps.queue.deleteBatch(c)))).flat();
    if (failed.length > 0) {
      // The rows are committed; a message that reappears is a duplicate the insert will skip.
      this.deps.metrics.workerErrors.inc({ stage: "delete" }, failed.length);
      this.deps.logger.warn({ failed: failed.length }, "some messages could not be deleted; they will be deduplicated on redelivery");
    }
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
        await this.store(messages);
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
