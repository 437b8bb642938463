import type { PrismaClient } from "../../generated/prisma/client";
import { execute, sql } from "../sql";

/** A state a delivery can be put in directly, and when it got there. */
export type FixtureState = { readonly status: "pending" } | { readonly status: "acknowledged"; readonly at: Date } | { readonly status: "dead"; readonly at: Date };

/**
 * Puts the deliveries of these events (of every subscription, or of one) into a state reached at a
 * given time, in one statement: how test and bench fixtures make rows in states the API reaches
 * only over time (an acknowledgement a week old, a death). The service never calls it.
 * Returns the deliveries changed.
 */
export async function setDeliveryState(prisma: PrismaClient, tenantId: string, eventIds: readonly string[], state: FixtureState, subscriptionId?: number): Promise<number> {
  if (eventIds.length === 0) return 0;
  const at = state.status === "pending" ? null : state.at;
  const subscription = subscriptionId === undefined ? sql`` : sql` AND subscription_id = ${subscriptionId}::int`;
  return execute(
    prisma,
    sql`UPDATE deliveries
           SET status = ${state.status}::event_status, lease_id = NULL, leased_at = NULL, lease_expires_at = NULL,
               acknowledged_at = CASE WHEN ${state.status} = 'acknowledged' THEN ${at}::timestamptz END,
               dead_at = CASE WHEN ${state.status} = 'dead' THEN ${at}::timestamptz END
         WHERE tenant_id = ${tenantId} AND event_id = ANY(${[...eventIds]}::text[])${subscription}`,
  );
}
