import type { PrismaClient } from "../../generated/prisma/client";
import { ConflictError } from "../../errors";
import { EVENT_COLUMNS, type EventRow } from "./event-row";

const RETURNING = EVENT_COLUMNS.split(",")
  .map((c) => `e.${c.trim()}`)
  .join(", ");

/**
 * Makes a dead event deliverable again with a fresh delivery budget (delivery_count 0), in one
 * statement. Refused with 409 not_dead for an event in any other status. Returns null when the
 * tenant has no such event.
 */
export async function redriveEvent(prisma: PrismaClient, tenantId: string, eventId: string): Promise<EventRow | null> {
  // Every column of `updated` is NULL when the event was not dead (the LEFT JOIN found nothing).
  const rows = await prisma.$queryRawUnsafe<Array<Omit<EventRow, "id"> & { id: string | null; prior: string }>>(
    `WITH target AS (
       SELECT id, status FROM events WHERE id = $1 AND tenant_id = $2 FOR UPDATE
     ),
     updated AS (
       UPDATE events e SET status = 'pending', delivery_count = 0, dead_at = NULL, available_at = now(),
         lease_id = NULL, lease_expires_at = NULL
       FROM target t
       WHERE e.id = t.id AND t.status = 'dead'
       RETURNING ${RETURNING}
     )
     SELECT u.*, t.status::text AS prior FROM target t LEFT JOIN updated u ON true`,
    eventId,
    tenantId,
  );
  const result = rows[0];
  if (!result) return null;
  const { prior, id, ...rest } = result;
  if (id === null) throw new ConflictError("not_dead", `only a dead event can be redriven; this one is ${prior}`);
  return { ...rest, id };
}
