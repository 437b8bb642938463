import type { PrismaClient } from "../../generated/prisma/client";
import { sql } from "../sql";
import { leaseIsCurrent, leaseParam, transitionDelivery, transitionReturning, type Refused } from "./delivery-transition";

const NACK_RETURNING = transitionReturning({ available_at: "date?" });

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
  const row = await transitionDelivery(
    prisma,
    "nackEvent",
    {
      current: leaseIsCurrent(opts.leaseId),
      allowed: sql`t.status IN ('pending', 'delivered') AND (${leaseParam(opts.leaseId)} IS NULL OR t.current)`,
      set: sql`status = 'pending', available_at = now() + make_interval(secs => ${opts.delaySeconds}), lease_id = NULL, lease_expires_at = NULL`,
      returning: NACK_RETURNING,
    },
    { tenantId, subscriptionId, eventId, leaseId: opts.leaseId },
  );
  if (!row) return null;
  if (row.prior === "acknowledged") return { refused: "already_acknowledged", prior: row.prior };
  if (row.prior === "dead") return { refused: "event_dead", prior: row.prior };
  if (row.id === null || row.available_at === null) return { refused: "lease_expired", prior: row.prior };
  return { id: row.id, status: "pending", available_at: row.available_at, endedLease: row.prior === "delivered" };
}
