import type { PrismaClient } from "../../generated/prisma/client";
import { execute, fragment, join, queryRows, sql, type Sql } from "../sql";

/** Most deliveries one replay or bulk redrive changes; the answer says when more remain (call again). */
export const BULK_CHANGE_LIMIT = 5000;

export interface BulkResult {
  /** Deliveries made pending. */
  readonly changed: number;
  /** More matched than BULK_CHANGE_LIMIT: calling again changes the next batch. */
  readonly hasMore: boolean;
}

/**
 * Deadlines of one bulk change's transaction: waiting for a pooled connection, and the whole
 * transaction (two statements, each also bounded by the connection's query deadline).
 */
const BULK_TRANSACTION = { maxWait: 5_000, timeout: 15_000 } as const;

/** What "deliver again" sets: pending now, with a fresh delivery budget and no lease. */
const PENDING_AGAIN = fragment(`status = 'pending', delivery_count = 0, dead_at = NULL, acknowledged_at = NULL,
  available_at = now(), lease_id = NULL, leased_at = NULL, lease_expires_at = NULL`);

/**
 * The statements of replay and bulk redrive: at most `limit` matching deliveries made pending with
 * a fresh delivery budget. The rows are chosen and locked first, then changed by primary key with
 * their ids as one bound array. One statement joining the locked rows back to deliveries left the
 * join order to row estimates, and with stale statistics (a tenant's new rows, a burst of dead
 * ones) the planner estimated one row on each side and chose a nested loop that compared every
 * delivery of the subscription with every locked row: 24 s for 5 000 of 10 000 (past the 5 s
 * statement deadline), where the bound array is one index probe per row whatever the statistics.
 */
async function makePending(prisma: PrismaClient, statement: string, tenantId: string, subscriptionId: number, where: Sql, limit: number): Promise<BulkResult> {
  return prisma.$transaction(async (tx) => {
    const matched = await queryRows(
      tx,
      `${statement}Lock`,
      sql`SELECT event_id FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND ${where}
          LIMIT ${limit + 1}::int FOR UPDATE SKIP LOCKED`,
      { event_id: "string" },
    );
    const chosen = matched.slice(0, limit).map((r) => r.event_id);
    if (chosen.length === 0) return { changed: 0, hasMore: false };
    const changed = await execute(
      tx,
      sql`UPDATE deliveries SET ${PENDING_AGAIN}
          WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND event_id = ANY(${chosen}::text[])`,
    );
    return { changed, hasMore: matched.length > limit };
  }, BULK_TRANSACTION);
}

/**
 * Replay: the acknowledged and dead deliveries of one subscription received in [since, until) are
 * delivered again (pending, delivery_count 0). Deliveries still pending or leased are left as they
 * are (they are on their way already). At most `limit` per call.
 */
export function replayEvents(prisma: PrismaClient, tenantId: string, subscriptionId: number, since: Date, until: Date, limit = BULK_CHANGE_LIMIT): Promise<BulkResult> {
  return makePending(prisma, "replayEvents", tenantId, subscriptionId, sql`status IN ('acknowledged', 'dead') AND received_at >= ${since}::timestamptz AND received_at < ${until}::timestamptz`, limit);
}

const DEAD = fragment("status = 'dead'");

export interface DeadFilter {
  readonly type?: string | undefined;
  readonly source?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
}

/** Bulk redrive: the dead deliveries of one subscription matching the filter made pending again, at most `limit` per call. */
export function redriveDead(prisma: PrismaClient, tenantId: string, subscriptionId: number, f: DeadFilter, limit = BULK_CHANGE_LIMIT): Promise<BulkResult> {
  const where: Sql[] = [DEAD];
  if (f.type !== undefined) where.push(sql` AND type = ${f.type}`);
  if (f.source !== undefined) where.push(sql` AND source = ${f.source}`);
  if (f.tags !== undefined && f.tags.length > 0) where.push(sql` AND tags @> ${[...f.tags]}::text[]`);
  if (f.since !== undefined) where.push(sql` AND received_at >= ${f.since}::timestamptz`);
  if (f.until !== undefined) where.push(sql` AND received_at < ${f.until}::timestamptz`);
  return makePending(prisma, "redriveDead", tenantId, subscriptionId, join(where, ""), limit);
}

/**
 * Redrive of chosen deliveries (the bulk redrive with a payload search, whose bounded scan picks
 * them): those of `eventIds` still dead in the subscription become pending; a delivery that left
 * `dead` meanwhile is left as it is. Answers how many changed.
 */
export async function redriveDeadEvents(prisma: PrismaClient, tenantId: string, subscriptionId: number, eventIds: readonly string[]): Promise<number> {
  if (eventIds.length === 0) return 0;
  return execute(
    prisma,
    sql`UPDATE deliveries SET ${PENDING_AGAIN}
        WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND event_id = ANY(${[...eventIds]}::text[]) AND ${DEAD}`,
  );
}
