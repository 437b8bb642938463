import type { PrismaClient } from "../../generated/prisma/client";
import type { QueuedEvent } from "../../domain/queued-event";
import { ensureDefaultSubscriptions } from "../subscriptions";
import { isStatementTimeout, StatementTimeoutError } from "../statement-timeout";
import { prepared, queryRows, sql } from "../sql";
import { ensurePartitionsCovering, isNoPartitionError } from "../partitions";

/** How many events the statement stored, and how many deliveries it made for them. */
const INSERTED_ROW = { inserted: "int", deliveries: "int" } as const;

/**
 * Stores a batch of accepted events and fans them out, in one statement: each inserted event gets
 * one delivery per subscription of its tenant whose filter matches it (types and sources match
 * any listed value, tags must all be present, an absent field matches all). Idempotent: a row whose
 * (id, received_at) already exists is skipped with its deliveries, and so is a keyed row whose
 * (tenant, idempotency key) is held in idempotency_keys by another row: the statement claims the
 * keys first (ON CONFLICT DO NOTHING) and stores a keyed event only when this statement claimed its
 * key for it. Redelivered messages and retried sends become one event with one delivery per
 * subscription, also when a retry's received_at falls in another partition. Returns how many
 * events were inserted. A row outside every partition makes the partitions covering the batch
 * (ensurePartitionsCovering) and the statement runs once more.
 *
 * Each tenant's `default` subscription is ensured first (once per tenant and process), so the
 * fan-out join always finds it. Deleted (marked) subscriptions get no deliveries. A statement
 * cancelled at the statement timeout throws StatementTimeoutError.
 */
export async function insertEvents(prisma: PrismaClient, events: readonly QueuedEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  await ensureDefaultSubscriptions(prisma, events.map((e) => e.tenant_id));
  try {
    return await insertStatement(prisma, events);
  } catch (err) {
    // A row outside every partition (a message that sat in SQS past the oldest partition, or a
    // partition the job has not created yet): create the partitions covering the rows, then once more.
    if (!isNoPartitionError(err)) throw err;
    await ensurePartitionsCovering(prisma, events.map((e) => new Date(e.received_at)));
    return insertStatement(prisma, events);
  }
}

async function insertStatement(prisma: PrismaClient, events: readonly QueuedEvent[]): Promise<number> {
  const col = <K extends keyof QueuedEvent>(k: K) => events.map((e) => e[k]);
  const rows = await queryRows(
    prisma,
    "insertEvents",
    // Prepared: its text never changes (the batch travels in arrays), and parsing and planning it
    // per execution was about a third of Postgres's CPU per stored event.
    prepared(
      "insert_events",
      sql`
    WITH input AS (
      SELECT e.id, e.tenant_id, e.type, e.source, e.payload, e.tags, e.idempotency_key, e.body_hash,
             e.occurred_at::timestamptz AS occurred_at, e.received_at::timestamptz AS received_at, e.schema_version, e.cloudevent
      FROM unnest(
        ${col("id")}::text[], ${col("tenant_id")}::text[], ${col("type")}::text[], ${col("source")}::text[],
        ${events.map((e) => JSON.stringify(e.payload))}::text[], ${events.map((e) => JSON.stringify(e.tags))}::text[],
        ${col("idempotency_key")}::text[], ${col("body_hash")}::text[], ${col("occurred_at")}::text[],
        ${col("received_at")}::text[], ${events.map((e) => e.schema_version ?? null)}::int[],
        ${events.map((e) => (e.cloudevent === undefined ? null : JSON.stringify(e.cloudevent)))}::text[]
      ) AS e(id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, occurred_at, received_at, schema_version, cloudevent)
    ),
    claimed AS (
      INSERT INTO idempotency_keys (tenant_id, idempotency_key, event_id, received_at, body_hash)
      SELECT i.tenant_id, i.idempotency_key, i.id, i.received_at, i.body_hash FROM input i WHERE i.idempotency_key IS NOT NULL
      ON CONFLICT DO NOTHING
      RETURNING tenant_id, idempotency_key, event_id, received_at, body_hash
    ),
    stored AS (
      INSERT INTO events (id, tenant_id, type, source, payload, tags, idempotency_key, body_hash, occurred_at, received_at, schema_version, cloudevent)
      SELECT e.id, e.tenant_id, e.type, e.source, e.payload::jsonb,
             ARRAY(SELECT jsonb_array_elements_text(e.tags::jsonb)),
             e.idempotency_key, e.body_hash, e.occurred_at, e.received_at,
             e.schema_version, e.cloudevent::jsonb
      FROM input e
      WHERE e.idempotency_key IS NULL
         OR EXISTS (SELECT 1 FROM claimed c WHERE c.tenant_id = e.tenant_id AND c.idempotency_key = e.idempotency_key
                      AND c.event_id = e.id AND c.received_at = e.received_at AND c.body_hash = e.body_hash)
      ON CONFLICT (id, received_at) DO NOTHING
      RETURNING id, tenant_id, type, source, tags, received_at
    ),
    fanned AS (
      INSERT INTO deliveries (subscription_id, event_id, tenant_id, type, source, tags, received_at)
      SELECT s.id, st.id, st.tenant_id, st.type, st.source, st.tags, st.received_at
      FROM stored st JOIN subscriptions s ON s.tenant_id = st.tenant_id AND s.deleted_at IS NULL
      WHERE (s.filter_types IS NULL OR st.type = ANY (s.filter_types))
        AND (s.filter_sources IS NULL OR st.source = ANY (s.filter_sources))
        AND (s.filter_tags IS NULL OR st.tags @> s.filter_tags)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM stored)::int AS inserted, (SELECT count(*) FROM fanned)::int AS deliveries`,
    ),
    INSERTED_ROW,
  ).catch((err: unknown) => {
    throw isStatementTimeout(err) ? new StatementTimeoutError(err) : err;
  });
  return rows[0]?.inserted ?? 0;
}
