import type { PrismaClient } from "../generated/prisma/client";
import { fragment, queryRows, sql, type Sql } from "./sql";

/** The kinds of rows expiry removes, in the order one pass visits them. */
export type ExpiryKind = "acknowledged" | "dead" | "stale";

/** The advisory lock that serialises the batches of concurrent expiry runs ("expiry" in ASCII). */
const EXPIRY_LOCK_KEY = 0x657870697279;
/**
 * Deadlines of a batch's transaction: waiting for a pooled connection, and the whole transaction
 * (lock wait and DELETE; each statement also has the connection's own query deadline).
 */
const BATCH_TRANSACTION = { maxWait: 10_000, timeout: 120_000 } as const;

/**
 * Each kind's due rows before `cutoff`: the predicate of its DELETE and of its count (so the same
 * partial index). The status literal stays a literal: it must match the partial index's predicate.
 */
function dueWhere(kind: ExpiryKind, due: Due): Sql {
  const held = due.receivedBefore === undefined ? sql`` : sql` AND received_at < ${due.receivedBefore}::timestamptz`;
  switch (kind) {
    case "acknowledged":
      return sql`status = 'acknowledged' AND acknowledged_at < ${due.cutoff}::timestamptz${held}`;
    case "dead":
      return sql`status = 'dead' AND dead_at < ${due.cutoff}::timestamptz${held}`;
    case "stale":
      return sql`status IN ('pending', 'delivered') AND received_at < ${due.cutoff}::timestamptz${held}`;
  }
}

/**
 * Which rows of a kind are due: past `cutoff` (acknowledged_at, dead_at, or received_at for stale),
 * and, when `receivedBefore` is set, received before it. Retention drops whole partitions
 * (retention.ts); row by row, expiry only clears the partitions a live row holds past their time,
 * the ones received before `receivedBefore` (expireEvents), and leaves the others to the drop.
 */
export interface Due {
  readonly cutoff: Date;
  readonly receivedBefore?: Date | undefined;
}

/**
 * The received_at bound of a kind's rows, repeated on the statements that delete them by key so
 * the planner prunes every partition after it (the hot ones, where leases and acks work) from the
 * DELETE's join as well as from its pick.
 */
function receivedBound(kind: ExpiryKind, due: Due, alias: string): Sql {
  const col = fragment(`${alias}.received_at`);
  const bounds = [kind === "stale" ? due.cutoff : undefined, due.receivedBefore].filter((d): d is Date => d !== undefined);
  if (bounds.length === 0) return sql``;
  const upper = new Date(Math.min(...bounds.map((d) => d.getTime())));
  return sql` AND ${col} < ${upper}::timestamptz`;
}

/**
 * The order each kind's DELETE takes its rows in: oldest first where the kind's index gives that
 * order cheaply. None for stale: the deliverable index leads with tenant_id, so ordering by
 * received_at would sort every deliverable row; without it the scan stops at the first `limit` matches.
 */
const DELETE_ORDER: Record<ExpiryKind, Sql> = { acknowledged: fragment("ORDER BY acknowledged_at"), dead: fragment("ORDER BY dead_at"), stale: fragment("") };

/**
 * One bounded DELETE of deliveries of a kind, and of the events whose last delivery that was, in
 * one statement. The status literal in each statement matches the predicate of a partial index
 * (deliveries_acknowledged_at_idx, deliveries_dead_at_idx, deliveries_deliverable_idx), so the
 * planner reads only rows of that status in index order and stops after `limit` of them; it never
 * scans or locks the whole table. SKIP LOCKED steps over rows an ack or a lease holds right now
 * (they are picked up by a later run) instead of waiting on them. Batches of concurrent runs take
 * turns on an advisory lock (below).
 *
 * An event is deleted when none of its deliveries is left: `orphans` looks (by the primary key of
 * deliveries, which leads with event_id) for a delivery of the event other than the ones this
 * statement deletes (the statement's snapshot still shows those). `per_event` groups the deleted
 * deliveries by event once (a hash aggregate), so that check costs the same per row at any batch
 * size; a sub-select over `gone` per event would scan the whole CTE for every event, quadratic in
 * the batch. Besides dropped partitions (retention.ts) this is the only place events are deleted,
 * and deliveries have no foreign key to events: an event leaves only with its last delivery, and
 * its idempotency key (`freed`) with it, so the key is free again as it was before partitioning.
 */
