import { setTimeout as sleep } from "node:timers/promises";
import { setMaxListeners } from "node:events";
import type { PrismaClient } from "../generated/prisma/client";
import { decodeQueuedMessage, type QueuedEvent } from "../domain/queued-event";
import type { Logger } from "../observability/logger";
import type { Metrics } from "../observability/metrics";
import type { ReceivedMessage, SqsQueue } from "../queue/sqs-queue";
import { insertEvents } from "../store/events/insert-events";
import { findIdempotencyLosers } from "./idempotency";
import { notifyDeliverable } from "../inbox/wakeups";

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


/** A received message with the events it carries (one, or several when the API packed them). */
interface Decoded {
  readonly message: ReceivedMessage;
  readonly events: readonly QueuedEvent[];
  /** Parts of the body that are not events this service can store. */
  readonly invalid: number;
}

interface Waiting {
  readonly messages: readonly Decoded[];
  readonly rows: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Drains SQS into Postgres. Receivers long-poll up to 10 messages each (a message carries one
 * event or several); what they bring in while a flush is running is group-committed by the next
 * flush in one idempotent INSERT (up to `maxBatchRows` rows), and each message is deleted from SQS
 * only after the statement holding all its events committed. A message with a part it cannot
 * decode or the database refuses is left alone once its good events are stored, so SQS moves it
 * to the dead-letter queue after maxReceiveCount (a redrive stores nothing twice); a batch whose
 * insert fails is left to reappear after its visibility timeout.
 */
export class IngestWorker {
  private stopping = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private buffer: Waiting[] = [];
  private flushing = 0;
  private readonly deletes = new Set<Promise<void>>();
  private readonly notifies = new Set<Promise<void>>();
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
    // Every receiver's long poll listens on the one shutdown signal.
    setMaxListeners(this.opts.receivers + 10, this.abort.signal);
    for (let i = 0; i < this.opts.receivers; i++) this.loops.push(this.loop(i));
  }

  /** Stops receiving, finishes the batches in hand (insert and delete), and resolves when every receiver has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort(); // ends pending long polls now; messages they would have returned stay in SQS
    await Promise.all(this.loops);
    this.loops = [];
    while (this.deletes.size > 0) await Promise.allSettled([...this.deletes]);
    while (this.notifies.size > 0) await Promise.allSettled([...this.notifies]);
  }

  /** Stores one received batch and deletes it from SQS after the commit. Exposed for tests and benchmarks. */
  async handle(messages: readonly ReceivedMessage[]): Promise<{ inserted: number; duplicates: number; poison: number }> {
    const result = await this.insert(messages.map(decode));
    await this.delete(result.handles);
    return { inserted: result.inserted, duplicates: result.duplicates, poison: result.poison };
  }

