import type { PrismaClient } from "../../generated/prisma/client";

/** Most deliveries one replay or bulk redrive changes; the answer says when more remain (call again). */
export const BULK_CHANGE_LIMIT = 5000;

export interface BulkResult {
  /** Deliveries made pending. */
  readonly changed: number;
  /** More matched than BULK_CHANGE_LIMIT: calling again changes the next batch. */
  readonly hasMore: boolean;
}

/** The statement of replay and bulk redrive: at most `limit` matching deliveries made pending with a fresh delivery budget. */
async function makePending(prisma: PrismaClient, where: string, params: unknown[], limit: number): Promise<BulkResult> {
  params.push(limit + 1);
  const n = `$${params.length}`;
  const rows = await prisma.$queryRawUnsafe<Array<{ changed: number; matched: number }>>(
    `WITH matched AS (
       SELECT event_id FROM deliveries WHERE tenant_id = $1 AND subscription_id = $2 AND ${where}
       LIMIT ${n}::int FOR UPDATE SKIP LOCKED
     ),
     chosen AS (SELECT event_id FROM matched LIMIT ${n}::int - 1),
     updated AS (
       UPDATE deliveries d SET status = 'pending', delivery_count = 0, dead_at = NULL, acknowledged_at = NULL,
         available_at = now(), lease_id = NULL, leased_at = NULL, lease_expires_at = NULL
       FROM chosen c WHERE d.tenant_id = $1 AND d.subscription_id = $2 AND d.event_id = c.event_id
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM updated)::int AS changed, (SELECT count(*) FROM matched)::int AS matched`,
    ...params,
  );
  const r = rows[0] ?? { changed: 0, matched: 0 };
  return { changed: Number(r.changed), hasMore: Number(r.matched) > limit };
}

/**
 * Replay: the acknowledged and dead deliveries of one subscription received in [since, until) are
 * delivered again (pending, delivery_count 0). Deliveries still pending or leased are left as they
 * are (they are on their way already). At most `limit` per call.
 */
export function replayEvents(prisma: PrismaClient, tenantId: string, subscriptionId: number, since: Date, until: Date, limit = BULK_CHANGE_LIMIT): Promise<BulkResult> {
  return makePending(
    prisma,
    `status IN ('acknowledged', 'dead') AND received_at >= $3::timestamptz AND received_at < $4::timestamptz`,
    [tenantId, subscriptionId, since, until],
    limit,
  );
}

export interface DeadFilter {
  readonly type?: string | undefined;
  readonly source?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
}

/** Bulk redrive: the dead deliveries of one subscription matching the filter made pending again, at most `limit` per call. */
export function redriveDead(prisma: PrismaClient, tenantId: string, subscriptionId: number, f: DeadFilter, limit = BULK_CHANGE_LIMIT): Promise<BulkResult> {
  const params: unknown[] = [tenantId, subscriptionId];
  const add = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  let where = "status = 'dead'";
  if (f.type !== undefined) where += ` AND type = ${add(f.type)}`;
  if (f.source !== undefined) where += ` AND source = ${add(f.source)}`;
  if (f.tags !== undefined && f.tags.length > 0) where += ` AND tags @> ${add([...f.tags])}::text[]`;
  if (f.since !== undefined) where += ` AND received_at >= ${add(f.since)}::timestamptz`;
  if (f.until !== undefined) where += ` AND received_at < ${add(f.until)}::timestamptz`;
  return makePending(prisma, where, params, limit);
}
