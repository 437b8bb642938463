import type { PrismaClient } from "../../generated/prisma/client";
import { eventRowColumns, type EventRow } from "./event-row";
import { filterSql, type InboxFilter } from "./inbox-filter";

export interface LeaseOptions {
  readonly tenantId: string;
  /** The subscription's internal id (resolveSubscription). */
  readonly subscriptionId: number;
  readonly limit: number;
  readonly visibilitySeconds: number;
  readonly maxDeliveries: number;
  readonly filter?: InboxFilter;
}

export interface LeaseResult {
  /** The leased events, oldest first, each with a fresh lease_id and lease_expires_at. */
  readonly events: EventRow[];
  /** More deliverable events matched the filter beyond this batch. */
  readonly hasMore: boolean;
  /** Events found past max deliveries and turned dead instead of being handed out. */
  readonly dead: number;
}

/**
 * Leases up to `limit` deliverable events of one subscription of a tenant (its deliveries that are pending, or delivered with an expired
 * lease; both have available_at <= now()), oldest first, in one statement. Rows locked by a
 * concurrent lease are skipped, so two consumers never receive the same event inside one lease.
 * An event that already had `maxDeliveries` deliveries becomes dead instead of being handed out.
 *
 * Every part is index-driven, and the shape is deliberate (plans checked in inbox-peek.test.ts):
 * - candidates walk deliveries_deliverable_idx (tenant_id, subscription_id, received_at, event_id) in order;
 * - the UPDATE finds its rows by primary key (`event_id = ANY(ARRAY(…)) AND subscription_id = …`), not through a join the
 *   planner may turn into a hash join over the whole table;
 * - `has_more` is answered in the same statement (no second round trip) by probing that index just
 *   past the last candidate. The probe compares against scalar sub-selects, so the row comparison
 *   is an index condition, and is an ordered LIMIT 1 scalar sub-select (EXISTS would drop the
 *   ORDER BY), so the planner does not pick a "fast-start" sequential scan that reads the whole
 *   table exactly when nothing more matches. A batch short of `limit` means nothing more was
 *   deliverable (bar rows other consumers were locking), so the probe is skipped then.
 * - the payload comes from events by primary key, for the leased rows only.
 * Reading delivery_count from `d` is safe: the row is locked by `candidates`.
 */
export async function leaseEvents(prisma: PrismaClient, opts: LeaseOptions): Promise<LeaseResult> {
  const params: unknown[] = [opts.tenantId, opts.limit, opts.visibilitySeconds, opts.maxDeliveries, opts.subscriptionId];
  const filter = filterSql(opts.filter ?? {}, params);
  const moreFilter = filterSql(opts.filter ?? {}, params, "m");
  const rows = await prisma.$queryRawUnsafe<Array<EventRow & { has_more: boolean | null }>>(
    `WITH candidates AS (
       SELECT event_id, received_at FROM deliveries
       WHERE tenant_id = $1 AND subscription_id = $5 AND status IN ('pending', 'delivered') AND available_at <= now()${filter}
       ORDER BY received_at, event_id
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     ),
     last AS (SELECT received_at, event_id FROM candidates ORDER BY received_at DESC, event_id DESC LIMIT 1),
     updated AS (
       UPDATE deliveries d SET
         status = CASE WHEN d.delivery_count >= $4 THEN 'dead'::event_status ELSE 'delivered'::event_status END,
         dead_at = CASE WHEN d.delivery_count >= $4 THEN now() ELSE NULL END,
         delivery_count = CASE WHEN d.delivery_count >= $4 THEN d.delivery_count ELSE d.delivery_count + 1 END,
         lease_id = CASE WHEN d.delivery_count >= $4 THEN NULL ELSE gen_random_uuid() END,
         leased_at = CASE WHEN d.delivery_count >= $4 THEN d.leased_at ELSE now() END,
         lease_expires_at = CASE WHEN d.delivery_count >= $4 THEN NULL ELSE now() + make_interval(secs => $3) END,
         available_at = CASE WHEN d.delivery_count >= $4 THEN d.available_at ELSE now() + make_interval(secs => $3) END
       WHERE d.event_id = ANY (ARRAY(SELECT event_id FROM candidates)) AND d.subscription_id = $5
       RETURNING d.*
     )
     SELECT ${eventRowColumns("e", "d")}, CASE WHEN (SELECT count(*) FROM candidates) < $2 THEN false ELSE (
       SELECT true FROM deliveries m
       WHERE m.tenant_id = $1 AND m.subscription_id = $5 AND m.status IN ('pending', 'delivered') AND m.available_at <= now()
         AND (m.received_at, m.event_id) > ((SELECT received_at FROM last), (SELECT event_id FROM last))${moreFilter}
       ORDER BY m.received_at, m.event_id
       LIMIT 1
     ) IS NOT NULL END AS has_more
     FROM updated d JOIN events e ON e.id = d.event_id
     ORDER BY d.received_at, d.event_id`,
    ...params,
  );
  const events: EventRow[] = [];
  let dead = 0;
  for (const { has_more: _ignored, ...row } of rows) {
    if (row.status === "delivered") events.push(row);
    else dead++;
  }
  return { events, hasMore: rows[0]?.has_more === true, dead };
}