  /** Queues messages for the next group commit; resolves once their rows are committed. */
  private store(messages: readonly Decoded[]): Promise<void> {
    const rows = messages.reduce((n, m) => n + m.events.length, 0);
    return new Promise<void>((resolve, reject) => {
      this.buffer.push({ messages, rows, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.flushing < this.maxConcurrentFlushes && this.buffer.length > 0) {
      const group: Waiting[] = [];
      let rows = 0;
      while (this.buffer.length > 0 && rows + this.buffer[0]!.rows <= this.maxBatchRows) {
        const w = this.buffer.shift()!;
        group.push(w);
        rows += w.rows;
      }
      if (group.length === 0) group.push(this.buffer.shift()!);
      this.flushing++;
      void this.flush(group).finally(() => {
        this.flushing--;
        this.pump();
      });
    }
  }

  /**
   * Stores a group and resolves its receivers. While Postgres is unreachable the group is held and
   * retried with backoff (its receivers wait, so nothing more is received and no message burns its
   * receive count towards the DLQ); the messages' visibility is extended while they wait.
   */
  private async flush(group: readonly Waiting[]): Promise<void> {
    const messages = group.flatMap((w) => w.messages);
    let held = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const { handles } = await this.insert(messages);
        for (const w of group) w.resolve();
        // Receivers go on as soon as the rows are committed; deletes finish in the background (stop() waits for them).
        const pending = this.delete(handles).catch((err) => {
          this.deps.metrics.workerErrors.inc({ stage: "delete" });
          this.deps.logger.warn({ err: errorMessage(err) }, "delete failed; the messages will be deduplicated on redelivery");
        });
        this.deletes.add(pending);
        void pending.finally(() => this.deletes.delete(pending));
        return;
      } catch (err) {
        this.deps.metrics.workerErrors.inc({ stage: "insert" });
        if (this.stopping) {
          // Shutting down: leave the messages to reappear after their visibility timeout.
          for (const w of group) w.reject(err);
          return;
        }
        const backoff = Math.min(100 * 2 ** attempt, 5000);
        if (attempt === 0 || attempt % 10 === 0) {
          this.deps.logger.warn({ err: errorMessage(err), messages: messages.length, attempt, backoffMs: backoff }, "insert failed; holding the batch and retrying");
        }
        await sleep(backoff);
        if (Date.now() - held > (this.opts.visibilitySeconds * 1000) / 2) {
          held = Date.now();
          await this.deps.queue
            .changeVisibility(messages.map((m) => m.message.receiptHandle), this.opts.visibilitySeconds)
            .catch(() => undefined); // SQS may be down too; the messages then simply reappear later
        }
      }
    }
  }

  private async insert(messages: readonly Decoded[]): Promise<{ inserted: number; duplicates: number; poison: number; handles: string[] }> {
    // Messages whose every part is stored get deleted; the rest stay for the dead-letter queue.
    const kept = new Set<Decoded>();
    let poison = 0;
    const rows: Array<{ event: QueuedEvent; from: Decoded }> = [];
    for (const m of messages) {
      if (m.invalid > 0) {
        kept.add(m);
        poison += m.invalid;
        this.deps.logger.warn(
          { messageId: m.message.messageId, receiveCount: m.message.receiveCount, invalid: m.invalid, events: m.events.length },
          "undecodable message left for the dead-letter queue",
        );
      }
      for (const event of m.events) rows.push({ event, from: m });
    }
    let inserted = 0;
    let stored = rows.length;
    let losers = 0;
    const refused = new Set<QueuedEvent>();
    if (rows.length > 0) {
      try {
        inserted = await insertEvents(this.deps.prisma, rows.map((r) => r.event));
      } catch (err) {
        if (!isDataError(err)) throw err;
        // Postgres refused the data itself: store the batch one by one so only the bad events are left behind.
        stored = 0;
        for (const r of rows) {
          try {
            inserted += await insertEvents(this.deps.prisma, [r.event]);
            stored++;
          } catch (single) {
            if (!isDataError(single)) throw single;
            poison++;
            refused.add(r.event);
            kept.add(r.from);
            this.deps.logger.warn({ messageId: r.from.message.messageId, eventId: r.event.id, err: errorMessage(single) }, "event the database refuses left for the dead-letter queue");
          }
        }
      }
      if (inserted < stored) {
        // Skipped rows are duplicates, unless another body was stored under their key first: such a
        // loser was 202'd without a shared fast path and must not vanish. It is logged and its
        // message kept, so it reaches the dead-letter queue.
        for (const loser of await findIdempotencyLosers(this.deps.prisma, rows.filter((r) => !refused.has(r.event)).map((r) => r.event))) {
          const r = rows.find((x) => x.event === loser)!;
          losers++;
          poison++;
          refused.add(loser);
          kept.add(r.from);
          this.deps.logger.error(
            { tenant: loser.tenant_id, eventId: loser.id, messageId: r.from.message.messageId, bodyHash: loser.body_hash },
            "idempotency conflict: another body is stored under this event's key; the event was not stored and its message is left for the dead-letter queue",
          );
        }
      }
      if (inserted > 0) this.notifyStored(rows.filter((r) => !refused.has(r.event)).map((r) => r.event));
      const committedAt = Date.now();
      this.deps.metrics.workerBatches.inc();
      this.deps.metrics.workerRowsInserted.inc(inserted);
      this.deps.metrics.workerDuplicates.inc(stored - inserted - losers);
      for (const r of rows) if (!refused.has(r.event)) this.deps.metrics.ingestLag.observe(Math.max(0, committedAt - Date.parse(r.event.received_at)) / 1000);
    }
    this.deps.metrics.workerPoison.inc(poison);
    const handles = messages.filter((m) => !kept.has(m)).map((m) => m.message.receiptHandle);
    return { inserted, duplicates: stored - inserted - losers, poison, handles };
  }

  /**
   * Post-commit hook: wakes the API processes' long polls waiting for these tenants (and types).
   * In the background: a lost notification only delays a waiter to its safety re-check.
   */
  private notifyStored(events: readonly QueuedEvent[]): void {
    const tenants = new Map<string, Set<string>>();
    for (const e of events) {
      let types = tenants.get(e.tenant_id);
      if (!types) tenants.set(e.tenant_id, (types = new Set()));
      types.add(e.type);
    }
    const pending = notifyDeliverable(this.deps.prisma, tenants).catch((err: unknown) => {
      this.deps.logger.warn({ err: errorMessage(err) }, "could not notify long polls of stored events");
    });
    this.notifies.add(pending);
    void pending.finally(() => this.notifies.delete(pending));
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
        await this.store(messages.map(decode));
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

function decode(message: ReceivedMessage): Decoded {
  return { message, ...decodeQueuedMessage(message.body) };
}

/**
 * True for errors about the data (SQLSTATE class 22 data exception or 23 integrity violation),
 * which retrying cannot fix; everything else (connection loss, timeouts) is worth retrying.
 */
export function isDataError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur && typeof cur === "object" && !seen.has(cur)) {
    seen.add(cur);
    const e = cur as { code?: unknown; meta?: { code?: unknown; driverAdapterError?: unknown }; cause?: unknown; originalCode?: unknown };
    for (const code of [e.code, e.meta?.code, e.originalCode]) {
      if (typeof code === "string" && /^(22|23)[0-9A-Z]{3}$/.test(code)) return true;
    }
    cur = e.cause ?? e.meta?.driverAdapterError;
  }
  const text = err instanceof Error ? err.message : String(err);
  return /\b(22|23)[0-9A-Z]{3}\b/.test(text) || /out of range|invalid input syntax|violates/i.test(text);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
