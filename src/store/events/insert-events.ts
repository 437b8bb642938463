import type { PrismaClient } from "../../generated/prisma/client";
import type { QueuedEvent } from "../../domain/queued-event";

/**
 * Stores a batch of accepted events in one statement. Idempotent: a row whose id, or whose
 * (tenant, idempotency key), already exists is skipped, so redelivered messages and retried
 * sends become one row. Returns how many rows were inserted.
 */
export async function insertEvents(prisma: PrismaClient, events: readonly QueuedEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const col = <K extends keyof QueuedEvent>(k: K) => events.map((e) => e[k]);
  return prisma.$executeRaw`
    INSERT INTO events (id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, occurred_at, received_at)
    SELECT e.id, e.tenant_id, e.type, e.source, e.payload::jsonb,
           ARRAY(SELECT jsonb_array_elements_text(e.tags::jsonb)),
           e.idempotency_key, e.body_hash, e.occurred_at::timestamptz, e.received_at::timestamptz
    FROM unnest(
      ${col("id")}::text[], ${col("tenant_id")}::text[], ${col("type")}::text[], ${col("source")}::text[],
      ${events.map((e) => JSON.stringify(e.payload))}::text[], ${events.map((e) => JSON.stringify(e.tags))}::text[],
      ${col("idempotency_key")}::text[], ${col("body_hash")}::text[], ${col("occurred_at")}::text[],
      ${col("received_at")}::text[]
    ) AS e(id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, occurred_at, received_at)
    ON CONFLICT DO NOTHING`;
}
