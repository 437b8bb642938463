import type { PrismaClient } from "../../generated/prisma/client";
import { fragment, sql } from "../sql";
import { leaseParam, transitionDelivery, transitionReturning, type Refused } from "./delivery-transition";

const EXTEND_ALLOWED = fragment("t.current");
const EXTEND_RETURNING = transitionReturning({ lease_id: "string?", lease_expires_at: "date?" });

export interface ExtendResult {
  readonly id: string;
  readonly lease_id: string;
  readonly lease_expires_at: Date;
}

/**
 * Extends the current lease of an event in one subscription to now + `visibilitySeconds` (which may also shorten it),
 * keeping its lease_id. Refused (lease_expired) when there is no current lease or `leaseId`
 * is not it, and already_acknowledged for an acknowledged event. Returns null when the tenant has
 * no such event.
 */
export async function extendLease(
  prisma: PrismaClient,
  tenantId: string,
  subscriptionId: number,
  eventId: string,
  opts: { visibilitySeconds: number; leaseId?: string | undefined },
): Promise<ExtendResult | Refused | null> {
  const lease = leaseParam(opts.leaseId);
  const secs = opts.visibilitySeconds;
  const row = await transitionDelivery(
    prisma,
    "extendLease",
    {
      current: sql`status = 'delivered' AND lease_expires_at > now() AND (${lease} IS NULL OR lease_id = ${lease})`,
      allowed: EXTEND_ALLOWED,
      set: sql`lease_expires_at = now() + make_interval(secs => ${secs}), available_at = now() + make_interval(secs => ${secs})`,
      returning: EXTEND_RETURNING,
    },
    { tenantId, subscriptionId, eventId, leaseId: opts.leaseId },
  );
  if (!row) return null;
  if (row.prior === "acknowledged") return { refused: "already_acknowledged", prior: row.prior };
  if (row.id === null || row.lease_id === null || row.lease_expires_at === null) return { refused: "lease_expired", prior: row.prior };
  return { id: row.id, lease_id: row.lease_id, lease_expires_at: row.lease_expires_at };
}