export async function deleteExpiredBatch(prisma: PrismaClient, kind: ExpiryKind, due: Due, limit: number): Promise<{ deliveries: number; events: number }> {
  const statement = sql`WITH gone AS (
       DELETE FROM deliveries d WHERE (event_id, subscription_id, received_at) IN (
         SELECT event_id, subscription_id, received_at FROM deliveries
          WHERE ${dueWhere(kind, due)}
          ${DELETE_ORDER[kind]} LIMIT ${limit}::int
          FOR UPDATE SKIP LOCKED)${receivedBound(kind, due, "d")}
       RETURNING event_id, subscription_id, received_at
     ),
     per_event AS (SELECT event_id, received_at, array_agg(subscription_id) AS subs FROM gone GROUP BY event_id, received_at),
     orphans AS (
       DELETE FROM events e USING per_event g
       WHERE e.id = g.event_id AND e.received_at = g.received_at${receivedBound(kind, due, "e")}
         AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.event_id = g.event_id AND o.received_at = g.received_at${receivedBound(kind, due, "o")} AND o.subscription_id <> ALL (g.subs))
       RETURNING e.id, e.tenant_id, e.idempotency_key
     ),
     freed AS (
       DELETE FROM idempotency_keys k USING orphans o
       WHERE o.idempotency_key IS NOT NULL AND k.tenant_id = o.tenant_id AND k.idempotency_key = o.idempotency_key AND k.event_id = o.id
     )
     SELECT (SELECT count(*) FROM gone)::int AS deliveries, (SELECT count(*) FROM orphans)::int AS events`;
  // Concurrent runs (several scheduler processes, or a run overlapping the next) take turns per
  // batch: a statement's snapshot would still show the deliveries another run is deleting at that
  // moment, so two runs deleting different deliveries of one event would each keep the event and
  // leave it with none. Waiting on the lock before the statement starts gives it a snapshot in
  // which every earlier batch has committed.
  const rows = await prisma.$transaction(async (tx) => {
    await tx.$executeRaw(sql`SELECT pg_advisory_xact_lock(${EXPIRY_LOCK_KEY}::bigint)`);
    return queryRows(tx, "deleteExpiredBatch", statement, { deliveries: "int", events: "int" });
  }, BATCH_TRANSACTION);
  return { deliveries: rows[0]?.deliveries ?? 0, events: rows[0]?.events ?? 0 };
}

/** How many rows of a kind are due, counted up to `cap` (an index-only scan of the kind's partial index). */
export async function countDue(prisma: PrismaClient, kind: ExpiryKind, due: Due, cap: number): Promise<number> {
  const rows = await queryRows(prisma, "countDue", sql`SELECT count(*)::int AS n FROM (SELECT 1 FROM deliveries WHERE ${dueWhere(kind, due)} LIMIT ${cap}::int) due`, { n: "int" });
  return rows[0]?.n ?? 0;
}

/** The planner's plan (EXPLAIN FORMAT JSON, statistics only, no scan) of selecting a kind's due rows. */
export async function explainDue(prisma: PrismaClient, kind: ExpiryKind, due: Due): Promise<unknown> {
  const rows = await queryRows(prisma, "explainDue", sql`EXPLAIN (FORMAT JSON) SELECT 1 FROM deliveries WHERE ${dueWhere(kind, due)}`, { "QUERY PLAN": "json" });
  return rows[0]?.["QUERY PLAN"];
}

/** The smallest round trip: CPU and network only. */
export async function selectOne(prisma: PrismaClient): Promise<void> {
  await prisma.$queryRaw(sql`SELECT 1`);
}

/**
 * The smallest committing write: a transactional logical-decoding message (one WAL record, no
 * table), which like an INSERT waits for its commit to be flushed. Refused by PGlite and by roles
 * without the right to call it.
 */
export async function emitProbeMessage(prisma: PrismaClient): Promise<void> {
  await prisma.$queryRaw(sql`SELECT pg_logical_emit_message(true, 'triggers-expiry-probe', '')::text AS lsn`);
}
