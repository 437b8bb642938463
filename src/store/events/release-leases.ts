import type { PrismaClient } from "../../generated/prisma/client";
import { execute, sql } from "../sql";

/**
 * Undoes leases that were never handed to anyone (lease ids are unique per delivery, so each names
 * one subscription's delivery) (the client of a long poll went away while its
 * lease ran): each event whose lease is still the given one becomes pending and deliverable now,
 * and its delivery does not count. One statement; returns how many were released.
 */
export async function releaseLeases(prisma: PrismaClient, tenantId: string, leases: ReadonlyArray<{ id: string; lease_id: string }>): Promise<number> {
  if (leases.length === 0) return 0;
  return execute(
    prisma,
    sql`UPDATE deliveries e SET status = 'pending', lease_id = NULL, leased_at = NULL, lease_expires_at = NULL,
          available_at = now(), delivery_count = greatest(e.delivery_count - 1, 0)
        FROM unnest(${leases.map((l) => l.id)}::text[], ${leases.map((l) => l.lease_id)}::uuid[]) AS l(id, lease_id)
        WHERE e.tenant_id = ${tenantId} AND e.event_id = l.id AND e.status = 'delivered' AND e.lease_id = l.lease_id`,
  );
}
