import type { PrismaClient } from "../../generated/prisma/client";

/** Why a delivery could not make a transition; the API answers each with its own 409. */
export type TransitionRefusal = "lease_expired" | "not_delivered" | "already_acknowledged" | "event_dead" | "not_dead";

/** A transition the delivery's state did not allow. `prior` is the status it was in. */
export interface Refused {
  readonly refused: TransitionRefusal;
  readonly prior: string;
}

/** True when a store result is a refusal rather than the new state. */
export function isRefused<T extends object>(result: T | Refused): result is Refused {
  return "refused" in result;
}

/** One event's delivery in one subscription of a tenant, and the lease the caller holds, if any. */
export interface DeliveryKey {
  readonly tenantId: string;
  readonly subscriptionId: number;
  readonly eventId: string;
  readonly leaseId?: string | undefined;
}

/**
 * A transition of one delivery, as SQL fragments over the locked row `t` and the updated row `e`.
 * Parameters: $1 event id, $2 tenant id, $3 lease id (uuid, or null when none was given),
 * $4 subscription id, $5 the transition's own value (seconds), when it has one.
 */
export interface Transition {
  /** The caller's claim on the delivery (its lease is the current one, or what an ack by id needs), evaluated on the locked row (columns unqualified). */
  readonly current: string;
  /** The condition, on `t` (status, current), under which the row changes. */
  readonly allowed: string;
  /** The SET list of the update, on `e`. */
  readonly set: string;
  /** Columns of the updated row to return, besides its id. */
  readonly returning: readonly string[];
}

/** What a transition statement answers: the prior state, and the `returning` columns R of the updated row (all null when nothing changed). */
export type TransitionRow<R> = { prior: string; current: boolean; id: string | null } & { [K in keyof R]: R[K] | null };

/**
 * The one statement of every lease transition (ack, nack, extend): `target` locks the delivery
 * row and evaluates `current` under that lock, `updated` applies the transition only when
 * `allowed`, and the answer names the prior status, so the caller can tell "not found" (no row),
 * "refused" (row, nothing updated) and "done" apart from one round trip. The row lock makes the
 * lease check and the update one atomic step.
 */
export function transitionSql(t: Transition): string {
  return `WITH target AS (
       SELECT event_id AS id, status,
              (${t.current}) AS current
       FROM deliveries WHERE event_id = $1 AND subscription_id = $4 AND tenant_id = $2
       FOR UPDATE
     ),
     updated AS (
       UPDATE deliveries e SET ${t.set}
       FROM target t
       WHERE e.event_id = t.id AND e.subscription_id = $4 AND ${t.allowed}
       RETURNING e.event_id AS id${t.returning.map((c) => `, e.${c}`).join("")}
     )
     SELECT t.status::text AS prior, COALESCE(t.current, false) AS current, u.id${t.returning.map((c) => `, u.${c}`).join("")}
     FROM target t LEFT JOIN updated u ON true`;
}

/** Runs a transition on one delivery; R types its `returning` columns. Undefined when the tenant has no such delivery. */
export async function transitionDelivery<R>(prisma: PrismaClient, t: Transition, key: DeliveryKey, value?: number): Promise<TransitionRow<R> | undefined> {
  const params: unknown[] = [key.eventId, key.tenantId, key.leaseId ?? null, key.subscriptionId];
  if (value !== undefined) params.push(value);
  const rows = await prisma.$queryRawUnsafe<Array<TransitionRow<R>>>(transitionSql(t), ...params);
  return rows[0];
}

/** A lease id matches the current lease: status delivered, the same lease id, not yet expired. */
export const LEASE_IS_CURRENT = "status = 'delivered' AND lease_id = $3::uuid AND lease_expires_at > now()";

/**
 * A lease-bound ack holds the delivery: its lease is the current one, or the delivery was
 * acknowledged while that lease was its last (the holder's repeat). ACKNOWLEDGE_SET keeps the last
 * lease id for this check; no answer but the lease's own ever shows it.
 */
export const LEASE_HOLDS_ACK = "lease_id = $3::uuid AND (status = 'acknowledged' OR (status = 'delivered' AND lease_expires_at > now()))";

/**
 * A delivery was handed to a consumer at least once: it is not pending, or it is pending again
 * after a delivery (nacked: delivery_count > 0; redriven: leased_at kept). A lease never handed
 * out (release-leases.ts) undoes its count and leased_at, so it does not count. Columns unqualified.
 */
export const WAS_DELIVERED = "(status <> 'pending' OR delivery_count > 0 OR leased_at IS NOT NULL)";

/**
 * The SET list that acknowledges a delivery (alias `e`): the first acknowledgement's time is kept,
 * the lease ends (no expiry) but its id stays, so only that lease's holder may repeat a lease-bound ack.
 */
export const ACKNOWLEDGE_SET = "status = 'acknowledged', acknowledged_at = COALESCE(e.acknowledged_at, now()), lease_expires_at = NULL";
