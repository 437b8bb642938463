import type { PrismaClient } from "../../generated/prisma/client";
import { ConflictError } from "../../errors";
import { leaseExpired } from "./ack-events";

export interface NackResult {
  readonly id: string;
  readonly status: "pending";
  readonly available_at: Date;
  /** False when the event was pending already (no lease was ended). */
  readonly endedLease: boolean;
}

/**
 * Ends an event's lease in one subscription now and makes it deliverable again after `delaySeconds`, in one statement.
 * Nacking a pending event only moves its availability, so a retried nack is harmless.
 * Refused with 409: acknowledged (`already_acknowledged`), dead (`event_dead`), or `leaseId`
 * given and not the current lease (`lease_expired`). Returns null when the tenant has no such event.
 */
export async function nackEvent(
  prisma: PrismaClient,
  tenantId: string,
  subscriptionId: number,
  eventId: string,
  opts: { delaySeconds: number; leaseId?: string | undefined },
): Promise<NackResult | null> {
  const rows = await prisma.$queryRawUnsafe<
    Array<{ prior: string; current: boolean; id: string | null; available_at: Date | null }>
  >(
    `WITH target AS (
       SELECT event_id AS id, status,
              (status = 'delivered' AND lease_id = $3::uuid AND lease_expires_at > now()) AS current
       FROM deliveries WHERE event_id = $1 AND subscription_id = $5 AND tenant_id = $2
       FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries e SET status = 'pending', available_at = now() + make_interval(secs => $4),
         lease_id = NULL, lease_expires_at = NULL
       FROM target t
       WHERE e.event_id = t.id AND e.subscription_id = $5 AND t.status IN ('pending', 'delivered') AND ($3::uuid IS NULL OR t.current)
       RETURNING e.event_id AS id, e.available_at
     )
     SELECT t.status::text AS prior, COALESCE(t.current, false) AS current, u.id, u.available_at
     FROM target t LEFT JOIN updated u ON true`,
    eventId,
    tenantId,
    opts.leaseId ?? null,
    opts.delaySeconds,
    subscriptionId,
  );
  const row = rows[0];
  if (!row) return null;
  if (row.prior === "acknowledged") throw new ConflictError("already_acknowledged", "the event is already acknowledged");
  if (row.prior === "dead") throw new ConflictError("event_dead", "the event is dead; redrive it to deliver it again");
  if (row.id === null || row.available_at === null) throw leaseExpired();
  return { id: row.id, status: "pending", available_at: new Date(row.available_at), endedLease: row.prior === "delivered" };
}
