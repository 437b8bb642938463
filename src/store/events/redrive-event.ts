import type { PrismaClient } from "../../generated/prisma/client";
import { queryRows, sql } from "../sql";
import type { Refused } from "./delivery-transition";
import { checkEventRows, eventRowColumns, type EventRow } from "./event-row";

const REDRIVEN_COLUMNS = eventRowColumns("e", "d");
/** The prior status, and the redriven event's columns (checked in full when there is one). */
const REDRIVE_ROW = { prior: "string", id: "string?" } as const;

/**
 * Makes a dead event deliverable again in one subscription with a fresh delivery budget (delivery_count 0), in one
 * statement. Refused (not_dead) for an event in any other status. Returns null when the
 * tenant has no such event.
 */
export async function redriveEvent(prisma: PrismaClient, tenantId: string, subscriptionId: number, eventId: string): Promise<EventRow | Refused | null> {
  // Every column of `updated` is NULL when the event was not dead (the LEFT JOIN found nothing).
  const rows = await queryRows(
    prisma,
    "redriveEvent",
    sql`WITH target AS (
       SELECT event_id, status FROM deliveries WHERE event_id = ${eventId} AND subscription_id = ${subscriptionId} AND tenant_id = ${tenantId} FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries d SET status = 'pending', delivery_count = 0, dead_at = NULL, available_at = now(),
         lease_id = NULL, lease_expires_at = NULL
       FROM target t
       WHERE d.event_id = t.event_id AND d.subscription_id = ${subscriptionId} AND t.status = 'dead'
       RETURNING d.*
     ),
     joined AS (SELECT ${REDRIVEN_COLUMNS} FROM updated d JOIN events e ON e.id = d.event_id)
     SELECT j.*, t.status::text AS prior FROM target t LEFT JOIN joined j ON true`,
    REDRIVE_ROW,
  );
  const result = rows[0];
  if (!result) return null;
  const { prior, ...row } = result;
  if (row.id === null) return { refused: "not_dead", prior };
  return checkEventRows("redriveEvent", [row])[0]!;
}
