import type { PrismaClient } from "../../generated/prisma/client";
import { LEASE_IS_CURRENT, transitionDelivery, type Refused } from "./delivery-transition";

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
 * Refused: acknowledged (`already_acknowledged`), dead (`event_dead`), or `leaseId`
 * given and not the current lease (`lease_expired`). Returns null when the tenant has no such event.
 */
export async function nackEvent(
  prisma: PrismaClient,
  tenantId: string,
  subscriptionId: number,
  eventId: string,
  opts: { delaySeconds: number; leaseId?: string | undefined },
): Promise<NackResult | Refused | null> {
  const row = await transitionDelivery<{ available_at: Date }>(
    prisma,
    {
      current: LEASE_IS_CURRENT,
      allowed: "t.status IN ('pending', 'delivered') AND ($3::uuid IS NULL OR t.current)",
      set: "status = 'pending', available_at = now() + make_interval(secs => $5), lease_id = NULL, lease_expires_at = NULL",
      returning: ["available_at"],
    },
    { tenantId, subscriptionId, eventId, leaseId: opts.leaseId },
    opts.delaySeconds,
  );
  if (!row) return null;
  if (row.prior === "acknowledged") return { refused: "already_acknowledged", prior: row.prior };
  if (row.prior === "dead") return { refused: "event_dead", prior: row.prior };
  if (row.id === null || row.available_at === null) return { refused: "lease_expired", prior: row.prior };
  return { id: row.id, status: "pending", available_at: new Date(row.available_at), endedLease: row.prior === "delivered" };
}
