import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, join, queryRows, sql, type Sql } from "../sql";

/** Most deliveries one replay or bulk redrive changes; the answer says when more remain (call again). */
export const BULK_CHANGE_LIMIT = 5000;

export interface BulkResult {
  /** Deliveries made pending. */
  readonly changed: number;
  /** More matched than BULK_CHANGE_LIMIT: calling again changes the next batch. */
  readonly hasMore: boolean;
}

/** The statement of replay and bulk redrive: at most `limit` matching deliveries made pending with a fresh delivery budget. */
async function makePending(prisma: PrismaClient, statement: string, tenantId: string, subscriptionId: number, where: Sql, limit: number): Promise<BulkResult> {
  const n = limit + 1;
  const rows = await queryRows(
    prisma,
    statement,
    sql`WITH matched AS (
       SELECT event_id FROM deliveries WHERE tenant_id = ${tenantId} AND subscription_id = ${subscriptionId} AND ${where}
       LIMIT ${n}::int FOR UPDATE SKIP LOCKED
     ),
     chosen AS (SELECT event_id FROM matched LIMIT ${n}::int - 1),
     updated AS (
       UPDATE deliveries d SET status = 'pending', delivery_count = 0, dead_at = NULL, acknowledged_at = NULL,
         available_at = now(), lease_id = NULL, leased_at = NULL, lease_expires_at = NULL
       FROM chosen c WHERE d.tenant_id = ${tenantId} AND d.subscription_id = ${subscriptionId} AND d.event_id = c.event_id
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM updated)::int AS changed, (SELECT count(*) FROM matched)::int AS matched`,
    { changed: "int", matched: "int" },
  );
  const r = rows[0] ?? { changed: 0, matched: 0 };
  return { changed: r.changed, hasMore: r.matched > limit };
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
