import type { PrismaClient } from "../generated/prisma/client";
import { decodeQueuedMessage, type DecodedBody, type QueuedEvent } from "../domain/queued-event";
import type { Logger } from "../observability/logger";
import type { Metrics } from "../observability/metrics";
import type { ReceivedMessage } from "../queue/sqs-queue";
import { insertEvents } from "../store/events/insert-events";
import { classifyDatabaseError } from "../store/db-errors";
import { errorMessage } from "../errors";
import { findIdempotencyLosers } from "./idempotency";

/** A received message with the events it carries (one, or several when the API packed them). */
export interface DecodedMessage extends Readonly<DecodedBody> {
  readonly message: ReceivedMessage;
}

/** Decodes the body of a received message. */
export function decodeMessage(message: ReceivedMessage): DecodedMessage {
  return { message, ...decodeQueuedMessage(message.body) };
}

export interface StoreDeps {
  readonly prisma: PrismaClient;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** What one store step did with a set of messages. */
export interface StoreOutcome {
  /** Rows inserted (events new to the database). */
  readonly inserted: number;
  /** Events skipped because they were stored already (redeliveries, retried sends). */
  readonly duplicates: number;
  /** Parts left for the dead-letter queue: undecodable, refused by the database, or idempotency losers. */
  readonly poison: number;
  /** The events to wake long polls for: every event stored, when anything new was inserted (none when all were duplicates, which woke them the first time). */
  readonly announce: readonly QueuedEvent[];
  /** Receipt handles of the messages whose every part is stored: safe to delete from SQS. */
  readonly deletable: readonly string[];
}

/** The store step's signature; the worker takes it as a parameter so tests can make a commit fail. */
export type StoreMessagesFn = (deps: StoreDeps, messages: readonly DecodedMessage[]) => Promise<StoreOutcome>;

/**
 * Stores the events of `messages` in one idempotent INSERT, isolating poison: a message with a
 * part it cannot decode, that the database refuses, or that lost an idempotency race is kept (not
 * deletable) once its good events are stored, so SQS moves it to the dead-letter queue after
 * maxReceiveCount and a redrive stores nothing twice. When Postgres refuses the data itself the
 * batch is stored one event at a time, so only the bad events are left behind. Any other error
 * (connection loss, timeouts) is thrown: nothing is deletable and the caller retries.
 */
export async function storeMessages(deps: StoreDeps, messages: readonly DecodedMessage[]): Promise<StoreOutcome> {
  // Messages whose every part is stored get deleted; the rest stay for the dead-letter queue.
  const kept = new Set<DecodedMessage>();
  let poison = 0;
  const rows: Array<{ event: QueuedEvent; from: DecodedMessage }> = [];
  for (const m of messages) {
    if (m.invalid > 0) {
      kept.add(m);
      poison += m.invalid;
      deps.logger.warn(
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
  let storedEvents: QueuedEvent[] = [];
  if (rows.length > 0) {
    try {
      inserted = await insertEvents(deps.prisma, rows.map((r) => r.event));
    } catch (err) {
      if (classifyDatabaseError(err) !== "data") throw err;
      // Postgres refused the data itself: store the batch one by one so only the bad events are left behind.
      stored = 0;
      for (const r of rows) {
        try {
          inserted += await insertEvents(deps.prisma, [r.event]);
          stored++;
        } catch (single) {
          if (classifyDatabaseError(single) !== "data") throw single;
          poison++;
          refused.add(r.event);
          kept.add(r.from);
          deps.logger.warn({ messageId: r.from.message.messageId, eventId: r.event.id, err: errorMessage(single) }, "event the database refuses left for the dead-letter queue");
        }
      }
    }
    if (inserted < stored) {
      // Skipped rows are duplicates, unless another body was stored under their key first: such a
      // loser was 202'd without a shared fast path and must not vanish. It is logged and its
      // message kept, so it reaches the dead-letter queue.
      for (const loser of await findIdempotencyLosers(deps.prisma, rows.filter((r) => !refused.has(r.event)).map((r) => r.event))) {
        const r = rows.find((x) => x.event === loser)!;
        losers++;
        poison++;
        refused.add(loser);
        kept.add(r.from);
        deps.logger.error(
          { tenant: loser.tenant_id, eventId: loser.id, messageId: r.from.message.messageId, bodyHash: loser.body_hash },
          "idempotency conflict: another body is stored under this event's key; the event was not stored and its message is left for the dead-letter queue",
        );
      }
    }
    storedEvents = rows.filter((r) => !refused.has(r.event)).map((r) => r.event);
    const committedAt = Date.now();
    deps.metrics.workerBatches.inc();
    deps.metrics.workerRowsInserted.inc(inserted);
    deps.metrics.workerDuplicates.inc(stored - inserted - losers);
    for (const e of storedEvents) deps.metrics.ingestLag.observe(Math.max(0, committedAt - Date.parse(e.received_at)) / 1000);
  }
  deps.metrics.workerPoison.inc(poison);
  return {
    inserted,
    duplicates: stored - inserted - losers,
    poison,
    announce: inserted > 0 ? storedEvents : [],
    deletable: messages.filter((m) => !kept.has(m)).map((m) => m.message.receiptHandle),
  };
}
