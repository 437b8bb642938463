import type { PrismaClient } from "../../generated/prisma/client";
import type { Refused } from "./delivery-transition";
import { eventRowColumns, type EventRow } from "./event-row";

/**
 * Makes a dead event deliverable again in one subscription with a fresh delivery budget (delivery_count 0), in one
 * statement. Refused (not_dead) for an event in any other status. Returns null when the
 * tenant has no such event.
 */
export async function redriveEvent(prisma: PrismaClient, tenantId: string, subscriptionId: number, eventId: string): Promise<EventRow | Refused | null> {
  // Every column of `updated` is NULL when the event was not dead (the LEFT JOIN found nothing).
  const rows = await prisma.$queryRawUnsafe<Array<Omit<EventRow, "id"> & { id: string | null; prior: string }>>(
    `WITH target AS (
       SELECT event_id, status FROM deliveries WHERE event_id = $1 AND subscription_id = $3 AND tenant_id = $2 FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries d SET status = 'pending', delivery_count = 0, dead_at = NULL, available_at = now(),
         lease_id = NULL, lease_expires_at = NULL
       FROM target t
       WHERE d.event_id = t.event_id AND d.subscription_id = $3 AND t.status = 'dead'
       RETURNING d.*
     ),
     joined AS (SELECT ${eventRowColumns("e", "d")} FROM updated d JOIN events e ON e.id = d.event_id)
     SELECT j.*, t.status::text AS prior FROM target t LEFT JOIN joined j ON true`,
    eventId,
    tenantId,
    subscriptionId,
  );
  const result = rows[0];
  if (!result) return null;
  const { prior, id, ...rest } = result;
  if (id === null) return { refused: "not_dead", prior };
  return { ...rest, id };
}
