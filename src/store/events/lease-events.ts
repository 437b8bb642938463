import type { PrismaClient } from "../../generated/prisma/client";
import { EVENT_COLUMNS, type EventRow } from "./event-row";

export interface LeaseOptions {
  readonly tenantId: string;
  readonly limit: number;
  readonly visibilitySeconds: number;
  readonly maxDeliveries: number;
}

/**
 * Leases up to `limit` deliverable events of one tenant (pending, or delivered with an expired
 * lease), oldest first, in one statement. Rows locked by a concurrent lease are skipped, so two
 * consumers never receive the same event inside one lease. An event that already had
 * `maxDeliveries` deliveries becomes dead instead of being handed out again.
 */
export async function leaseEvents(
  prisma: PrismaClient,
  opts: LeaseOptions,
): Promise<{ events: EventRow[]; hasMore: boolean }> {
  const rows = await prisma.$queryRawUnsafe<EventRow[]>(
    `WITH candidates AS (
       SELECT id, delivery_count FROM events
       WHERE tenant_id = $1 AND status IN ('pending', 'delivered') AND available_at <= now()
       ORDER BY received_at, id
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     ),
     updated AS (
       UPDATE events e SET
         status = CASE WHEN c.delivery_count >= $4 THEN 'dead'::event_status ELSE 'delivered'::event_status END,
         dead_at = CASE WHEN c.delivery_count >= $4 THEN now() ELSE NULL END,
         delivery_count = CASE WHEN c.delivery_count >= $4 THEN e.delivery_count ELSE e.delivery_count + 1 END,
         lease_id = CASE WHEN c.delivery_count >= $4 THEN NULL ELSE gen_random_uuid() END,
         leased_at = CASE WHEN c.delivery_count >= $4 THEN e.leased_at ELSE now() END,
         lease_expires_at = CASE WHEN c.delivery_count >= $4 THEN NULL ELSE now() + make_interval(secs => $3) END,
         available_at = CASE WHEN c.delivery_count >= $4 THEN e.available_at ELSE now() + make_interval(secs => $3) END
       FROM candidates c
       WHERE e.id = c.id
       RETURNING ${EVENT_COLUMNS.split(",").map((c) => `e.${c.trim()}`).join(", ")}
     )
     SELECT * FROM updated ORDER BY received_at, id`,
    opts.tenantId,
    opts.limit,
    opts.visibilitySeconds,
    opts.maxDeliveries,
  );
  const events = rows.filter((r) => r.status === "delivered");
  const more = await prisma.$queryRawUnsafe<Array<{ more: boolean }>>(
    `SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND status IN ('pending', 'delivered') AND available_at <= now()) AS more`,
    opts.tenantId,
  );
  return { events, hasMore: more[0]?.more === true };
}
