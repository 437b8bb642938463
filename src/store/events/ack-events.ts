import type { PrismaClient } from "../../generated/prisma/client";
import { ConflictError } from "../../errors";

/**
 * Acknowledges one event of a tenant. Idempotent: acknowledging twice keeps the first time.
 * With `leaseId`, the ack is refused (409 lease_expired) unless that lease is still the current one
 * or the event is already acknowledged. Returns null when the tenant has no such event.
 */
export async function ackEvent(
  prisma: PrismaClient,
  tenantId: string,
  eventId: string,
  leaseId?: string,
): Promise<{ id: string; acknowledged_at: Date } | null> {
  if (leaseId !== undefined) {
    const current = await prisma.$queryRawUnsafe<Array<{ status: string; current: boolean }>>(
      `SELECT status::text AS status, (lease_id = $3::uuid AND lease_expires_at > now()) AS current
       FROM events WHERE id = $1 AND tenant_id = $2`,
      eventId,
      tenantId,
      leaseId,
    );
    const row = current[0];
    if (!row) return null;
    if (row.status !== "acknowledged" && row.current !== true) {
      throw new ConflictError("lease_expired", "the lease is no longer current; the event may have been redelivered");
    }
  }
  const rows = await prisma.$queryRawUnsafe<Array<{ id: string; acknowledged_at: Date }>>(
    `UPDATE events SET status = 'acknowledged', acknowledged_at = COALESCE(acknowledged_at, now()),
       lease_id = NULL, lease_expires_at = NULL
     WHERE id = $1 AND tenant_id = $2
     RETURNING id, acknowledged_at`,
    eventId,
    tenantId,
  );
  return rows[0] ?? null;
}
