import type { PrismaClient } from "../../generated/prisma/client";
import { ConflictError } from "../../errors";
import { leaseExpired } from "./ack-events";

export interface ExtendResult {
  readonly id: string;
  readonly lease_id: string;
  readonly lease_expires_at: Date;
}

/**
 * Extends the current lease of an event in one subscription to now + `visibilitySeconds` (which may also shorten it),
 * keeping its lease_id. Refused with 409 lease_expired when there is no current lease or `leaseId`
 * is not it, and already_acknowledged for an acknowledged event. Returns null when the tenant has
 * no such event.
 */
export async function extendLease(
  prisma: PrismaClient,
  tenantId: string,
  subscriptionId: number,
  eventId: string,
  opts: { visibilitySeconds: number; leaseId?: string | undefined },
): Promise<ExtendResult | null> {
  const rows = await prisma.$queryRawUnsafe<
    Array<{ prior: string; id: string | null; lease_id: string | null; lease_expires_at: Date | null }>
  >(
    `WITH target AS (
       SELECT event_id AS id, status,
              (status = 'delivered' AND lease_expires_at > now() AND ($3::uuid IS NULL OR lease_id = $3::uuid)) AS current
       FROM deliveries WHERE event_id = $1 AND subscription_id = $5 AND tenant_id = $2
       FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries e SET lease_expires_at = now() + make_interval(secs => $4),
         available_at = now() + make_interval(secs => $4)
       FROM target t
       WHERE e.event_id = t.id AND e.subscription_id = $5 AND t.current
       RETURNING e.event_id AS id, e.lease_id, e.lease_expires_at
     )
     SELECT t.status::text AS prior, u.id, u.lease_id, u.lease_expires_at
     FROM target t LEFT JOIN updated u ON true`,
    eventId,
    tenantId,
    opts.leaseId ?? null,
    opts.visibilitySeconds,
    subscriptionId,
  );
  const row = rows[0];
  if (!row) return null;
  if (row.prior === "acknowledged") throw new ConflictError("already_acknowledged", "the event is already acknowledged");
  if (row.id === null || row.lease_id === null || row.lease_expires_at === null) throw leaseExpired();
  return { id: row.id, lease_id: row.lease_id, lease_expires_at: new Date(row.lease_expires_at) };
}
